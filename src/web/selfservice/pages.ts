import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomToken } from '../../crypto/random.ts';
import { OtpdError } from '../../errors.ts';
import { invokeUserRoute, type RouteResult } from '../../api/route.ts';
import { userCsrfMatches, userCsrfToken, userSessionOf, type UserIdentity } from '../../api/user-auth.ts';
import type { Services } from '../../services.ts';
import { registerPages, renderPage } from '../page.ts';
import { tokenRows, type PortalToken } from './tokens-view.ts';

/**
 * The self-service portal at `/selfservice/`: server-rendered pages over the `/userservice`
 * routes, called in-process ({@link invokeUserRoute}) as the logged-in user, so the
 * selfservice rights, the checks (own serial, second factor for factor changes) and the audit
 * row are exactly those of the API. The page checks the `user_selfservice` session and its own
 * CSRF token (derived from the cookie, which never goes into a page).
 */

const LOGIN_CSRF_COOKIE = 'selfservice_login_csrf';
const FLASH_COOKIE = 'selfservice_flash';
const BASE = '/selfservice/';

type Answer = { value: unknown; detail?: Record<string, unknown> };
const answerOf = (r: RouteResult): Answer => (r.kind === 'json' ? { value: r.value, detail: r.detail } : { value: r.body });

/** Form fields as strings (the last of a repeated field). */
function fields(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>)) {
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (typeof last === 'string') out[k] = last;
  }
  return out;
}

/** A serial from a path, as the API accepts them (anything else is no token of anyone). */
const serialOk = (s: unknown): s is string => typeof s === 'string' && /^[A-Za-z0-9_.:@-]{1,64}$/.test(s);

/** The message of a challenge answer: where the code went, or that it is on its way. */
function sentMessage(detail: Record<string, unknown> | undefined): string {
  const to = typeof detail?.destination === 'string' ? detail.destination : undefined;
  if (detail?.delivery === 'pending') return to ? `Your code to ${to} is on its way. Enter it when it arrives.` : 'Your code is on its way. Enter it when it arrives.';
  return to ? `A code was sent to ${to}. Enter it below.` : 'A code was sent to you. Enter it below.';
}

