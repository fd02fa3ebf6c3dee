/**
 * Invariants (security B.2 #23, spec 4): a token is autoenrolled only after the
 * user-store password was verified; its destination comes from the user store,
 * never from the request; the password is never stored as the PIN; parallel
 * first logins create exactly one token and send one message; a send that
 * fails leaves no token and no challenge behind. Real slapd, SMTP sink and HTTP
 * SMS gateway on loopback.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';
import { REALM, settle, startOobEnv, type OobApp, type OobEnv } from './harness.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd');
let env: OobEnv;
before(async () => {
  if (!skip) env = await startOobEnv();
});
after(async () => {
  await env?.close();
});

const withApp = (fn: (app: OobApp) => Promise<void>, opts?: Parameters<OobEnv['app']>[0]) => env.withApp(fn, opts);

const OTPPIN = [['0', 'token_pin'], ['1', 'password'], ['2', 'only_otp']] as const;

describe('autoenrollment with otppin 0, 1 and 2', { skip }, () => {
  for (const [otppin, name] of OTPPIN) {
    test(`e-mail, otppin=${otppin} (${name}): enroll, answer with the transaction id, then log in again`, () => withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=email');
      await app.policy('pin', 'authentication', `otppin=${otppin}`);
      const first = await app.check({ user: 'bob', pass: 'bobpw' });
      assert.equal(first.json.result.status, true);
      assert.equal(first.json.result.value, false);
      const d = first.json.detail;
      assert.equal(d.message, 'e-mail sent successfully');
      assert.equal(d.linotp_tokentype, 'email');
      assert.equal(d.linotp_tokendescription, `auto enrolled for bob@${REALM}`);
      assert.match(d.linotp_tokenserial, /^LSEM[0-9A-F]{8}$/);
      assert.match(d.transactionid, /^\d{17}$/);
      assert.equal(d.state, d.transactionid);

      const [token] = await app.tokensOf('bob');
      assert.equal(token?.type, 'email');
      assert.equal(token.serial, d.linotp_tokenserial);
      const info = JSON.parse(token.token_info);
      assert.equal(info.email_address, 'bob@example.org');
      assert.equal(info.pin_source, 'store');
      assert.equal(token.pin_hash, '', 'the password is never stored as the PIN');

      assert.equal(app.mails().length, 1);
      assert.deepEqual(app.mails()[0]!.to, ['bob@example.org']);
      const code = await app.mailCode();
      assert.match(code, /^\d{6}$/);

      assert.equal((await app.check({ user: 'bob', pass: '000000', transactionid: d.transactionid })).json.result.value, false);
      assert.equal((await app.check({ user: 'bob', pass: code, transactionid: d.transactionid })).json.result.value, true);
      assert.equal((await app.check({ user: 'bob', pass: code, transactionid: d.transactionid })).json.result.value, false, 'replay');

      // Second login: the token exists, so the same trigger (per otppin) sends a new code.
      const trigger = otppin === '2' ? 'anything' : 'bobpw';
      const second = await app.check({ user: 'bob', pass: trigger });
      assert.equal(second.json.detail?.message, 'e-mail sent successfully', second.body);
      assert.notEqual(second.json.detail.transactionid, d.transactionid);
      const code2 = await app.mailCode(2);
      assert.equal(app.mails().length, 2);
      // One step: password+OTP (otppin 0/1) or the OTP alone (otppin 2).
      const oneStep = otppin === '2' ? code2 : `bobpw${code2}`;
      assert.equal((await app.check({ user: 'bob', pass: oneStep })).json.result.value, true);
      assert.equal((await app.check({ user: 'bob', pass: oneStep })).json.result.value, false, 'replay of the one-step answer');
      assert.equal((await app.tokensOf('bob')).length, 1);
    }));

    test(`SMS, otppin=${otppin}: enroll from the directory's mobile, one-step answer`, () => withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=sms');
      await app.policy('pin', 'authentication', `otppin=${otppin}`);
      const first = await app.check({ user: 'carol', pass: 'carolpw' });
      assert.equal(first.json.result.value, false);
      assert.equal(first.json.detail.message, 'sms submitted');
      assert.equal(first.json.detail.linotp_tokentype, 'sms');
      assert.match(first.json.detail.linotp_tokenserial, /^LSSM/);
      const code = await app.smsCode();
      const req = app.sms()[0]!;
      assert.equal(req.body.phone, '+12015550103');
      assert.equal(req.body.sms, code);
      const wrongPin = otppin === '2' ? `1${code}` : `wrong${code}`;
      assert.equal((await app.check({ user: 'carol', pass: wrongPin })).json.result.value, false, 'wrong password + right OTP');
      const oneStep = otppin === '2' ? code : `carolpw${code}`;
      assert.equal((await app.check({ user: 'carol', pass: oneStep })).json.result.value, true);
      const [token] = await app.tokensOf('carol');
      assert.equal(JSON.parse(token!.token_info).phone, '+12015550103');
      assert.equal(token!.fail_count, 0, 'success resets the fail counter');
    }));
  }
});

describe('choice of type (spec 4.3 table)', { skip }, () => {
  // alice: mobile + mail, bob: mail only, carol: mobile only, dave: neither
  const cases: [string, string, string | null, string?][] = [
    ['sms', 'alice', 'sms'], ['sms', 'bob', null, 'missing mobile number!'], ['sms', 'carol', 'sms'], ['sms', 'dave', null, 'missing sms or email!'],
    ['email', 'alice', 'email'], ['email', 'bob', 'email'], ['email', 'carol', null, 'missing email!'], ['email', 'dave', null, 'missing sms or email!'],
    ['sms email', 'alice', 'sms'], ['sms email', 'bob', 'email'], ['sms email', 'carol', 'sms'], ['sms email', 'dave', null, 'missing sms or email!'],
    ['email sms', 'alice', 'email'], ['email sms', 'bob', 'email'], ['email sms', 'carol', 'sms'], ['email sms', 'dave', null, 'missing sms or email!'],
    ['*', 'alice', 'sms'], ['*', 'bob', 'email'], ['*', 'carol', 'sms'], ['*', 'dave', null, 'missing sms or email!'],
  ];
  test('preference order for users with both, one or neither attribute', () => withApp(async (app) => {
    await app.policy('detail', 'authorization', 'detail_on_fail');
    let mails = 0;
    let sms = 0;
    for (const [value, login, expected, error] of cases) {
      await app.policy('ae', 'enrollment', `autoenrollment=${value}`);
      const res = await app.check({ user: login, pass: `${login}pw` });
      assert.equal(res.json.result.value, false);
      const tokens = await app.tokensOf(login);
      if (expected) {
        assert.equal(res.json.detail?.linotp_tokentype, expected, `${value} / ${login}: ${res.body}`);
        assert.equal(tokens.length, 1);
        if (expected === 'sms') sms++;
        else mails++;
        await app.t.admin('/admin/remove', { serial: tokens[0]!.serial });
      } else {
        assert.equal(tokens.length, 0, `${value} / ${login}: no token`);
        assert.equal(res.json.detail?.error, `auto_enrollment for user ${login}@${REALM} failed: ${error}`, `${value} / ${login}`);
      }
    }
    await settle(app);
    assert.equal(app.mails().length, mails);
    assert.equal(app.sms().length, sms);
  }));

  test('a policy for one user wins over the realm-wide one; values outside the list are refused', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=sms');
    await app.policy('ae_alice', 'enrollment', 'autoenrollment=email', { user: 'alice' });
    const res = await app.check({ user: 'alice', pass: 'alicepw' });
    assert.equal(res.json.detail.linotp_tokentype, 'email');
    await assert.rejects(app.policy('bad', 'enrollment', 'autoenrollment=hmac'));
    await assert.rejects(app.policy('bad', 'enrollment', 'autoenrollment=sms * email'));
  }));
});

describe('refusals leave nothing behind', { skip }, () => {
  test('wrong or empty password: no token, no message, no detail; reason in audit, detail.error only with detail_on_fail', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=*');
    for (const pass of ['wrong', '']) {
      const res = await app.check({ user: 'alice', pass });
      assert.equal(res.json.result.status, true);
      assert.equal(res.json.result.value, false);
      assert.equal(res.json.detail, undefined, res.body);
    }
    assert.equal((await app.tokensOf('alice')).length, 0);
    const audit = await app.services.db.kysely.selectFrom('audit').select(['action_detail', 'user', 'success']).where('action', '=', 'validate/check').execute();
    assert.ok(audit.some((a) => a.action_detail === `User 'alice'@'${REALM}' failed to authenticate against userstore` && a.success === '0'), JSON.stringify(audit));
    assert.ok(!JSON.stringify(audit).includes('wrong'), 'the entered password is not in the audit');

    await app.policy('detail', 'authorization', 'detail_on_fail');
    const res = await app.check({ user: 'alice', pass: 'wrong' });
    assert.equal(res.json.detail.error, `User 'alice'@'${REALM}' failed to authenticate against userstore`);
    // The password is checked before the attributes: dave's missing attributes do not leak to a wrong password.
    const dave = await app.check({ user: 'dave', pass: 'wrong' });
    assert.equal(dave.json.detail.error, `User 'dave'@'${REALM}' failed to authenticate against userstore`);
    await settle(app);
    assert.equal(app.mails().length + app.sms().length, 0);
  }));

  test('the destination comes from the user store, never from the request', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=*');
    const res = await app.check({ user: 'bob', pass: 'bobpw', phone: '+12015550666', email_address: 'attacker@evil.example', email: 'attacker@evil.example', mobile: '+12015550666' });
    assert.equal(res.json.detail.linotp_tokentype, 'email');
    await app.mailCode();
    assert.deepEqual(app.mails().map((m) => m.to), [['bob@example.org']]);
    assert.equal(app.sms().length, 0);
  }));

  test('send limit reached: no token, no message', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=sms');
    await app.policy('detail', 'authorization', 'detail_on_fail');
    await app.config({ DeliveryAllowedCountryCodes: '49' });
    const res = await app.check({ user: 'carol', pass: 'carolpw' });
    assert.equal(res.json.result.value, false);
    assert.equal(res.json.detail.error, `auto_enrollment for user carol@${REALM} failed: send limit reached`);
    assert.equal((await app.tokensOf('carol')).length, 0);
    await app.config({ DeliveryAllowedCountryCodes: '*', DeliveryLimitPerUser: '1/3600' });
    assert.equal((await app.check({ user: 'carol', pass: 'carolpw' })).json.detail.message, 'sms submitted');
    await app.smsCode();
    // The next code would be the second message for carol within the hour.
    await app.config({ SMSBlockingTimeout: '0' });
    const over = await app.check({ user: 'carol', pass: 'carolpw' });
    assert.equal(over.json.result.value, false);
    assert.equal(over.json.detail.error, 'send limit reached', over.body);
    await settle(app);
    assert.equal(app.sms().length, 1);
    // the count, the challenge and its outbox row are one atomic step: the limit reached left none of them
    const db = app.services.db.kysely;
    assert.equal((await db.selectFrom('challenges').selectAll().execute()).length, 1);
    assert.equal((await db.selectFrom('delivery_outbox').selectAll().where('status', '!=', 'refused').execute()).length, 1);
    const user = await db.selectFrom('delivery_counters').selectAll().where('scope', '=', 'user').execute();
    assert.deepEqual(user.map((r) => Number(r.count)), [1]);
  }));

  test('SMS gateway refuses: the token is removed, no challenge or claim remains', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=sms');
    env.gatewayAnswer = () => ({ status: 200, body: 'FAILED: no credit' });
    const res = await app.check({ user: 'carol', pass: 'carolpw' });
    assert.equal(res.json.result.status, true);
    assert.equal(res.json.result.value, false);
    assert.equal(res.json.detail, undefined);
    assert.equal(app.sms().length, 1, 'the gateway was asked once');
    assert.equal((await app.tokensOf('carol')).length, 0);
    const db = app.services.db.kysely;
    assert.equal((await db.selectFrom('challenges').selectAll().execute()).length, 0);
    assert.equal((await db.selectFrom('enrollment_claims').selectAll().execute()).length, 0);
    // The gateway works again: the next login enrolls.
    env.gatewayAnswer = () => ({});
    assert.equal((await app.check({ user: 'carol', pass: 'carolpw' })).json.detail.message, 'sms submitted');
    assert.equal((await app.tokensOf('carol')).length, 1);
  }));

  test('a refusal that arrives after the wait bound also takes the autoenrolled token back', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=sms');
    await app.config({ DeliveryWaitMs: '200' });
    env.gatewayAnswer = () => ({ delayMs: 700, body: 'FAILED: no credit' });
    const res = await app.check({ user: 'carol', pass: 'carolpw' });
    assert.equal(res.json.detail?.message, 'sms submitted', 'answered within the bound, send still pending');
    assert.equal((await app.tokensOf('carol')).length, 1);
    await waitFor(async () => (await app.tokensOf('carol')).length === 0, { what: 'the token to be removed after the final failure', timeoutMs: 4000 });
    assert.equal((await app.services.db.kysely.selectFrom('enrollment_claims').selectAll().execute()).length, 0);
    env.gatewayAnswer = () => ({});
    assert.equal((await app.check({ user: 'carol', pass: 'carolpw' })).json.detail.message, 'sms submitted', 'the next login enrolls again');
  }));

  test('SMTP server refuses the recipient (550): the token is removed', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=email');
    env.smtpOptions.rejectRecipient = /^bob@/;
    try {
      const res = await app.check({ user: 'bob', pass: 'bobpw' });
      assert.equal(res.json.result.value, false);
      assert.equal(res.json.detail, undefined, res.body);
    } finally {
      env.smtpOptions.rejectRecipient = undefined;
    }
    assert.equal((await app.tokensOf('bob')).length, 0);
    assert.equal(app.mails().length, 0);
    const log = await app.delivery.deliveryLog({});
    assert.equal(log.entries[0]?.status, 'failed');
  }));
});

describe('claims', { skip }, () => {
  test('after the admin removes the autoenrolled token, the next login enrolls again', () => withApp(async (app) => {
    await app.policy('ae', 'enrollment', 'autoenrollment=email');
    const first = await app.check({ user: 'bob', pass: 'bobpw' });
    await app.t.admin('/admin/remove', { serial: first.json.detail.linotp_tokenserial });
    const again = await app.check({ user: 'bob', pass: 'bobpw' });
    assert.equal(again.json.detail.message, 'e-mail sent successfully');
    assert.notEqual(again.json.detail.linotp_tokenserial, first.json.detail.linotp_tokenserial);
    // An unassigned (not removed) token releases its claim too.
    await app.t.admin('/admin/unassign', { serial: again.json.detail.linotp_tokenserial });
    const third = await app.check({ user: 'bob', pass: 'bobpw' });
    assert.equal(third.json.detail.message, 'e-mail sent successfully', third.body);
    assert.equal((await app.tokensOf('bob')).length, 1);
  }));
});
