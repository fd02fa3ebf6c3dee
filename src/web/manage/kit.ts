import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OtpdError } from '../../errors.ts';
import { invokeRoute, type RouteResult } from '../../api/route.ts';
import type { Services } from '../../services.ts';
import { renderPage } from '../page.ts';
import { csrfMatches, pageSession, setFlash, takeFlash, type PageCall, type PageSession } from './session.ts';

/** One entry of the left navigation. */
export interface Section { path: string; label: string }

/** What a page handler returns: the template (under web/, without `.eta`) and its data. */
export interface View { template: string; data: Record<string, unknown>; status?: number }

/** What a form handler returns after its API calls succeeded: where to go, and the message shown there. */
export interface Done { redirect: string; flash: string }

/**
 * The building blocks of every management page, so an area (tokens, users, policies, …) only
 * says what to read and which API routes to call:
 * - `page(render)`: a GET page for a logged-in admin; without a session → the login page.
 * - `form(act, onError)`: a POST form; without a session → login, without the session's CSRF
 *   token → 403 and nothing changed; `act` calls API routes through `call.api` (same policy
 *   check, handler and audit as the JSON API) and returns where to go with a flash message; a
 *   refusal (OtpdError) re-renders `onError`'s view with the message, so the form keeps what
 *   the admin typed.
 */
export interface ManageKit {
  app: FastifyInstance;
  services: Services;
  sections: Section[];
  page(render: (call: PageCall, request: FastifyRequest) => Promise<View>): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
  form(
    act: (call: PageCall, body: Record<string, string>, request: FastifyRequest) => Promise<Done | View>,
    onError: (call: PageCall, body: Record<string, string>, error: OtpdError, request: FastifyRequest) => Promise<View>,
  ): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
  /** The layout's data for a page rendered outside `page`/`form` (login, errors). */
  layout(request: FastifyRequest, reply: FastifyReply, session: PageSession | null, extra: Record<string, unknown>): Record<string, unknown>;
}

/** Where a login returns to: only a page of this UI, never another site. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/manage\/[A-Za-z0-9/_?=&%.,:@-]*$/.test(next) && !next.includes('//') ? next : '/manage/';
}

/** The section a path belongs to: the longest section path it starts with (the dashboard only as itself). */
function currentSection(sections: Section[], path: string): string | undefined {
  return sections.filter((s) => path === s.path || (s.path !== '/manage/' && path.startsWith(s.path))).sort((a, b) => b.path.length - a.path.length)[0]?.path;
}

const valueOf = (r: RouteResult): unknown => (r.kind === 'json' ? r.value : r.body);

/** Form fields as strings (a repeated field keeps its last value; lists use `name[]` in the API). */
function fields(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>)) {
    if (k === 'csrf_token') continue;
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (typeof last === 'string') out[k] = last;
  }
  return out;
}

export function createKit(app: FastifyInstance, services: Services, sections: Section[]): ManageKit {
  const layout: ManageKit['layout'] = (request, reply, session, extra) => ({
    sections,
    current: currentSection(sections, request.url.split('?')[0]!),
    admin: session?.admin.name,
    csrf: session?.csrf,
    flash: takeFlash(request, reply),
    demo: services.demo !== undefined,
    ...extra,
  });
  const callFor = (session: PageSession, request: FastifyRequest, reply: FastifyReply): PageCall => ({
    session,
    api: async (path, params = {}) => valueOf(await invokeRoute(app, services, path, { admin: session.admin, params, request, reply })),
    answer: async (path, params = {}) => {
      const r = await invokeRoute(app, services, path, { admin: session.admin, params, request, reply });
      return { value: valueOf(r), detail: r.kind === 'json' ? r.detail : undefined };
    },
  });
  const toLogin = (request: FastifyRequest, reply: FastifyReply) => {
    const expired = request.cookies?.access_token_cookie ? '&expired=1' : '';
    return reply.redirect(`/manage/login?next=${encodeURIComponent(safeNext(request.url))}${expired}`, 303);
  };
  const show = (request: FastifyRequest, reply: FastifyReply, session: PageSession, view: View) =>
    renderPage(reply, view.template, layout(request, reply, session, view.data), view.status ?? 200);
  return {
    app, services, sections, layout,
    page: (render) => async (request, reply) => {
      const session = await pageSession(services, request);
      if (!session) return toLogin(request, reply);
      return show(request, reply, session, await render(callFor(session, request, reply), request));
    },
    form: (act, onError) => async (request, reply) => {
      const session = await pageSession(services, request);
      if (!session) return toLogin(request, reply);
      if (!csrfMatches(session, request.body)) {
        return show(request, reply, session, { template: 'manage/refused', data: { title: 'Form expired' }, status: 403 });
      }
      const call = callFor(session, request, reply);
      const body = fields(request.body);
      try {
        const outcome = await act(call, body, request);
        if ('redirect' in outcome) {
          if (outcome.flash) setFlash(reply, outcome.flash);
          return reply.redirect(outcome.redirect, 303);
        }
        return show(request, reply, session, outcome);
      } catch (e) {
        if (!(e instanceof OtpdError)) throw e;
        const view = await onError(call, body, e, request);
        return show(request, reply, session, { ...view, data: { ...view.data, error: e.message, errorCode: e.code }, status: view.status ?? 200 });
      }
    },
  };
}