export async function registerSelfService(app: FastifyInstance, services: Services): Promise<void> {
  await registerPages(app, { assets: 'selfservice/assets/', prefix: '/selfservice/assets/' });

  const flash = (reply: FastifyReply, message: string) =>
    reply.setCookie(FLASH_COOKIE, message.slice(0, 300), { path: BASE, httpOnly: true, sameSite: 'strict', maxAge: 60 });
  const takeFlash = (request: FastifyRequest, reply: FastifyReply): string | undefined => {
    const m = request.cookies?.[FLASH_COOKIE];
    if (m !== undefined) reply.clearCookie(FLASH_COOKIE, { path: BASE });
    return m;
  };
  const call = async (request: FastifyRequest, reply: FastifyReply, path: string, params: Record<string, string>, user?: UserIdentity) =>
    answerOf(await invokeUserRoute(app, services, path, { user, params, request, reply }));

  const layout = (request: FastifyRequest, reply: FastifyReply, user: UserIdentity | null, data: Record<string, unknown>) => ({
    user: user?.login, csrf: user ? userCsrfToken(services, user) : undefined, flash: takeFlash(request, reply), demo: services.demo !== undefined, ...data,
  });
  const show = (request: FastifyRequest, reply: FastifyReply, user: UserIdentity | null, template: string, data: Record<string, unknown>, status = 200) =>
    renderPage(reply, `selfservice/${template}`, layout(request, reply, user, data), status);

  const loginPage = async (request: FastifyRequest, reply: FastifyReply, data: Record<string, unknown>, status = 200) => {
    const token = randomToken(18);
    reply.setCookie(LOGIN_CSRF_COOKIE, token, { path: BASE, httpOnly: true, sameSite: 'strict', maxAge: 900, secure: request.protocol === 'https' });
    const pre = (await call(request, reply, '/userservice/pre_context', {})).value as { realms: Record<string, unknown>; settings: Record<string, unknown> };
    const realms = Object.keys(pre.realms);
    return show(request, reply, null, 'login', {
      title: 'Log in', loginCsrf: token, realms: realms.length > 1 ? realms : [], defaultRealm: pre.settings.default_realm,
      threeFields: pre.settings.mfa_3_fields === true, username: '', ...data,
    }, status);
  };
  const loginCsrfOk = (request: FastifyRequest, body: Record<string, string>) => {
    const expected = request.cookies?.[LOGIN_CSRF_COOKIE];
    return !!expected && body.csrf_token === expected;
  };

  /** A page for a logged-in user; without a session → the login page. */
  const page = (render: (user: UserIdentity, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const user = await userSessionOf(services, request);
      if (!user) return reply.redirect(`${BASE}login${request.cookies?.user_selfservice ? '?expired=1' : ''}`, 303);
      return render(user, request, reply);
    };

  /** A form of a logged-in user: the session's CSRF token, then `act`; a refusal comes back as a flash on the tokens page. */
  const form = (act: (user: UserIdentity, body: Record<string, string>, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | string>) =>
    page(async (user, request, reply) => {
      if (!userCsrfMatches(services, user, request.body)) return show(request, reply, user, 'refused', { title: 'Form expired' }, 403);
      try {
        const out = await act(user, fields(request.body), request, reply);
        if (typeof out !== 'string') return out;
        flash(reply, out);
      } catch (e) {
        if (!(e instanceof OtpdError)) throw e;
        flash(reply, e.message);
      }
      return reply.redirect(BASE, 303);
    });

  const tokensOf = async (user: UserIdentity, request: FastifyRequest, reply: FastifyReply) => {
    const ctx = (await call(request, reply, '/userservice/context', {}, user)).value as { tokenArray: Record<string, unknown>[]; actions: string[]; mfa: boolean; settings: Record<string, unknown>; user: Record<string, string> };
    return { ...ctx, tokens: tokenRows(ctx.tokenArray) };
  };

  app.get('/selfservice', (_request, reply) => reply.redirect(BASE, 301));

  app.get('/selfservice/login', async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    return loginPage(request, reply, { notice: q.expired ? 'Your session has ended. Log in again.' : q.loggedout ? 'You are logged out.' : undefined });
  });

  app.post('/selfservice/login', async (request, reply) => {
    const body = fields(request.body);
    const username = body.username ?? '';
    if (!loginCsrfOk(request, body)) return loginPage(request, reply, { username, error: 'This form has expired. Please log in again.' }, 403);
    const params: Record<string, string> = { login: username, password: body.password ?? '' };
    if (body.realm) params.realm = body.realm;
    if (body.otp) params.otp = body.otp;
    let a: Answer;
    try {
      a = await call(request, reply, '/userservice/login', params);
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      return loginPage(request, reply, { username, error: e.code === 2004 ? 'The user directory is not reachable. Try again later or contact support.' : e.message });
    }
    if (a.value === true) return reply.redirect(BASE, 303);
    const tokenList = a.detail?.tokenList as PortalToken[] | undefined;
    if (!tokenList) {
      const message = typeof a.detail?.message === 'string' && a.detail.message.startsWith('you have no token') ? 'You have no token yet. Ask your administrator.' : 'Wrong user name, password or code.';
      return loginPage(request, reply, { username, error: message });
    }
    return show(request, reply, null, 'second', { title: 'Second step', loginCsrf: request.cookies?.[LOGIN_CSRF_COOKIE], tokens: tokenList });
  });

  /** The second step: send a code to one token, or check the code entered. */
  app.post('/selfservice/login/second', async (request, reply) => {
    const body = fields(request.body);
    if (!loginCsrfOk(request, body)) return loginPage(request, reply, { error: 'This form has expired. Please log in again.' }, 403);
    const params: Record<string, string> = {};
    if (body.serial) params.serial = body.serial;
    if (body.send === undefined && body.otp) params.otp = body.otp;
    let a: Answer;
    try {
      a = await call(request, reply, '/userservice/login', params);
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      return loginPage(request, reply, { error: e.code === 2004 ? 'The user directory is not reachable. Try again later or contact support.' : 'Your login has ended. Log in again.' });
    }
    if (a.value === true) return reply.redirect(BASE, 303);
    const d = a.detail ?? {};
    const again = (data: Record<string, unknown>) => show(request, reply, null, 'second', { title: 'Second step', loginCsrf: request.cookies?.[LOGIN_CSRF_COOKIE], serial: body.serial, codeStep: true, ...data });
    if (typeof d.transactionid === 'string') return again({ sent: sentMessage(d) });
    if (params.otp === undefined) {
      const msg = typeof d.message === 'string' ? d.message : '';
      if (msg.startsWith('enter the current code')) return again({ sent: 'Enter the current code shown by your authenticator app.' });
      return again({ error: 'The code could not be sent. Try again or contact support.' });
    }
    if (d.message === 'this login was finished by another request' || !request.cookies?.user_selfservice) return loginPage(request, reply, { error: 'Your login has ended. Log in again.' });
    return again({ error: 'Wrong or expired code. Try again, or send a new code.' });
  });

  app.post('/selfservice/logout', page(async (user, request, reply) => {
    if (!userCsrfMatches(services, user, request.body)) return show(request, reply, user, 'refused', { title: 'Form expired' }, 403);
    await call(request, reply, '/userservice/logout', {});
    return reply.redirect(`${BASE}login?loggedout=1`, 303);
  }));

  app.get('/selfservice/', page(async (user, request, reply) => {
    const ctx = await tokensOf(user, request, reply);
    const usable = ctx.tokens.filter((t) => t.active && !t.locked && !t.pending);
    const emailOnly = usable.length > 0 && usable.every((t) => t.type === 'email');
    return show(request, reply, user, 'tokens', {
      title: 'My tokens', tokens: ctx.tokens, can: Object.fromEntries(ctx.actions.map((a) => [a, true])), mfa: ctx.mfa, emailOnly,
      footer: ctx.settings.footer_text, imprint: ctx.settings.imprint_url, privacy: ctx.settings.privacy_notice_url,
      name: ctx.user.givenname || ctx.user.username || user.login,
    });
  }));

  const tokenAction = (path: string, what: (serial: string) => string, extra: (body: Record<string, string>) => Record<string, string> = () => ({})) =>
    form(async (user, body, request, reply) => {
      const serial = (request.params as Record<string, unknown>).serial;
      if (!serialOk(serial)) return 'No such token.';
      await call(request, reply, path, { serial, ...extra(body) }, user);
      return what(serial);
    });
  app.post('/selfservice/tokens/:serial/enable', tokenAction('/userservice/enable', (s) => `Token ${s} enabled.`));
  app.post('/selfservice/tokens/:serial/disable', tokenAction('/userservice/disable', (s) => `Token ${s} disabled.`));
  app.post('/selfservice/tokens/:serial/reset', tokenAction('/userservice/reset', (s) => `Token ${s} unlocked: its failed tries are reset.`));
  app.post('/selfservice/tokens/:serial/delete', tokenAction('/userservice/delete', (s) => `Token ${s} removed.`));
  app.post('/selfservice/tokens/:serial/description', tokenAction('/userservice/setdescription', (s) => `Description of ${s} saved.`, (b) => ({ description: b.description ?? '' })));
  app.post('/selfservice/tokens/:serial/resync', form(async (user, body, request, reply) => {
    const serial = (request.params as Record<string, unknown>).serial;
    if (!serialOk(serial)) return 'No such token.';
    const a = await call(request, reply, '/userservice/resync', { serial, otp1: body.otp1 ?? '', otp2: body.otp2 ?? '' }, user);
    return (a.value as Record<string, boolean>)['resync Token'] ? `Token ${serial} resynchronised.` : `Token ${serial} was not resynchronised: enter two codes that follow each other.`;
  }));

  /** Test a token: send a code (SMS/e-mail), then check it; or check an app's current code. */
  app.post('/selfservice/tokens/:serial/verify', page(async (user, request, reply) => {
    if (!userCsrfMatches(services, user, request.body)) return show(request, reply, user, 'refused', { title: 'Form expired' }, 403);
    const serial = (request.params as Record<string, unknown>).serial;
    const body = fields(request.body);
    if (!serialOk(serial)) return reply.redirect(BASE, 303);
    const params: Record<string, string> = { serial };
    if (body.otp) params.otp = body.otp;
    if (body.transactionid) params.transactionid = body.transactionid;
    const testPage = (data: Record<string, unknown>) => show(request, reply, user, 'verify', { title: `Test token ${serial}`, serial, ...data });
    try {
      const a = await call(request, reply, '/userservice/verify', params, user);
      if (a.value === true) {
        flash(reply, body.confirm ? `Your authenticator app ${serial} is active.` : `Token ${serial} works: the code was right.`);
        return reply.redirect(BASE, 303);
      }
      const d = a.detail ?? {};
      if (typeof d.transactionid === 'string') return testPage({ sent: sentMessage(d), transactionid: d.transactionid.split('.')[0] });
      if (!body.otp) return testPage({});
      return testPage({ error: typeof d.message === 'string' && d.message.includes('locked') ? 'The token is locked. Reset it first.' : 'Wrong or expired code.', transactionid: body.transactionid, confirm: body.confirm });
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      return testPage({ error: e.message, confirm: body.confirm });
    }
  }));

  app.get('/selfservice/enroll', page(async (user, request, reply) => show(request, reply, user, 'enroll', { title: 'Add an authenticator app' })));
  app.post('/selfservice/enroll', page(async (user, request, reply) => {
    if (!userCsrfMatches(services, user, request.body)) return show(request, reply, user, 'refused', { title: 'Form expired' }, 403);
    const body = fields(request.body);
    try {
      const a = await call(request, reply, '/userservice/enroll', { type: 'totp', description: (body.description ?? '').slice(0, 80) || 'authenticator app' }, user);
      const d = a.detail ?? {};
      const url = (d.googleurl as { value?: string; img?: string } | undefined) ?? {};
      const qr = /src="(data:image\/png;base64,[A-Za-z0-9+/=]+)"/.exec(url.img ?? '')?.[1];
      // shown once, as the answer to this form; nothing keeps the seed for a reload
      reply.header('Cache-Control', 'no-store');
      return show(request, reply, user, 'enrolled', { title: 'Scan the QR code', serial: d.serial, otpauth: url.value, qr });
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      return show(request, reply, user, 'enroll', { title: 'Add an authenticator app', error: e.message, description: body.description });
    }
  }));

  app.get('/selfservice/history', page(async (user, request, reply) => {
    const q = request.query as Record<string, unknown>;
    const pageNo = typeof q.page === 'string' && /^\d{1,6}$/.test(q.page) ? Number(q.page) : 1;
    try {
      const a = await call(request, reply, '/userservice/history', { page: String(pageNo), rp: '20' }, user);
      const grid = a.value as { total: number; rows: { cell: unknown[] }[] };
      // LinOTP's self-service columns: date, action, success, serial, token type, administrator, detail, info
      const rows = grid.rows.map(({ cell }) => ({ time: String(cell[0]), action: String(cell[1]), ok: cell[2] === '1' || cell[2] === 1 || cell[2] === true, serial: String(cell[3] ?? '') }));
      return show(request, reply, user, 'history', { title: 'My recent activity', rows, total: grid.total, page: pageNo, pages: Math.max(1, Math.ceil(grid.total / 20)) });
    } catch (e) {
      if (!(e instanceof OtpdError)) throw e;
      return show(request, reply, user, 'history', { title: 'My recent activity', rows: [], total: 0, page: 1, pages: 1, error: e.message });
    }
  }));
}
