// The /userservice answers in LinOTP's shapes (spec 1.6, linotp/lib/userservice.py): pre_context
// `{realms, settings{default_realm, realm_box, mfa_login, mfa_3_fields, autoassign, autoenroll,
// footer_text, imprint_url, privacy_notice_url}}`, login `value` true/false with id 0, userinfo the
// user-store attributes, usertokenlist a list of `LinOtp.*` token dictionaries, context the
// pre_context plus `user`, `tokenArray`, `actions`. The session table works on every database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Errors } from '../../src/errors.ts';
import { availableDialects } from '../helpers/db.ts';
import { KEY, startValidationFixture, type ValidationFixture } from '../security/validation-fixture.ts';

async function post(t: ValidationFixture, path: string, form: Record<string, string>, cookie?: string) {
  const res = await t.app.inject({ method: 'POST', url: path, payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie: `user_selfservice=${cookie}` } : {}) } });
  return { status: res.statusCode, json: JSON.parse(res.body), cookie: res.cookies.find((c) => c.name === 'user_selfservice')?.value };
}

for (const { dialect, skip } of await availableDialects()) {
  describe(`/userservice answer shapes (${dialect})`, { skip }, () => {
    let t: ValidationFixture;
    let session: string;
    before(async () => {
      t = await startValidationFixture({ dialect });
      assert.equal((await t.admin('/admin/init', { type: 'hmac', serial: 'ShapeTok1', otpkey: KEY, pin: 'pin1', user: 'alice', realm: 'staff', description: 'my phone' })).json.result.status, true);
      const login = await post(t, '/userservice/login', { username: 'alice', password: 'AlicePw1', realm: 'staff' });
      assert.deepEqual(login.json.result, { status: true, value: true });
      assert.equal(login.json.id, 0);
      session = login.cookie!;
    });
    after(async () => t?.close());

    test('pre_context: realms and settings, without a session', async () => {
      const a = await post(t, '/userservice/pre_context', {});
      assert.equal(a.json.result.status, true);
      const v = a.json.result.value;
      assert.deepEqual(Object.keys(v.realms).sort(), ['lab', 'staff']);
      assert.equal(v.realms.staff.default, true);
      assert.deepEqual(v.settings, {
        default_realm: 'staff', realm_box: false, mfa_login: false, mfa_3_fields: false, autoassign: false, autoenroll: false,
        footer_text: null, imprint_url: null, privacy_notice_url: null,
      });
    });

    test('pre_context and the portal follow the selfservice policies: mfa_login, mfa_3_fields, footer_text, imprint_url, privacy_notice_url', async () => {
      const set = await t.admin('/system/setPolicy', {
        name: 'portal_texts', scope: 'selfservice', realm: 'staff', user: '*', client: '*',
        action: "mfa_3_fields, footer_text='Help: call 1234', imprint_url=https://example.org/imprint, privacy_notice_url=https://example.org/privacy",
      });
      assert.equal(set.json.result.status, true, set.body);
      try {
        const v = (await post(t, '/userservice/pre_context', {})).json.result.value;
        assert.equal(v.settings.mfa_3_fields, true);
        assert.equal(v.settings.mfa_login, false);
        assert.equal(v.settings.footer_text, 'Help: call 1234');
        assert.equal(v.settings.imprint_url, 'https://example.org/imprint');
        assert.equal(v.settings.privacy_notice_url, 'https://example.org/privacy');
        // the portal's login form gets the OTP field; its pages the footer
        const loginPage = await t.app.inject({ method: 'GET', url: '/selfservice/login' });
        assert.match(loginPage.body, /<input id="otp" name="otp"/);
        const tokensPage = await t.app.inject({ method: 'GET', url: '/selfservice/', headers: { cookie: `user_selfservice=${session}` } });
        assert.match(tokensPage.body, /Help: call 1234/);
        assert.match(tokensPage.body, /href="https:\/\/example\.org\/imprint">Imprint</);
        assert.match(tokensPage.body, /href="https:\/\/example\.org\/privacy">Privacy notice</);
      } finally {
        await t.admin('/system/delPolicy', { name: 'portal_texts' });
      }
      const loginPage = await t.app.inject({ method: 'GET', url: '/selfservice/login' });
      assert.doesNotMatch(loginPage.body, /<input id="otp"/);
    });

    test('userinfo: the user-store attributes', async () => {
      const v = (await post(t, '/userservice/userinfo', { session }, session)).json.result.value;
      assert.equal(v.username, 'alice');
      assert.equal(v.userid, '1001');
      assert.equal(v.email, 'alice@example.org');
      assert.equal(v.password, undefined);
    });

    test('usertokenlist: LinOTP token dictionaries of the own tokens', async () => {
      const v = (await post(t, '/userservice/usertokenlist', { session }, session)).json.result.value;
      assert.equal(v.length, 1);
      assert.equal(v[0]['LinOtp.TokenSerialnumber'], 'ShapeTok1');
      assert.equal(v[0]['LinOtp.TokenType'], 'HMAC');
      assert.equal(v[0]['LinOtp.TokenDesc'], 'my phone');
      assert.equal(v[0]['LinOtp.Isactive'], true);
      assert.equal(v[0]['User.username'], 'alice');
      for (const k of ['LinOtp.TokenId', 'LinOtp.FailCount', 'LinOtp.MaxFail', 'LinOtp.RealmNames', 'LinOtp.TokenInfo']) assert.ok(k in v[0], k);
    });

    test('context: pre_context plus user, tokenArray, actions', async () => {
      const v = (await post(t, '/userservice/context', { session }, session)).json.result.value;
      for (const k of ['realms', 'settings', 'user', 'tokenArray', 'actions']) assert.ok(k in v, k);
      assert.equal(v.user.username, 'alice');
      assert.equal(v.tokenArray[0]['LinOtp.TokenSerialnumber'], 'ShapeTok1');
      assert.deepEqual(v.actions, []);
    });

    test('no session: 401 with an error envelope; logout answers true and ends the session', async () => {
      const a = await post(t, '/userservice/userinfo', {});
      assert.equal(a.status, 401);
      assert.equal(a.json.result.status, false);
      assert.equal(a.json.result.error.code, Errors.noUserSession.code);
      const out = await post(t, '/userservice/logout', {}, session);
      assert.deepEqual(out.json.result, { status: true, value: true });
      assert.equal((await post(t, '/userservice/userinfo', { session }, session)).status, 401);
    });
  });
}
