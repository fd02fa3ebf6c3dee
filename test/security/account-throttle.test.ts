// Invariant: consecutive failed authentications are limited per account (realm + user), with
// or without a token row: after AccountFailDelayAfter failures each further attempt is refused
// for a window that starts at AccountFailDelayBase seconds and doubles up to AccountFailDelayMax;
// at AccountMaxFail (≤ 100, NIST SP 800-63B) the account is refused until an admin reset. A
// refusal checks nothing and adds no failure; a success clears the count. The state lives in the
// database: HTTP and RADIUS share it, rotating client addresses or X-Forwarded-For does not reset
// it, flooding other names evicts nothing, a restart and a second node see it, and a parallel
// burst buys no more than AccountMaxParallel checks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices } from '../../src/services.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { availableDialects } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { startOtpd, type RunningOtpd } from '../helpers/server.ts';
import { crypt, KEY, SEED, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

const carolKey = { realm: 'staff', userKey: 'stafffiles/1003', login: 'carol' };

describe('per-account failure limit (passthru, no token)', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();
  before(async () => {
    t = await startValidationFixture({ clock });
    await t.policy('pt', 'authentication', 'passthru');
  });
  after(async () => t?.close());

  test('40 wrong passwords, then the right one: refused; it works once the window has passed', async () => {
    for (let i = 0; i < 40; i++) assert.equal((await t.check({ user: 'carol', pass: `wrong${i}` })).json.result.value, false);
    const state = await t.services.accountAttempts.state(carolKey);
    assert.equal(state?.failCount, 5, 'only the first 5 were checked; the refused ones added nothing');
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false, 'right password inside the window');
    assert.match((await t.lastAudit()).action_detail, /throttled/);
    clock.advance(1000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
    assert.equal((await t.services.accountAttempts.state(carolKey))?.failCount, 0, 'a success clears the count');
  });

  test('windows double from 1 s to the cap; a refusal inside a window adds no failure', async () => {
    await t.setConfig('AccountFailDelayMax', '8');
    try {
      for (let i = 0; i < 5; i++) await t.check({ user: 'carol', pass: 'nope' });
      const expected = [1000, 2000, 4000, 8000, 8000];
      for (const ms of expected) {
        clock.advance(ms - 1);
        await t.check({ user: 'carol', pass: 'CarolPw1' });
        assert.match((await t.lastAudit()).action_detail, /throttled/, `still refused ${ms - 1} ms into a ${ms} ms window`);
        clock.advance(1);
        const before = (await t.services.accountAttempts.state(carolKey))!.failCount;
        await t.check({ user: 'carol', pass: 'nope' });
        assert.equal((await t.services.accountAttempts.state(carolKey))!.failCount, before + 1);
      }
      assert.equal((await t.services.accountAttempts.state(carolKey))!.retryAt - clock.now(), 8000, 'capped');
    } finally {
      clock.advance(8000);
      await t.check({ user: 'carol', pass: 'CarolPw1' });
      await t.setConfig('AccountFailDelayMax', '900');
    }
  });

  test('a throttled account costs no password check and no write (B.2 #15)', async () => {
    for (let i = 0; i < 5; i++) await t.check({ user: 'carol', pass: 'bad' });
    const users = t.services.users;
    const checkPassword = users.checkPassword.bind(users);
    const attempts = t.services.accountAttempts;
    const reserve = attempts.reserve.bind(attempts);
    const failed = attempts.failed.bind(attempts);
    let checks = 0;
    let writes = 0;
    users.checkPassword = async (u, pw) => {
      checks++;
      return checkPassword(u, pw);
    };
    attempts.reserve = async (...args) => {
      writes++;
      return reserve(...args);
    };
    attempts.failed = async (...args) => {
      writes++;
      return failed(...args);
    };
    try {
      const burst = await Promise.all(Array.from({ length: 20 }, () => t.check({ user: 'carol', pass: 'CarolPw1' })));
      for (const r of burst) assert.equal(r.json.result.value, false);
    } finally {
      users.checkPassword = checkPassword;
      attempts.reserve = reserve;
      attempts.failed = failed;
    }
    assert.equal(checks, 0);
    assert.equal(writes, 0);
    assert.equal((await t.services.accountAttempts.state(carolKey))!.failCount, 5);
    clock.advance(1000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
  });

  test('rotating X-Forwarded-For and client= does not reset or split the count', async () => {
    for (let i = 0; i < 12; i++) {
      await t.check({ user: 'carol', pass: 'bad', client: `10.0.${i}.1` }, '/validate/check', { 'x-forwarded-for': `198.51.100.${i}` });
    }
    assert.equal((await t.services.accountAttempts.state(carolKey))!.failCount, 5);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' }, '/validate/check', { 'x-forwarded-for': '203.0.113.9' })).json.result.value, false);
    clock.advance(1000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
  });

  test('a parallel burst of 50 wrong passwords reaches the password check at most AccountMaxParallel times', async () => {
    const users = t.services.users;
    const original = users.checkPassword.bind(users);
    let checked = 0;
    users.checkPassword = async (u, pw) => {
      checked++;
      return original(u, pw);
    };
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => t.check({ user: 'carol', pass: `burst${i}` })));
      for (const r of results) assert.equal(r.json.result.value, false);
    } finally {
      users.checkPassword = original;
    }
    assert.ok(checked <= 10, `checked ${checked} passwords`);
    assert.ok(checked >= 5, `checked ${checked} passwords`);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false, 'throttled after the burst');
    clock.advance(900_000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
  });

  test('flooding 3,000 other names evicts nothing and creates no rows', async () => {
    for (let i = 0; i < 5; i++) await t.check({ user: 'carol', pass: 'bad' });
    await t.check({ user: 'nobody', pass: 'x' }); // creates the one sentinel row unknown names touch
    const rowsBefore = (await t.services.db.kysely.selectFrom('account_attempts').selectAll().execute()).length;
    for (let i = 0; i < 3000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => t.check({ user: `nobody${i + j}`, pass: 'x' })));
    }
    assert.equal((await t.services.db.kysely.selectFrom('account_attempts').selectAll().execute()).length, rowsBefore);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false, 'still throttled');
    clock.advance(1000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
  });

  test('hard stop at AccountMaxFail: refused until an admin reset, also after the windows', async () => {
    await t.setConfig('AccountFailDelayAfter', '100');
    await t.setConfig('AccountMaxFail', '20');
    try {
      for (let i = 0; i < 25; i++) await t.check({ user: 'carol', pass: `guess${i}` });
      assert.equal((await t.services.accountAttempts.state(carolKey))!.failCount, 20);
      clock.advance(86_400_000);
      assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, false);
      assert.match((await t.lastAudit()).action_detail, /locked/);
      const reset = await t.admin('/admin/reset', { user: 'carol' });
      assert.equal(reset.json.result.status, true, reset.body);
      assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
    } finally {
      await t.setConfig('AccountFailDelayAfter', '5');
      await t.setConfig('AccountMaxFail', '100');
    }
  });

  test('setConfig refuses a hard limit above 100, nonsense values and AutoResync', async () => {
    // AutoResync is LinOTP's, not otpd's: turning it on would be a setting that does nothing
    for (const [key, value] of [['AccountMaxFail', '101'], ['AccountMaxFail', '0'], ['AccountFailDelayAfter', 'x'], ['AccountFailDelayMax', '-1'], ['AutoResync', 'True'], ['AutoResyncTimeout', '240']]) {
      const r = await t.admin('/system/setConfig', { key, value });
      assert.equal(r.json.result.status, false, `${key}=${value}: ${r.body}`);
    }
  });

  test('the count survives a restart (a new process on the same database)', async () => {
    for (let i = 0; i < 5; i++) await t.check({ user: 'carol', pass: 'bad' });
    const settings = loadSettings({ OTPD_DATA_DIR: t.dataDir, OTPD_LOG_LEVEL: 'silent' }, t.dataDir);
    const second = await createServices({ settings, clock });
    try {
      const user = await second.users.findUser('carol', 'staff');
      const out = await second.validation.check({ user: 'carol', pass: 'CarolPw1', client: '127.0.0.1', entry: 'check' });
      assert.ok(user);
      assert.equal(out.ok, false);
      assert.match(out.audit.actionDetail, /throttled/);
    } finally {
      await second.close();
    }
    clock.advance(1000);
    assert.equal((await t.check({ user: 'carol', pass: 'CarolPw1' })).json.result.value, true);
  });
});

