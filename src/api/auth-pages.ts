import { readFileSync } from 'node:fs';
import { answer } from '../validation/answer.ts';
import type { CheckOutcome } from '../validation/outcome.ts';
import { defineRoutes, raw, type Api, type RouteContext, type RouteResult } from './route.ts';
import { checkAndAudit } from './validate.ts';

/**
 * `/auth/index` (spec 1.7): the test login page. Server-rendered HTML with no
 * inline script or style, so it runs under a strict Content-Security-Policy;
 * `auth.js` posts user, realm and pass to `/auth/check` (the very call of
 * `/validate/check`, audited the same, counted the same) and shows the reason
 * class the user can act on (issue 13).
 */

const WEB = new URL('../../web/auth/', import.meta.url);
const asset = (name: string) => readFileSync(new URL(name, WEB), 'utf8');

/** script and style only from this server, no frames, no plugins, forms only to this server. */
export const AUTH_PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
  "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
].join('; ');

const html = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * What the login page tells the user. Every refusal that is the user's input (wrong password or
 * code, unknown user, locked token or account, not authorized) is one class, `wrongCredentials`,
 * with one body: no user-existence oracle. `deliveryFailed` only follows a matched first factor.
 */
export type LoginResult =
  | { result: 'ok' }
  | { result: 'wrongCredentials' }
  | { result: 'codeSent' | 'codePending'; destination?: string }
  | { result: 'deliveryFailed' }
  | { result: 'directoryUnavailable' };

export function loginResult(out: CheckOutcome): LoginResult {
  const a = answer(out);
  if (a.kind === 'unavailable') return { result: 'directoryUnavailable' };
  if (a.kind === 'accept') return { result: 'ok' };
  if (a.kind === 'challenge') {
    // the masked destinations only: never the transaction id, the serial or the full address
    const destinations = [...new Set(a.challenges.map((c) => c.destination).filter((d): d is string => !!d))];
    const pending = a.challenges.some((c) => c.delivery === 'pending') && !a.challenges.some((c) => c.delivery === 'sent');
    return { result: pending ? 'codePending' : 'codeSent', ...(destinations.length ? { destination: destinations.join(', ') } : {}) };
  }
  return out.notSent ? { result: 'deliveryFailed' } : { result: 'wrongCredentials' };
}

const json = (body: LoginResult): RouteResult => raw(body, 'application/json');

/**
 * The page; a realm drop-down only when config `realmbox` is true (LinOTP's rule).
 * `separateOtp` (`/auth/index3`): a password field and an OTP field, which auth.js joins into `pass`.
 * `demo`: the demo-mode banner with the demo users and a link to the captured messages. @default false
 */
export function renderAuthIndex(opts: { realms?: string[]; defaultRealm?: string; separateOtp?: boolean; demo?: boolean }): string {
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
<body>${opts.demo ? `
  <aside class="demo-banner" aria-label="Demo mode"><strong>Demo mode</strong> — log in as <code>alice</code> or <code>bob</code> with password <code>demo</code>; codes are not sent: <a href="/demo/messages">see the captured messages</a>.</aside>` : ''}
  <main>
    <h1>Login test</h1>
    <p class="hint">${opts.separateOtp
    ? 'Log in with your password and the OTP. If an OTP is sent to you, log in again with your password and the OTP.'
    : 'Log in with your password. If an OTP is sent to you, log in again with your password followed by the OTP.'}</p>
    <form id="login" method="post" action="/auth/check" autocomplete="off">
      <label for="user">User</label>
      <input id="user" name="user" autocomplete="username" required>${realmField}
${opts.separateOtp ? `
      <label for="pass">Password</label>
      <input id="pass" name="pass" type="password" autocomplete="current-password">
      <label for="otp">One-time password (OTP)</label>
      <input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" aria-describedby="otp-hint">
      <p id="otp-hint" class="hint">Empty on the first try when the code is sent to you.</p>` : `
      <label for="pass">Password (or password + OTP)</label>
      <input id="pass" name="pass" type="password" autocomplete="current-password">`}
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
  const page = (ctx: RouteContext, separateOtp: boolean): RouteResult => {
    const users = ctx.services.users;
    const realms = ctx.services.config.bool('realmbox') && users ? users.realmNames() : undefined;
    return raw(renderAuthIndex({ realms, defaultRealm: users?.defaultRealm(), separateOtp, demo: ctx.services.demo !== undefined }), 'text/html; charset=utf-8', headers);
  };
  defineRoutes(api, [
    {
      path: '/auth/index',
      methods: ['GET'],
      audit: false,
      handler: async (ctx) => page(ctx, false),
    },
    {
      // The page's own answer: the same call and audit as /validate/check, dressed as a reason class.
      path: '/auth/check',
      methods: ['POST'],
      handler: async (ctx) => json(loginResult(await checkAndAudit(ctx, 'check'))),
      // a thrown error is no reason the user can act on; it tells nothing about the user either
      onError: () => json({ result: 'wrongCredentials' }),
    },
    {
      // LinOTP's sibling page: password and OTP in separate fields, joined into `pass`
      path: '/auth/index3',
      methods: ['GET'],
      audit: false,
      handler: async (ctx) => page(ctx, true),
    },
    { path: '/auth/auth.js', methods: ['GET'], audit: false, handler: async () => raw(script, 'text/javascript; charset=utf-8', headers) },
    { path: '/auth/auth.css', methods: ['GET'], audit: false, handler: async () => raw(style, 'text/css; charset=utf-8', headers) },
    { path: '/auth/favicon.svg', methods: ['GET'], audit: false, handler: async () => raw(icon, 'image/svg+xml', headers) },
  ]);
}
