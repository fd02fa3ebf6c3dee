import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors, OtpdError } from '../../src/errors.ts';
import { ACTIONS, TOKEN_TYPES, actionNames, actionSpec } from '../../src/policy/catalogue.ts';
import { PolicyDefinitionError, parseActionString, parseActions, typeValue } from '../../src/policy/parse.ts';
import { compilePolicy } from '../../src/policy/match.ts';
import type { Scope } from '../../src/policy/catalogue.ts';

test('action strings: items, negation, values, quoting', () => {
  assert.deepEqual(parseActionString('otppin=1, passthru, !autosms'), [
    { name: 'otppin', negated: false, value: '1' },
    { name: 'passthru', negated: false, value: undefined },
    { name: 'autosms', negated: true, value: undefined },
  ]);
  assert.deepEqual(parseActionString(`smstext='Code, <otp> = valid', emailsubject="a,b=c"`), [
    { name: 'smstext', negated: false, value: 'Code, <otp> = valid' },
    { name: 'emailsubject', negated: false, value: 'a,b=c' },
  ]);
  // an apostrophe inside an unquoted value is plain text
  assert.deepEqual(parseActionString("smstext=Don't share <otp>"), [{ name: 'smstext', negated: false, value: "Don't share <otp>" }]);
  // '-' negates as '!' does; empty items are skipped; an unchanged repeat is fine; '=' after the first belongs to the value
  assert.deepEqual(parseActionString(' -autosms ,, smstext=x=y, smstext=x=y'), [
    { name: 'autosms', negated: true, value: undefined },
    { name: 'smstext', negated: false, value: 'x=y' },
  ]);
});

test('action strings: contradicting duplicates, bad quoting and empty names are refused', () => {
  for (const bad of ['passthru, !passthru', 'otppin=1, otppin=2', "smstext='open", "smstext='a'b", '=1', '!passthru=1']) {
    assert.throws(() => parseActionString(bad), (e: unknown) => e instanceof PolicyDefinitionError && e.code === Errors.invalidPolicy.code, bad);
  }
});

const typed: [Scope, string, [string, string | number | boolean][]][] = [
  ['authorization', 'serial=^LSSM.*', [['serial', '^LSSM.*']]],
  ['authorization', 'tokentype=hmac totp', [['tokentype', 'hmac totp']]],
  ['authentication', 'otppin=1', [['otppin', 'password']]],
  ['authentication', 'otppin=token_pin', [['otppin', 'token_pin']]],
  ['authentication', 'otppin=3', [['otppin', 'ignore_pin']]],
  ['authentication', 'otppin=ONLY_OTP', [['otppin', 'only_otp']]],
  ['authentication', 'passthru', [['passthru', true]]],
  ['authentication', '!passthru', [['passthru', false]]],
  ['authentication', 'passthru=false', [['passthru', false]]],
  ['authentication', 'passthru=-1', [['passthru', false]]],
  ['authentication', 'passthru=1', [['passthru', true]]],
  ['authentication', 'challenge_response=SMS  email', [['challenge_response', 'sms email']]],
  ['authentication', 'sms_provider=primary backup_1', [['sms_provider', 'primary backup_1']]],
  ['authentication', 'email_provider=mail1 mail2', [['email_provider', 'mail1 mail2']]],
  ['authentication', 'smstext=', [['smstext', '']]],
  ['enrollment', 'autoenrollment=sms', [['autoenrollment', 'sms']]],
  ['enrollment', 'autoenrollment=email', [['autoenrollment', 'email']]],
  ['enrollment', 'autoenrollment=sms email', [['autoenrollment', 'sms email']]],
  ['enrollment', 'autoenrollment=Email SMS', [['autoenrollment', 'email sms']]],
  ['enrollment', 'autoenrollment=*', [['autoenrollment', '*']]],
  ['enrollment', 'maxtoken=3, maxtokenSMS=1, tokencount=0', [['maxtoken', 3], ['maxtokenSMS', 1], ['tokencount', 0]]],
  ['authorization', 'setrealm=MyRealm', [['setrealm', 'myrealm']]],
  ['admin', '*, !remove', [['*', true], ['remove', false]]],
  ['admin', 'initHMAC, initTOTP, show', [['initHMAC', true], ['initTOTP', true], ['show', true]]],
  ['admin', 'losttoken, getserial, !copytokenpin', [['losttoken', true], ['getserial', true], ['copytokenpin', false]]],
  ['enrollment', 'lostTokenValid=1d12h, lostTokenPWContents=Ccn, lostTokenPWLen=12', [['lostTokenValid', '1d12h'], ['lostTokenPWContents', 'Ccn'], ['lostTokenPWLen', 12]]],
  ['system', 'read', [['read', true]]],
  ['audit', 'view', [['view', true]]],
];

for (const [scope, action, expected] of typed) {
  test(`typed: ${scope} '${action}'`, () => {
    assert.deepEqual([...parseActions(scope, action)], expected);
  });
}

