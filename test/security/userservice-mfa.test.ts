// Invariants of the self-service login under selfservice `mfa_login` (spec 1.6) and of the
// token-changing calls (security B.2 #24), against real slapd, SMTP sink and HTTP SMS gateway:
// - the password alone opens no session: it leaves a pending login that serves no API call;
// - the second factor is one of the user's own tokens: another user's serial or OTP, a used
//   OTP, a code sent for another login or a wrong code never open a session;
// - a right password does not reset the account's failure count while the second factor is owed;
// - finishing a pending login replaces its cookie (the pending value is worth nothing after);
// - each token call needs its selfservice right and a serial of the user's own;
// - enroll/assign/delete/unassign/setpin/reset need a session opened with a second factor while
//   the user owns a token; SMS/e-mail enrollment uses the user-store value only; a new
//   destination is told to the old ones; an app token is inactive until its first code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { hotp, totpStep } from '../../src/otp/hotp.ts';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';
import { initToken, mailBody, REALM, settle, startOobEnv, type OobApp, type OobEnv } from '../oob/harness.ts';
import { base32Decode } from '../helpers/base32.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd');
const KEY = '3132333435363738393031323334353637383930';
const SEED = Buffer.from(KEY, 'hex');
let env: OobEnv;
before(async () => {
  if (!skip) env = await startOobEnv();
});
after(async () => env?.close());

type Answer = { status: number; json: any; body: string; cookie?: string };

function client(app: OobApp) {
  const call = async (path: string, form: Record<string, string>, cookie?: string): Promise<Answer> => {
    const res = await app.t.app.inject({
      method: 'POST', url: path, payload: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie: `user_selfservice=${cookie}` } : {}) },
    });
    const set = [res.headers['set-cookie']].flat().filter(Boolean).join('\n');
    const cookieValue = /user_selfservice=([^;]*)/.exec(set)?.[1];
    let json: any;
    try { json = JSON.parse(res.body); } catch { json = undefined; }
    return { status: res.statusCode, json, body: res.body, cookie: cookieValue || undefined };
  };
  const login = (form: Record<string, string>, cookie?: string) => call('/userservice/login', { realm: REALM, ...form }, cookie);
  const as = (path: string, cookie: string, form: Record<string, string> = {}) => call(path, { session: cookie, ...form }, cookie);
  return { call, login, as };
}

const grant = (app: OobApp, actions: string, name = 'ss') => app.policy(name, 'selfservice', actions);
const counter = async (app: OobApp, serial: string) => Number((await app.services.tokens.repository.bySerial(serial))!.counter);
const attempts = async (app: OobApp, login: string) => {
  const u = (await app.services.users.findUser(login, REALM))!;
  return (await app.services.accountAttempts.state({ realm: u.realm, userKey: `${u.resolver}/${u.userId}`, login: u.login }))?.failCount ?? 0;
};

