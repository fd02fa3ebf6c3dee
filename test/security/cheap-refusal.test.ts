// Invariant: a request whose every token is locked (fail counter at MaxFail) checks no secret
// and writes nothing for the attempt: no token or account reservation, the account row is
// left as it was (also under a burst), and the answer is the locked refusal, audited.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { KEY, SEED, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

let t: ValidationFixture;
before(async () => {
  t = await startValidationFixture();
  assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'L1', otpkey: KEY, pin: 'pin', user: 'alice' })).json.result.value, true);
  await t.services.db.kysely.updateTable('tokens').set({ fail_count: 10, max_fail: 10 }).where('serial', '=', 'L1').execute();
});
after(async () => t?.close());

const accountRow = () => t.services.db.kysely.selectFrom('account_attempts').selectAll().where('realm', '=', 'staff').where('user_key', '=', 'stafffiles/1001').executeTakeFirst();
const tokenRow = () => t.services.db.kysely.selectFrom('tokens').select(['fail_count', 'count_auth', 'counter']).where('serial', '=', 'L1').executeTakeFirstOrThrow();

test('a locked token: refused with the locked reason, no reservation, nothing counted (burst of 10)', async () => {
  const accountBefore = await accountRow();
  const tokenBefore = await tokenRow();
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => t.check({ user: 'alice', pass: `pin${hotp(SEED, i)}` })));
  assert.ok(answers.every((a) => a.json.result.value === false));
  assert.deepEqual(await accountRow(), accountBefore, 'the account row is untouched');
  assert.deepEqual(await tokenRow(), tokenBefore, 'the token row is untouched, the right OTP not consumed');
  const audit = await t.lastAudit();
  assert.equal(audit.success, '0');
  assert.equal((audit as unknown as { reason: string }).reason, 'tokenLocked');
});
