/** maskForOwner: what the login page shows of a destination — country code, three digits, last two. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskForOwner } from '../../src/util/phone.ts';

test('phone numbers: country code, first three national digits, four stars, last two', () => {
  assert.equal(maskForOwner('sms', '+4915123456778'), '+49 151 ****78');
  assert.equal(maskForOwner('sms', '+12015550123'), '+1 201 ****23');
  // the length is not told: a number with two more digits gets the same four stars
  assert.equal(maskForOwner('sms', '+491512345678912'), '+49 151 ****12');
  assert.doesNotMatch(maskForOwner('sms', '+4915123456778'), /2345/);
});

test('e-mail: first letter and domain', () => {
  assert.equal(maskForOwner('email', 'alice@example.org'), 'a***@example.org');
});
