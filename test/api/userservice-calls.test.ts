// Every /userservice call (spec 1.6, LinOTP's controllers/userservice.py), on SQLite, PostgreSQL
// and MariaDB. Invariants:
// - a call is allowed only by a selfservice policy that matches the session's user, realm and
//   client (ERR2908 otherwise, nothing changed); with it, the answer has LinOTP's value dict
//   ({"enable token": 1}, ...), the database changed as asked, and the audit row names the call
//   (`userservice/<call>`), the session's user and the outcome, and holds no secret;
// - a serial the user does not own is refused (ERR2901) and nothing changes;
// - without the `session` parameter, with another session's value, or after the session
//   expired, a call is unauthenticated (401) and nothing changes;
// - resync needs two consecutive codes; setpin obeys otp_pin_minlength/maxlength/contents;
//   reset unlocks a token for /validate/check; history shows the user's own rows, in pages;
//   getSerialByOtp finds only an unassigned token of the user's realm and spends an account
//   attempt per call (a burst is bounded by AccountMaxFail); assign needs a current OTP of the
//   token and, while the user owns a token, a session opened with a second factor.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { USER_SESSION_SECONDS } from '../../src/userservice/sessions.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { availableDialects } from '../helpers/db.ts';
import { KEY, KEY2, SEED, SEED2, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

const KEY3 = '3132333435363738393031323334353637383932';
const SEED3 = Buffer.from(KEY3, 'hex');
const PASSWORDS: Record<string, string> = { alice: 'AlicePw1', bob: 'BobPw1', carol: 'CarolPw1', dave: 'DavePw1' };
const REALM_OF: Record<string, string> = { alice: 'staff', bob: 'staff', carol: 'staff', dave: 'lab' };

type Answer = { status: number; json: any; body: string; cookie?: string };

/** A call that takes a token (or none) and the selfservice right that allows it. */
interface Call {
  path: string;
  right: string;
  form: (serial: string) => Record<string, string>;
}
const TOKEN_CALLS: Call[] = [
  { path: 'enable', right: 'enable', form: (serial) => ({ serial }) },
  { path: 'disable', right: 'disable', form: (serial) => ({ serial }) },
  { path: 'delete', right: 'delete', form: (serial) => ({ serial }) },
  { path: 'reset', right: 'reset', form: (serial) => ({ serial }) },
  { path: 'unassign', right: 'unassign', form: (serial) => ({ serial }) },
  { path: 'setpin', right: 'setOTPPIN', form: (serial) => ({ serial, userpin: 'Other99' }) },
  { path: 'setdescription', right: 'setDescription', form: (serial) => ({ serial, description: 'changed' }) },
  { path: 'resync', right: 'resync', form: (serial) => ({ serial, otp1: hotp(SEED, 3, 6), otp2: hotp(SEED, 4, 6) }) },
  { path: 'verify', right: 'verify', form: (serial) => ({ serial, otp: hotp(SEED, 0, 6) }) },
];
const ALL_CALLS: Call[] = [
  ...TOKEN_CALLS,
  { path: 'assign', right: 'assign', form: () => ({ serial: 'Free1', otp: hotp(SEED3, 0, 6) }) },
  { path: 'getSerialByOtp', right: 'getserial', form: () => ({ otp: hotp(SEED3, 0, 6) }) },
  { path: 'enroll', right: 'enrollHMAC', form: () => ({ type: 'hmac' }) },
  { path: 'enroll', right: 'enrollTOTP', form: () => ({ type: 'totp' }) },
  { path: 'enroll', right: 'enrollSMS', form: () => ({ type: 'sms' }) },
  { path: 'enroll', right: 'enrollEMAIL', form: () => ({ type: 'email' }) },
  { path: 'history', right: 'history', form: () => ({}) },
];

for (const { dialect, skip } of await availableDialects()) {
  describe(`/userservice calls (${dialect})`, { skip }, () => {
    let t: ValidationFixture;
    const clock = new FakeClock(Date.UTC(2026, 0, 5, 9, 0, 0));
    before(async () => {
      t = await startValidationFixture({ dialect, clock });
    });
    after(async () => t?.close());
    beforeEach(async () => {
      // one fixture per dialect: every test starts without policies, tokens, sessions or failures
      const s = t.services;
      const names = s.policies.list().map((p) => p.name);
      if (names.length) await s.policies.delete(names);
      const ids = (await s.db.kysely.selectFrom('tokens').select('id').execute()).map((r) => Number(r.id));
      if (ids.length) await s.tokens.repository.delete(ids);
      await s.db.kysely.deleteFrom('account_attempts').execute();
      await s.db.kysely.deleteFrom('user_sessions').execute();
      for (const key of ['AccountFailDelayAfter', 'AccountMaxFail']) await s.config.delete(key);
    });

    const call = async (path: string, form: Record<string, string>, cookie?: string): Promise<Answer> => {
      const res = await t.app.inject({
        method: 'POST', url: `/userservice/${path}`, payload: new URLSearchParams(form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie: `user_selfservice=${cookie}` } : {}) },
      });
      let json: any;
      try { json = JSON.parse(res.body); } catch { json = undefined; }
      return { status: res.statusCode, json, body: res.body, cookie: res.cookies.find((c) => c.name === 'user_selfservice')?.value || undefined };
    };
    const as = (path: string, session: string, form: Record<string, string> = {}) => call(path, { session, ...form }, session);
    const grant = (actions: string, name = 'ss', extra: Record<string, string> = {}) => t.policy(name, 'selfservice', actions, extra);
    const init = async (form: Record<string, string>) => {
      const r = await t.admin('/admin/init', form);
      assert.equal(r.json?.result?.value, true, r.body);
      return r.json.detail.serial as string;
    };
    const token = (serial: string) => t.services.tokens.repository.bySerial(serial);
    /** Every token row: what "nothing changed" compares. */
    const snapshot = async () => JSON.stringify(await t.services.db.kysely.selectFrom('tokens').selectAll().orderBy('serial').execute());
    const auditMark = async () => {
      await t.services.audit.settled();
      const row = await t.services.db.kysely.selectFrom('audit').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
      return Number(row?.id ?? 0);
    };
    const auditSince = async (mark: number, path: string) => {
      await t.services.audit.settled();
      return t.services.db.kysely.selectFrom('audit').selectAll().where('id', '>', mark).where('action', '=', `userservice/${path}`).orderBy('id').execute();
    };
    const attempts = async (login: string) => {
      const u = (await t.services.users.findUser(login, REALM_OF[login]!))!;
      return (await t.services.accountAttempts.state({ realm: u.realm, userKey: `${u.resolver}/${u.userId}`, login: u.login }))?.failCount ?? 0;
    };

    /** A password-only session (no mfa_login policy at the time of the login). */
    const passwordSession = async (login = 'alice') => {
      const a = await call('login', { login, password: PASSWORDS[login]!, realm: REALM_OF[login]! });
      assert.deepEqual(a.json.result, { status: true, value: true }, a.body);
      return a.cookie!;
    };
    /** A session opened with password + OTP of the user's own login token (selfservice mfa_login). */
    const mfaSession = async (login = 'alice') => {
      await grant('mfa_login', 'mfa');
      await init({ type: 'hmac', serial: `Login-${login}`, otpkey: KEY2, user: login, realm: REALM_OF[login]! });
      const a = await call('login', { login, password: PASSWORDS[login]!, realm: REALM_OF[login]!, otp: hotp(SEED2, 0, 6) });
      assert.deepEqual(a.json.result, { status: true, value: true }, a.body);
      return a.cookie!;
    };
    /** The audit row of a call: its action, the session's user, the outcome, no secret in it. */
    const assertAudit = (row: any, want: { user?: string; success: boolean; serial?: string }, secrets: string[]) => {
      assert.ok(row, 'an audit row');
      assert.equal(row.user, want.user ?? 'alice');
      assert.equal(row.realm, REALM_OF[want.user ?? 'alice']);
      assert.equal(String(row.success), want.success ? '1' : '0', JSON.stringify(row));
      if (want.serial !== undefined) assert.equal(row.serial, want.serial);
      const text = JSON.stringify(row);
      for (const s of secrets) assert.ok(!text.includes(s), `audit row holds a secret (${s.slice(0, 4)}…): ${text}`);
    };

    test('each token call allowed by its policy: LinOTP\'s value dict, the database changed, the audit row', async () => {
      const session = await mfaSession();
      const secrets = [session, PASSWORDS.alice!, KEY, KEY2, 'Geheim42', 'pin1'];
      const cases: { path: string; right: string; form: Record<string, string>; value: unknown; prepare?: (serial: string) => Promise<void>; effect: (serial: string) => Promise<void> }[] = [
        {
          path: 'disable', right: 'disable', form: {}, value: { 'disable token': 1 },
          effect: async (s) => assert.equal((await token(s))!.active, false),
        },
        {
          path: 'enable', right: 'enable', form: {}, value: { 'enable token': 1 },
          prepare: async (s) => void (await t.admin('/admin/disable', { serial: s })),
          effect: async (s) => assert.equal((await token(s))!.active, true),
        },
        {
          path: 'setdescription', right: 'setDescription', form: { description: 'my key fob' }, value: { 'set description': 1 },
          effect: async (s) => assert.equal((await token(s))!.description, 'my key fob'),
        },
        {
          path: 'setpin', right: 'setOTPPIN', form: { userpin: 'Geheim42' }, value: { 'set userpin': 1 },
          effect: async (s) => {
            const tok = (await token(s))!;
            assert.equal(t.services.tokens.checkPin(tok, 'Geheim42'), true);
            assert.equal(t.services.tokens.checkPin(tok, 'pin1'), false);
          },
        },
        {
          path: 'reset', right: 'reset', form: {}, value: { 'reset Failcounter': 1 },
          prepare: async (s) => void (await t.services.tokens.repository.update((await token(s))!.id, { fail_count: 3 })),
          effect: async (s) => assert.equal((await token(s))!.failCount, 0),
        },
        {
          path: 'unassign', right: 'unassign', form: {}, value: { 'unassign token': 1 },
          effect: async (s) => {
            const tok = (await token(s))!;
            assert.equal(tok.userId, '');
            assert.equal((await as('usertokenlist', session)).json.result.value.some((d: any) => d['LinOtp.TokenSerialnumber'] === s), false);
          },
        },
        {
          path: 'delete', right: 'delete', form: {}, value: { 'delete token': 1 },
          effect: async (s) => assert.equal(await token(s), undefined),
        },
      ];
      for (const c of cases) {
        const serial = await init({ type: 'hmac', serial: `Tok-${c.path}`, otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff' });
        await c.prepare?.(serial);
        const before = await snapshot();
        const refused = await as(c.path, session, { serial, ...c.form });
        assert.equal(refused.json.result.error?.code, Errors.selfserviceNotAllowed.code, `${c.path} without a policy: ${refused.body}`);
        assert.equal(await snapshot(), before, `${c.path} without a policy changed nothing`);
        await grant(c.right, `allow_${c.path}`, { user: 'alice', realm: 'staff' });
        const mark = await auditMark();
        const a = await as(c.path, session, { serial, ...c.form });
        assert.equal(a.status, 200, a.body);
        assert.deepEqual(a.json.result, { status: true, value: c.value }, `${c.path}: ${a.body}`);
        assert.equal(a.json.id, 1, `${c.path}: LinOTP answers these with id 1`);
        await c.effect(serial);
        const rows = await auditSince(mark, c.path);
        assert.equal(rows.length, 1, c.path);
        assertAudit(rows[0], { success: true, serial }, secrets);
      }
    });

    test('read calls need no policy and are audited: context, usertokenlist, userinfo; login and logout too', async () => {
      const mark = await auditMark();
      const wrong = await call('login', { login: 'alice', password: 'not-the-password', realm: 'staff' });
      assert.deepEqual(wrong.json.result, { status: true, value: false });
      assert.equal(wrong.cookie, undefined);
      const session = await passwordSession();
      const secrets = [session, PASSWORDS.alice!, 'not-the-password'];
      for (const path of ['context', 'usertokenlist', 'userinfo']) {
        const a = await as(path, session);
        assert.equal(a.json.result.status, true, `${path}: ${a.body}`);
      }
      const out = await call('logout', {}, session);
      assert.deepEqual(out.json.result, { status: true, value: true });
      assert.equal((await as('userinfo', session)).status, 401, 'logout ended the session');
      const logins = await auditSince(mark, 'login');
      assert.equal(logins.length, 2);
      assertAudit(logins[0], { success: false }, secrets);
      assertAudit(logins[1], { success: true }, secrets);
      for (const path of ['context', 'usertokenlist', 'userinfo', 'logout']) {
        const rows = await auditSince(mark, path);
        assert.equal(rows.length, path === 'userinfo' ? 2 : 1, path);
        assertAudit(rows[0], { success: true }, secrets);
      }
    });

    test('refused without its policy and under a policy of another realm, user or client (ERR2908); nothing changed', async () => {
      const session = await mfaSession();
      const serial = await init({ type: 'hmac', serial: 'AliceTok', otpkey: KEY, user: 'alice', realm: 'staff' });
      await init({ type: 'hmac', serial: 'Free1', otpkey: KEY3, realm: 'staff' });
      const before = await snapshot();
      const mark = await auditMark();
      const foreign: [string, Record<string, string>][] = [
        ['another realm', { realm: 'lab' }], ['another user', { user: 'bob' }], ['another client', { client: '192.0.2.0/24' }],
      ];
      for (const c of ALL_CALLS) {
        const none = await as(c.path, session, c.form(serial));
        assert.equal(none.json?.result?.error?.code, Errors.selfserviceNotAllowed.code, `${c.path} (${c.right}) without a policy: ${none.body}`);
        for (const [what, where] of foreign) {
          await grant(c.right, 'foreign', where);
          const a = await as(c.path, session, c.form(serial));
          assert.equal(a.json?.result?.error?.code, Errors.selfserviceNotAllowed.code, `${c.path} (${c.right}) under a policy of ${what}: ${a.body}`);
          await t.services.policies.delete(['foreign']);
        }
      }
      assert.equal(await snapshot(), before);
      const rows = await auditSince(mark, 'disable');
      assert.equal(rows.length, 4);
      for (const r of rows) assertAudit(r, { success: false }, [session]);
      // the same calls pass the right check under a policy for alice@staff from this client
      await grant(ALL_CALLS.map((c) => c.right).join(', '), 'mine', { user: 'alice', realm: 'staff', client: '127.0.0.1' });
      for (const c of ALL_CALLS) {
        const a = await as(c.path, session, c.form(serial));
        assert.notEqual(a.json?.result?.error?.code, Errors.selfserviceNotAllowed.code, `${c.path} (${c.right}) under alice's policy: ${a.body}`);
      }
    });

    test('someone else\'s serial is refused (ERR2901) by every token call, and nothing changes', async () => {
      const session = await mfaSession();
      await grant('enable, disable, delete, reset, unassign, setOTPPIN, setDescription, resync, verify, assign');
      const bobs = await init({ type: 'hmac', serial: 'BobTok', otpkey: KEY, pin: 'bobpin', user: 'bob', realm: 'staff' });
      await t.admin('/admin/disable', { serial: bobs });
      await t.services.tokens.repository.update((await token(bobs))!.id, { fail_count: 2 });
      const before = await snapshot();
      for (const c of TOKEN_CALLS) {
        const a = await as(c.path, session, c.form(bobs));
        assert.equal(a.json.result.error?.code, Errors.notOwnToken.code, `${c.path}: ${a.body}`);
      }
      const assign = await as('assign', session, { serial: bobs, otp: hotp(SEED, 0, 6) });
      assert.equal(assign.json.result.error?.code, Errors.notOwnToken.code, `assign of an assigned token: ${assign.body}`);
      assert.equal(await snapshot(), before);
      assert.equal((await token(bobs))!.userId, '1002');
    });

    test('CSRF: without the session parameter, with another session\'s value or without the cookie: 401, nothing changed', async () => {
      const alice = await mfaSession();
      const bob = await mfaSession('bob');
      await grant(ALL_CALLS.map((c) => c.right).join(', '));
      const serial = await init({ type: 'hmac', serial: 'AliceTok', otpkey: KEY, user: 'alice', realm: 'staff' });
      await init({ type: 'hmac', serial: 'Free1', otpkey: KEY3, realm: 'staff' });
      const before = await snapshot();
      for (const c of [...ALL_CALLS, { path: 'context', right: '', form: () => ({}) }, { path: 'usertokenlist', right: '', form: () => ({}) }]) {
        for (const [what, form, cookie] of [
          ['no session parameter', c.form(serial), alice],
          ['another session\'s value', { session: bob, ...c.form(serial) }, alice],
          ['the own value, no cookie', { session: alice, ...c.form(serial) }, undefined],
          ['an empty session parameter', { session: '', ...c.form(serial) }, alice],
        ] as [string, Record<string, string>, string | undefined][]) {
          const a = await call(c.path, form, cookie);
          assert.equal(a.status, 401, `${c.path}, ${what}: ${a.body}`);
          assert.equal(a.json.result.error.code, Errors.noUserSession.code, `${c.path}, ${what}`);
        }
      }
      assert.equal(await snapshot(), before);
      // the right pair passes
      assert.deepEqual((await as('disable', alice, { serial })).json.result.value, { 'disable token': 1 });
    });

    test('an expired session is refused (401) for every call; one second before it still works', async () => {
      const session = await mfaSession();
      await grant(ALL_CALLS.map((c) => c.right).join(', '));
      const serial = await init({ type: 'hmac', serial: 'AliceTok', otpkey: KEY, user: 'alice', realm: 'staff' });
      clock.advance(USER_SESSION_SECONDS * 1000 - 1000);
      assert.equal((await as('setdescription', session, { serial, description: 'still here' })).json.result.value['set description'], 1);
      clock.advance(1000);
      const before = await snapshot();
      for (const c of [...ALL_CALLS, { path: 'context', right: '', form: () => ({}) }]) {
        const a = await as(c.path, session, c.form(serial));
        assert.equal(a.status, 401, `${c.path} after the expiry: ${a.body}`);
        assert.equal(a.json.result.error.code, Errors.noUserSession.code);
      }
      assert.equal(await snapshot(), before);
    });

    test('resync with two consecutive HOTP codes moves the counter; codes that do not follow each other change nothing', async () => {
      const session = await mfaSession();
      await grant('resync');
      const serial = await init({ type: 'hmac', serial: 'AliceHotp', otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff' });
      const before = await snapshot();
      const mark = await auditMark();
      const gap = await as('resync', session, { serial, otp1: hotp(SEED, 20, 6), otp2: hotp(SEED, 22, 6) });
      assert.deepEqual(gap.json.result, { status: true, value: { 'resync Token': false } }, gap.body);
      assert.equal(await snapshot(), before);
      assert.equal(await attempts('alice'), 1, 'a failed resync spends an account attempt');
      const done = await as('resync', session, { serial, otp1: hotp(SEED, 20, 6), otp2: hotp(SEED, 21, 6) });
      assert.deepEqual(done.json.result, { status: true, value: { 'resync Token': true } }, done.body);
      assert.equal((await token(serial))!.counter, 22);
      assert.equal((await t.check({ user: 'alice', pass: `pin1${hotp(SEED, 21, 6)}` })).json.result.value, false, 'the resync codes are used up');
      assert.equal((await t.check({ user: 'alice', pass: `pin1${hotp(SEED, 22, 6)}` })).json.result.value, true, 'the next code logs in');
      const rows = await auditSince(mark, 'resync');
      assertAudit(rows[0], { success: false, serial }, [session, KEY, hotp(SEED, 20, 6), hotp(SEED, 22, 6)]);
      assertAudit(rows[1], { success: true, serial }, [session, KEY, hotp(SEED, 20, 6), hotp(SEED, 21, 6)]);
      // the failed resync counted as an account failure; the good one cleared it
      assert.equal(await attempts('alice'), 0, 'the success cleared the failure of the gap');
    });

    test('setpin obeys otp_pin_minlength, otp_pin_maxlength and otp_pin_contents (ERR2905); the PIN stays until one passes', async () => {
      const session = await mfaSession();
      await grant('setOTPPIN');
      await grant('otp_pin_minlength=6, otp_pin_maxlength=10, otp_pin_contents=cn', 'pinrules');
      const serial = await init({ type: 'hmac', serial: 'AliceHotp', otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff' });
      const before = await snapshot();
      for (const [pin, why] of [
        ['ab12', 'at least 6 characters'], ['abcdef123456', 'at most 10 characters'], ['abcdefgh', 'it needs digits'], ['12345678', 'it needs letters'],
      ]) {
        const a = await as('setpin', session, { serial, userpin: pin! });
        assert.equal(a.json.result.error?.code, Errors.pinRefused.code, `${pin}: ${a.body}`);
        assert.equal(a.json.result.error.message, `ERR2905: PIN refused: ${why}`);
        assert.doesNotMatch(a.body, new RegExp(pin!), 'the refused PIN is not echoed');
      }
      assert.equal(await snapshot(), before);
      assert.deepEqual((await as('setpin', session, { serial, userpin: 'abc12345' })).json.result.value, { 'set userpin': 1 });
      assert.equal((await t.check({ user: 'alice', pass: `abc12345${hotp(SEED, 0, 6)}` })).json.result.value, true, 'the new PIN works');
    });

    test('reset after the token reached its fail counter: /validate/check accepts it again', async () => {
      const session = await mfaSession();
      await grant('reset');
      const serial = await init({ type: 'hmac', serial: 'AliceHotp', otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff' });
      await t.admin('/admin/set', { serial, MaxFailCount: '2' });
      for (const otp of ['000000', '111111']) assert.equal((await t.check({ user: 'alice', pass: `pin1${otp}` })).json.result.value, false);
      assert.equal((await token(serial))!.failCount, 2);
      assert.equal((await t.check({ user: 'alice', pass: `pin1${hotp(SEED, 0, 6)}` })).json.result.value, false, 'locked: even the right code fails');
      const mark = await auditMark();
      const a = await as('reset', session, { serial });
      assert.deepEqual(a.json.result, { status: true, value: { 'reset Failcounter': 1 } }, a.body);
      assert.equal((await token(serial))!.failCount, 0);
      assertAudit((await auditSince(mark, 'reset'))[0], { success: true, serial }, [session, 'pin1']);
      assert.equal((await t.check({ user: 'alice', pass: `pin1${hotp(SEED, 1, 6)}` })).json.result.value, true, 'the token authenticates again');
    });

    test('verify: the OTP of an own token through the validation pipeline (fail counter, replay); value true or false', async () => {
      const session = await mfaSession();
      await grant('verify');
      const serial = await init({ type: 'hmac', serial: 'AliceHotp', otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff' });
      const mark = await auditMark();
      const wrong = await as('verify', session, { serial, otp: hotp(SEED, 0, 6) === '123456' ? '654321' : '123456' });
      assert.equal(wrong.json.result.status, true);
      assert.equal(wrong.json.result.value, false, wrong.body);
      assert.equal((await token(serial))!.failCount, 1);
      const right = await as('verify', session, { serial, otp: hotp(SEED, 0, 6) });
      assert.deepEqual(right.json.result, { status: true, value: true }, right.body);
      assert.equal((await token(serial))!.failCount, 0);
      assert.equal((await token(serial))!.counter, 1);
      assert.equal((await as('verify', session, { serial, otp: hotp(SEED, 0, 6) })).json.result.value, false, 'a used code');
      const rows = await auditSince(mark, 'verify');
      assert.deepEqual(rows.map((r) => String(r.success)), ['0', '1', '0']);
      for (const r of rows) assertAudit(r, { success: String(r.success) === '1', serial }, [session, KEY, hotp(SEED, 0, 6)]);
    });

    test('assign: an unassigned token of the own realm, proven with a current OTP; needs an MFA session while the user owns a token', async () => {
      await grant('assign');
      const free = await init({ type: 'hmac', serial: 'Free1', otpkey: KEY3, realm: 'staff' });
      const labFree = await init({ type: 'hmac', serial: 'LabFree', otpkey: KEY3, realm: 'lab' });
      // carol owns no token: her password session may assign her first one
      const carol = await passwordSession('carol');
      const session = await mfaSession();
      const before = await snapshot();
      for (const [what, form, code] of [
        ['no OTP', { serial: free }, Errors.missingParameter.code],
        ['a wrong OTP', { serial: free, otp: hotp(SEED3, 0, 6) === '123456' ? '654321' : '123456' }, Errors.notOwnToken.code],
        ['another realm\'s token', { serial: labFree, otp: hotp(SEED3, 0, 6) }, Errors.notOwnToken.code],
        ['no such serial', { serial: 'NoSuchSerial', otp: hotp(SEED3, 0, 6) }, Errors.notOwnToken.code],
      ] as [string, Record<string, string>, number][]) {
        const a = await as('assign', session, form);
        assert.equal(a.json.result.error?.code, code, `${what}: ${a.body}`);
      }
      // a password-only session of a user who owns a token cannot add one
      await t.services.policies.delete(['mfa']);
      const pwOnly = await passwordSession();
      const weak = await as('assign', pwOnly, { serial: free, otp: hotp(SEED3, 0, 6) });
      assert.equal(weak.json.result.error?.code, Errors.secondFactorNeeded.code, weak.body);
      assert.equal(await snapshot(), before, 'no refused assign changed a token');
      assert.equal((await token(free))!.userId, '', 'still unassigned');
      const mark = await auditMark();
      const a = await as('assign', session, { serial: free, otp: hotp(SEED3, 0, 6) });
      assert.deepEqual(a.json.result, { status: true, value: { 'assign token': true } }, a.body);
      const tok = (await token(free))!;
      assert.equal(tok.userId, '1001');
      assert.deepEqual(tok.realms, ['staff']);
      assertAudit((await auditSince(mark, 'assign'))[0], { success: true, serial: free }, [session, KEY3, hotp(SEED3, 0, 6)]);
      // the proving code is spent: it does not log in
      assert.equal((await t.check({ user: 'alice', pass: hotp(SEED3, 0, 6) })).json.result.value, false);
      // already assigned: carol cannot take it
      assert.equal((await as('assign', carol, { serial: free, otp: hotp(SEED3, 1, 6) })).json.result.error?.code, Errors.notOwnToken.code);
      const carolFree = await init({ type: 'hmac', serial: 'Free2', otpkey: KEY, realm: 'staff' });
      // LinOTP's optional description comes with it
      assert.deepEqual((await as('assign', carol, { serial: carolFree, otp: hotp(SEED, 0, 6), description: 'found in a drawer' })).json.result.value, { 'assign token': true });
      assert.equal((await token(carolFree))!.description, 'found in a drawer');
      assert.equal((await token(carolFree))!.userId, '1003');
    });

    test('getSerialByOtp: an unassigned token of the own realm only; an account attempt per call; a burst is bounded', async () => {
      const session = await mfaSession();
      await grant('getserial');
      const free = await init({ type: 'hmac', serial: 'Free1', otpkey: KEY3, realm: 'staff' });
      await init({ type: 'hmac', serial: 'LabFree', otpkey: KEY, realm: 'lab' });
      await init({ type: 'hmac', serial: 'BobTok', otpkey: '3132333435363738393031323334353637383933', user: 'bob', realm: 'staff' });
      const bobSeed = Buffer.from('3132333435363738393031323334353637383933', 'hex');
      const mark = await auditMark();
      const found = await as('getSerialByOtp', session, { otp: hotp(SEED3, 0, 6) });
      assert.deepEqual(found.json.result, { status: true, value: { serial: free } }, found.body);
      assert.equal(found.json.id, 1);
      assert.equal(await attempts('alice'), 0, 'a found serial is no failure');
      assert.deepEqual((await as('getSerialByOtp', session, { otp: hotp(SEED, 0, 6) })).json.result.value, { serial: '' }, 'another realm\'s token');
      assert.deepEqual((await as('getSerialByOtp', session, { otp: hotp(bobSeed, 0, 6) })).json.result.value, { serial: '' }, 'an assigned token');
      assert.equal(await attempts('alice'), 2, 'each miss spent an attempt');
      const rows = await auditSince(mark, 'getSerialByOtp');
      assertAudit(rows[0], { success: true, serial: free }, [session, KEY3, hotp(SEED3, 0, 6)]);
      assertAudit(rows[1], { success: false }, [session, hotp(SEED, 0, 6)]);
      // a burst of guesses is bounded by the account limit; after it even a right code finds nothing
      await t.setConfig('AccountMaxFail', '6');
      await t.setConfig('AccountFailDelayAfter', '100');
      const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => as('getSerialByOtp', session, { otp: String(200000 + i) })));
      for (const b of burst) assert.deepEqual(b.json.result.value, { serial: '' });
      assert.equal(await attempts('alice'), 6, 'no more guesses counted than AccountMaxFail');
      assert.deepEqual((await as('getSerialByOtp', session, { otp: hotp(SEED3, 1, 6) })).json.result.value, { serial: '' }, 'the locked account finds nothing');
    });

    test('getSerialByOtp under AccountFailDelayAfter: a refusal window, then the right code finds the serial', async () => {
      const session = await mfaSession();
      await grant('getserial');
      const free = await init({ type: 'hmac', serial: 'Free1', otpkey: KEY3, realm: 'staff' });
      await t.setConfig('AccountFailDelayAfter', '3');
      for (let i = 0; i < 3; i++) assert.deepEqual((await as('getSerialByOtp', session, { otp: String(300000 + i) })).json.result.value, { serial: '' });
      assert.deepEqual((await as('getSerialByOtp', session, { otp: hotp(SEED3, 0, 6) })).json.result.value, { serial: '' }, 'inside the window');
      assert.equal(await attempts('alice'), 3, 'a refused call is no guess');
      clock.advance(60_000);
      assert.deepEqual((await as('getSerialByOtp', session, { otp: hotp(SEED3, 0, 6) })).json.result.value, { serial: free });
    });

    test('enroll hmac, totp, sms, email: value true with LinOTP\'s detail; app tokens wait for their first code; SMS/e-mail take the directory value', async () => {
      const session = await mfaSession();
      await grant('enrollHMAC, enrollTOTP, enrollSMS, enrollEMAIL');
      for (const type of ['hmac', 'totp', 'sms', 'email']) {
        const mark = await auditMark();
        const a = await as('enroll', session, { type, description: `my ${type}` });
        assert.equal(a.json.result.status, true, a.body);
        assert.equal(a.json.result.value, true, a.body);
        const serial = a.json.detail.serial as string;
        assert.match(serial, /^[A-Z]+[0-9A-F]+$/i);
        const tok = (await token(serial))!;
        assert.equal(tok.type, type);
        assert.equal(tok.userId, '1001');
        assert.equal(tok.description, `my ${type}`);
        const secrets = [session];
        if (type === 'hmac' || type === 'totp') {
          const url = new URL(a.json.detail.googleurl.value);
          assert.equal(url.protocol, 'otpauth:');
          assert.equal(url.host, type === 'hmac' ? 'hotp' : 'totp');
          const secret = url.searchParams.get('secret')!;
          secrets.push(secret);
          assert.equal(tok.active, false, 'inactive until its first code');
          assert.equal(tok.info.rollout, 'pending');
        } else {
          assert.equal(tok.active, true);
          if (type === 'sms') assert.equal(tok.info.phone, '+4915123456789');
          else assert.equal(tok.info.email_address, 'alice@example.org');
        }
        const rows = await auditSince(mark, 'enroll');
        assert.equal(rows.length, 1);
        assertAudit(rows[0], { success: true, serial }, secrets);
        assert.equal(rows[0]!.token_type, type);
      }
      const list = (await as('usertokenlist', session)).json.result.value;
      assert.equal(list.length, 5);
      // a phone the directory does not hold is refused
      const other = await as('enroll', session, { type: 'sms', phone: '+12015550123' });
      assert.equal(other.json.result.error?.code, Errors.destinationNotEditable.code, other.body);
      assert.equal((await as('usertokenlist', session)).json.result.value.length, 5);
    });

    test('history: only the own rows (this realm), newest first, in pages; LinOTP\'s history columns', async () => {
      const session = await mfaSession();
      await grant('history, setDescription');
      const serial = await init({ type: 'hmac', serial: 'AliceHotp', otpkey: KEY, user: 'alice', realm: 'staff' });
      for (let i = 0; i < 3; i++) await as('setdescription', session, { serial, description: `d${i}` });
      // rows of others: bob, and a name alice in another realm
      await call('login', { login: 'bob', password: PASSWORDS.bob!, realm: 'staff' });
      await t.check({ user: 'alice', realm: 'lab', pass: 'x' });
      const own = async () => {
        await t.services.audit.settled();
        const rows = await t.services.db.kysely.selectFrom('audit').select(['id']).where('user', '=', 'alice').where('realm', '=', 'staff').orderBy('id', 'desc').execute();
        return rows.map((r) => Number(r.id));
      };
      assert.ok((await own()).length >= 5);
      // each history call is audited too (after its answer): every page is read against the rows of that moment
      for (const page of [1, 2, 3]) {
        const now = await own();
        const a = await as('history', session, { rp: '2', page: String(page) });
        assert.equal(a.status, 200, a.body);
        const v = JSON.parse(a.body);
        assert.equal(v.result, undefined, 'outside the envelope, like /audit/search');
        assert.equal(v.page, page);
        assert.equal(v.total, now.length);
        assert.deepEqual(v.rows.map((r: any) => r.id), now.slice((page - 1) * 2, page * 2), `page ${page}: the own rows, newest first`);
        for (const r of v.rows) {
          // LinOTP: date, action, success, serial, token_type, administrator, action_detail, info
          assert.equal(r.cell.length, 8, JSON.stringify(r));
          assert.ok(!JSON.stringify(r).includes(session));
        }
      }
      const all = JSON.parse((await as('history', session, { rp: '100' })).body);
      const mine = new Set(await own());
      assert.ok(all.rows.length > 5);
      for (const r of all.rows) assert.ok(mine.has(r.id), `row ${r.id} is alice@staff's`);
      const others = await t.services.db.kysely.selectFrom('audit').select(['id', 'user', 'realm']).where('id', '>', all.rows.at(-1).id)
        .where((eb) => eb.or([eb('user', '!=', 'alice'), eb('realm', '!=', 'staff')])).execute();
      assert.ok(others.some((r) => r.user === 'bob') && others.some((r) => r.user === 'alice' && r.realm === 'lab'), JSON.stringify(others));
      const past = JSON.parse((await as('history', session, { rp: '2', page: '100000' })).body);
      assert.deepEqual(past.rows, []);
      const describe = all.rows.find((r: any) => r.cell[1] === 'userservice/setdescription');
      assert.ok(describe, 'the own setdescription rows are there');
      assert.equal(describe.cell[2], '1');
      assert.equal(describe.cell[3], serial);
      assert.match(describe.cell[0], /^\d{4}-\d\d-\d\d/);
    });
  });
}
