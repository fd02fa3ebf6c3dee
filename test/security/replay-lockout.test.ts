// Invariant: a parallel copy of the value just accepted is a replay, not a guess. Twelve
// parallel copies of one valid OTP give exactly one success and spend no attempt: the token's
// fail counter and the account's failure count stay at 0, so the owner is not locked out (or
// throttled) right after logging in. On SQLite, PostgreSQL and MariaDB.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { availableDialects } from '../helpers/db.ts';
import { KEY, SEED, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

const aliceKey = { realm: 'staff', userKey: 'stafffiles/1001', login: 'alice' };

for (const { dialect, skip } of await availableDialects()) {
  describe(`parallel copies of a valid OTP on ${dialect}`, { skip }, () => {
    let t: ValidationFixture;
    before(async () => {
      t = await startValidationFixture({ dialect });
      assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'A1', otpkey: KEY, pin: 'pin', user: 'alice' })).json.result.value, true);
      await t.admin('/admin/set', { serial: 'A1', MaxFailCount: '5' });
    });
    after(async () => t?.close());

    test('12 copies: one success, fail counter 0, account count 0, the next login works at once', async () => {
      const results = await Promise.all(Array.from({ length: 12 }, () => t.check({ user: 'alice', pass: `pin${hotp(SEED, 0)}` })));
      assert.equal(results.filter((r) => r.json.result.value === true).length, 1);
      assert.equal(await t.failCount('A1'), 0, 'no copy counted as a failure');
      assert.equal((await t.services.accountAttempts.state(aliceKey))?.failCount ?? 0, 0);
      assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 1)}` })).json.result.value, true);
    });

    test('a later replay of an old value is still refused (and is a failed try)', async () => {
      assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 0)}` })).json.result.value, false);
      assert.equal(await t.failCount('A1'), 1);
      assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 2)}` })).json.result.value, true);
      assert.equal(await t.failCount('A1'), 0);
    });

    test('parallel answers to one HMAC challenge: one success, no failure counted', async () => {
      await t.policy('cr', 'authentication', 'challenge_response=hmac');
      try {
        const trig = await t.check({ user: 'alice', pass: 'pin' });
        const tid = trig.json.detail?.transactionid;
        assert.ok(tid, trig.body);
        const results = await Promise.all(Array.from({ length: 12 }, () => t.check({ user: 'alice', transactionid: tid, pass: hotp(SEED, 3) })));
        assert.equal(results.filter((r) => r.json.result.value === true).length, 1);
        assert.equal(await t.failCount('A1'), 0);
        assert.equal((await t.services.accountAttempts.state(aliceKey))?.failCount ?? 0, 0);
      } finally {
        await t.admin('/system/delPolicy', { name: 'cr' });
      }
    });

    test('a copy of a challenge answer that arrives after the winner finished compares nothing and spends nothing', async () => {
      // the deterministic form of a parallel copy that loses by a whole request: its challenge
      // is already closed, so no OTP is compared with anything — it is no guess
      await t.policy('cr', 'authentication', 'challenge_response=hmac');
      try {
        const trig = await t.check({ user: 'alice', pass: 'pin' });
        const tid = trig.json.detail?.transactionid;
        assert.ok(tid, trig.body);
        assert.equal((await t.check({ user: 'alice', transactionid: tid, pass: hotp(SEED, 4) })).json.result.value, true);
        for (const pass of [hotp(SEED, 4), '000000', hotp(SEED, 5)]) {
          assert.equal((await t.check({ user: 'alice', transactionid: tid, pass })).json.result.value, false, `${pass} on a closed challenge`);
        }
        assert.equal(await t.failCount('A1'), 0);
        assert.equal((await t.services.accountAttempts.state(aliceKey))?.failCount ?? 0, 0);
        // the next value is still good: nothing on the closed transaction consumed it
        assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 5)}` })).json.result.value, true);
      } finally {
        await t.admin('/system/delPolicy', { name: 'cr' });
      }
    });

    test('a copy that arrives after the winner finished: the value accepted last is refused and spends nothing', async () => {
      // the deterministic form of a parallel copy that loses by a whole request (the winner's
      // write committed before the copy read the token)
      const otp = hotp(SEED, 20);
      await t.admin('/admin/resync', { serial: 'A1', otp1: hotp(SEED, 18), otp2: hotp(SEED, 19) });
      assert.equal((await t.check({ user: 'alice', pass: `pin${otp}` })).json.result.value, true);
      for (let i = 0; i < 3; i++) assert.equal((await t.check({ user: 'alice', pass: `pin${otp}` })).json.result.value, false);
      assert.equal(await t.failCount('A1'), 0, 'the value accepted last, sent again, is no guess');
      assert.equal((await t.services.accountAttempts.state(aliceKey))?.failCount ?? 0, 0);
      // a wrong PIN with that value is a guess at the PIN: it counts
      assert.equal((await t.check({ user: 'alice', pass: `nip${otp}` })).json.result.value, false);
      assert.equal(await t.failCount('A1'), 1);
      assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 21)}` })).json.result.value, true);
      assert.equal(await t.failCount('A1'), 0);
    });
  });
}
