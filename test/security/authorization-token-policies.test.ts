// Invariant: authorization `tokentype` and `serial` restrict which of a user's tokens may
// authenticate. A token outside them neither authenticates nor gets a challenge, and its OTP is
// not used up (otpd checks before the OTP; LinOTP checks after a success). Policies apply per
// user/realm like every other authorization policy, also to serial-only requests (the owner's).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { KEY, KEY2, SEED, SEED2, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

describe('authorization tokentype and serial', () => {
  let t: ValidationFixture;
  before(async () => {
    t = await startValidationFixture();
    await t.setConfig('AccountFailDelayAfter', '100');
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'VPN-A1', otpkey: KEY, pin: 'pin', user: 'alice' })).json.result.value, true);
    assert.equal((await t.admin('/admin/init', { type: 'totp', serial: 'APP-A2', otpkey: KEY2, pin: 'pin', user: 'alice' })).json.result.value, true);
    assert.equal((await t.admin('/admin/init', { type: 'spass', serial: 'PW-A3', pin: 'static-Pw1', user: 'alice' })).json.result.value, true);
  });
  after(async () => t?.close());

  test('tokentype: a token of another type neither authenticates nor is used up', async () => {
    await t.policy('types', 'authorization', 'tokentype=totp spass', { realm: 'staff' });
    try {
      assert.equal((await t.check({ user: 'alice', pass: `pin${hotp(SEED, 0)}` })).json.result.value, false, 'hmac not allowed');
      assert.equal((await t.check({ serial: 'VPN-A1', pass: `pin${hotp(SEED, 0)}` })).json.result.value, false, 'serial-only: the owner\'s policy');
      assert.equal((await t.check({ user: 'alice', pass: 'static-Pw1' })).json.result.value, true, 'spass allowed');
      const parallel = await Promise.all(Array.from({ length: 5 }, () => t.check({ user: 'alice', serial: 'VPN-A1', pass: `pin${hotp(SEED, 0)}` })));
      for (const r of parallel) assert.equal(r.json.result.value, false);
    } finally {
      await t.admin('/system/delPolicy', { name: 'types' });
    }
    assert.equal((await t.check({ user: 'alice', serial: 'VPN-A1', pass: `pin${hotp(SEED, 0)}` })).json.result.value, true, 'the refused OTP was not used up');
  });

  test('tokentype in another realm does not restrict this one', async () => {
    await t.policy('labtypes', 'authorization', 'tokentype=totp', { realm: 'lab' });
    try {
      assert.equal((await t.check({ user: 'alice', serial: 'VPN-A1', pass: `pin${hotp(SEED, 1)}` })).json.result.value, true);
    } finally {
      await t.admin('/system/delPolicy', { name: 'labtypes' });
    }
  });

  test('serial: only tokens whose serial matches authenticate', async () => {
    await t.policy('serials', 'authorization', 'serial=^APP-', { realm: 'staff' });
    try {
      assert.equal((await t.check({ user: 'alice', serial: 'VPN-A1', pass: `pin${hotp(SEED, 2)}` })).json.result.value, false);
      assert.equal((await t.check({ user: 'alice', pass: 'static-Pw1' })).json.result.value, false, 'PW-A3 does not match ^APP-');
      assert.equal((await t.check({ user: 'alice', serial: 'PW-A3', pass: 'static-Pw1' })).json.result.value, false);
      assert.match((await t.lastAudit()).action_detail, /serial not allowed by the authorization policy/);
    } finally {
      await t.admin('/system/delPolicy', { name: 'serials' });
    }
    assert.equal((await t.check({ user: 'alice', serial: 'VPN-A1', pass: `pin${hotp(SEED, 2)}` })).json.result.value, true);
  });

  test('a challenge is not triggered for a refused token type', async () => {
    await t.policy('cr', 'authentication', 'challenge_response=hmac');
    await t.policy('types', 'authorization', 'tokentype=totp', { realm: 'staff' });
    try {
      const r = await t.check({ user: 'alice', serial: 'VPN-A1', pass: 'pin' });
      assert.equal(r.json.result.value, false);
      assert.equal(r.json.detail?.transactionid, undefined, r.body);
    } finally {
      await t.admin('/system/delPolicy', { name: 'types' });
      await t.admin('/system/delPolicy', { name: 'cr' });
    }
  });

  test('setPolicy refuses an invalid regular expression', async () => {
    const r = await t.admin('/system/setPolicy', { name: 'bad', scope: 'authorization', action: 'serial=(unclosed', realm: '*', user: '*', client: '*' });
    assert.equal(r.json.result.status, false, r.body);
  });
});
