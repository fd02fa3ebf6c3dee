/**
 * /auth/index tells the user the reason class they can act on (issue 13), through its own
 * endpoint POST /auth/check: the same validation call and audit as /validate/check, answered
 * as `{ result, destination? }`. Attack first: an unknown user, a wrong password, a wrong code
 * and a locked token get the same body and status; no transaction id, serial or full
 * destination ever appears. Then in Chromium, with real slapd, SMTP sink and HTTP gateway:
 * each reason class shown, the strict CSP kept (no violation), axe-core clean, a screenshot;
 * /auth/index3 (separate password and OTP fields) sends them joined as `pass`.
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

const authCheck = (app: OobApp, form: Record<string, string>) => app.t.post('/auth/check', form);

describe('POST /auth/check', { skip }, () => {
  test('attack: unknown user, wrong password, wrong code and a locked token answer alike; nothing to find a user or a challenge by', async () => {
    await env.withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=email');
      // bob has an e-mail token with PIN = directory password (autoenrolled below); mallory a locked one
      const first = await authCheck(app, { user: 'bob', pass: 'bobpw' });
      assert.equal(first.status, 200);
      assert.deepEqual(first.json, { result: 'codeSent', destination: 'b***@example.org' });
      const code = await app.mailCode();
      const locked = await initToken(app, { type: 'spass', pin: 'mallorypin', user: 'mallory', realm: 'myrealm' });
      await app.t.admin('/admin/set', { serial: locked, MaxFailCount: '1' });
      await app.check({ user: 'mallory', pass: 'wrong' });
      const tokens = await app.tokensOf('mallory');
      assert.ok(tokens[0]!.fail_count >= 1, 'the spass token is locked');

      const answers = {
        unknownUser: await authCheck(app, { user: 'nobody-here', pass: 'bobpw' }),
        wrongPassword: await authCheck(app, { user: 'bob', pass: 'not-bobpw' }),
        wrongCode: await authCheck(app, { user: 'bob', pass: `bobpw${code === '000000' ? '111111' : '000000'}` }),
        lockedToken: await authCheck(app, { user: 'mallory', pass: 'mallorypin' }),
        noPass: await authCheck(app, { user: 'bob' }),
      };
      for (const [name, a] of Object.entries(answers)) {
        assert.equal(a.status, answers.wrongPassword.status, name);
        assert.equal(a.body, answers.wrongPassword.body, name);
      }
      assert.deepEqual(answers.wrongPassword.json, { result: 'wrongCredentials' });
      // the code still works afterwards, and the success has its own class
      const good = await authCheck(app, { user: 'bob', pass: `bobpw${code}` });
      assert.deepEqual(good.json, { result: 'ok' });

      // never a transaction id, a serial or a full destination in any answer
      const bodies = [first.body, good.body, ...Object.values(answers).map((a) => a.body)].join('\n');
      assert.doesNotMatch(bodies, /\d{12,}/, 'no transaction id');
      assert.doesNotMatch(bodies, /bob@example\.org|LSE|PIS|transactionid|state|serial/i);

      // counted and audited like /validate/check: the same reason codes, the user as subject
      await settle(app);
      const rows = await app.services.db.kysely.selectFrom('audit').select(['action', 'success', 'user', 'reason']).where('action', '=', 'auth/check').orderBy('id').execute();
      assert.deepEqual(rows.map((r) => [r.user, r.reason]), [
        ['bob', 'tokenAutoenrolled'], ['nobody-here', 'userNotFound'], ['bob', 'wrongPin'], ['bob', 'wrongOtp'], ['mallory', 'tokenLocked'], ['bob', 'missingPass'], ['bob', 'authenticated'],
      ]);
      const bobToken = (await app.tokensOf('bob'))[0]!;
      assert.equal(bobToken.fail_count, 0, 'the success reset the fail counter the wrong tries raised');
    });
  });

  test('a challenge whose delivery is still pending, and one that failed, and an SMS destination', async () => {
    await env.withApp(async (app) => {
      await app.policy('ae', 'enrollment', 'autoenrollment=sms');
      // the gateway refuses for good (a 500 is retried by the dispatcher: that is "pending")
      env.gatewayAnswer = () => ({ status: 200, body: 'FAILED: no credit' });
      const failed = await authCheck(app, { user: 'carol', pass: 'carolpw' });
      assert.deepEqual(failed.json, { result: 'deliveryFailed' });
      // a wrong password with the broken gateway is still just a wrong password (nothing was sent)
      assert.deepEqual((await authCheck(app, { user: 'carol', pass: 'nope' })).json, { result: 'wrongCredentials' });

      env.gatewayAnswer = () => ({ delayMs: 1500 });
      await app.config({ DeliveryWaitMs: '100' });
      const pending = await authCheck(app, { user: 'carol', pass: 'carolpw' });
      assert.deepEqual(pending.json, { result: 'codePending', destination: '+1 201 ****03' });
      await app.smsCode();
      await settle(app);
    });
  });
});

describe('/auth/index in Chromium', { skip }, () => {
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

  async function login(page: Page, user: string, pass: string, expected: string | RegExp): Promise<string> {
    await page.fill('#user', user);
    await page.fill('#pass', pass);
    await page.click('#submit');
    const result = page.locator('#result');
    await result.filter({ hasText: expected }).waitFor({ timeout: 10_000 });
    return result.innerText();
  }

  test('each reason class is shown, under the strict CSP, accessible', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);
    const res = await page.goto(`${base}/auth/index`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    await assertAccessible(page, '/auth/index');

    assert.equal(await login(page, 'alice', 'wrong-password', 'Wrong password or code.'), 'Wrong password or code.');
    assert.equal(await login(page, 'no-such-user', 'alicepw', 'Wrong password or code.'), 'Wrong password or code.');
    await assertAccessible(page, '/auth/index, wrong password');
    await screenshot(page, 'auth-index-wrong');
    assert.equal(app.mails().length, 0);

    const sent = await login(page, 'alice', 'alicepw', 'A code was sent to a***@example.org.');
    assert.doesNotMatch(sent, /\d{6,}/, 'no transaction id on the page');
    assert.equal(await page.inputValue('#pass'), '', 'the password field is cleared');
    await assertAccessible(page, '/auth/index, code sent');
    await screenshot(page, 'auth-index-code-sent');
    const code = await app.mailCode();
    await login(page, 'alice', `alicepw${code}`, 'You are logged in');
    await screenshot(page, 'auth-index-ok');

    // bob has only an e-mail address: the SMTP server rejects the recipient
    env.smtpOptions.rejectRecipient = /^bob@/;
    try {
      await login(page, 'bob', 'bobpw', 'The code could not be sent — try again or contact support.');
      await assertAccessible(page, '/auth/index, delivery failed');
      await screenshot(page, 'auth-index-delivery-failed');
    } finally {
      env.smtpOptions.rejectRecipient = undefined;
    }
    // carol has only a mobile number: the gateway refuses, then accepts
    env.gatewayAnswer = () => ({ status: 200, body: 'FAILED: no credit' });
    await login(page, 'carol', 'carolpw', 'The code could not be sent — try again or contact support.');
    env.gatewayAnswer = () => ({});
    await login(page, 'carol', 'carolpw', 'A code was sent to +1 201 ****03.');
    await app.smsCode();
    await settle(app);
    watch.assertClean('/auth/index');
    await context.close();
  });

  test('/auth/index3: password and OTP in separate fields, joined into pass', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);
    const posted: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/auth/check')) posted.push(r.postData() ?? '');
    });
    const res = await page.goto(`${base}/auth/index3`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(await page.locator('#otp').count(), 1);
    await assertAccessible(page, '/auth/index3');

    // joerg has no token yet: the password alone autoenrolls (the policy prefers e-mail)
    const mailsBefore = app.mails().length;
    await page.fill('#user', 'jörg');
    await page.fill('#pass', 'pässwörd');
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'A code was sent to j***@example.org.' }).waitFor({ timeout: 10_000 });
    const code = await app.mailCode(mailsBefore + 1);
    await page.fill('#pass', 'pässwörd');
    await page.fill('#otp', '000000' === code ? '111111' : '000000');
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'Wrong password or code.' }).waitFor({ timeout: 10_000 });
    await page.fill('#pass', 'pässwörd');
    await page.fill('#otp', code);
    await page.click('#submit');
    await page.locator('#result').filter({ hasText: 'You are logged in' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.inputValue('#otp'), '', 'the OTP field is cleared');
    await assertAccessible(page, '/auth/index3, logged in');
    await screenshot(page, 'auth-index3-ok');
    const last = new URLSearchParams(posted.at(-1));
    assert.equal(last.get('pass'), `pässwörd${code}`);
    assert.equal(last.has('otp'), false, 'only pass is sent');
    watch.assertClean('/auth/index3');
    await context.close();
  });

  // last: the resolver takes a while to trust the directory again after slapd is back
  test('the directory is not reachable (slapd stopped): ERR2004 shown as its own class', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const watch = watchPage(page);
    await page.goto(`${base}/auth/index`);
    await env.ldap.stop();
    try {
      await login(page, 'dave', 'davepw', 'The user directory is not reachable');
      await assertAccessible(page, '/auth/index, directory unreachable');
      await screenshot(page, 'auth-index-directory');
    } finally {
      await env.ldap.restart();
    }
    watch.assertClean('/auth/index, directory unreachable');
    await context.close();
  });
});
