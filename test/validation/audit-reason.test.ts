// Every validation outcome writes its reason code to the audit row (column `reason`, beside
// the free text in action_detail), HTTP and RADIUS alike; a refused admin request writes its
// error's catalogue key. The column is part of the keyed chain: changing a reason breaks the
// chain at that row, and rows without a reason (written before the column existed) keep
// verifying.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditChainKey } from '../../src/audit/writer.ts';
import { verifyAuditChain } from '../../src/audit/verify.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { REASONS, type Reason } from '../../src/validation/reasons.ts';
import { KEY, SEED, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

describe('audit reason codes', () => {
  let t: ValidationFixture;
  let counter = 0;
  const reasonOf = async (action = 'validate/check') =>
    (await t.services.db.kysely.selectFrom('audit').select(['reason', 'action_detail']).where('action', '=', action).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow());
  const expect = async (form: Record<string, string>, reason: Reason, detail: string) => {
    await t.check(form);
    await t.services.audit.settled();
    assert.ok(reason in REASONS);
    assert.deepEqual(await reasonOf(), { reason, action_detail: detail }, JSON.stringify(form));
  };

  before(async () => {
    t = await startValidationFixture();
    await t.setConfig('AccountFailDelayAfter', '100');
    const init = await t.admin('/admin/init', { type: 'hmac', serial: 'R1', otpkey: KEY, pin: 'tokpin', user: 'alice', realm: 'staff' });
    assert.equal(init.json.result.value, true, init.body);
    await t.admin('/admin/set', { serial: 'R1', MaxFailCount: '3' });
    await t.admin('/admin/init', { type: 'spass', serial: 'BOB1', pin: 'bobpin', user: 'bob', realm: 'staff' });
  });
  after(async () => t?.close());

  test('success, a used OTP, a wrong PIN', async () => {
    const otp = hotp(SEED, counter++);
    await expect({ user: 'alice', pass: `tokpin${otp}` }, 'authenticated', "user 'alice'@'staff' successfully authenticated.");
    await expect({ user: 'alice', pass: `tokpin${otp}` }, 'replay', 'wrong otp value (already used)');
    await expect({ user: 'alice', pass: 'tokpin000000' }, 'wrongOtp', 'wrong otp value');
    await expect({ user: 'alice', pass: `nopin${hotp(SEED, counter)}` }, 'wrongPin', 'wrong otp pin -1');
    await expect({ user: 'alice', pass: `tokpin${hotp(SEED, counter++)}` }, 'authenticated', "user 'alice'@'staff' successfully authenticated.");
  });

  test('refusals before any secret: unknown user, missing pass, foreign serial, disabled and locked tokens', async () => {
    await expect({ user: 'nobody', pass: 'x' }, 'userNotFound', 'User not found');
    await expect({ user: 'alice' }, 'missingPass', "Missing parameter: 'pass'");
    await expect({ user: 'alice', serial: 'BOB1', pass: 'bobpin' }, 'ownerMismatch', 'serial does not belong to the user');
    await t.admin('/admin/disable', { serial: 'BOB1' });
    await expect({ user: 'bob', pass: 'bobpin' }, 'tokenDisabled', 'Token inactive');
    await t.admin('/admin/enable', { serial: 'BOB1' });
    for (let i = 0; i < 3; i++) await t.check({ user: 'alice', pass: 'tokpin000000' });
    await expect({ user: 'alice', pass: `tokpin${hotp(SEED, counter)}` }, 'tokenLocked', 'Failcounter exceeded');
    await t.admin('/admin/reset', { serial: 'R1' });
    await expect({ user: 'carol', pass: 'CarolPw1' }, 'noTokenAssigned', 'User has no tokens assigned');
  });

  test('a refused admin request writes its catalogue key', async () => {
    const r = await t.admin('/admin/remove', {});
    assert.equal(r.json.result.status, false, r.body);
    await t.services.audit.settled();
    const row = await reasonOf('admin/remove');
    assert.notEqual(row.reason, '', 'a refusal has a code');
    assert.match(row.reason, /^[a-z][A-Za-z]+$/);
  });

  test('the reason is in the keyed chain: changing it breaks the chain at that row', async () => {
    await t.services.audit.settled();
    const chain = auditChainKey(t.services.keyring, t.services.settings.dataDir);
    const before = await verifyAuditChain(t.services.db, chain);
    assert.deepEqual(before.problems, []);
    const row = await t.services.db.kysely.selectFrom('audit').select(['id', 'reason']).where('reason', '=', 'wrongPin').orderBy('id').limit(1).executeTakeFirstOrThrow();
    for (const forged of ['authenticated', '']) {
      await t.services.db.kysely.updateTable('audit').set({ reason: forged }).where('id', '=', row.id).execute();
      const after = await verifyAuditChain(t.services.db, chain);
      assert.equal(after.ok, false, `reason ${JSON.stringify(forged)}`);
      assert.equal(after.firstBroken?.id, Number(row.id));
    }
    await t.services.db.kysely.updateTable('audit').set({ reason: 'wrongPin' }).where('id', '=', row.id).execute();
    assert.deepEqual((await verifyAuditChain(t.services.db, chain)).problems, [], 'restored, the chain holds again');
  });

  test('a row without a reason verifies, and gets one only through a rewrite the chain catches', async () => {
    await t.services.audit.write({ action: 'system/test', success: true, info: 'no reason' });
    await t.services.audit.settled();
    const chain = auditChainKey(t.services.keyring, t.services.settings.dataDir);
    assert.deepEqual((await verifyAuditChain(t.services.db, chain)).problems, []);
    const row = await t.services.db.kysely.selectFrom('audit').select(['id', 'reason']).where('action', '=', 'system/test').executeTakeFirstOrThrow();
    assert.equal(row.reason, '');
    await t.services.db.kysely.updateTable('audit').set({ reason: 'authenticated' }).where('id', '=', row.id).execute();
    assert.equal((await verifyAuditChain(t.services.db, chain)).firstBroken?.id, Number(row.id));
    await t.services.db.kysely.updateTable('audit').set({ reason: '' }).where('id', '=', row.id).execute();
  });
});
