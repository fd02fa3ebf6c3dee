/**
 * /auth/challenge_response (LinOTP's challenge-response test page, spec 1.7): step 1 posts user
 * and password to POST /auth/challenge, the same validation call and audit as /validate/check;
 * a triggered challenge answers with its message, the masked destination and the transaction
 * id (kept in a hidden field, never shown); step 2 posts the OTP with that id to /auth/check.
 * Attack first: every refusal of step 1 has /auth/check's one wrongCredentials body (no user
 * oracle, no transaction id); a transaction id of another login does not let a code in. Then in
 * Chromium with real slapd, SMTP sink and HTTP SMS gateway: both steps, the strict CSP kept,
 * axe-core clean, no transaction id in the visible text, screenshots.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { haveBinary } from '../helpers/require.ts';
import { initToken, settle, startOobEnv, type OobApp, type OobEnv } from '../oob/harness.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage } from './browser.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd') || haveBinary(CHROMIUM, 'chromium');

let env: OobEnv;
before(async () => {
  if (!skip) env = await startOobEnv();
});
after(async () => {
  await env?.close();
});

const other = (code: string) => (code === '000000' ? '111111' : '000000');

describe('POST /auth/challenge', { skip }, () => {
  test('attack: every refusal answers like /auth/check (no transaction id); the id of another login lets no code in', async () => {
    await env.withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=email');
      const locked = await initToken(app, { type: 'spass', pin: 'mallorypin', user: 'mallory', realm: 'myrealm' });
      await app.t.admin('/admin/set', { serial: locked, MaxFailCount: '1' });
      await app.check({ user: 'mallory', pass: 'wrong' });
      const refusals = {
        unknownUser: await app.t.post('/auth/challenge', { user: 'nobody-here', pass: 'bobpw' }),
        wrongPassword: await app.t.post('/auth/challenge', { user: 'dave', pass: 'not-davepw' }),
        lockedToken: await app.t.post('/auth/challenge', { user: 'mallory', pass: 'mallorypin' }),
        noPass: await app.t.post('/auth/challenge', { user: 'dave' }),
      };
      const reference = await app.t.post('/auth/check', { user: 'dave', pass: 'not-davepw' });
      for (const [name, a] of Object.entries(refusals)) {
        assert.equal(a.status, reference.status, name);
        assert.equal(a.body, reference.body, name);
      }
      assert.deepEqual(reference.json, { result: 'wrongCredentials' });
      assert.equal(app.mails().length, 0);

      const bob = await app.t.post('/auth/challenge', { user: 'bob', pass: 'bobpw' });
      assert.equal(bob.status, 200);
      assert.equal(bob.json.result, 'codeSent', bob.body);
      assert.equal(bob.json.destination, 'b***@example.org');
      assert.equal(bob.json.message, 'e-mail sent successfully');
      assert.match(bob.json.transactionid, /^\d{12,}$/);
      assert.doesNotMatch(bob.body, /bob@example\.org|serial|PIEM|LSEM/i);
      const bobCode = await app.mailCode(1);
      const alice = await app.t.post('/auth/challenge', { user: 'alice', pass: 'alicepw' });
      assert.equal(alice.json.result, 'codeSent', alice.body);
      const aliceCode = await app.mailCode(2);
      assert.notEqual(alice.json.transactionid, bob.json.transactionid);

      // bob's code under alice's transaction id, alice's code under bob's, a wrong code: refused
      for (const [form, what] of [
        [{ user: 'bob', pass: bobCode, transactionid: alice.json.transactionid }, 'bob with alice\'s id'],
        [{ user: 'bob', pass: aliceCode, transactionid: bob.json.transactionid }, 'alice\'s code for bob'],
        [{ user: 'bob', pass: other(bobCode), transactionid: bob.json.transactionid }, 'a wrong code'],
      ] as [Record<string, string>, string][]) {
        assert.deepEqual((await app.t.post('/auth/check', form)).json, { result: 'wrongCredentials' }, what);
      }
      const ok = await app.t.post('/auth/check', { user: 'bob', pass: bobCode, transactionid: bob.json.transactionid });

      assert.deepEqual(ok.json, { result: 'ok' });
      assert.deepEqual((await app.t.post('/auth/check', { user: 'bob', pass: bobCode, transactionid: bob.json.transactionid })).json, { result: 'wrongCredentials' }, 'a used code');

      // audited like /validate/check: the same reason codes, the user as subject, no secret
      await settle(app);
      const rows = await app.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', 'auth/challenge').orderBy('id').execute();
      assert.deepEqual(rows.map((r) => [r.user, r.reason]), [
        ['nobody-here', 'userNotFound'], ['dave', 'autoenrollFailed'], ['mallory', 'tokenLocked'], ['dave', 'noTokenAssigned'], ['bob', 'tokenAutoenrolled'], ['alice', 'tokenAutoenrolled'],
      ]);
      const text = JSON.stringify(rows);
      for (const secret of ['bobpw', 'alicepw', 'mallorypin', 'not-davepw', bobCode, aliceCode]) assert.ok(!text.includes(secret), secret);
    });
  });

  test('a code whose delivery is still pending, and one that could not be sent', async () => {
    await env.withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=sms');
      env.gatewayAnswer = () => ({ status: 200, body: 'FAILED: no credit' });
      const failed = await app.t.post('/auth/challenge', { user: 'carol', pass: 'carolpw' });
      assert.deepEqual(failed.json, { result: 'deliveryFailed' });
      env.gatewayAnswer = () => ({ delayMs: 1500 });
      await app.config({ DeliveryWaitMs: '100' });
      const pending = await app.t.post('/auth/challenge', { user: 'carol', pass: 'carolpw' });
      assert.equal(pending.json.result, 'codePending', pending.body);
      assert.equal(pending.json.destination, '+1 201 ****03');
      assert.equal(pending.json.message, undefined, 'no "sms submitted" while the delivery is pending');
      assert.match(pending.json.transactionid, /^\d{12,}$/);
      const code = await app.smsCode();
      assert.deepEqual((await app.t.post('/auth/check', { user: 'carol', pass: code, transactionid: pending.json.transactionid })).json, { result: 'ok' });
      await settle(app);
    });
  });
});

describe('/auth/challenge_response in Chromium', { skip }, () => {
  let app: OobApp;
  let browser: Browser;
  let base: string;
  before(async () => {
    app = await env.app();
    await app.policy('ae', 'enrollment', 'autoenrollment=email sms');
    await app.t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  const resultText = (page: Page, expected: string | RegExp) => page.locator('#result').filter({ hasText: expected }).waitFor({ timeout: 10_000 });

  test('trigger, see the message and the masked destination, answer with the code; the transaction id stays hidden', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);
    const posted: { url: string; body: string }[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posted.push({ url: new URL(r.url()).pathname, body: r.postData() ?? '' });
    });
    const res = await page.goto(`${base}/auth/challenge_response`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(await page.locator('#answer').isVisible(), false, 'step 2 waits for a challenge');
    await assertAccessible(page, '/auth/challenge_response');

    // a wrong password: one failure text, no step 2, nothing sent
    await page.fill('#user', 'alice');
    await page.fill('#pass', 'wrong-password');
    await page.click('#send');
    await resultText(page, 'Wrong password or code.');
    assert.equal(await page.locator('#answer').isVisible(), false);
    assert.equal(app.mails().length, 0);

    await page.fill('#pass', 'alicepw');
    await page.click('#send');
    await resultText(page, 'A code was sent to a***@example.org. Enter it below.');
    await page.locator('#answer').waitFor({ state: 'visible' });
    const tid = await page.inputValue('#transactionid');
    assert.match(tid, /^\d{12,}$/);
    const visible = await page.locator('body').innerText();
    assert.ok(!visible.includes(tid), 'the transaction id is not in the visible text');
    assert.doesNotMatch(visible, /alice@example\.org/);
    assert.notEqual((await page.locator('#challenge').innerText()).trim(), '', 'the challenge message is shown');
    assert.equal(await page.evaluate('document.activeElement.id'), 'otp', 'the OTP field has the focus');
    await assertAccessible(page, '/auth/challenge_response, code sent');
    await screenshot(page, 'auth-challenge-code-sent');
    const code = await app.mailCode(1);

    await page.fill('#otp', other(code));
    await page.click('#submit');
    await resultText(page, 'Wrong password or code.');
    assert.equal(await page.locator('#answer').isVisible(), true, 'a wrong code may be retried');
    await page.fill('#otp', code);
    await page.click('#submit');
    await resultText(page, 'You are logged in');
    assert.equal(await page.locator('#answer').isVisible(), false);
    await assertAccessible(page, '/auth/challenge_response, logged in');
    await screenshot(page, 'auth-challenge-ok');
    const answerPost = new URLSearchParams(posted.filter((p) => p.url === '/auth/check').at(-1)!.body);
    assert.equal(answerPost.get('transactionid'), tid);
    assert.equal(answerPost.get('pass'), code, 'step 2 sends the OTP alone, with the transaction id');
    assert.equal(answerPost.get('user'), 'alice');
    assert.deepEqual(posted.filter((p) => p.url === '/auth/challenge').map((p) => new URLSearchParams(p.body).get('transactionid')), [null, null]);

    // carol has only a mobile number: the SMS gateway gets the code
    await page.fill('#user', 'carol');
    await page.fill('#pass', 'carolpw');
    await page.click('#send');
    await resultText(page, 'A code was sent to +1 201 ****03. Enter it below.');
    const sms = await app.smsCode();
    await screenshot(page, 'auth-challenge-sms');
    // start over drops the challenge; a new trigger sends a new one
    await page.click('#restart');
    assert.equal(await page.locator('#answer').isVisible(), false);
    assert.equal(await page.inputValue('#transactionid'), '');
    await page.fill('#pass', 'carolpw');
    await page.click('#send');
    // within the resend block no second SMS goes out: the open challenge is announced again
    await resultText(page, /^A code was sent.* Enter it below\.$/);
    await page.locator('#answer').waitFor({ state: 'visible' });
    assert.equal(app.sms().length, 1);
    await page.fill('#otp', sms);
    await page.click('#submit');
    await resultText(page, 'You are logged in');

    // the gateway refuses: the page says so and stays on step 1
    env.gatewayAnswer = () => ({ status: 200, body: 'FAILED: no credit' });
    try {
      await page.fill('#user', 'carol');
      await page.fill('#pass', 'carolpw');
      await page.click('#send');
      await resultText(page, 'The code could not be sent — try again or contact support.');
      assert.equal(await page.locator('#answer').isVisible(), false);
      await assertAccessible(page, '/auth/challenge_response, delivery failed');
      await screenshot(page, 'auth-challenge-delivery-failed');
    } finally {
      env.gatewayAnswer = () => ({});
    }
    await settle(app);
    watch.assertClean('/auth/challenge_response');
    await context.close();
  });
});
