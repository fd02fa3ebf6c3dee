import { readFileSync } from 'node:fs';
import { defineRoutes, raw, type Api } from './route.ts';

/**
 * `/auth/index` (spec 1.7): the test login page. Server-rendered HTML with no
 * inline script or style, so it runs under a strict Content-Security-Policy;
 * `auth.js` posts user, realm and pass to `/validate/check` and shows
 * "User successfully authenticated!", the challenge message, or
 * "User failed to authenticate!".
 */

const WEB = new URL('../../web/auth/', import.meta.url);
const asset = (name: string) => readFileSync(new URL(name, WEB), 'utf8');

/** script and style only from this server, no frames, no plugins, forms only to this server. */
export const AUTH_PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
  "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
].join('; ');

const html = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The page; a realm drop-down only when config `realmbox` is true (LinOTP's rule). */
export function renderAuthIndex(opts: { realms?: string[]; defaultRealm?: string }): string {
  const realmField = opts.realms
    ? `
      <label for="realm">Realm</label>
      <select id="realm" name="realm">${opts.realms
        .map((r) => `<option value="${html(r)}"${r === opts.defaultRealm ? ' selected' : ''}>${html(r)}</option>`)
        .join('')}</select>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>otpd – login test</title>
  <link rel="stylesheet" href="/auth/auth.css">
  <link rel="icon" href="/auth/favicon.svg" type="image/svg+xml">
</head>
<body>
  <main>
    <h1>Login test</h1>
    <p class="hint">Log in with your password. If an OTP is sent to you, log in again with your password followed by the OTP.</p>
    <form id="login" method="post" action="/validate/check" autocomplete="off">
      <label for="user">User</label>
      <input id="user" name="user" autocomplete="username" required>${realmField}
      <label for="pass">Password (or password + OTP)</label>
      <input id="pass" name="pass" type="password" autocomplete="current-password">
      <button id="submit" type="submit">Log in</button>
    </form>
    <p id="result" role="status" aria-live="polite"></p>
  </main>
  <script src="/auth/auth.js"></script>
</body>
</html>
`;
}

export function register(api: Api): void {
  const script = asset('auth.js');
  const style = asset('auth.css');
  const icon = asset('favicon.svg');
  const headers = { 'Content-Security-Policy': AUTH_PAGE_CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' };
  defineRoutes(api, [
    {
      path: '/auth/index',
      methods: ['GET'],
      audit: false,
      handler: async (ctx) => {
        const users = ctx.services.users;
        const realms = ctx.services.config.bool('realmbox') && users ? users.realmNames() : undefined;
        return raw(renderAuthIndex({ realms, defaultRealm: users?.defaultRealm() }), 'text/html; charset=utf-8', headers);
      },
    },
    { path: '/auth/auth.js', methods: ['GET'], audit: false, handler: async () => raw(script, 'text/javascript; charset=utf-8', headers) },
    { path: '/auth/auth.css', methods: ['GET'], audit: false, handler: async () => raw(style, 'text/css; charset=utf-8', headers) },
    { path: '/auth/favicon.svg', methods: ['GET'], audit: false, handler: async () => raw(icon, 'image/svg+xml', headers) },
  ]);
}
