/**
 * The Policies pages in Chromium, through the UI only: the empty list says what to do next; a
 * LinOTP policy file of two policies is pasted, imported, and exported again unchanged (the
 * download link); a policy is deleted after a confirmation that names it (dismissed once:
 * nothing deleted); an autoenrollment and an otppin=1 policy are made by picking the actions'
 * values (the action string follows the fields); a wrong value typed into the action string
 * (otppin=7) is refused with ERR2012's message next to the otppin field and in the summary,
 * with every input kept and nothing stored; a policy is edited and deactivated (and
 * reactivated); the list filters by scope, realm and text and sorts; the simulator says for
 * alice@corp that otppin=1 applies and names the policy, and for carol@lab why it does not;
 * an administrator without the system write right cannot save (the API's refusal on the page,
 * input kept). axe-core on every page; screenshots of the list, the form, the error, the
 * simulator. Without JavaScript the scope button, the fields and the confirm page do the same.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertAccessible, CHROMIUM, launchBrowser, screenshot, watchPage, logInToManage } from './browser.ts';

const skip = haveBinary(CHROMIUM, 'chromium');
/** The API's error message as the page says it: without the `ERR<code>: ` of the JSON envelope, as a sentence. */
const sentence = (message: string) => {
  const text = message.replace(/^ERR-?\d+: /, '');
  return `${text[0]!.toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;
};

/** Two policies as otpd (and LinOTP's ConfigObj) write them. */
const FILE = `[lab_passthru]
scope = "authentication"
action = "passthru"
realm = "lab"
user = "*"
client = "10.0.0.0/8"
time = "* 7-18 * * 1-5 *;"
active = "True"

[vpn_challenge]
scope = "authentication"
action = "challenge_response=sms email, smstext='Your code: <otp>, valid 5 minutes'"
realm = "corp"
user = "*, !guest"
client = "*"
time = "* * * * * *;"
active = "False"
`;

describe('policies in the browser', { skip }, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let watch: ReturnType<typeof watchPage>;


  before(async () => {
    t = await startTestApp();
    for (const [file, users] of [['corpusers', ['alice', 'bob', 'guest']], ['labusers', ['carol']]] as const) {
      const path = join(t.dataDir, file);
      writeFileSync(path, users.map((u, i) => `${u}:x:${3000 + i}:100:${u},,+4915123456789,,${u}@example.org:/home/${u}:/bin/sh`).join('\n'));
      assert.equal((await t.admin('/system/setResolver', { name: file, type: 'passwdresolver', fileName: path })).json.result.status, true);
    }
    assert.equal((await t.admin('/system/setRealm', { realm: 'corp', resolvers: 'corpusers' })).json.result.status, true);
    assert.equal((await t.admin('/system/setRealm', { realm: 'lab', resolvers: 'labusers' })).json.result.status, true);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    watch = watchPage(page);
    await logInToManage(page, base, 'admin', 'admin-password-1');
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
  });

  const stored = async (name: string) => (await t.admin('/system/getPolicy', { name, display_inactive: 'true' })).json.result.value[name];
  const rows = () => page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { innerText: string }).innerText));
  const flash = () => page.locator('.flash').innerText();

  test('the empty list says what to do next', async () => {
    await page.goto(`${base}/manage/policies`);
    assert.equal(await page.locator('h1').innerText(), 'Policies');
    assert.equal(await page.locator('nav.side a[aria-current=page]').innerText(), 'Policies');
    assert.match(await page.locator('.empty').innerText(), /^No policies yet — create an autoenrollment policy .* or import a LinOTP policy file\.$/);
    await assertAccessible(page, 'empty policy list');
    watch.assertClean('empty policy list');
  });

  test('import a two-policy file, export it again unchanged', async () => {
    await page.click('a:has-text("Import a policy file")');
    await page.waitForURL(`${base}/manage/policies/import`);
    // an empty file is refused next to the text area
    await page.click('button:has-text("Import")');
    assert.equal(await page.locator('#e-file').innerText(), 'Error loading policy. File is empty!');
    await page.fill('#f-file', FILE);
    await page.click('button:has-text("Import")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal(await flash(), '2 policies imported: lab_passthru, vpn_challenge.');
    assert.equal((await stored('vpn_challenge')).active, 'False');
    assert.equal(await page.locator('table caption').innerText(), 'Policies 1–2 of 2');
    assert.match((await rows())[1]!, /^vpn_challenge\tauthentication\tchallenge_response=sms email, smstext='Your code: <otp>, valid 5 minutes'\tcorp\t\*, !guest\t\*\talways\tinactive$/);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("Export all")')]);
    assert.equal(download.suggestedFilename(), 'policy.cfg');
    assert.equal(readFileSync((await download.path())!, 'utf8'), FILE);
    watch.assertClean('import and export');
  });

  test('delete asks first, naming the policy; dismissed it deletes nothing', async () => {
    await page.goto(`${base}/manage/policies`);
    await page.click('a:has-text("lab_passthru")');
    await page.waitForURL(`${base}/manage/policies/lab_passthru`);
    const asked: string[] = [];
    page.once('dialog', (d) => { asked.push(d.message()); void d.dismiss(); });
    await page.click('button:has-text("Delete policy lab_passthru")');
    assert.deepEqual(asked, ['Delete the policy lab_passthru? This cannot be undone.']);
    assert.ok(await stored('lab_passthru'), 'dismissed: still there');
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Delete policy lab_passthru")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal(await flash(), 'Policy lab_passthru deleted.');
    assert.equal(await stored('lab_passthru'), undefined);
    watch.assertClean('delete');
  });

  test('an autoenrollment and an otppin=1 policy, picked from the catalogue', async () => {
    await page.goto(`${base}/manage/policies`);
    await page.click('a:has-text("New policy")');
    await page.waitForURL(`${base}/manage/policies/new`);
    assert.equal(await page.inputValue('#f-scope'), 'authentication');
    await page.fill('#f-name', 'autoenroll_corp');
    await page.selectOption('#f-scope', 'enrollment');
    await page.click('button:has-text("Show the actions of this scope")');
    await page.locator('#f-a-autoenrollment').waitFor();
    assert.equal(await page.inputValue('#f-name'), 'autoenroll_corp', 'the name stays');
    assert.match(await page.locator('#h-f-a-autoenrollment').innerText(), /gets an SMS or e-mail token from the directory's mobile\/mail attribute/);
    await page.selectOption('#f-a-autoenrollment', 'sms email');
    await page.fill('#f-realm', 'corp');
    await page.fill('#f-user', '*#mobile');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal(await flash(), 'Policy autoenroll_corp created: autoenrollment=sms email.');
    assert.deepEqual(await stored('autoenroll_corp'), {
      action: 'autoenrollment=sms email', scope: 'enrollment', realm: 'corp', user: '*#mobile', time: '* * * * * *;', client: '*', active: 'True', name: 'autoenroll_corp',
    });

    await page.click('a:has-text("New policy")');
    await page.waitForURL(`${base}/manage/policies/new`);
    await page.fill('#f-name', 'otppin_userpw');
    // the choice says what each value means, LinOTP's number first
    assert.equal(await page.locator('#f-a-otppin option[value="1"]').innerText(), '1 — password: the user-store password, then the OTP');
    await page.selectOption('#f-a-otppin', '1');
    await page.click('summary:has-text("Action string")');
    assert.equal(await page.inputValue('#f-action'), 'otppin=1', 'the action string follows the fields');
    await page.fill('#f-realm', 'corp');
    await assertAccessible(page, 'new policy form');
    await screenshot(page, 'manage-policy-form');
    await page.setViewportSize({ width: 390, height: 800 });
    await screenshot(page, 'manage-policy-form-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal(await flash(), 'Policy otppin_userpw created: otppin=1.');
    assert.equal((await stored('otppin_userpw')).action, 'otppin=1');
    watch.assertClean('create');
  });

  test('a wrong value type is refused next to its field, the input kept, nothing stored', async () => {
    const refusal = (await t.admin('/system/setPolicy', { name: 'bad_pin', scope: 'authentication', action: 'otppin=7', realm: 'corp', user: 'alice', client: '' })).json.result.error;
    assert.equal(refusal.code, Errors.invalidPolicy.code);
    await page.goto(`${base}/manage/policies/new`);
    await page.fill('#f-name', 'bad_pin');
    await page.click('summary:has-text("Action string")');
    await page.fill('#f-action', 'otppin=7');
    assert.equal(await page.inputValue('#f-a-otppin'), '7', 'the field follows the action string');
    await page.fill('#f-realm', 'corp');
    await page.fill('#f-user', 'alice');
    await page.click('button.primary:has-text("Save")');
    await page.locator('#e-f-a-otppin').waitFor();
    const message = sentence(refusal.message);
    assert.equal(await page.locator('#e-f-a-otppin').innerText(), message);
    assert.equal(await page.locator('#e-action').innerText(), message, 'also next to the action string it was typed in');
    assert.equal(await page.locator('#problems li').first().innerText(), `Action otppin: ${message}`);
    assert.equal(await page.getAttribute('#problems li a', 'href'), '#f-a-otppin');
    assert.equal(await page.getAttribute('#f-a-otppin', 'aria-invalid'), 'true');
    // what was typed is kept
    assert.deepEqual(
      [await page.inputValue('#f-name'), await page.inputValue('#f-action'), await page.inputValue('#f-a-otppin'), await page.inputValue('#f-realm'), await page.inputValue('#f-user')],
      ['bad_pin', 'otppin=7', '7', 'corp', 'alice'],
    );
    assert.equal(await stored('bad_pin'), undefined);
    await assertAccessible(page, 'refused policy');
    await screenshot(page, 'manage-policy-error');

    // corrected in the field: the field's value replaces the wrong one
    await page.selectOption('#f-a-otppin', '2');
    assert.equal(await page.inputValue('#f-action'), 'otppin=2');
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal((await stored('bad_pin')).action, 'otppin=2');

    // a bad name is said next to the name field
    await page.goto(`${base}/manage/policies/new`);
    await page.fill('#f-name', 'no spaces');
    await page.selectOption('#f-a-passthru', 'yes');
    await page.fill('#f-realm', 'corp');
    await page.click('button.primary:has-text("Save")');
    await page.locator('#e-name').waitFor();
    assert.match(await page.locator('#e-name').innerText(), /no spaces.*letters, digits and _/);
    assert.equal(await page.inputValue('#f-a-passthru'), 'yes');
    watch.assertClean('refused');
  });

  test('edit, deactivate and reactivate; filter and sort the list', async () => {
    await page.goto(`${base}/manage/policies`);
    await page.click('a:has-text("bad_pin")');
    await page.waitForURL(`${base}/manage/policies/bad_pin`);
    assert.equal(await page.inputValue('#f-a-otppin'), '2');
    assert.equal(await page.inputValue('#f-user'), 'alice');
    await page.selectOption('#f-a-passthru', 'no');
    await page.setChecked('#f-active', false);
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal(await flash(), 'Policy bad_pin saved (inactive): otppin=2, !passthru.');
    assert.deepEqual([(await stored('bad_pin')).action, (await stored('bad_pin')).active], ['otppin=2, !passthru', 'False']);
    await page.click('a:has-text("bad_pin")');
    assert.equal(await page.isChecked('#f-active'), false);
    await page.setChecked('#f-active', true);
    await page.click('button.primary:has-text("Save")');
    await page.waitForURL(`${base}/manage/policies`);
    assert.equal((await stored('bad_pin')).active, 'True');

    assert.equal(await page.locator('table caption').innerText(), 'Policies 1–4 of 4');
    await page.selectOption('#scope', 'enrollment');
    await page.click('button:has-text("Filter")');
    await page.waitForURL(/scope=enrollment/);
    assert.deepEqual((await rows()).map((r) => r.split('\t')[0]), ['autoenroll_corp']);
    await page.goto(`${base}/manage/policies?realm=lab`);
    assert.match(await page.locator('.empty').innerText(), /^No policy matches this filter/);
    await page.goto(`${base}/manage/policies?q=otppin`);
    assert.deepEqual((await rows()).map((r) => r.split('\t')[0]), ['bad_pin', 'otppin_userpw']);
    await page.goto(`${base}/manage/policies`);
    await page.click('th a:has-text("Name")');
    await page.waitForURL(/dir=desc/);
    assert.equal(await page.getAttribute('th:has-text("Name")', 'aria-sort'), 'descending');
    assert.deepEqual((await rows()).map((r) => r.split('\t')[0]), ['vpn_challenge', 'otppin_userpw', 'bad_pin', 'autoenroll_corp']);
    await assertAccessible(page, 'policy list');
    await screenshot(page, 'manage-policies');
    watch.assertClean('edit and list');
  });

  test('the simulator explains why otppin=1 applies to alice@corp and not to carol@lab', async () => {
    // bad_pin (alice only, otppin=2) would win for alice: out of the way
    await page.goto(`${base}/manage/policies/bad_pin`);
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Delete policy bad_pin")');
    await page.waitForURL(`${base}/manage/policies`);

    await page.click('a:has-text("Simulator")');
    await page.waitForURL(`${base}/manage/policies/simulate`);
    await page.fill('#s-user', 'alice');
    await page.fill('#s-realm', 'corp');
    await page.fill('#s-client', '10.1.2.3');
    await page.selectOption('#s-action', 'otppin');
    await page.click('button:has-text("Simulate")');
    await page.waitForURL(/simulate\?user=alice&realm=corp/);
    const decision = page.locator('.decision .state');
    assert.equal(await decision.innerText(), "authentication/otppin is 'password' (the password is the user's user-store password followed by the OTP) for alice in realm corp, from client 10.1.2.3: set by policy otppin_userpw.");
    assert.match(await page.locator('.decision .reasons').innerText(), /^otppin_userpw is the only active policy that matches and sets it/);
    const verdicts = page.locator('.verdicts li');
    assert.match(await verdicts.filter({ hasText: 'otppin_userpw' }).innerText(), /^APPLIES otppin_userpw: otppin_userpw applies to alice/);
    assert.match(await verdicts.filter({ hasText: 'vpn_challenge' }).innerText(), /DOES NOT APPLY vpn_challenge: vpn_challenge does not apply to alice: policy is inactive\.$/);
    await assertAccessible(page, 'simulator');
    await screenshot(page, 'manage-policy-simulator');

    await page.fill('#s-user', 'carol@lab');
    await page.fill('#s-realm', '');
    await page.click('button:has-text("Simulate")');
    await page.waitForURL(/user=carol%40lab/);
    assert.equal(await decision.innerText(), "No policy sets authentication/otppin for carol in realm lab, from client 10.1.2.3, so otpd uses its default: 'token_pin' (the password is the token PIN followed by the OTP).");
    assert.match(await page.locator('.decision .reasons').innerText(), /^otppin_userpw does not apply \(it sets 'password'\): realm 'lab' is not in 'corp'\.$/);
    assert.match(await verdicts.filter({ hasText: 'otppin_userpw' }).innerText(), /DOES NOT APPLY otppin_userpw: otppin_userpw does not apply to carol: realm 'lab' is not in 'corp'\.$/);

    // every action of the matching policies, and an action of another scope said next to its field
    await page.goto(`${base}/manage/policies/simulate?user=alice&realm=corp&client=&scope=enrollment&action=`);
    assert.match(await decision.first().innerText(), /^enrollment\/autoenrollment is 'sms email' for alice in realm corp: set by policy autoenroll_corp\.$/);
    await page.goto(`${base}/manage/policies/simulate?user=alice&realm=corp&client=&scope=enrollment&action=otppin`);
    assert.match(await page.locator('#e-s-action').innerText(), /unknown action 'otppin' in scope 'enrollment'/i);
    await assertAccessible(page, 'simulator refusal');
    watch.assertClean('simulator');
  });

  test('without JavaScript: the scope button, the fields written into the action string, the confirm page', async () => {
    const plain = await browser.newContext({ javaScriptEnabled: false });
    const p = await plain.newPage();
    const w = watchPage(p);
    await logInToManage(p, base, 'admin', 'admin-password-1');
    await p.goto(`${base}/manage/policies/new`);
    await p.fill('#f-name', 'enroll_lab');
    await p.selectOption('#f-scope', 'enrollment');
    await p.click('button:has-text("Show the actions of this scope")');
    assert.equal(await p.locator('.notice').innerText(), 'Scope enrollment: choose its actions below.');
    assert.equal(await p.inputValue('#f-name'), 'enroll_lab');
    await p.selectOption('#f-a-autoenrollment', 'email');
    await p.fill('#f-a-maxtokenSMS', '1');
    await p.fill('#f-realm', 'lab');
    await p.click('button.primary:has-text("Save")');
    await p.waitForURL(`${base}/manage/policies`);
    assert.equal((await stored('enroll_lab')).action, 'autoenrollment=email, maxtokenSMS=1');
    await p.goto(`${base}/manage/policies/enroll_lab`);
    await p.fill('#f-a-maxtokenSMS', '');
    await p.selectOption('#f-a-autoenrollment', 'sms');
    await p.click('button.primary:has-text("Save")');
    await p.waitForURL(`${base}/manage/policies`);
    assert.equal((await stored('enroll_lab')).action, 'autoenrollment=sms');

    // an item with a quoted value keeps its quotes when another field changes
    await p.goto(`${base}/manage/policies/vpn_challenge`);
    assert.equal(await p.isChecked('#f-a-challenge_response-email'), true);
    assert.equal(await p.inputValue('#f-a-smstext'), 'Your code: <otp>, valid 5 minutes');
    await p.setChecked('#f-a-challenge_response-email', false);
    await p.click('button.primary:has-text("Save")');
    await p.waitForURL(`${base}/manage/policies`);
    assert.equal((await stored('vpn_challenge')).action, "challenge_response=sms, smstext='Your code: <otp>, valid 5 minutes'");

    // delete asks on a page of its own
    await p.goto(`${base}/manage/policies/enroll_lab`);
    await p.click('button:has-text("Delete policy enroll_lab")');
    assert.equal(await p.locator('h1').innerText(), 'Delete policy enroll_lab?');
    assert.ok(await stored('enroll_lab'), 'asked, not yet deleted');
    await p.click('button.danger:has-text("Delete policy enroll_lab")');
    await p.waitForURL(`${base}/manage/policies`);
    assert.equal(await p.locator('.flash').innerText(), 'Policy enroll_lab deleted.');
    assert.equal(await stored('enroll_lab'), undefined);
    w.assertClean('without JavaScript');
    await plain.close();

    // axe needs script in the page: the confirm page again, reached the same way with JavaScript on
    await page.goto(`${base}/manage/policies/vpn_challenge`);
    await page.locator('form[data-js-confirmed] input[name=confirmed]').evaluate((input) => (input as unknown as { remove(): void }).remove());
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Delete policy vpn_challenge")');
    await page.waitForURL(`${base}/manage/policies/vpn_challenge/delete`);
    assert.equal(await page.locator('h1').innerText(), 'Delete policy vpn_challenge?');
    await assertAccessible(page, 'delete confirmation');
    assert.ok(await stored('vpn_challenge'), 'asked, not yet deleted');
  });

  test('an administrator without the system write right cannot save: the refusal is on the page', async () => {
    for (const [name, action, user] of [['sys_admin', 'read, write', 'admin'], ['sys_helpdesk', 'read', 'helpdesk']] as const) {
      assert.equal((await t.admin('/system/setPolicy', { name, scope: 'system', action, realm: '*', user })).json.result.status, true);
    }
    await t.services.admins.add('helpdesk', 'helpdesk-password-1');
    const key = await t.services.admins.createApiKey('helpdesk', 'test');
    const refusal = (await t.post('/system/setPolicy', { name: 'sneaky', scope: 'authentication', action: 'passthru', realm: '*' }, { authorization: `Bearer ${key}` })).json.result.error;
    assert.equal(refusal.code, Errors.notAllowed.code);

    const helpdesk = await browser.newContext();
    const p = await helpdesk.newPage();
    const w = watchPage(p);
    await logInToManage(p, base, 'helpdesk', 'helpdesk-password-1');
    await p.goto(`${base}/manage/policies`);
    assert.match(await p.locator('table caption').innerText(), /^Policies 1–\d of \d$/, 'the helpdesk may read the policies');
    await p.goto(`${base}/manage/policies/new`);
    await p.fill('#f-name', 'sneaky');
    await p.selectOption('#f-a-passthru', 'yes');
    await p.fill('#f-realm', '*');
    await p.click('button.primary:has-text("Save")');
    await p.locator('#problems').waitFor();
    assert.equal(await p.locator('#problems li').innerText(), sentence(refusal.message));
    assert.equal(await p.inputValue('#f-name'), 'sneaky');
    assert.equal(await p.inputValue('#f-a-passthru'), 'yes');
    assert.equal(await stored('sneaky'), undefined);
    // nor delete
    await p.goto(`${base}/manage/policies/otppin_userpw`);
    p.once('dialog', (d) => void d.accept());
    await p.click('button:has-text("Delete policy otppin_userpw")');
    await p.locator('#problems').waitFor();
    assert.match(await p.locator('#problems li').innerText(), /^Not deleted: You do not have the administrative right/);
    assert.ok(await stored('otppin_userpw'));
    await assertAccessible(p, 'refused save');
    w.assertClean('helpdesk');
    await helpdesk.close();
  });
});
