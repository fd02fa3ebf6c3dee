// Invariant: policies are evaluated for the token owner's user and realm, also when a request
// names only a serial (/validate/check, simplecheck, check_s). Under otppin=1 the bare OTP is
// never enough: the owner's directory password must come with it. An unassigned token uses its
// token realm(s), the strictest otppin of them when there are several.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { KEY, KEY2, SEED, SEED2, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

describe('serial-only requests follow the owner\'s policies', () => {
  let t: ValidationFixture;
  let c = 0;
  before(async () => {
    t = await startValidationFixture();
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'BOB1', otpkey: KEY2, pin: 'bobpin', user: 'bob', realm: 'staff' })).json.result.value, true);
    await t.admin('/admin/set', { serial: 'BOB1', MaxFailCount: '100' });
    await t.policy('pin1', 'authentication', 'otppin=1', { realm: 'staff' });
    // this file is about otppin, not the account's failure limit (account-throttle.test.ts)
    await t.setConfig('AccountFailDelayAfter', '100');
  });
  after(async () => t?.close());

  for (const path of ['/validate/check', '/validate/simplecheck', '/validate/check_s']) {
    test(`${path}: serial + bare OTP under otppin=1 is refused`, async () => {
      const r = await t.check({ serial: 'BOB1', pass: hotp(SEED2, c) }, path);
      if (path === '/validate/simplecheck') assert.equal(r.body, ':-(');
      else assert.equal(r.json.result.value, false, r.body);
      // the token PIN + OTP is not the owner's password either
      const r2 = await t.check({ serial: 'BOB1', pass: `bobpin${hotp(SEED2, c)}` }, path);
      if (path === '/validate/simplecheck') assert.equal(r2.body, ':-(');
      else assert.equal(r2.json.result.value, false, r2.body);
    });
  }

  test('serial + the owner\'s directory password + OTP is accepted and audited for the owner', async () => {
    const r = await t.check({ serial: 'BOB1', pass: `BobPw1${hotp(SEED2, c)}` });
    assert.equal(r.json.result.value, true, r.body);
    c++;
    const audit = await t.lastAudit();
    assert.equal(audit.user, 'bob');
    assert.match(audit.action_detail, /user 'bob'@'staff' successfully authenticated/);
  });

  test('check_s with user= (the user\'s single token) follows otppin=1 too', async () => {
    assert.equal((await t.check({ user: 'bob', pass: hotp(SEED2, c) }, '/validate/check_s')).json.result.value, false);
    assert.equal((await t.check({ user: 'bob', pass: `BobPw1${hotp(SEED2, c)}` }, '/validate/check_s')).json.result.value, true);
    c++;
  });

  test('a parallel burst of serial-only bare OTPs gets nowhere', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => t.check({ serial: 'BOB1', pass: hotp(SEED2, c) })));
    for (const r of results) assert.equal(r.json.result.value, false);
    assert.equal((await t.check({ serial: 'BOB1', pass: `BobPw1${hotp(SEED2, c)}` })).json.result.value, true);
    c++;
  });

  test('otppin=2 in the owner\'s realm only: the bare OTP works there, and only there', async () => {
    await t.policy('pin2lab', 'authentication', 'otppin=2', { realm: 'lab' });
    try {
      assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'DAVE1', otpkey: KEY, pin: 'davepin', user: 'dave', realm: 'lab' })).json.result.value, true);
      assert.equal((await t.check({ serial: 'DAVE1', pass: hotp(SEED, 0) })).json.result.value, true);
      assert.equal((await t.check({ serial: 'BOB1', pass: hotp(SEED2, c) })).json.result.value, false, 'staff keeps otppin=1');
    } finally {
      await t.admin('/system/delPolicy', { name: 'pin2lab' });
    }
  });

  test('an unassigned token uses its token realm: otppin=1 there means no bare-OTP login', async () => {
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'FREE1', otpkey: KEY, pin: 'freepin', tokenrealm: 'staff' })).json.result.value, true);
    assert.equal((await t.check({ serial: 'FREE1', pass: hotp(SEED, 0) })).json.result.value, false);
    assert.equal((await t.check({ serial: 'FREE1', pass: `freepin${hotp(SEED, 0)}` })).json.result.value, false);
    // in two realms, the strictest otppin wins
    assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'FREE2', otpkey: KEY2, pin: 'free2pin', tokenrealm: 'lab,staff' })).json.result.value, true);
    await t.policy('pin3lab', 'authentication', 'otppin=3', { realm: 'lab' });
    try {
      assert.equal((await t.check({ serial: 'FREE2', pass: `anything${hotp(SEED2, 50)}` })).json.result.value, false);
    } finally {
      await t.admin('/system/delPolicy', { name: 'pin3lab' });
    }
  });
});