describe('the token PIN + OTP path counts per account too, across tokens', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();
  before(async () => {
    t = await startValidationFixture({ clock });
    for (const serial of ['A1', 'A2']) {
      assert.equal((await t.admin('/admin/init', { type: 'hmac', serial, otpkey: KEY, pin: `pin${serial}`, user: 'alice' })).json.result.value, true);
      await t.admin('/admin/set', { serial, MaxFailCount: '100' });
    }
  });
  after(async () => t?.close());

  test('wrong OTPs on two tokens of one user add up; the right OTP is refused inside the window', async () => {
    for (let i = 0; i < 3; i++) await t.check({ user: 'alice', serial: 'A1', pass: `pinA1${String(100000 + i)}` });
    for (let i = 0; i < 2; i++) await t.check({ user: 'alice', serial: 'A2', pass: `pinA2${String(100000 + i)}` });
    assert.equal((await t.check({ user: 'alice', pass: `pinA1${hotp(SEED, 0)}` })).json.result.value, false);
    clock.advance(1000);
    assert.equal((await t.check({ user: 'alice', pass: `pinA1${hotp(SEED, 0)}` })).json.result.value, true);
  });

  test('an attempt that checks nothing (every token locked or disabled) counts nothing against the account', async () => {
    const alice = { realm: 'staff', userKey: 'stafffiles/1001', login: 'alice' };
    await t.admin('/admin/set', { serial: 'A1', MaxFailCount: '1' });
    await t.check({ user: 'alice', serial: 'A1', pass: 'pinA1000000' });
    assert.equal(await t.failCount('A1'), 1, 'A1 locked');
    const before = (await t.services.accountAttempts.state(alice))!.failCount;
    await t.admin('/admin/disable', { serial: 'A2' });
    try {
      for (let i = 0; i < 8; i++) assert.equal((await t.check({ user: 'alice', pass: `pinA1${hotp(SEED, 1)}` })).json.result.value, false);
      assert.equal((await t.services.accountAttempts.state(alice))!.failCount, before);
      assert.equal(await t.failCount('A1'), 1, 'and the locked token\'s count stays at MaxFail');
    } finally {
      await t.admin('/admin/enable', { serial: 'A2' });
      await t.admin('/admin/reset', { serial: 'A1' });
      await t.admin('/admin/set', { serial: 'A1', MaxFailCount: '100' });
    }
  });
});