describe('self-service login with mfa_login (attack tests)', { skip }, () => {
  test('the password alone leaves a pending login that serves nothing; password + own OTP opens an MFA session', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'mfa_login');
    await initToken(app, { type: 'hmac', serial: 'AliceHotp', otpkey: KEY, user: 'alice' });
    const first = await login({ login: 'alice', password: 'alicepw' });
    assert.deepEqual(first.json.result, { status: true, value: false }, first.body);
    assert.equal(first.json.detail.message, 'credential verified - additional authentication parameter required');
    assert.deepEqual(first.json.detail.tokenList.map((t: any) => t.serial), ['AliceHotp']);
    assert.ok(first.cookie);
    for (const path of ['/userservice/context', '/userservice/usertokenlist', '/userservice/userinfo']) {
      assert.equal((await as(path, first.cookie!)).status, 401, `${path} with a pending login`);
    }
    const done = await login({ login: 'alice', password: 'alicepw', otp: hotp(SEED, 0, 6) });
    assert.deepEqual(done.json.result, { status: true, value: true }, done.body);
    const ctx = await as('/userservice/context', done.cookie!);
    assert.equal(ctx.json.result.value.mfa, true);
    assert.equal(ctx.json.result.value.settings.mfa_login, true);
    // the same OTP again is a replay
    const again = await login({ login: 'alice', password: 'alicepw', otp: hotp(SEED, 0, 6) });
    assert.equal(again.json.result.value, false, again.body);
    assert.equal(again.cookie, undefined);
  }));

  test('another user\'s token never completes a login: their serial, their OTP, their pending cookie', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'mfa_login');
    await initToken(app, { type: 'hmac', serial: 'AliceHotp', otpkey: KEY, user: 'alice' });
    await initToken(app, { type: 'hmac', serial: 'MalloryHotp', otpkey: '3132333435363738393031323334353637383931', user: 'mallory' });
    const mSeed = Buffer.from('3132333435363738393031323334353637383931', 'hex');
    // mallory knows her own password and her own token's codes; she tries them for alice's login
    for (const form of <Record<string, string>[]>[
      { login: 'alice', password: 'mallorypw', otp: hotp(SEED, 0, 6) },
      { login: 'alice', password: 'alicepw', otp: hotp(mSeed, 0, 6), serial: 'MalloryHotp' },
      { login: 'alice', password: 'alicepw', otp: hotp(mSeed, 0, 6) },
    ]) {
      const a = await login(form);
      assert.equal(a.json.result.value, false, JSON.stringify(form));
      if (a.cookie) assert.equal((await as('/userservice/context', a.cookie)).status, 401);
    }
    // a pending login of mallory's, answered with her OTP, opens mallory's session, never alice's
    const pend = await login({ login: 'mallory', password: 'mallorypw' });
    const fin = await login({ otp: hotp(mSeed, 1, 6) }, pend.cookie);
    assert.equal(fin.json.result.value, true, fin.body);
    assert.notEqual(fin.cookie, pend.cookie, 'finishing a login gives a new cookie');
    assert.equal((await as('/userservice/userinfo', fin.cookie!)).json.result.value.username, 'mallory');
    assert.equal((await as('/userservice/userinfo', pend.cookie!)).status, 401, 'the pending cookie is spent');
    assert.equal((await login({ otp: hotp(mSeed, 2, 6) }, pend.cookie)).json.result.value, false, 'and cannot finish again');
    assert.equal(await counter(app, 'AliceHotp'), 0, 'alice\'s token was never used');
  }));

  test('challenge login: the code goes to the own e-mail token; a wrong, a used or another login\'s code opens nothing', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'mfa_login');
    await initToken(app, { type: 'email', email_address: 'bob@example.org', user: 'bob' });
    await initToken(app, { type: 'email', email_address: 'mallory@example.org', user: 'mallory' });
    const pend = await login({ login: 'bob', password: 'bobpw' });
    assert.equal(pend.json.detail.tokenList[0].destination, 'b***@example.org');
    const trig = await login({}, pend.cookie);
    assert.equal(trig.json.result.value, false, trig.body);
    assert.match(trig.json.detail.transactionid, /^\d+$/);
    assert.equal(trig.json.detail.destination, 'b***@example.org');
    const code = await app.mailCode(1);
    assert.match(app.mails()[0]!.to.join(','), /bob@example.org/);
    // mallory's code for her own pending login does not answer bob's
    const mp = await login({ login: 'mallory', password: 'mallorypw' });
    await login({}, mp.cookie);
    const mcode = await app.mailCode(2);
    assert.equal((await login({ otp: mcode }, pend.cookie)).json.result.value, false, 'another login\'s code');
    assert.equal((await login({ otp: '000000' === code ? '111111' : '000000' }, pend.cookie)).json.result.value, false, 'a wrong code');
    const ok = await login({ otp: code }, pend.cookie);
    assert.equal(ok.json.result.value, true, ok.body);
    assert.equal((await as('/userservice/context', ok.cookie!)).json.result.value.mfa, true);
    const again = await login({ login: 'bob', password: 'bobpw' });
    assert.equal((await login({ otp: code }, again.cookie)).json.result.value, false, 'a used code');
    await settle(app);
  }));

  test('a right password does not reset the failure count while the second factor is owed; guessing OTPs locks the account', () => env.withApp(async (app) => {
    const { login } = client(app);
    await grant(app, 'mfa_login');
    await app.config({ AccountFailDelayAfter: '100', AccountMaxFail: '6' });
    await initToken(app, { type: 'hmac', serial: 'CarolHotp', otpkey: KEY, user: 'carol' });
    await app.services.config.set('DefaultMaxFailCount', '100');
    for (let i = 0; i < 6; i++) {
      const a = await login({ login: 'carol', password: 'carolpw', otp: String(100000 + i) });
      assert.equal(a.json.result.value, false);
    }
    assert.ok((await attempts(app, 'carol')) >= 6, `count ${await attempts(app, 'carol')}`);
    // the account is locked now: even the right OTP does not get in
    assert.equal((await login({ login: 'carol', password: 'carolpw', otp: hotp(SEED, 0, 6) })).json.result.value, false);
    assert.equal(await counter(app, 'CarolHotp'), 0);
  }));

  test('mfa_passOnNoToken lets a user without a token in with the password; without it they are refused', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'mfa_login');
    const no = await login({ login: 'dave', password: 'davepw' });
    assert.equal(no.json.result.value, false);
    assert.equal(no.cookie, undefined);
    await grant(app, 'mfa_login, mfa_passOnNoToken');
    const yes = await login({ login: 'dave', password: 'davepw' });
    assert.equal(yes.json.result.value, true, yes.body);
    assert.equal((await as('/userservice/context', yes.cookie!)).json.result.value.mfa, false);
  }));
});