// Actions otpd refuses keep their value types in the catalogue (for the day they are
// implemented, and so the docs describe them); the types are checked directly.
const typeOnly = (scope: Scope, action: string) =>
  parseActionString(action).map((item) => [item.name, typeValue(actionSpec(scope, item.name)!, item)] as const);

const typedUnsupported: [Scope, string, [string, string | number | boolean][]][] = [
  ['enrollment', 'otp_pin_random=6, otp_pin_random_content=Ccn', [['otp_pin_random', 6], ['otp_pin_random_content', 'Ccn']]],
  ['notification', 'autoenrollment=email::mailer', [['autoenrollment', 'email::mailer']]],
  ['selfservice', 'enrollSMS, enrollEMAIL, edit_sms=0', [['enrollSMS', true], ['enrollEMAIL', true], ['edit_sms', 0]]],
];

for (const [scope, action, expected] of typedUnsupported) {
  test(`typed, but refused as not supported by otpd: ${scope} '${action}'`, () => {
    assert.deepEqual(typeOnly(scope, action), expected);
    assert.throws(() => parseActions(scope, action), (e: unknown) => e instanceof PolicyDefinitionError && /is not supported by otpd: /.test(e.message));
  });
}

const wronglyTypedUnsupported: [Scope, string, RegExp][] = [
  ['enrollment', 'otp_pin_random_content=abc', /otp_pin_random_content/],
  ['notification', 'autoenrollment=sms::x', /email::<provider>/],
  ['selfservice', 'edit_sms=2', /edit_sms.*out of range/],
];

for (const [scope, action, message] of wronglyTypedUnsupported) {
  test(`wrongly typed (and not supported): ${scope} '${action}'`, () => {
    assert.throws(() => typeOnly(scope, action), (e: unknown) => e instanceof PolicyDefinitionError && message.test(e.message));
    assert.throws(() => parseActions(scope, action), /is not supported by otpd/);
  });
}

