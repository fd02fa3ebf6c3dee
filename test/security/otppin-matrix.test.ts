// Invariant: every token type authenticates under every otppin mode with exactly the
// credentials that mode names, and with nothing less: 0 = token PIN + OTP, 1 = directory
// password + OTP, 2 = the OTP alone, 3 = any PIN + OTP. A static password token (spass) is
// nothing but its PIN, so "only the OTP" and "ignore the PIN" never open it with an empty or
// arbitrary password. SMS and e-mail tokens trigger their challenge with the mode's first factor
// and the sent code answers it (under otppin=2 and 3 any first factor asks for a code, as in
// LinOTP; the code is what is checked). A success is single use where the type has an OTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hotp } from '../../src/otp/hotp.ts';
import { totpStep } from '../../src/otp/hotp.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { codeIn, mailBody, startOobEnv, type OobEnv } from '../oob/harness.ts';
import { KEY, SEED, startValidationFixture, type ValidationFixture } from './validation-fixture.ts';

const MODES = [0, 1, 2, 3] as const;
const DIRECTORY_PW = 'AlicePw1';

describe('authenticate-type tokens × otppin modes', () => {
  let t: ValidationFixture;
  const clock = new FakeClock();
  let n = 0;
  before(async () => {
    t = await startValidationFixture({ clock });
    await t.setConfig('AccountFailDelayAfter', '100');
  });
  after(async () => t?.close());

  /** A fresh token of the type for alice; `otp(i)` is its i-th value ('' for spass, the password for pw). */
  async function token(type: 'hmac' | 'totp' | 'spass' | 'pw'): Promise<{ serial: string; otp: (i: number) => string }> {
    const serial = `M${type.toUpperCase()}${n++}`;
    const form: Record<string, string> = { type, serial, pin: 'tokpin', user: 'alice', realm: 'staff' };
    if (type === 'hmac' || type === 'totp') form.otpkey = KEY;
    if (type === 'pw') form.otpkey = 'Static-Pw-9';
    const r = await t.admin('/admin/init', form);
    assert.equal(r.json.result.value, true, r.body);
    await t.admin('/admin/set', { serial, MaxFailCount: '100' });
    const step = totpStep(clock.now(), 30);
    const otp = (i: number) => type === 'hmac' ? hotp(SEED, i) : type === 'totp' ? hotp(SEED, step + i) : type === 'pw' ? 'Static-Pw-9' : '';
    return { serial, otp };
  }

  for (const type of ['hmac', 'totp', 'spass', 'pw'] as const) {
    for (const mode of MODES) {
      test(`${type} under otppin=${mode}`, async () => {
        const { serial, otp } = await token(type);
        await t.policy('matrix', 'authentication', `otppin=${mode}`);
        try {
          const check = (pass: string) => t.check({ user: 'alice', serial, pass }).then((r) => r.json.result.value as boolean);
          const right = mode === 0 || type === 'spass' && mode !== 1 ? `tokpin${otp(0)}` : mode === 1 ? `${DIRECTORY_PW}${otp(0)}` : mode === 2 ? otp(0) : `anything${otp(0)}`;
          const wrongFirstFactor = mode === 1 ? [`tokpin${otp(0)}`, otp(0)] : mode === 0 ? [`${DIRECTORY_PW}${otp(0)}`, otp(0), `x${otp(0)}`] : mode === 2 && type !== 'spass' ? [`tokpin${otp(0)}`] : [];
          if (type === 'spass' && mode >= 2) wrongFirstFactor.push('', 'anything', 'x');
          for (const wrong of wrongFirstFactor) assert.equal(await check(wrong), false, `refused: ${JSON.stringify(wrong)}`);
          if (type !== 'spass') {
            assert.equal(await check(right.slice(0, -1) + (right.endsWith('0') ? '1' : '0')), false, 'wrong OTP refused');
          }
          assert.equal(await check(right), true, `accepted: ${JSON.stringify(right)}`);
          const again = await check(right);
          if (type === 'hmac' || type === 'totp') assert.equal(again, false, 'single use');
          else assert.equal(again, true, 'a static password stays valid');
          const tok = await t.services.tokens.repository.bySerial(serial);
          // the wrong ones counted and the success reset them; the value just accepted, sent again, is no guess
          assert.equal(tok!.failCount, 0, 'the replay of the value just accepted counts no failure; only the wrong ones did and were reset');
        } finally {
          await t.admin('/system/delPolicy', { name: 'matrix' });
          await t.admin('/admin/remove', { serial });
        }
      });
    }
  }
});

describe('challenge tokens (sms, email) × otppin modes', () => {
  let env: OobEnv;
  before(async () => {
    env = await startOobEnv();
  });
  after(async () => env?.close());

  for (const type of ['email', 'sms'] as const) {
    for (const mode of MODES) {
      test(`${type} under otppin=${mode}`, async () => {
        const app = await env.app();
        try {
          await app.config({ AccountFailDelayAfter: '100' });
          const init: Record<string, string> = type === 'email'
            ? { type, email_address: 'alice@example.org', pin: 'tokpin', user: 'alice' }
            : { type, phone: '+12015550101', pin: 'tokpin', user: 'alice' };
          const r = await app.t.admin('/admin/init', init);
          assert.equal(r.json.result.value, true, r.body);
          await app.policy('matrix', 'authentication', `otppin=${mode}`);
          const first = mode === 0 ? 'tokpin' : mode === 1 ? 'alicepw' : mode === 2 ? '' : 'anything';
          // under otppin=2 and 3 every first factor asks for a code (LinOTP): only the code itself is checked
          const wrong = mode === 0 ? ['alicepw', 'x'] : mode === 1 ? ['tokpin', 'x'] : [];
          for (const w of wrong) {
            const res = await app.check({ user: 'alice', pass: w });
            assert.equal(res.json.detail?.transactionid, undefined, `no challenge for ${JSON.stringify(w)}: ${res.body}`);
          }
          const trig = await app.check({ user: 'alice', pass: first });
          const tid = trig.json.detail?.transactionid;
          assert.ok(tid, `challenge for ${JSON.stringify(first)}: ${trig.body}`);
          const code = type === 'email' ? codeIn(mailBody(app.mails().at(-1)!)) : await app.smsCode(1);
          if (type === 'email') await app.mailCode(1);
          const wrongCode = code.slice(0, -1) + (code.endsWith('0') ? '1' : '0');
          assert.equal((await app.check({ user: 'alice', transactionid: tid, pass: wrongCode })).json.result.value, false);
          assert.equal((await app.check({ user: 'alice', transactionid: tid, pass: code })).json.result.value, true);
          assert.equal((await app.check({ user: 'alice', transactionid: tid, pass: code })).json.result.value, false, 'single use');
        } finally {
          await app.close();
        }
      });
    }
  }
});
