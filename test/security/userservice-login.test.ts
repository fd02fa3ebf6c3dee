// Invariant: /userservice/login checks the user-store password under the same per-account
// attempt limit as /validate/check (one count per account, shared by both); a throttled or
// locked account is refused without its password being checked; wrong password, unknown user
// and a refused account give one answer; a user is looked up only in the realm named (when
// it exists). A session is the `user_selfservice` cookie (HttpOnly, SameSite=Strict) plus an
// equal `session` parameter on every call; admin credentials are no user session; a session
// ends at logout and at its expiry; a user only ever sees their own tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/util/clock.ts';
import { Errors, UserStoreUnavailableError } from '../../src/errors.ts';
import { USER_SESSION_SECONDS } from '../../src/userservice/sessions.ts';
import { KEY, KEY2, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

type Answer = { status: number; json: any; body: string; cookie?: string; setCookie: string };

describe('/userservice login and session (attack tests)', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();

  async function call(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await t.app.inject({ method: 'POST', url: path, payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    const raw = res.headers['set-cookie'];
    const setCookie = (Array.isArray(raw) ? raw : raw ? [raw] : []).join('\n');
    const cookie = /user_selfservice=([^;]+)/.exec(setCookie)?.[1];
    let json: any;
    try { json = JSON.parse(res.body); } catch { json = undefined; }
    return { status: res.statusCode, json, body: res.body, cookie: cookie || undefined, setCookie };
  }
  const login = (form: Record<string, string>) => call('/userservice/login', form);
  async function session(user: string, password: string, realm = 'staff'): Promise<string> {
    const a = await login({ login: user, password, realm });
    assert.equal(a.json?.result?.value, true, a.body);
    assert.ok(a.cookie);
    return a.cookie!;
  }
  const asUser = (path: string, cookie: string, form: Record<string, string> = {}) => call(path, { session: cookie, ...form }, { cookie: `user_selfservice=${cookie}` });
  const refused = (a: Answer, where: string) => {
    assert.equal(a.status, 401, `${where}: ${a.status} ${a.body}`);
    assert.equal(a.json?.result?.error?.code, Errors.noUserSession.code, where);
    assert.doesNotMatch(a.body, /LinOtp\.Token|AliceTok|BobTok/, where);
  };
  const attempts = async (login: string, realm = 'staff', resolver = 'stafffiles', id = '1001') =>
    (await t.services.accountAttempts.state({ realm, userKey: `${resolver}/${id}`, login }))?.failCount ?? 0;

  before(async () => {
    t = await startValidationFixture({ clock });
    for (const [serial, user, key] of [['AliceTok1', 'alice', KEY], ['AliceTok2', 'alice', KEY2], ['BobTok1', 'bob', KEY]]) {
      const r = await t.admin('/admin/init', { type: 'hmac', serial, otpkey: key, pin: 'pin1', user, realm: 'staff' });
      assert.equal(r.json.result.status, true, r.body);
    }
  });
  after(async () => t?.close());


  test('the right password opens a session: HttpOnly, SameSite=Strict cookie, audited with the user', async () => {
    const a = await login({ login: 'alice', password: 'AlicePw1', realm: 'staff' });
    assert.deepEqual(a.json.result, { status: true, value: true });
    assert.equal(a.json.id, 0);
    assert.match(a.setCookie, /user_selfservice=[A-Za-z0-9_-]{43};/);
    assert.match(a.setCookie, /HttpOnly/);
    assert.match(a.setCookie, /SameSite=Strict/);
    assert.doesNotMatch(a.setCookie, /Secure/, 'plain http here: Secure only on https');
    const audit = await t.lastAudit('userservice/login');
    assert.equal(audit.success, '1');
    assert.equal(audit.user, 'alice');
    // the cookie is stored only as a keyed hash
    const rows = await t.services.db.kysely.selectFrom('user_sessions').selectAll().execute();
    assert.ok(rows.length >= 1);
    for (const r of rows) assert.notEqual(r.id, a.cookie);
    assert.equal(await attempts('alice'), 0);
  });

  test('wrong password, unknown user, empty password: one answer, no cookie', async () => {
    const wrong = await login({ login: 'bob', password: 'nope', realm: 'staff' });
    const unknown = await login({ login: 'nosuchuser', password: 'nope', realm: 'staff' });
    const empty = await login({ login: 'bob', password: '', realm: 'staff' });
    const nothing = await login({});
    for (const a of [wrong, unknown, empty, nothing]) {
      assert.equal(a.status, 200);
      assert.equal(a.body, wrong.body);
      assert.equal(a.cookie, undefined);
    }
    assert.deepEqual(wrong.json.result, { status: true, value: false });
    assert.equal((await t.lastAudit('userservice/login')).success, '0');
    assert.equal(await attempts('bob', 'staff', 'stafffiles', '1002'), 2, 'the wrong and the empty password each spent an attempt');
    assert.equal((await login({ login: 'bob', password: 'BobPw1', realm: 'staff' })).json.result.value, true);
  });

  test('a user of one realm cannot log in through another realm\'s name', async () => {
    assert.equal((await login({ login: 'dave', password: 'DavePw1', realm: 'staff' })).json.result.value, false);
    assert.equal((await login({ login: 'alice', password: 'AlicePw1', realm: 'lab' })).json.result.value, false);
    assert.equal((await login({ login: 'dave', password: 'DavePw1', realm: 'lab' })).json.result.value, true);
    // no realm: the default realm (staff)
    assert.equal((await login({ login: 'alice', password: 'AlicePw1' })).json.result.value, true);
    assert.equal((await login({ login: 'dave', password: 'DavePw1' })).json.result.value, false);
  });

  test('guessing spends the account\'s attempts (shared with /validate/check); throttled, the right password is refused unchecked', async () => {
    const users = t.services.users;
    const original = users.checkPassword.bind(users);
    let checked = 0;
    users.checkPassword = async (u, pw) => { checked++; return original(u, pw); };
    try {
      for (let i = 0; i < 20; i++) assert.equal((await login({ login: 'carol', password: `guess${i}`, realm: 'staff' })).json.result.value, false);
      assert.equal(checked, 5, 'only AccountFailDelayAfter guesses reach the password check');
      assert.equal(await attempts('carol', 'staff', 'stafffiles', '1003'), 5);
      const right = await login({ login: 'carol', password: 'CarolPw1', realm: 'staff' });
      const wrong = await login({ login: 'carol', password: 'guess', realm: 'staff' });
      assert.equal(right.body, wrong.body, 'throttled: the right password gets the wrong password\'s answer');
      assert.equal(right.cookie, undefined);
      assert.equal(checked, 5, 'refused without checking the password');
      assert.equal((await t.lastAudit('userservice/login')).success, '0');
      // the same count as /validate/check
      await t.policy('pt', 'authentication', 'passthru');
      assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false, '/validate/check is throttled too');
      clock.advance(1000);
      assert.equal((await login({ login: 'carol', password: 'CarolPw1', realm: 'staff' })).json.result.value, true, 'after the window');
      assert.equal(await attempts('carol', 'staff', 'stafffiles', '1003'), 0);
    } finally {
      users.checkPassword = original;
      await t.admin('/system/delPolicy', { name: 'pt' });
    }
  });

  test('a parallel burst of guesses reaches the password check at most AccountMaxParallel times', async () => {
    const users = t.services.users;
    const original = users.checkPassword.bind(users);
    let checked = 0;
    users.checkPassword = async (u, pw) => { checked++; return original(u, pw); };
    try {
      const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => login({ login: 'dave', password: `burst${i}`, realm: 'lab' })));
      for (const r of burst) assert.equal(r.json.result.value, false);
    } finally {
      users.checkPassword = original;
    }
    assert.ok(checked <= 10, `checked ${checked} passwords`);
    assert.ok(checked >= 5, `checked ${checked} passwords`);
    clock.advance(900_000);
    assert.equal((await login({ login: 'dave', password: 'DavePw1', realm: 'lab' })).json.result.value, true);
  });

  test('the session cookie needs an equal session parameter; another session\'s value, admin credentials and no cookie are refused', async () => {
    const alice = await session('alice', 'AlicePw1');
    const bob = await session('bob', 'BobPw1');
    for (const path of ['/userservice/usertokenlist', '/userservice/userinfo', '/userservice/context']) {
      assert.equal((await asUser(path, alice)).status, 200, path);
      refused(await call(path, {}, { cookie: `user_selfservice=${alice}` }), `${path}: cookie without session`);
      refused(await call(path, { session: bob }, { cookie: `user_selfservice=${alice}` }), `${path}: another session's value`);
      refused(await call(path, { session: `${alice}x` }, { cookie: `user_selfservice=${alice}` }), `${path}: a longer value`);
      refused(await call(path, { session: alice }), `${path}: session parameter without cookie`);
      refused(await call(`${path}?session=${alice}`, {}), `${path}: session in the query without cookie`);
      refused(await call(path, {}, { authorization: `Bearer ${t.apiKey}` }), `${path}: admin API key`);
      const adminLogin = await t.app.inject({ method: 'POST', url: '/admin/login', payload: 'username=admin&password=admin-password-1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      const adminCookie = [adminLogin.headers['set-cookie']].flat().map((c) => String(c).split(';')[0]).join('; ');
      refused(await call(path, {}, { cookie: adminCookie }), `${path}: admin session`);
      const adminToken = /access_token_cookie=([^;]+)/.exec(adminCookie)?.[1] ?? '';
      refused(await call(path, { session: adminToken }, { cookie: `user_selfservice=${adminToken}` }), `${path}: admin session value as user session`);
      // the session parameter names the session: the query value counts as well as the form's
      assert.equal((await call(`${path}?session=${alice}`, {}, { cookie: `user_selfservice=${alice}` })).status, 200);
    }
    const audit = await t.lastAudit('userservice/context');
    assert.equal(audit.user, 'alice');
  });

  test('one user never sees another\'s tokens', async () => {
    const alice = await session('alice', 'AlicePw1');
    const list = await asUser('/userservice/usertokenlist', alice);
    assert.deepEqual(list.json.result.value.map((x: any) => x['LinOtp.TokenSerialnumber']).sort(), ['AliceTok1', 'AliceTok2']);
    const ctx = await asUser('/userservice/context', alice);
    assert.deepEqual(ctx.json.result.value.tokenArray.map((x: any) => x['LinOtp.TokenSerialnumber']).sort(), ['AliceTok1', 'AliceTok2']);
    assert.equal(ctx.json.result.value.user.username, 'alice');
    const carol = await session('carol', 'CarolPw1');
    assert.deepEqual((await asUser('/userservice/usertokenlist', carol)).json.result.value, []);
    // a same-named user of another realm's resolver owns none of them either
    const dave = await session('dave', 'DavePw1', 'lab');
    assert.deepEqual((await asUser('/userservice/usertokenlist', dave)).json.result.value, []);
    for (const s of [alice, carol, dave]) assert.doesNotMatch((await asUser('/userservice/usertokenlist', s)).body, /BobTok1|otpkey|pin1/);
    const audit = await t.lastAudit('userservice/usertokenlist');
    assert.equal(audit.user, 'dave');
  });

  test('fault injection: a user store down answers ERR2004, spends no attempt, opens no session; a session store failing serves nothing', async () => {
    const users = t.services.users;
    const original = users.checkPassword.bind(users);
    users.checkPassword = async () => { throw new UserStoreUnavailableError('stafffiles', 'injected'); };
    try {
      const before = await attempts('alice');
      const a = await login({ login: 'alice', password: 'AlicePw1', realm: 'staff' });
      assert.equal(a.json.result.status, false, a.body);
      assert.equal(a.json.result.error.code, Errors.userStoreUnavailable.code);
      assert.equal(a.cookie, undefined);
      assert.equal(await attempts('alice'), before, 'an infrastructure error spends no attempt');
      assert.equal((await t.lastAudit('userservice/login')).success, '0');
    } finally {
      users.checkPassword = original;
    }
    const s = await session('alice', 'AlicePw1');
    const sessions = t.services.userSessions;
    const find = sessions.find.bind(sessions);
    sessions.find = async () => { throw new Error('database gone'); };
    try {
      const a = await asUser('/userservice/usertokenlist', s);
      assert.ok(a.status >= 500 || a.json?.result?.status === false, a.body);
      assert.doesNotMatch(a.body, /AliceTok|database gone/);
    } finally {
      sessions.find = find;
    }
    assert.equal((await asUser('/userservice/usertokenlist', s)).status, 200);
  });

  test('a session ends at its expiry and at logout', async () => {
    const s = await session('alice', 'AlicePw1');
    clock.advance(USER_SESSION_SECONDS * 1000 - 1);
    assert.equal((await asUser('/userservice/userinfo', s)).status, 200);
    clock.advance(1);
    refused(await asUser('/userservice/userinfo', s), 'expired session');
    const s2 = await session('alice', 'AlicePw1');
    const out = await call('/userservice/logout', {}, { cookie: `user_selfservice=${s2}` });
    assert.equal(out.json.result.value, true);
    assert.match(out.setCookie, /user_selfservice=;/);
    refused(await asUser('/userservice/userinfo', s2), 'after logout');
    assert.equal((await t.lastAudit('userservice/logout')).user, 'alice');
  });
  // last: it leaves carol's account with failures
  test('an unknown user is not told apart by time: its refusal waits as long as a wrong password usually takes', async () => {
    // a directory whose password check takes 40 ms (an LDAP bind over a slow link)
    const users = t.services.users;
    const original = users.checkPassword.bind(users);
    users.checkPassword = async (u, pw) => { await new Promise((r) => setTimeout(r, 40)); return original(u, pw); };
    try {
      for (let i = 0; i < 12; i++) assert.equal((await login({ login: 'carol', password: `wrong${i}`, realm: 'staff' })).json.result.value, false);
      const started = performance.now();
      const unknown = await login({ login: 'nobody-at-all', password: 'whatever', realm: 'staff' });
      const took = performance.now() - started;
      assert.equal(unknown.json.result.value, false);
      assert.ok(took >= 35, `an unknown user answered in ${took.toFixed(1)} ms, a wrong password takes 40 ms`);
    } finally {
      users.checkPassword = original;
    }
  });

});
