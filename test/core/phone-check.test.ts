/**
 * The phone number of an SMS token (init, set, autoenrollment) is checked when it is stored:
 * digits and the usual separators, and an international number must have a length its
 * country's numbering plan allows (libphonenumber), since no code could ever reach it.
 * National numbers and unassigned ranges are left to delivery (default country, settings).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errors, OtpdError } from '../../src/errors.ts';
import { checkPhone } from '../../src/tokens/sms.ts';

const refusal = (phone: string): OtpdError => {
  try {
    checkPhone(phone);
  } catch (e) {
    assert.ok(e instanceof OtpdError, phone);
    return e;
  }
  assert.fail(`${phone} was accepted`);
};

test('international numbers libphonenumber finds impossible are refused as an invalid parameter (2100) naming the field', () => {
  for (const phone of ['+49151', '0049151', '+49 2', '+999 12345678', '+4912345678901234567']) {
    const e = refusal(phone);
    assert.equal(e.code, Errors.invalidParameter.code, phone);
    assert.match(e.message, /^Invalid parameter 'phone': not a possible phone number/, phone);
  }
  assert.match(refusal('+49151').message, /for \+49 \(wrong number of digits\)$/);
});

test('possible international numbers, national numbers and the usual separators pass unchanged', () => {
  for (const phone of ['+4915123456789', '+12015550123', '+49 (151) 123-45678', '+49(0)5678-24', '015123456789', '0049 151 23456789']) {
    assert.equal(checkPhone(phone), phone);
  }
  assert.equal(refusal('not-a-number').code, Errors.invalidParameter.code);
});
