// Invariant: a token authenticates only its owner. When a request names a user and a serial,
// the serial must belong to that user (LinOTP's rule); otherwise the answer is a plain failure
// on every validate entry point (check, simplecheck, samlcheck), nothing is consumed, nothing of
// the named user is disclosed, and the audit never says the named user authenticated.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { KEY, KEY2, SEED, SEED2, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

describe('a token authenticates only its owner', () => {
  let t: ValidationFixture;
  let bobCounter = 0;
  before(async () => {
    t = await startValidationFixture();
    for (const [serial, user, key] of [['ALICE1', 'alice', KEY], ['BOB1', 'bob', KEY2]] as const) {
      const r = await t.admin('/admin/init', { type: 'hmac', serial, otpkey: key, pin: `${user}pin`, user, realm: 'staff' });
      assert.equal(r.json.result.value, true, r.body);
    }
    // an unassigned token in alice's realm
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'FREE1', otpkey: KEY, pin: 'freepin', tokenrealm: 'staff' })).json.result.value, true);
    await t.setConfig('allowSamlAttributes', 'True');
  });
  after(async () => t?.close());

  test('check with user=victim and the attacker\'s own serial + PIN + OTP is refused', async () => {
    const otp = hotp(SEED2, bobCounter);
    const r = await t.check({ user: 'alice', serial: 'BOB1', pass: `bobpin${otp}` });
    assert.equal(r.json.result.status, true);
    assert.equal(r.json.result.value, false, r.body);
    const audit = await t.lastAudit();
    assert.equal(audit.success, '0');
    assert.doesNotMatch(audit.action_detail, /successfully authenticated/);
    // nothing consumed: the owner still logs in with that very OTP
    assert.equal((await t.check({ user: 'bob', pass: `bobpin${otp}` })).json.result.value, true);
    bobCounter++;
  });

  test('simplecheck and samlcheck refuse it too, and samlcheck discloses none of the victim\'s attributes', async () => {
    const otp = hotp(SEED2, bobCounter);
    assert.equal((await t.check({ user: 'alice', serial: 'BOB1', pass: `bobpin${otp}` }, '/validate/simplecheck')).body, ':-(');
    const saml = await t.check({ user: 'alice', serial: 'BOB1', pass: `bobpin${otp}` }, '/validate/samlcheck');
    assert.equal(saml.json.result.value.auth, false, saml.body);
    assert.deepEqual(saml.json.result.value.attributes, {});
    assert.ok(!saml.body.includes('+4915123456789') && !saml.body.includes('alice@example.org'), 'no victim data');
    assert.equal((await t.check({ user: 'bob', serial: 'BOB1', pass: `bobpin${otp}` }, '/validate/samlcheck')).json.result.value.auth, true);
    bobCounter++;
  });

  test('an unassigned token of the same realm does not authenticate a named user', async () => {
    assert.equal((await t.check({ user: 'alice', serial: 'FREE1', pass: `freepin${hotp(SEED, 0)}` })).json.result.value, false);
    // the owner's own serial still works (control)
    assert.equal((await t.check({ user: 'alice', serial: 'ALICE1', pass: `alicepin${hotp(SEED, 0)}` })).json.result.value, true);
  });

  test('a parallel burst of cross-user requests authenticates nobody', async () => {
    const otp = hotp(SEED2, bobCounter);
    const results = await Promise.all(Array.from({ length: 10 }, () => t.check({ user: 'alice', serial: 'BOB1', pass: `bobpin${otp}` })));
    for (const r of results) assert.equal(r.json.result.value, false);
    assert.equal((await t.check({ user: 'bob', pass: `bobpin${otp}` })).json.result.value, true, 'the OTP stayed unused');
    bobCounter++;
  });
});