for (const { dialect, skip } of await availableDialects()) {
  if (dialect === 'sqlite') continue;
  describe(`two nodes on ${dialect} share the account limit`, { skip }, () => {
    test('failures on node A throttle node B; a success on B clears A', async () => {
      // one clock for both nodes, as NTP gives real ones
      const clock = new FakeClock(Date.now());
      const a = await startValidationFixture({ dialect, clock });
      try {
        await a.policy('pt', 'authentication', 'passthru');
        const settings = loadSettings({ OTPD_DATA_DIR: a.dataDir, OTPD_LOG_LEVEL: 'silent', OTPD_DATABASE_URL: a.services.settings.databaseUrl! }, a.dataDir);
        const b = await createServices({ settings, clock });
        try {
          const onB = (pass: string) => b.validation.check({ user: 'carol', pass, client: '127.0.0.1', entry: 'check' });
          for (let i = 0; i < 8; i++) await a.check({ user: 'carol', pass: 'bad' });
          assert.equal((await a.services.accountAttempts.state(carolKey))!.failCount, 5);
          const refused = await onB('CarolPw1');
          assert.equal(refused.ok, false);
          assert.match(refused.audit.actionDetail, /throttled/);
          clock.advance(1000); // the first window (AccountFailDelayBase 1 s) has passed
          assert.equal((await onB('CarolPw1')).ok, true);
          assert.equal((await a.services.accountAttempts.state(carolKey))!.failCount, 0);
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });
  });
}

describe('HTTP and RADIUS share one account count', { skip: haveBinary('radclient', 'freeradius-utils') }, () => {
  let otpd: RunningOtpd;
  const rad = (user: string, password: string) => otpd.radius(user, password);
  const http = (user: string, pass: string) => otpd.post('/validate/check', { user, pass });

  before(async () => {
    otpd = await startOtpd({ radiusSecret: 'throttle-shared-secret', radiusRealm: 'corp', files: { users: `gina:${crypt('GinaPw1')}:3001:3001:Gina Gall,,,,gina@example.org:/home/gina:/bin/sh\n` } });
    const admin = otpd.admin;
    assert.equal((await admin('/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: join(otpd.dir, 'users') })).result.value, true);
    assert.equal((await admin('/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' })).result.value, true);
    assert.equal((await admin('/system/setDefaultRealm', { realm: 'corp' })).result.value, true);
    assert.equal((await admin('/system/setPolicy', { name: 'pt', scope: 'authentication', action: 'passthru', realm: '*', user: '*', client: '*' })).result.status, true);
    // a long first window, so the test is not racing the clock
    assert.equal((await admin('/system/setConfig', { key: 'AccountFailDelayBase', value: '60' })).result.status, true);
  });
  after(async () => otpd?.stop());

  test('3 wrong over HTTP + 2 wrong over RADIUS, then the right password is refused on both', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await http('gina', `bad${i}`)).result.value, false);
    for (let i = 0; i < 2; i++) assert.equal((await rad('gina', `bad${i}`)).reply, 'Access-Reject');
    assert.equal((await rad('gina', 'GinaPw1')).reply, 'Access-Reject');
    assert.equal((await http('gina', 'GinaPw1')).result.value, false);
  });

  test('40 wrong passwords over RADIUS, then the right one: Access-Reject', async () => {
    await otpd.admin('/admin/reset', { user: 'gina' });
    assert.equal((await rad('gina', 'GinaPw1')).reply, 'Access-Accept', 'after the admin reset');
    for (let i = 0; i < 40; i++) await rad('gina', `wrong${i}`);
    assert.equal((await rad('gina', 'GinaPw1')).reply, 'Access-Reject');
  });
});
