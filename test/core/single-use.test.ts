// Invariant: an OTP is accepted at most once — also under 20 concurrent submissions, on
// SQLite, PostgreSQL and MariaDB — and a TOTP step, once accepted, closes itself and every
// earlier step. N concurrent wrong OTPs raise the fail counter by exactly N, and a burst never
// buys more guesses than MaxFail allows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableDialects } from '../helpers/db.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { hotp, totpStep } from '../../src/otp/hotp.ts';
import { FakeClock } from '../../src/util/clock.ts';

const KEY = '3132333435363738393031323334353637383930';
const seed = Buffer.from(KEY, 'hex');

for (const { dialect, skip } of await availableDialects()) {
  describe(`single use on ${dialect}`, { skip }, () => {
    let t: TestApp;
    const clock = new FakeClock(Date.UTC(2026, 10, 28, 12, 0, 0));
    before(async () => {
      t = await startTestApp({ dialect, clock });
    });
    after(async () => t?.close());

    test('20 parallel checks of one valid HOTP: exactly one success, counter moves once', async () => {
      await t.admin('/admin/init', { type: 'hmac', serial: 'PAR1', otpkey: KEY, pin: 'pw' });
      // the 19 losers are replays of the value just accepted: they count no failure (replay-lockout.test.ts)
      await t.admin('/admin/set', { serial: 'PAR1', MaxFailCount: '100' });
      const pass = `pw${hotp(seed, 3)}`;
      const results = await Promise.all(Array.from({ length: 20 }, () => t.post('/validate/check', { serial: 'PAR1', pass })));
      const wins = results.filter((r) => r.json.result.value === true).length;
      assert.equal(wins, 1);
      const tok = await t.services.tokens.repository.bySerial('PAR1');
      assert.equal(tok!.counter, 4);
      assert.equal((await t.post('/validate/check', { serial: 'PAR1', pass })).json.result.value, false, 'replay');
      assert.equal((await t.post('/validate/check', { serial: 'PAR1', pass: `pw${hotp(seed, 2)}` })).json.result.value, false, 'earlier counter');
      assert.equal((await t.post('/validate/check', { serial: 'PAR1', pass: `pw${hotp(seed, 4)}` })).json.result.value, true, 'next counter');
    });

    test('N parallel wrong OTPs raise the fail counter by exactly N', async () => {
      await t.admin('/admin/init', { type: 'hmac', serial: 'FAIL1', otpkey: KEY, pin: 'pw' });
      await t.admin('/admin/set', { serial: 'FAIL1', MaxFailCount: '100' });
      const n = 15;
      await Promise.all(Array.from({ length: n }, (_, i) => t.post('/validate/check', { serial: 'FAIL1', pass: `pw${String(100000 + i)}` })));
      assert.equal((await t.services.tokens.repository.bySerial('FAIL1'))!.failCount, n);
    });

    test('a burst never buys more than MaxFail guesses; the locked token refuses even the right OTP', async () => {
      await t.admin('/admin/init', { type: 'hmac', serial: 'LOCK1', otpkey: KEY, pin: 'pw' });
      await t.admin('/admin/set', { serial: 'LOCK1', MaxFailCount: '5' });
      let checked = 0;
      const repo = t.services.tokens.repository;
      const original = repo.reserveAttempt.bind(repo);
      repo.reserveAttempt = async (id: number) => {
        const ok = await original(id);
        if (ok) checked++;
        return ok;
      };
      try {
        await Promise.all(Array.from({ length: 30 }, (_, i) => t.post('/validate/check', { serial: 'LOCK1', pass: `pw${String(200000 + i)}` })));
      } finally {
        repo.reserveAttempt = original;
      }
      assert.equal(checked, 5, 'only MaxFail attempts reached the OTP check');
      // a locked token costs no write (B.2 #15, issue 10 #11): the count stops at MaxFail
      assert.equal((await repo.bySerial('LOCK1'))!.failCount, 5);
      assert.equal((await t.post('/validate/check', { serial: 'LOCK1', pass: `pw${hotp(seed, 0)}` })).json.result.value, false);
      await t.admin('/admin/reset', { serial: 'LOCK1' });
      assert.equal((await t.post('/validate/check', { serial: 'LOCK1', pass: `pw${hotp(seed, 0)}` })).json.result.value, true);
    });

    test('TOTP: accepted step and earlier steps are never accepted again; ±1 step passes, ±2 fails', async () => {
      await t.admin('/admin/init', { type: 'totp', serial: 'TOTP1', otpkey: KEY, pin: 'pw' });
      await t.admin('/admin/set', { serial: 'TOTP1', MaxFailCount: '100' });
      const now = totpStep(clock.now(), 30);
      const code = (s: number) => `pw${hotp(seed, s)}`;
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now + 2) })).json.result.value, false, '+2 steps');
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now - 2) })).json.result.value, false, '-2 steps');
      const results = await Promise.all(Array.from({ length: 20 }, () => t.post('/validate/check', { serial: 'TOTP1', pass: code(now) })));
      assert.equal(results.filter((r) => r.json.result.value === true).length, 1);
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now - 1) })).json.result.value, false, 'earlier step after success');
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now) })).json.result.value, false, 'same step again');
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now + 1) })).json.result.value, true, '+1 step');
      clock.advance(30_000);
      assert.equal((await t.post('/validate/check', { serial: 'TOTP1', pass: code(now + 1) })).json.result.value, false, 'step used in the previous period');
    });

    test('PIN matched + wrong OTP counts a failure only on that token; success resets', async () => {
      await t.admin('/admin/init', { type: 'hmac', serial: 'PM1', otpkey: KEY, pin: 'right' });
      await t.post('/validate/check', { serial: 'PM1', pass: 'right000000' });
      await t.post('/validate/check', { serial: 'PM1', pass: 'wrong000000' });
      assert.equal((await t.services.tokens.repository.bySerial('PM1'))!.failCount, 2);
      await t.post('/validate/check', { serial: 'PM1', pass: `right${hotp(seed, 0)}` });
      assert.equal((await t.services.tokens.repository.bySerial('PM1'))!.failCount, 0);
    });
  });
}
