import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomToken } from '../../crypto/random.ts';
import { OtpdError } from '../../errors.ts';
import { invokeRoute, type RouteResult } from '../../api/route.ts';
import type { Services } from '../../services.ts';
import { registerPages, renderPage } from '../page.ts';
import { dashboardFacts } from './dashboard.ts';
import { csrfMatches, pageSession, setFlash, takeFlash, type PageCall, type PageSession } from './session.ts';

/**
 * The management UI at `/manage/`: server-rendered pages over the JSON API's own routes.
 * A page never reaches into a service to change something: every action calls the same
 * declared route in-process ({@link invokeRoute}), so the admin policies, the checks and the
 * audit row are exactly those of the API call.
 */

/** The sections of the left navigation, in UI.md's order; a section appears once its page exists. */
export const SECTIONS: { path: string; label: string }[] = [
  { path: '/manage/', label: 'Dashboard' },
];

const LOGIN_CSRF_COOKIE = 'manage_login_csrf';

/** Where a login returns to: only a page of this UI, never another site. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/manage\/[A-Za-z0-9/_?=&%.-]*$/.test(next) && !next.includes('//') ? next : '/manage/';
}

const valueOf = (r: RouteResult): unknown => (r.kind === 'json' ? r.value : r.body);

export async function registerManage(app: FastifyInstance, services: Services): Promise<void> {
  await registerPages(app, { assets: 'manage/assets/', prefix: '/manage/assets/' });

  const layout = (request: FastifyRequest, reply: FastifyReply, session: PageSession | null, extra: Record<string, unknown>) => ({
    sections: SECTIONS,
    current: request.url.split('?')[0],
    admin: session?.admin.name,
    csrf: session?.csrf,
    flash: takeFlash(request, reply),
    ...extra,
  });

  /** A page for logged-in admins: without a session the browser goes to the login page. */
  const page = (render: (call: PageCall, request: FastifyRequest, reply: FastifyReply) => Promise<{ template: string; data: Record<string, unknown> }>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const session = await pageSession(services, request);
      if (!session) return toLogin(request, reply);
      const call: PageCall = {
        session,
        api: async (path, params = {}) => valueOf(await invokeRoute(app, services, path, { admin: session.admin, params, request, reply })),
      };
      const { template, data } = await render(call, request, reply);
      return renderPage(reply, template, layout(request, reply, session, data));
    };

  const toLogin = (request: FastifyRequest, reply: FastifyReply) => {
    const expired = request.cookies?.access_token_cookie ? '&expired=1' : '';
    return reply.redirect(`/manage/login?next=${encodeURIComponent(safeNext(request.url))}${expired}`, 303);
  };

  /** A form posted without the session's CSRF token: nothing was changed. */
  const refusedForm = (request: FastifyRequest, reply: FastifyReply, session: PageSession) =>
    renderPage(reply, 'manage/refused', layout(request, reply, session, { title: 'Form expired' }), 403);

  app.get('/manage', (_request, reply) => reply.redirect('/manage/', 301));

  app.get('/manage/login', async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    const token = randomToken(18);
    reply.setCookie(LOGIN_CSRF_COOKIE, token, { path: '/manage/', httpOnly: true, sameSite: 'strict', maxAge: 3600, secure: request.protocol === 'https' });
    return renderPage(reply, 'manage/login', layout(request, reply, null, {
      title: 'Log in', loginCsrf: token, next: safeNext(q.next), username: '',
      notice: q.expired ? 'Your session has ended. Log in again.' : q.loggedout ? 'You are logged out.' : undefined,
    }));
  });

  app.post('/manage/login', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    const again = async (error: string, status: number) => {
      const token = randomToken(18);
      reply.setCookie(LOGIN_CSRF_COOKIE, token, { path: '/manage/', httpOnly: true, sameSite: 'strict', maxAge: 3600, secure: request.protocol === 'https' });
      return renderPage(reply, 'manage/login', layout(request, reply, null, { title: 'Log in', loginCsrf: token, next, username, error }), status);
    };
    const expected = request.cookies?.[LOGIN_CSRF_COOKIE];
    if (!expected || body.csrf_token !== expected) return again('This form has expired. Please log in again.', 403);
    try {
      const result = await invokeRoute(app, services, '/admin/login', { params: { username, password }, request, reply });
      if (result.kind === 'json' && result.value === true) {
        reply.clearCookie(LOGIN_CSRF_COOKIE, { path: '/manage/' });
        const warning = (result.detail as { warning?: string } | undefined)?.warning;
        setFlash(reply, warning ? `Logged in as ${username}. Warning: ${warning}` : `Logged in as ${username}.`);
        return reply.redirect(next, 303);
      }
      return again('Wrong name or password.', 200);
    } catch (e) {
      if (e instanceof OtpdError && e.httpStatus === 429) return again(`${e.message[0]!.toUpperCase()}${e.message.slice(1)}.`, 429);
      throw e;
    }
  });

  app.post('/manage/logout', async (request, reply) => {
    const session = await pageSession(services, request);
    if (!session) return reply.redirect('/manage/login', 303);
    if (!csrfMatches(session, request.body)) return refusedForm(request, reply, session);
    await invokeRoute(app, services, '/admin/logout', { admin: session.admin, params: {}, request, reply });
    return reply.redirect('/manage/login?loggedout=1', 303);
  });

  app.get('/manage/', page(async (call) => ({ template: 'manage/dashboard', data: { title: 'Dashboard', ...(await dashboardFacts(call)) } })));
}
