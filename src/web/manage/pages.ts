import type { FastifyInstance } from 'fastify';
import { randomToken } from '../../crypto/random.ts';
import { OtpdError } from '../../errors.ts';
import { invokeRoute } from '../../api/route.ts';
import type { Services } from '../../services.ts';
import { registerPages, renderPage } from '../page.ts';
import { checkStores, dashboardFacts } from './dashboard.ts';
import { registerAdmins } from './admins.ts';
import { registerAudit } from './audit.ts';
import { createKit, safeNext, type ManageKit, type Section } from './kit.ts';
import { setFlash, type PageCall } from './session.ts';
import { registerTokens } from './tokens.ts';
import { registerPolicies } from './policies.ts';
import { registerRadius } from './radius.ts';
import { registerDeliveryLog } from './delivery-log.ts';
import { registerProviders } from './providers.ts';
import { registerRealms } from './realms.ts';
import { registerSettings } from './settings.ts';
import { registerStores } from './stores.ts';
import { registerUsers } from './users.ts';

/**
 * The management UI at `/manage/`: server-rendered pages over the JSON API's own routes.
 * A page never reaches into a service to change something: every action calls the same
 * declared route in-process ({@link invokeRoute}), so the admin policies, the checks and the
 * audit row are exactly those of the API call.
 */

/** The sections of the left navigation, in UI.md's order; a section appears once its page exists. */
export const SECTIONS: Section[] = [
  { path: '/manage/', label: 'Dashboard' },
  { path: '/manage/tokens', label: 'Tokens' },
  { path: '/manage/users', label: 'Users' },
  { path: '/manage/policies', label: 'Policies' },
  { path: '/manage/providers', label: 'Providers' }, { path: '/manage/delivery', label: 'Delivery log' },
  { path: '/manage/resolvers', label: 'User stores' }, { path: '/manage/realms', label: 'Realms' },
  { path: '/manage/radius', label: 'RADIUS' }, { path: '/manage/settings', label: 'Settings' },
  { path: '/manage/admins', label: 'Administrators' }, { path: '/manage/audit', label: 'Audit' },
];

/** The management areas; each registers its pages with the kit (an area adds itself here). */
const AREAS: ((kit: ManageKit) => void)[] = [
  registerTokens,
  registerUsers, registerStores, registerRealms, registerPolicies,
  registerProviders, registerDeliveryLog,
  registerRadius, registerSettings, registerAdmins, registerAudit,
];

const LOGIN_CSRF_COOKIE = 'manage_login_csrf';

export async function registerManage(app: FastifyInstance, services: Services): Promise<void> {
  await registerPages(app, { assets: 'manage/assets/', prefix: '/manage/assets/' });
  const kit = createKit(app, services, SECTIONS);
  const { layout } = kit;

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

  app.post('/manage/logout', kit.form(
    async (call) => {
      await call.api('/admin/logout');
      return { redirect: '/manage/login?loggedout=1', flash: '' };
    },
    async () => ({ template: 'manage/refused', data: { title: 'Form expired' } }),
  ));

  const dashboard = async (call: PageCall, extra: Record<string, unknown> = {}) =>
    ({ template: 'manage/dashboard', data: { title: 'Dashboard', ...(await dashboardFacts(call, new Set(SECTIONS.map((x) => x.path)))), ...extra } });
  app.get('/manage/', kit.page(async (call) => dashboard(call)));
  // "Check the user stores": a POST, since each test connects to a directory or database
  app.post('/manage/check-stores', kit.form(
    async (call) => dashboard(call, { storeChecks: await checkStores(call) }),
    async (call) => dashboard(call),
  ));
  for (const area of AREAS) area(kit);
}