describe('self-service token calls (attack tests)', { skip }, () => {
  test('every call needs its selfservice right; without a policy a user may only read', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    const serial = await initToken(app, { type: 'hmac', serial: 'AliceHotp', otpkey: KEY, user: 'alice' });
    const s = (await login({ login: 'alice', password: 'alicepw' })).cookie!;
    const calls: [string, Record<string, string>][] = [
      ['/userservice/enable', { serial }], ['/userservice/disable', { serial }], ['/userservice/delete', { serial }],
      ['/userservice/reset', { serial }], ['/userservice/unassign', { serial }], ['/userservice/setpin', { serial, userpin: 'x1' }],
      ['/userservice/setdescription', { serial, description: 'x' }], ['/userservice/resync', { serial, otp1: '1', otp2: '2' }],
      ['/userservice/verify', { serial, otp: '123456' }], ['/userservice/assign', { serial: 'X', otp: '1' }],
      ['/userservice/getSerialByOtp', { otp: '123456' }], ['/userservice/enroll', { type: 'totp' }], ['/userservice/history', {}],
    ];
    for (const [path, form] of calls) {
      const a = await as(path, s, form);
      assert.equal(a.json?.result?.status, false, `${path}: ${a.body}`);
      assert.equal(a.json.result.error.code, Errors.selfserviceNotAllowed.code, path);
    }
    const t = (await app.services.tokens.repository.bySerial(serial))!;
    assert.equal(t.active, true);
    assert.equal(t.description, '');
    assert.equal((await as('/userservice/usertokenlist', s)).json.result.value.length, 1);
  }));

  test('someone else\'s serial is refused like a serial that does not exist, for every call', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'enable, disable, delete, reset, unassign, setOTPPIN, setDescription, resync, verify');
    await initToken(app, { type: 'hmac', serial: 'MalloryHotp', otpkey: KEY, user: 'mallory' });
    const s = (await login({ login: 'alice', password: 'alicepw' })).cookie!;
    for (const serial of ['MalloryHotp', 'NoSuchSerial']) {
      for (const [path, form] of [
        ['/userservice/enable', {}], ['/userservice/disable', {}], ['/userservice/delete', {}], ['/userservice/reset', {}],
        ['/userservice/unassign', {}], ['/userservice/setpin', { userpin: 'x1' }], ['/userservice/setdescription', { description: 'x' }],
        ['/userservice/resync', { otp1: '1', otp2: '2' }], ['/userservice/verify', { otp: '123456' }],
      ] as [string, Record<string, string>][]) {
        const a = await as(path, s, { serial, ...form });
        assert.equal(a.json.result.error?.code, Errors.notOwnToken.code, `${path} ${serial}: ${a.body}`);
        assert.equal(a.json.result.error.message, `ERR2901: You have no token ${serial}`);
      }
    }
    const t = (await app.services.tokens.repository.bySerial('MalloryHotp'))!;
    assert.equal(t.active, true);
    assert.equal(t.userId !== '', true);
    const audit = await app.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'userservice/disable').orderBy('id', 'desc').executeTakeFirstOrThrow();
    assert.equal(audit.user, 'alice');
    assert.equal(audit.success, '0');
  }));

  test('adding, removing or weakening a factor needs an MFA session while the user owns a token', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'enrollTOTP, enrollEMAIL, delete, unassign, setOTPPIN, reset, disable, setDescription');
    const serial = await initToken(app, { type: 'hmac', serial: 'AliceHotp', otpkey: KEY, user: 'alice' });
    const pw = (await login({ login: 'alice', password: 'alicepw' })).cookie!;
    for (const [path, form] of [
      ['/userservice/enroll', { type: 'totp' }], ['/userservice/enroll', { type: 'email' }], ['/userservice/delete', { serial }],
      ['/userservice/unassign', { serial }], ['/userservice/setpin', { serial, userpin: 'abc123' }], ['/userservice/reset', { serial }],
    ] as [string, Record<string, string>][]) {
      const a = await as(path, pw, form);
      assert.equal(a.json.result.error?.code, Errors.secondFactorNeeded.code, `${path}: ${a.body}`);
    }
    assert.equal((await app.tokensOf('alice')).length, 1);
    // changes that add nothing are allowed with the password session
    assert.equal((await as('/userservice/setdescription', pw, { serial, description: 'my fob' })).json.result.value['set description'], 1);
    assert.equal((await as('/userservice/disable', pw, { serial })).json.result.value['disable token'], 1);
    // a user who owns no token may enroll the first one with the password
    const bob = (await login({ login: 'bob', password: 'bobpw' })).cookie!;
    const e = await as('/userservice/enroll', bob, { type: 'email' });
    assert.equal(e.json.result.value, true, e.body);
    // with mfa_login the MFA session may
    await app.services.tokens.setActive([(await app.services.tokens.repository.bySerial(serial))!], true);
    await grant(app, 'mfa_login', 'mfa');
    const mfa = (await login({ login: 'alice', password: 'alicepw', otp: hotp(SEED, 0, 6) })).cookie!;
    assert.equal((await as('/userservice/enroll', mfa, { type: 'totp' })).json.result.value, true);
  }));

  test('SMS/e-mail enrollment takes the user-store value only; a new destination is told to the old one', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'enrollSMS, enrollEMAIL, mfa_login');
    await initToken(app, { type: 'email', email_address: 'old-alice@example.org', user: 'alice' });
    const pend = await login({ login: 'alice', password: 'alicepw' });
    await login({}, pend.cookie);
    const code = await app.mailCode(1);
    const s = (await login({ otp: code }, pend.cookie)).cookie!;
    const other = await as('/userservice/enroll', s, { type: 'sms', phone: '+4915123456789' });
    assert.equal(other.json.result.error?.code, Errors.destinationNotEditable.code, other.body);
    assert.match(other.json.result.error.message, /\+1 201 \*\*\*\*01/);
    const dave = (await login({ login: 'dave', password: 'davepw' }));
    // dave has no token and no mobile: mfa_login without passOnNoToken lets him not in at all
    assert.equal(dave.json.result.value, false);
    const sms = await as('/userservice/enroll', s, { type: 'sms' });
    assert.equal(sms.json.result.value, true, sms.body);
    const tokens = await app.tokensOf('alice');
    assert.equal(JSON.parse(tokens.at(-1)!.token_info).phone, '+12015550101');
    const mail = await as('/userservice/enroll', s, { type: 'email' });
    assert.equal(mail.json.result.value, true, mail.body);
    // the old address hears of the new phone number and of the new address
    await app.mailCode(1);
    const notices = async () => app.mails().filter((m) => m.to.join(',').includes('old-alice@example.org') && /new/.test(mailBody(m)));
    await waitFor(async () => (await notices()).length >= 2, { what: 'two notices to the old address' });
    const bodies = (await notices()).map(mailBody).join('\n');
    assert.match(bodies, /phone number \+1 201 \*\*\*\*01/);
    assert.match(bodies, /e-mail address a\*\*\*@example\.org/);
    assert.doesNotMatch(bodies, /\+12015550101|alice@example\.org/);
    await settle(app);
  }));

  test('an enrolled app token is inactive until its first code; the QR URL gives that code; enable cannot skip it', () => env.withApp(async (app) => {
    const { login, as } = client(app);
    await grant(app, 'enrollTOTP, verify, enable');
    const s = (await login({ login: 'dave', password: 'davepw' })).cookie!;
    const e = await as('/userservice/enroll', s, { type: 'totp', description: 'phone app' });
    assert.equal(e.json.result.value, true, e.body);
    const serial = e.json.detail.serial;
    const url = new URL(e.json.detail.googleurl.value);
    const secret = url.searchParams.get('secret')!;
    const seed = base32Decode(secret);
    const t = (await app.services.tokens.repository.bySerial(serial))!;
    assert.equal(t.active, false);
    // not usable for a login, and enable does not skip the first code
    const now = app.clock.now();
    assert.equal((await app.check({ user: 'dave', pass: totpAt(seed, now, 30, 6) })).json.result.value, false);
    assert.equal((await as('/userservice/enable', s, { serial })).json.result.error?.code, Errors.enrollmentNotConfirmed.code);
    assert.equal((await as('/userservice/verify', s, { serial, otp: '000000' === totpAt(seed, now, 30, 6) ? '111111' : '000000' })).json.result.value, false);
    const ok = await as('/userservice/verify', s, { serial, otp: totpAt(seed, now, 30, 6) });
    assert.equal(ok.json.result.value, true, ok.body);
    assert.equal((await app.services.tokens.repository.bySerial(serial))!.active, true);
    // the confirming code is used up; the next one logs in
    app.clock.advance(30_000);
    assert.equal((await app.check({ user: 'dave', pass: totpAt(seed, app.clock.now(), 30, 6) })).json.result.value, true);
    assert.doesNotMatch((await as('/userservice/usertokenlist', s)).body, new RegExp(secret));
  }));
});

const totpAt = (seed: Buffer, nowMs: number, period: number, digits: number) => hotp(seed, totpStep(nowMs, period), digits);

