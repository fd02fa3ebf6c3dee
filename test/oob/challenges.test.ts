/**
 * Invariants (security B.2 #16-18): an out-of-band code is ≥ 6 CSPRNG digits,
 * expires (≤ 10 min), is single use, and answers only the challenge and user it
 * was sent for; only a keyed hash is stored and the code never reaches the log
 * or the audit; a resend inside the blocking window sends nothing; a new code
 * never resets the token's fail counter and each challenge has its own attempt
 * cap. Real slapd, SMTP sink and HTTP SMS gateway on loopback; FakeClock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';
import { mailBody, settle, startOobEnv, type OobApp, type OobEnv, initToken } from './harness.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd');
let env: OobEnv;
before(async () => {
  if (!skip) env = await startOobEnv();
});
after(async () => {
  await env?.close();
});

const withApp = (fn: (app: OobApp) => Promise<void>, opts?: Parameters<OobEnv['app']>[0]) => env.withApp(fn, opts);

const init = initToken;
const smsFor = (app: OobApp, user: string, pin = '1234', phone = '+12015550101') => init(app, { type: 'sms', phone, user, pin });
const mailFor = (app: OobApp, user: string, pin = '1234', address = `${user}@example.org`) => init(app, { type: 'email', email_address: address, user, pin });
const tokenRow = (app: OobApp, serial: string) => app.services.db.kysely.selectFrom('tokens').selectAll().where('serial', '=', serial).executeTakeFirstOrThrow();

describe('sms and email tokens', { skip }, () => {
  test('init checks phone / email_address; serial prefixes LSSM / LSEM', () => withApp(async (app) => {
    const noPhone = await app.t.admin('/admin/init', { type: 'sms', user: 'alice' });
    assert.equal(noPhone.json.result.error.message, "ERR905: Missing parameter: 'phone'");
    const noMail = await app.t.admin('/admin/init', { type: 'email', user: 'alice' });
    assert.equal(noMail.json.result.error.message, "ERR905: Missing parameter: 'email_address'");
    const badMail = await app.t.admin('/admin/init', { type: 'email', user: 'alice', email_address: 'a@b.c\r\nBcc: x@y.z' });
    assert.equal(badMail.json.result.status, false);
    assert.match(await smsFor(app, 'alice'), /^LSSM[0-9A-F]{8}$/);
    assert.match(await mailFor(app, 'bob'), /^LSEM[0-9A-F]{8}$/);
  }));

  test('PIN triggers a challenge; transaction-id and one-step answers; replay fails; simplecheck format', () => withApp(async (app) => {
    const serial = await smsFor(app, 'alice');
    const trig = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(trig.json.result.value, false);
    assert.deepEqual(Object.keys(trig.json.detail), ['transactionid', 'message', 'state', 'linotp_tokenserial', 'linotp_tokentype', 'linotp_tokendescription']);
    assert.equal(trig.json.detail.message, 'sms submitted');
    assert.equal(trig.json.detail.linotp_tokenserial, serial);
    const tid = trig.json.detail.transactionid;
    const code = await app.smsCode();
    assert.equal(app.sms()[0]!.body.phone, '+12015550101');
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, true);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, false, 'replay with tid');
    assert.equal((await app.check({ user: 'alice', pass: `1234${code}` })).json.result.value, false, 'replay one-step');

    const simple = await app.t.post('/validate/simplecheck', { user: 'alice', pass: '1234' });
    const m = /^:-\( (\d{17}) sms submitted$/.exec(simple.body);
    assert.ok(m, simple.body);
    const code2 = await app.smsCode(2);
    assert.equal((await app.t.post('/validate/simplecheck', { user: 'alice', pass: `1234${code2}` })).body, ':-)');
    assert.equal((await app.check({ user: 'alice', pass: code2, state: m[1]! })).json.result.value, false, 'answered already');
  }));

  test('a code answers only its own challenge and its own user', () => withApp(async (app) => {
    await mailFor(app, 'alice');
    await mailFor(app, 'mallory', '9999');
    await app.config({ EmailBlockingTimeout: '0' });
    const a = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    const codeA = await app.mailCode(1);
    // mallory tries alice's transaction and code, with and without her own PIN
    assert.equal((await app.check({ user: 'mallory', pass: codeA, transactionid: a })).json.result.value, false);
    assert.equal((await app.check({ user: 'mallory', pass: `9999${codeA}`, transactionid: a })).json.result.value, false);
    assert.equal((await app.check({ user: 'mallory', pass: `9999${codeA}` })).json.result.value, false);
    // a second challenge B for alice: A's code does not answer B
    const b = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    assert.notEqual(a, b);
    const codeB = await app.mailCode(2);
    assert.equal((await app.check({ user: 'alice', pass: codeA, transactionid: b })).json.result.value, false);
    assert.equal((await app.check({ user: 'alice', pass: codeA, transactionid: a })).json.result.value, false, 'A was superseded by B');
    assert.equal((await app.check({ user: 'alice', pass: codeB, transactionid: b })).json.result.value, true);
  }));

  test('expiry: SMSProviderTimeout; EmailChallengeValidityTime is at most 10 minutes (3600 refused)', () => withApp(async (app) => {
    await smsFor(app, 'alice');
    await mailFor(app, 'bob');
    let tid = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    let code = await app.smsCode(1);
    app.clock.advance(301_000);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, false, 'after 301 s');
    tid = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    code = await app.smsCode(2);
    app.clock.advance(299_000);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, true, 'after 299 s');

    await assert.rejects(app.config({ EmailChallengeValidityTime: '3600' }), (e: { code?: number }) => e.code === 2703, 'more than 10 minutes is refused');
    await app.config({ EmailChallengeValidityTime: '600' });
    tid = (await app.check({ user: 'bob', pass: '1234' })).json.detail.transactionid;
    code = await app.mailCode(1);
    const row = await app.services.db.kysely.selectFrom('challenges').select(['created_at', 'expires_at']).where('transaction_id', '=', tid).executeTakeFirstOrThrow();
    assert.equal(Number(row.expires_at) - Number(row.created_at), 600_000);
    app.clock.advance(601_000);
    assert.equal((await app.check({ user: 'bob', pass: `1234${code}` })).json.result.value, false, 'after 601 s');
  }));

  test('blocking window: a second trigger reuses the open challenge and sends nothing', () => withApp(async (app) => {
    await smsFor(app, 'alice');
    await mailFor(app, 'bob');
    const first = (await app.check({ user: 'alice', pass: '1234' })).json.detail;
    const again = (await app.check({ user: 'alice', pass: '1234' })).json.detail;
    assert.deepEqual(again, { ...first, message: 'sms with otp already submitted', info: 'challenge already submitted' });
    const code = await app.smsCode(1);
    app.clock.advance(29_000);
    assert.equal((await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid, first.transactionid);
    await settle(app);
    assert.equal(app.sms().length, 1);
    app.clock.advance(2_000); // 31 s > SMSBlockingTimeout 30
    const third = (await app.check({ user: 'alice', pass: '1234' })).json.detail;
    assert.equal(third.message, 'sms submitted');
    assert.notEqual(third.transactionid, first.transactionid);
    const code3 = await app.smsCode(2);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: first.transactionid })).json.result.value, false, 'old code superseded');
    assert.equal((await app.check({ user: 'alice', pass: code3, transactionid: third.transactionid })).json.result.value, true);

    const m1 = (await app.check({ user: 'bob', pass: '1234' })).json.detail;
    assert.equal(m1.message, 'e-mail sent successfully');
    app.clock.advance(119_000);
    const m2 = (await app.check({ user: 'bob', pass: '1234' })).json.detail;
    assert.equal(m2.message, 'e-mail with otp already submitted');
    assert.equal(m2.state, m1.transactionid);
    await settle(app);
    assert.equal(app.mails().length, 1);
  }));

  test('fail counter: wrong answers count, a new code does not reset it, lockout rejects the right code and sends nothing', () => withApp(async (app) => {
    const serial = await smsFor(app, 'alice');
    await app.t.admin('/admin/set', { serial, MaxFailCount: '3' });
    await app.config({ SMSBlockingTimeout: '0' });
    let tid = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    await app.smsCode(1);
    assert.equal((await app.check({ user: 'alice', pass: '000000', transactionid: tid })).json.result.value, false);
    assert.equal((await app.check({ user: 'alice', pass: '1234000000' })).json.result.value, false);
    assert.equal(Number((await tokenRow(app, serial)).fail_count), 2);
    tid = (await app.check({ user: 'alice', pass: '1234' })).json.detail.transactionid;
    const code = await app.smsCode(2);
    assert.equal(Number((await tokenRow(app, serial)).fail_count), 2, 'a new code keeps the count');
    assert.equal((await app.check({ user: 'alice', pass: '111111', transactionid: tid })).json.result.value, false);
    assert.equal(Number((await tokenRow(app, serial)).fail_count), 3);
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, false, 'locked: right code refused');
    assert.equal((await app.check({ user: 'alice', pass: '1234' })).json.result.value, false);
    await settle(app);
    assert.equal(app.sms().length, 2, 'a locked token gets no new code');
    await app.t.admin('/admin/reset', { serial });
    assert.equal((await app.check({ user: 'alice', pass: code, transactionid: tid })).json.result.value, true);
    assert.equal(Number((await tokenRow(app, serial)).fail_count), 0);
  }));

  test('each challenge has its own attempt cap (ChallengeMaxAttempts)', () => withApp(async (app) => {
    await mailFor(app, 'bob');
    await app.config({ ChallengeMaxAttempts: '2', EmailBlockingTimeout: '0' });
    let tid = (await app.check({ user: 'bob', pass: '1234' })).json.detail.transactionid;
    let code = await app.mailCode(1);
    for (const wrong of ['000000', '111111']) assert.equal((await app.check({ user: 'bob', pass: wrong, transactionid: tid })).json.result.value, false);
    assert.equal((await app.check({ user: 'bob', pass: code, transactionid: tid })).json.result.value, false, 'closed after 2 wrong answers');
    tid = (await app.check({ user: 'bob', pass: '1234' })).json.detail.transactionid;
    code = await app.mailCode(2);
    assert.equal((await app.check({ user: 'bob', pass: code, transactionid: tid })).json.result.value, true);
  }));

  test('only a keyed hash is stored; the code is in no table, log line or audit row', () => withApp(async (app) => {
    await mailFor(app, 'bob');
    const tid = (await app.check({ user: 'bob', pass: '1234' })).json.detail.transactionid;
    const code = await app.mailCode();
    const db = app.services.db.kysely;
    const ch = await db.selectFrom('challenges').selectAll().where('transaction_id', '=', tid).executeTakeFirstOrThrow();
    assert.match(ch.otp_hash, /^[0-9a-f]{64}$/);
    assert.equal((await app.check({ user: 'bob', pass: '1234999999' })).json.result.value, false);
    assert.equal((await app.check({ user: 'bob', pass: code, transactionid: tid })).json.result.value, true);
    await settle(app);
    const dump = JSON.stringify([
      await db.selectFrom('challenges').selectAll().execute(), await db.selectFrom('tokens').selectAll().execute(),
      await db.selectFrom('audit').selectAll().execute(), await db.selectFrom('delivery_outbox').selectAll().execute(),
    ]);
    assert.ok(!dump.includes(code), 'code stored somewhere in clear');
    assert.ok(app.logs.length > 0);
    const log = app.logs.join('');
    assert.ok(!log.includes(code), 'code in the log');
    assert.ok(!log.includes('bob@example.org'), 'address unmasked in the log');
    assert.ok(/b\*\*\*@example\.org/.test(log), 'masked address in the log');
  }));

  test('a slow provider does not hold the answer; a message that fails later takes its challenge with it', () => withApp(async (app) => {
    await smsFor(app, 'alice');
    await app.config({ DeliveryWaitMs: '200' });
    env.gatewayAnswer = () => ({ delayMs: 700, body: 'FAILED' });
    const started = Date.now();
    const res = await app.check({ user: 'alice', pass: '1234' });
    assert.ok(Date.now() - started < 650, 'answered within the wait bound, not after the provider');
    assert.equal(res.json.detail?.message, 'sms submitted', res.body);
    const db = app.services.db.kysely;
    assert.equal((await db.selectFrom('challenges').selectAll().where('status', '=', 'open').execute()).length, 1);
    await app.smsCode();
    await app.delivery.idle();
    // the outcome listener removes the challenge after the dispatch has finished
    await waitFor(async () => (await db.selectFrom('challenges').selectAll().execute()).length === 0, { what: 'the challenge to be removed after the final failure', timeoutMs: 3000 });
  }));

  test('codes are DefaultOtpLen digits (at least 6) and differ per challenge', () => withApp(async (app) => {
    await app.config({ DefaultOtpLen: '8', SMSBlockingTimeout: '0' });
    await smsFor(app, 'alice');
    const codes = new Set<string>();
    for (let i = 1; i <= 4; i++) {
      await app.check({ user: 'alice', pass: '1234' });
      await app.smsCode(i);
      const text = String(app.sms()[i - 1]!.body.sms);
      assert.match(text, /^\d{8}$/);
      codes.add(text);
    }
    assert.equal(codes.size, 4);
  }));
});

describe('policies', { skip }, () => {
  test('smstext, request data/message, enforce_smstext, SMS_CHALLENGE_PROMPT', () => withApp(async (app) => {
    const serial = await smsFor(app, 'alice');
    await app.config({ SMSBlockingTimeout: '0' });
    await app.policy('text', 'authentication', "smstext='Code <otp> for <serial>'");
    await app.check({ user: 'alice', pass: '1234' });
    let code = await app.smsCode(1);
    assert.equal(app.sms()[0]!.body.sms, `Code ${code} for ${serial}`);
    await app.check({ user: 'alice', pass: '1234', data: 'this is your otp <otp>' });
    code = await app.smsCode(2);
    assert.equal(app.sms()[1]!.body.sms, `this is your otp ${code}`);
    await app.check({ user: 'alice', pass: '1234', message: 'no tag here' });
    code = await app.smsCode(3);
    assert.equal(app.sms()[2]!.body.sms, `${code} no tag here`, 'the code is prepended when the text has no <otp>');
    await app.policy('enforce', 'authentication', 'enforce_smstext');
    await app.check({ user: 'alice', pass: '1234', data: 'ignored <otp>' });
    code = await app.smsCode(4);
    assert.equal(app.sms()[3]!.body.sms, `Code ${code} for ${serial}`);
    await app.config({ SMS_CHALLENGE_PROMPT: 'Enter the code we sent you' });
    assert.equal((await app.check({ user: 'alice', pass: '1234' })).json.detail.message, 'Enter the code we sent you');
  }));

  test('emailtext and emailsubject, EMAIL_CHALLENGE_PROMPT', () => withApp(async (app) => {
    const serial = await mailFor(app, 'bob');
    await app.policy('text', 'authentication', "emailtext='Hello ${givenname}, your code is <otp> (<serial>)', emailsubject='Login code'");
    await app.config({ EMAIL_CHALLENGE_PROMPT: 'Check your mail' });
    const res = await app.check({ user: 'bob', pass: '1234' });
    assert.equal(res.json.detail.message, 'Check your mail');
    const code = await app.mailCode();
    const mail = app.mails()[0]!;
    assert.match(mail.raw, /^Subject: Login code\r?$/m);
    assert.equal(mailBody(mail).trim(), `Hello Bob, your code is ${code} (${serial})`);
  }));

  test('sms_dynamic_mobile_number and dynamic_email_address use the user store', () => withApp(async (app) => {
    await smsFor(app, 'alice', '1234', '+12015550199');
    await mailFor(app, 'bob', '1234', 'old-bob@example.org');
    await app.check({ user: 'alice', pass: '1234' });
    await app.check({ user: 'bob', pass: '1234' });
    await app.smsCode(1);
    await app.mailCode(1);
    assert.equal(app.sms()[0]!.body.phone, '+12015550199');
    assert.deepEqual(app.mails()[0]!.to, ['old-bob@example.org']);
    await app.policy('dyn', 'authentication', 'sms_dynamic_mobile_number, dynamic_email_address');
    await app.config({ SMSBlockingTimeout: '0', EmailBlockingTimeout: '0' });
    await app.check({ user: 'alice', pass: '1234' });
    await app.check({ user: 'bob', pass: '1234' });
    await app.smsCode(2);
    await app.mailCode(2);
    assert.equal(app.sms()[1]!.body.phone, '+12015550101');
    assert.deepEqual(app.mails()[1]!.to, ['bob@example.org']);
  }));

  test('sms_provider: an ordered failover chain; a dead first provider is skipped', () => withApp(async (app) => {
    await app.delivery.setProvider({
      type: 'sms', name: 'dead', className: 'HttpSMSProvider', timeout: '2',
      config: JSON.stringify({ URL: 'http://127.0.0.1:9/send', SMS_PHONENUMBER_KEY: 'phone', SMS_TEXT_KEY: 'sms' }),
    });
    await app.delivery.load();
    await smsFor(app, 'alice');
    await app.policy('chain', 'authentication', 'sms_provider=dead gateway');
    const res = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(res.json.detail.message, 'sms submitted');
    const code = await app.smsCode();
    assert.equal((await app.check({ user: 'alice', pass: `1234${code}` })).json.result.value, true);
    const log = await app.delivery.deliveryLog({});
    assert.equal(log.entries[0]?.provider, 'gateway');
    assert.deepEqual(log.entries[0]?.attempts.map((a) => a.provider), ['dead', 'gateway']);
  }));

  test('autosms sends the next code right after a successful answer', () => withApp(async (app) => {
    await smsFor(app, 'alice');
    await app.policy('auto', 'authentication', 'autosms');
    await app.check({ user: 'alice', pass: '1234' });
    const code = await app.smsCode(1);
    assert.equal((await app.check({ user: 'alice', pass: `1234${code}` })).json.result.value, true);
    const next = await app.smsCode(2);
    assert.notEqual(next, code);
    assert.equal((await app.check({ user: 'alice', pass: `1234${next}` })).json.result.value, true);
  }));

  test('trigger_sms: check_s with serial + challenge sends an SMS without PIN; only with the policy, only for SMS', () => withApp(async (app) => {
    const serial = await smsFor(app, 'alice');
    const mail = await mailFor(app, 'bob');
    const before = await app.t.post('/validate/check_s', { serial, challenge: '' });
    assert.equal(before.json.result.value, false);
    assert.equal(before.json.detail, undefined);
    await app.policy('trigger', 'authentication', 'trigger_sms');
    const res = await app.t.post('/validate/check_s', { serial, challenge: '' });
    assert.equal(res.json.detail?.message, 'sms submitted', res.body);
    const code = await app.smsCode();
    assert.equal((await app.t.post('/validate/check_s', { serial, pass: code, transactionid: res.json.detail.transactionid })).json.result.value, true);
    assert.equal((await app.t.post('/validate/check_s', { serial: mail, challenge: '' })).json.detail, undefined, 'not for e-mail tokens');
    await settle(app);
    assert.equal(app.sms().length, 1);
    assert.equal(app.mails().length, 0);
  }));

  test('challenge_response: an HOTP token answers a PIN-only request with a challenge; the OTP answers it once', () => withApp(async (app) => {
    await init(app, { type: 'hmac', otpkey: '3132333435363738393031323334353637383930', user: 'alice', pin: '1234' });
    assert.equal((await app.check({ user: 'alice', pass: '1234' })).json.detail, undefined, 'no challenge without the policy');
    await app.policy('cr', 'authentication', 'challenge_response=hmac');
    const res = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(res.json.detail.message, 'Please enter your otp value: ');
    assert.equal(res.json.detail.state, undefined);
    const tid = res.json.detail.transactionid;
    // RFC 4226 Appendix D: counter 0 = 755224, counter 1 = 287082
    assert.equal((await app.check({ user: 'alice', pass: '755224', transactionid: tid })).json.result.value, true);
    assert.equal((await app.check({ user: 'alice', pass: '755224', transactionid: tid })).json.result.value, false);
    assert.equal((await app.check({ user: 'alice', pass: '1234287082' })).json.result.value, true);
  }));

  test('two challenge tokens: both triggered, detail.challenges, either code answers', () => withApp(async (app) => {
    const sms = await smsFor(app, 'alice');
    const mail = await mailFor(app, 'alice');
    const res = await app.check({ user: 'alice', pass: '1234' });
    assert.equal(res.json.detail.message, 'Multiple challenges submitted.');
    assert.deepEqual(Object.keys(res.json.detail.challenges).sort(), [sms, mail].sort());
    assert.equal(res.json.detail.challenges[mail].message, 'e-mail sent successfully');
    const code = await app.mailCode();
    await app.smsCode();
    assert.equal((await app.check({ user: 'alice', pass: `1234${code}` })).json.result.value, true);
  }));

  test('rebinding (B.2 #24): changing phone or e-mail is audited and announced to the old destination', () => withApp(async (app) => {
    const mailSerial = await mailFor(app, 'alice', '1234', 'old-address@example.org');
    const smsSerial = await smsFor(app, 'alice', '1234', '+12015550101');
    const setMail = await app.t.admin('/admin/set', { serial: mailSerial, email_address: 'new-address@example.org' });
    assert.deepEqual(setMail.json.result.value, { 'set email_address': 1 });
    await app.t.admin('/admin/set', { serial: smsSerial, phone: '+12015550102' });
    await settle(app);
    const notice = app.mails().find((m) => m.to.includes('old-address@example.org'));
    assert.ok(notice, 'the old address is told');
    assert.match(mailBody(notice), new RegExp(`token ${mailSerial} was changed`));
    assert.ok(!app.mails().some((m) => m.to.includes('new-address@example.org')));
    const sms = app.sms().find((r) => JSON.stringify(r).includes('12015550101'));
    assert.ok(sms, 'the old number is told');
    assert.match(JSON.stringify(sms), /was changed by an administrator/);
    const audit = await app.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'admin/set').execute();
    assert.ok(audit.some((a) => a.action_detail.includes(`${mailSerial}: email_address changed`)));
  }));
});
