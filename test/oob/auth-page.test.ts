/**
 * /auth/index is served under a strict CSP: no inline script or style, assets
 * from 'self'; values put into the page are HTML-escaped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderAuthIndex } from '../../src/api/auth-pages.ts';
import { startTestApp } from '../helpers/app.ts';

test('GET /auth/index, auth.js, auth.css: strict CSP, no inline script or style', async () => {
  const t = await startTestApp();
  try {
    const page = await t.app.inject({ method: 'GET', url: '/auth/index' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    const csp = page.headers['content-security-policy'] as string;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.doesNotMatch(page.body, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(page.body, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or handler');
    assert.match(page.body, /<input id="user" name="user"/);
    assert.match(page.body, /<input id="pass" name="pass" type="password"/);
    assert.doesNotMatch(page.body, /name="realm"/, 'no realm box unless realmbox is set');
    for (const [url, type] of [['/auth/auth.js', 'text/javascript'], ['/auth/auth.css', 'text/css'], ['/auth/favicon.svg', 'image/svg+xml']]) {
      const res = await t.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, new RegExp(`^${type.replace('+', '\\+')}`));
    }
    const js = await t.app.inject({ method: 'GET', url: '/auth/auth.js' });
    assert.match(js.body, /fetch\(url, /, 'one JSON post, shared with the challenge page');
    assert.match(js.body, /\.post\('\/auth\/check', body\)/, 'the login form posts to /auth/check');
    for (const text of ['Wrong password or code.', 'A code was sent', 'Your code is on its way', 'The code could not be sent — try again or contact support.', 'The user directory is not reachable']) assert.ok(js.body.includes(text), text);
    assert.ok(!js.body.includes('User failed to authenticate!'), 'no single failure text for every reason');
    await t.services.config.set('realmbox', 'True');
    const withBox = await t.app.inject({ method: 'GET', url: '/auth/index' });
    assert.match(withBox.body, /<select id="realm" name="realm">/);
  } finally {
    await t.close();
  }
});

test('realm names are escaped', () => {
  const html = renderAuthIndex({ realms: ['a"><script>x()</script>', 'plain'], defaultRealm: 'plain' });
  assert.ok(!html.includes('<script>x()'));
  assert.ok(html.includes('a&quot;&gt;&lt;script&gt;x()&lt;/script&gt;'));
  assert.match(html, /<option value="plain" selected>plain<\/option>/);
});
