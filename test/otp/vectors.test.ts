// Invariant: the OTP core reproduces RFC 4226 appendix D and RFC 6238 appendix B byte for byte,
// and agrees with an independent implementation (otpauth) on random keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as OTPAuth from 'otpauth';
import { findCounter, hotp, totpStep } from '../../src/otp/hotp.ts';

const seed20 = Buffer.from('12345678901234567890');
const seed32 = Buffer.from('12345678901234567890123456789012');
const seed64 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234');

test('RFC 4226 appendix D', () => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  expected.forEach((v, i) => assert.equal(hotp(seed20, i), v));
});

test('RFC 6238 appendix B, SHA1/SHA256/SHA512, 8 digits', () => {
  const cases: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [t, s1, s256, s512] of cases) {
    const step = totpStep(t * 1000, 30);
    assert.equal(hotp(seed20, step, 8, 'sha1'), s1);
    assert.equal(hotp(seed32, step, 8, 'sha256'), s256);
    assert.equal(hotp(seed64, step, 8, 'sha512'), s512);
  }
});

test('agrees with otpauth on random keys', () => {
  for (let i = 0; i < 50; i++) {
    const key = randomBytes(20);
    const counter = Math.floor(Math.random() * 1e6);
    const lib = new OTPAuth.HOTP({ secret: new OTPAuth.Secret({ buffer: new Uint8Array(key).buffer }), digits: 6, algorithm: 'SHA1' });
    assert.equal(hotp(key, counter), lib.generate({ counter }));
  }
});

test('findCounter searches exactly the window', () => {
  assert.equal(findCounter(seed20, '969429', 0, 10, 6, 'sha1'), 3);
  assert.equal(findCounter(seed20, '969429', 4, 10, 6, 'sha1'), -1);
  assert.equal(findCounter(seed20, '520489', 0, 9, 6, 'sha1'), -1);
  assert.equal(findCounter(seed20, '520489', 0, 10, 6, 'sha1'), 9);
  // stopping at the match finds the same counter, and nothing outside the window
  assert.equal(findCounter(seed20, '969429', 0, 10, 6, 'sha1', true), 3);
  assert.equal(findCounter(seed20, '969429', 4, 10, 6, 'sha1', true), -1);
  assert.equal(findCounter(seed20, '520489', 0, 9, 6, 'sha1', true), -1);
  assert.equal(findCounter(seed20, '520489', 0, 10, 6, 'sha1', true), 9);
});
