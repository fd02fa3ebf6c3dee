// The presentation of challenges on /validate/*: LinOTP's `detail` (spec 1.3.1) for one
// challenge and for several, and the simplecheck text (spec 1.3.2), from the answer step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { challengeDetail, simplecheckText } from '../../src/api/challenge-detail.ts';
import type { ChallengeInfo } from '../../src/validation/outcome.ts';

const sms: ChallengeInfo = { transactionId: '12345678901234567', message: 'sms submitted', state: '12345678901234567', serial: 'LSSM1', tokenType: 'sms', description: 'phone', expiresAt: 0 };
const hmac: ChallengeInfo = { transactionId: '98765432109876543', message: 'Please enter your otp value: ', serial: 'OATH1', tokenType: 'hmac', description: '', expiresAt: 0 };

test('one challenge: its fields; state and info only when the challenge has them', () => {
  assert.deepEqual(challengeDetail([sms]), {
    transactionid: sms.transactionId, message: 'sms submitted', state: sms.transactionId,
    linotp_tokenserial: 'LSSM1', linotp_tokentype: 'sms', linotp_tokendescription: 'phone',
  });
  const d = challengeDetail([{ ...hmac, info: 'challenge already submitted' }]);
  assert.equal(d?.info, 'challenge already submitted');
  assert.equal('state' in (challengeDetail([hmac]) ?? {}), false);
  assert.equal(challengeDetail([]), undefined);
});

test('several challenges: by serial, the first transaction id cut to 14 digits', () => {
  const d = challengeDetail([sms, hmac]) as { challenges: Record<string, { transactionid: string }>; transactionid: string; message: string };
  assert.deepEqual(Object.keys(d.challenges), ['LSSM1', 'OATH1']);
  assert.equal(d.challenges.OATH1.transactionid, hmac.transactionId);
  assert.equal(d.transactionid, '12345678901234');
  assert.equal(d.message, 'Multiple challenges submitted.');
});

test('simplecheck: :-) for an accept, the first challenge after :-( , else :-(', () => {
  assert.equal(simplecheckText({ kind: 'accept' }), ':-)');
  assert.equal(simplecheckText({ kind: 'challenge', challenges: [hmac, sms] }), `:-( ${hmac.transactionId} Please enter your otp value: `);
  assert.equal(simplecheckText({ kind: 'reject', error: 'x' }), ':-(');
  assert.equal(simplecheckText({ kind: 'unavailable' }), ':-(');
});