const refused: [Scope, string, RegExp][] = [
  ['enrollment', 'lostTokenValid=2w', /lostTokenValid.*duration/],
  ['enrollment', 'autoenrollment=hmac', /action 'autoenrollment'.*lists 'hmac'/],
  ['enrollment', 'autoenrollment=sms * email', /action 'autoenrollment'.*'sms \* email'/],
  ['enrollment', 'autoenrollment=sms sms', /autoenrollment.*twice/],
  ['enrollment', 'autoenrollment', /autoenrollment.*needs a value/],
  ['authentication', 'otppin=7', /action 'otppin'.*'7'.*expected one of 0, 1, 2, 3/],
  ['authentication', 'otppin', /otppin.*needs a value/],
  ['authentication', '!otppin', /otppin.*cannot be negated/],
  ['authentication', 'passthru=maybe', /passthru.*'maybe'.*boolean/],
  ['authentication', 'challenge_response=hmac qr', /challenge_response.*'qr'/],
  ['authentication', 'sms_provider=a,b', /unknown action 'b'/],
  ['authentication', 'sms_provider=bad/name', /sms_provider.*'bad\/name'/],
  ['authentication', 'passonnotoken', /unknown action 'passonnotoken'.*did you mean 'passOnNoToken'/],
  ['authentication', 'maxtoken=2', /unknown action 'maxtoken' in scope 'authentication'.*belongs to scope enrollment/],
  ['authentication', 'forward_server=radius://secret@10.0.0.1:1812', /forward_server.*otpd forwards over LinOTP's HTTP API only.*radius:\/\/ targets are not supported/],
  ['authentication', 'forward_server=ftp://old.example.org', /forward_server.*is no server: use linotp:\/\//],
  ['authentication', 'forward_server=linotp://old.example.org?timeout=90', /timeout must be 1 to 30 seconds/],
  ['authentication', 'forward_server=https://admin:pw@old.example.org', /no credentials in the URL/],
  ['authentication', 'voice_provider=x', /voice_provider.*not supported by otpd/],
  ['authentication', '*', /action '\*'.*only allowed/],
  ['enrollment', 'maxtoken=-1', /maxtoken.*out of range/],
  ['enrollment', 'maxtoken=two', /maxtoken.*'two'.*integer/],
  ['enrollment', 'maxtokenSMS=1.5', /maxtokenSMS/],
  ['enrollment', 'maxtokenHOTP=1', /unknown action 'maxtokenHOTP'/],
  ['enrollment', 'maxtokensms=1', /did you mean 'maxtokenSMS'/],
  ['authorization', 'serial=([', /serial.*regular expression/],
  ['enrollment', 'maxtoken=2, tokenissuer=corp', /^action 'tokenissuer' \(scope enrollment\) is not supported by otpd: otpd's enrollment URLs always carry the issuer/],
  ['admin', 'show, !setOTPPIN', /^action 'setOTPPIN' \(scope admin\) is not supported by otpd: \/admin\/setPin sets the user PIN of mOTP\/OCRA tokens/],
  ['selfservice', '*', /^action '\*' \(scope selfservice\) is not supported by otpd: each selfservice right is granted by name: \* would also switch on mfa_passOnNoToken/],
  ['selfservice', 'enrollSPASS', /^action 'enrollSPASS' \(scope selfservice\) is not supported by otpd: a user-chosen static password is no second factor/],
  ['selfservice', 'edit_sms=1', /^action 'edit_sms' \(scope selfservice\) is not supported by otpd: otpd always enrolls the user-store mobile number/],
  ['notification', 'setPin=email::m', /^action 'setPin' \(scope notification\) is not supported by otpd/],
  ['admin', '!*', /'\*' takes no value and cannot be negated/],
  ['bogus' as Scope, 'x', /unknown action/],
];

for (const [scope, action, message] of refused) {
  test(`refused: ${scope} '${action}'`, () => {
    assert.throws(
      () => (scope === ('bogus' as Scope) ? compilePolicy({ name: 'p', scope, action, realm: '*' }) : parseActions(scope, action)),
      (e: unknown) => {
        assert.ok(e instanceof OtpdError, String(e));
        assert.equal(e.code, Errors.invalidPolicy.code);
        if (scope !== ('bogus' as Scope)) assert.match(e.message, message);
        else assert.match(e.message, /unknown scope 'bogus'/);
        return true;
      },
    );
  });
}

test('policy fields are validated with the field named', () => {
  const base = { name: 'p1', scope: 'authentication', action: 'passthru', realm: 'r', user: '*', client: '*' };
  const cases: [Partial<typeof base> & { time?: string; active?: string }, string, RegExp][] = [
    [{ name: 'bad name' }, 'name', /invalid policy name/],
    [{ name: '' }, 'name', /invalid policy name/],
    [{ realm: '' }, 'realm', /realm is required/],
    [{ realm: '!secret' }, 'realm', /only excludes/],
    [{ realm: 'a b' }, 'realm', /not a realm name/],
    [{ user: '!alice' }, 'user', /only excludes users/],
    [{ user: 'ali(ce' }, 'user', /not a valid pattern/],
    [{ user: '#' }, 'user', /no valid attribute/],
    [{ user: '*#mobile~=(' }, 'user', /not a valid regular expression/],
    [{ client: '10.0.0.0/33' }, 'client', /not an IP address or network/],
    [{ client: 'vpn.example.org' }, 'client', /not an IP address/],
    [{ client: '!10.0.0.1' }, 'client', /only excludes/],
    [{ time: '* * * * *' }, 'time', /has 5 fields/],
    [{ time: '* 25 * * * *' }, 'time', /hour 25 is out of range/],
    [{ time: '!* * * * 0 *' }, 'time', /only excludes times/],
    [{ active: 'perhaps' }, 'active', /True or False/],
    [{ scope: 'admin', action: 'show', realm: '*, !secret' }, 'realm', /exclusions are not supported/],
  ];
  for (const [patch, field, message] of cases) {
    assert.throws(
      () => compilePolicy({ ...base, ...patch }),
      (e: unknown) => e instanceof PolicyDefinitionError && e.field === field && message.test(e.message),
      JSON.stringify(patch),
    );
  }
});

test('normalisation: realm lower-cased, empty user/client = * only in the five scopes, time default, active', () => {
  const p = compilePolicy({ name: 'p', scope: 'authentication', action: 'passthru', realm: 'MyRealm', user: '', client: '', time: '', active: 'False' });
  assert.equal(p.realm, 'myrealm');
  assert.equal(p.user, '*');
  assert.equal(p.client, '*');
  assert.equal(p.time, '* * * * * *;');
  assert.equal(p.active, false);
  const n = compilePolicy({ name: 'n', scope: 'system', action: 'read', realm: '*', user: '', client: '' });
  assert.equal(n.user, '');
  assert.equal(n.userCond.none, true);
  assert.equal(n.clientCond.none, true);
});

test('catalogue: every <TYPE> family covers every token type and names are unique per scope', () => {
  for (const prefix of ['maxtoken', 'init', 'enroll']) {
    const spec = ACTIONS.find((a) => a.name === `${prefix}<TYPE>`);
    assert.ok(spec, prefix);
    // a user may enroll only the types with a real second factor; spass and pw have their own refused entries
    const types = prefix === 'enroll' ? TOKEN_TYPES.filter((t) => t !== 'spass' && t !== 'pw') : TOKEN_TYPES;
    assert.deepEqual(spec.family, types.map((t) => `${prefix}${t.toUpperCase()}`));
    for (const name of spec.family!) assert.equal(actionSpec(spec.scope, name), spec);
  }
  for (const name of ['enrollSPASS', 'enrollPW']) assert.equal(actionSpec('selfservice', name)?.status, 'unsupported', name);
  for (const scope of ['authentication', 'enrollment', 'authorization', 'selfservice', 'admin', 'system', 'audit', 'notification'] as Scope[]) {
    const names = actionNames(scope);
    assert.equal(new Set(names).size, names.length, scope);
    assert.ok(names.length > 0, scope);
  }
  for (const a of ACTIONS) assert.ok(a.description.length > 10, a.name);
});
