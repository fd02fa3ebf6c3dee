import { readFileSync } from 'node:fs';
import { answer } from '../validation/answer.ts';
import type { CheckOutcome } from '../validation/outcome.ts';
import { defineRoutes, raw, type Api, type RouteContext, type RouteResult } from './route.ts';
import { checkAndAudit } from './validate.ts';

/**
 * `/auth/index`, `/auth/index3` and `/auth/challenge_response` (spec 1.7): the test login pages. Server-rendered HTML with no
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

const json = (body: LoginResult | ChallengeResult): RouteResult => raw(body, 'application/json');

/**
 * `/auth/challenge`'s answer (step 1 of `/auth/challenge_response`): the reason class, and for a
 * triggered challenge its message (not while the delivery is pending: the prompt says "sent") and the transaction id the page keeps in a hidden field for
 * step 2 (the same id `/validate/check` answers with; it is never shown). Every other class has
 * exactly `/auth/check`'s body, so step 1 tells nobody more about a user than `/auth/index` does.
 */
export type ChallengeResult = LoginResult | { result: 'codeSent' | 'codePending'; destination?: string; message?: string; transactionid: string };

export function challengeResult(out: CheckOutcome): ChallengeResult {
  const r = loginResult(out);
  if (r.result !== 'codeSent' && r.result !== 'codePending') return r;
  const a = answer(out);
  if (a.kind !== 'challenge') return r;
  // several challenges of one request share the id before the dot (the one /validate/check answers)
  const transactionid = a.challenges[0].transactionId.split('.')[0];
  // the prompt says "sent" (LinOTP's "sms submitted"): while the delivery is pending it is not said
  if (r.result === 'codePending') return { ...r, transactionid };
  const messages = [...new Set(a.challenges.map((c) => c.message).filter((m) => m !== ''))];
  return { ...r, ...(messages.length ? { message: messages.join(' ') } : {}), transactionid };
}

function realmSelect(realms: string[] | undefined, defaultRealm: string | undefined): string {
  if (!realms) return '';
  return `
      <label for="realm">Realm</label>
      <select id="realm" name="realm">${realms
        .map((r) => `<option value="${html(r)}"${r === defaultRealm ? ' selected' : ''}>${html(r)}</option>`)
        .join('')}</select>`;
}

/** The demo-mode banner (docs/demo.md): the demo users and a link to the captured messages. */
function demoBanner(demo: boolean | undefined): string {
  return demo ? `
  <aside class="demo-banner" aria-label="Demo mode"><strong>Demo mode</strong> — log in as <code>alice</code> or <code>bob</code> with password <code>demo</code>; codes are not sent: <a href="/demo/messages">see the captured messages</a>.</aside>` : '';
}

function pageHead(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${html(title)}</title>
  <link rel="stylesheet" href="/auth/auth.css">
  <link rel="icon" href="/auth/favicon.svg" type="image/svg+xml">
</head>`;
}

/**
 * `/auth/challenge_response` (LinOTP's sibling page): step 1 posts user, realm and password (or
 * PIN) to `/auth/challenge`, which triggers the challenge; the page shows its message and the
 * masked destination and keeps the transaction id in a hidden field; step 2 posts the OTP with
 * it to `/auth/check` and shows the reason class.
 */
export function renderChallengeResponse(opts: { realms?: string[]; defaultRealm?: string; demo?: boolean }): string {
  return `${pageHead('otpd – challenge-response login test')}
<body>${demoBanner(opts.demo)}
  <main>
    <h1>Challenge-response login test</h1>
    <p class="hint">Step 1: your user name and password (or PIN) have a code sent to you. Step 2: enter that code.</p>
    <form id="trigger" method="post" action="/auth/challenge" autocomplete="off">
      <label for="user">User</label>
      <input id="user" name="user" autocomplete="username" required>${realmSelect(opts.realms, opts.defaultRealm)}
      <label for="pass">Password or PIN</label>
      <input id="pass" name="pass" type="password" autocomplete="current-password">
      <button id="send" type="submit">Send me a code</button>
    </form>
    <form id="answer" method="post" action="/auth/check" autocomplete="off" hidden>
      <p id="challenge" class="challenge"></p>
      <input id="transactionid" name="transactionid" type="hidden">
      <label for="otp">One-time password (OTP)</label>
      <input id="otp" name="pass" inputmode="numeric" autocomplete="one-time-code" required>
      <button id="submit" type="submit">Log in</button>
      <button id="restart" type="button" class="secondary">Start over</button>
    </form>
    <p id="result" role="status" aria-live="polite"></p>
  </main>
  <script src="/auth/auth.js"></script>
  <script src="/auth/challenge.js"></script>
</body>
</html>
`;
}

/**
 * The page; a realm drop-down only when config `realmbox` is true (LinOTP's rule).
 * `separateOtp` (`/auth/index3`): a password field and an OTP field, which auth.js joins into `pass`.
 * `demo`: the demo-mode banner with the demo users and a link to the captured messages. @default false
 */
export function renderAuthIndex(opts: { realms?: string[]; defaultRealm?: string; separateOtp?: boolean; demo?: boolean }): string {
  const realmField = realmSelect(opts.realms, opts.defaultRealm);
  return `${pageHead('otpd – login test')}
<body>${demoBanner(opts.demo)}
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
  const challengeScript = asset('challenge.js');
  const style = asset('auth.css');
  const icon = asset('favicon.svg');
  const headers = { 'Content-Security-Policy': AUTH_PAGE_CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' };
  const realmsOf = (ctx: RouteContext) => {
    const users = ctx.services.users;
    return { realms: ctx.services.config.bool('realmbox') && users ? users.realmNames() : undefined, defaultRealm: users?.defaultRealm(), demo: ctx.services.demo !== undefined };
  };
  const page = (ctx: RouteContext, separateOtp: boolean): RouteResult =>
    raw(renderAuthIndex({ ...realmsOf(ctx), separateOtp }), 'text/html; charset=utf-8', headers);
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
    {
      // LinOTP's challenge-response test page: trigger, show the message, answer with the transaction id
      path: '/auth/challenge_response',
      methods: ['GET'],
      audit: false,
      handler: async (ctx) => raw(renderChallengeResponse(realmsOf(ctx)), 'text/html; charset=utf-8', headers),
    },
    {
      // step 1 of /auth/challenge_response: the same call and audit as /validate/check
      path: '/auth/challenge',
      methods: ['POST'],
      handler: async (ctx) => json(challengeResult(await checkAndAudit(ctx, 'check'))),
      onError: () => json({ result: 'wrongCredentials' }),
    },
    { path: '/auth/auth.js', methods: ['GET'], audit: false, handler: async () => raw(script, 'text/javascript; charset=utf-8', headers) },
    { path: '/auth/challenge.js', methods: ['GET'], audit: false, handler: async () => raw(challengeScript, 'text/javascript; charset=utf-8', headers) },
    { path: '/auth/auth.css', methods: ['GET'], audit: false, handler: async () => raw(style, 'text/css; charset=utf-8', headers) },
    { path: '/auth/favicon.svg', methods: ['GET'], audit: false, handler: async () => raw(icon, 'image/svg+xml', headers) },
  ]);
}
