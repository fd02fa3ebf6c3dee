import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { Errors, OtpdError } from '../errors.ts';
import type { Services } from '../services.ts';
import { authenticateAdmin, type AdminIdentity } from './auth.ts';
import { authenticateUser, type UserIdentity } from './user-auth.ts';
import { errorEnvelope, resultEnvelope, serialise, toOtpdError } from './envelope.ts';
import { Params } from './params.ts';

/** What a handler records for the audit row of its request (never secrets). */
export interface AuditFields {
  success?: boolean;
  serial?: string;
  tokenType?: string;
  user?: string;
  realm?: string;
  actionDetail?: string;
  info?: string;
  /** A stable code for why it ended so: a validation reason (validation/reasons.ts) or an error's catalogue key. */
  reason?: string;
}

export interface RouteContext {
  params: Params;
  /** Client IP for policies and audit (REMOTE_ADDR, trusted X-Forwarded-For, or `client` for mayOverwriteClient callers). */
  client: string;
  /** Set on admin routes. `realms` is '*' or the realms the admin policies allow. */
  admin?: AdminIdentity & { realms: '*' | string[] };
  /** Set on self-service routes (`auth: 'user'`): the user of the `user_selfservice` session. */
  user?: UserIdentity;
  services: Services;
  request: FastifyRequest;
  reply: FastifyReply;
  audit: AuditFields;
  /**
   * Holds the answer until `until` resolved, after the call's writes and its audit row are
   * durable (a validation failure's floor, validation/service.ts `AnswerHold`).
   */
  hold(until: Promise<void>): void;
}

export type RouteResult =
  | { kind: 'json'; value: unknown; detail?: Record<string, unknown>; id?: number; status?: boolean; httpStatus?: number }
  | { kind: 'text'; body: string; contentType?: string; httpStatus?: number }
  | { kind: 'raw'; body: unknown; contentType?: string; httpStatus?: number; headers?: Record<string, string> };

/** `result.value = value`, optional `detail`, in LinOTP's envelope. */
export const ok = (value: unknown, detail?: Record<string, unknown>, id?: number): RouteResult => ({ kind: 'json', value, detail, id });
/** A plain-text answer (`/validate/simplecheck`). */
export const text = (body: string, contentType = 'text/plain; charset=utf-8'): RouteResult => ({ kind: 'text', body, contentType });
/** A body outside the envelope (`/audit/search`, exports). Objects are serialised with indent 3. */
export const raw = (body: unknown, contentType = 'application/json', headers?: Record<string, string>): RouteResult => ({ kind: 'raw', body, contentType, headers });

export interface RouteDef {
  path: string;
  /** @default ['GET', 'POST'] */
  methods?: ('GET' | 'POST')[];
  /**
   * 'user': a self-service session (cookie `user_selfservice` and an equal `session` parameter),
   * checked before any parameter is looked at; admin credentials do not count.
   * @default 'admin' for /admin, /system, /audit paths (except /admin/login), else 'none'
   */
  auth?: 'none' | 'admin' | 'user';
  /** Envelope id. @default 0 for /validate, 1 otherwise */
  id?: number;
  /** Write an audit row for this call. @default true */
  audit?: boolean;
  /** Admin-scope policy check before the handler (no active policy in the scope → allowed). */
  policy?: { scope: 'admin' | 'system' | 'audit'; action: string };
  /** How errors are answered. 'envelope' (default): LinOTP error envelope. */
  onError?: (err: OtpdError, ctx: RouteContext) => RouteResult;
  handler(ctx: RouteContext): Promise<RouteResult>;
}

export interface Api {
  app: FastifyInstance;
  services: Services;
}

/** Fastify route config of a declared route: the app's error handler asks for credentials first on admin routes. */
export interface RouteAuthConfig {
  adminAuth: boolean;
  /** A self-service route: a refused body is answered as an unauthenticated call unless the user session holds. */
  userAuth?: boolean;
}

const isAdminPath = (path: string) => /^\/(admin|system|audit)\//.test(path) && path !== '/admin/login';

/** Who a route needs: its declared `auth`, else an admin for the admin areas. */
const authOf = (def: RouteDef): 'none' | 'admin' | 'user' => def.auth ?? (isAdminPath(def.path) ? 'admin' : 'none');

/**
 * Registers declarative routes: admin authentication + CSRF + policy (before any
 * parameter is looked at), parameters parsed and checked, the handler, an audit row,
 * then the answer.
 * Errors become LinOTP error envelopes; internals never reach the caller.
 */
const tables = new WeakMap<FastifyInstance, Map<string, RouteDef>>();

/** The declared routes of an app by path, for in-process calls from the web pages ({@link invokeRoute}). */
export function routeTable(app: FastifyInstance): ReadonlyMap<string, RouteDef> {
  return tables.get(app) ?? new Map();
}

/**
 * Registers declarative routes: admin authentication + CSRF + policy (before any
 * parameter is looked at), parameters parsed and checked, the handler, an audit row,
 * then the answer.
 * Errors become LinOTP error envelopes; internals never reach the caller.
 */
export function defineRoutes(api: Api, routes: RouteDef[]): void {
  let table = tables.get(api.app);
  if (!table) tables.set(api.app, (table = new Map()));
  for (const def of routes) {
    table.set(def.path, def);
    const auth = authOf(def);
    const config: RouteAuthConfig = { adminAuth: auth === 'admin', userAuth: auth === 'user' };
    api.app.route({
      method: def.methods ?? ['GET', 'POST'],
      url: def.path,
      config,
      handler: async (request, reply) => handle(api.services, def, request, reply),
    });
  }
}

/** What a call of a route produced: the result, or the refusal (already audited). */
type Outcome = { result: RouteResult; ctx: RouteContext } | { error: OtpdError; ctx: RouteContext };

/**
 * One call of a route: the admin policy check, parameters, the handler and the audit row;
 * the same for an HTTP request and for a web page calling the route in-process. One unit of
 * work: answered only when every write of the call, its audit row included, is durable.
 */
async function execute(
  services: Services, def: RouteDef, request: FastifyRequest, reply: FastifyReply,
  identify: () => Promise<AdminIdentity | undefined>, source: { query: unknown; body: unknown; inProcess?: boolean },
  identifyUser?: () => Promise<UserIdentity>,
): Promise<Outcome> {
  const holds: Promise<void>[] = [];
  const ctx: RouteContext = { params: new Params(new Map()), client: request.ip, services, request, reply, audit: {}, hold: (until) => void holds.push(until) };
  try {
    return await services.db.unitOfWork(() => executeWork(ctx, def, identify, source, identifyUser));
  } catch (e) {
    // A write of the call did not commit (rolled back): nothing it did may be answered as done.
    // A database that cannot take writes (SQLite's disk full, an I/O error) is an outage,
    // ERR2008, never an internal error: /validate/check answers an internal error as a plain
    // refusal, which refused valid OTPs (test/faults/sqlite-disk-full.test.ts).
    const err = toOtpdError(e);
    if (err.code === Errors.databaseUnavailable.code) request.log.warn({ err: e, path: def.path }, 'request failed: its writes did not commit (database unavailable)');
    else request.log.error({ err: e, path: def.path }, 'request failed: its writes did not commit');
    return { error: err, ctx };
  } finally {
    // a failure's floor, after its writes and audit row are durable
    await Promise.all(holds);
  }
}

async function executeWork(
  ctx: RouteContext, def: RouteDef,
  identify: () => Promise<AdminIdentity | undefined>, source: { query: unknown; body: unknown; inProcess?: boolean },
  identifyUser?: () => Promise<UserIdentity>,
): Promise<Outcome> {
  const { services, request } = ctx;
  let outcome: Outcome;
  try {
    // credentials first: a refused caller learns nothing from how its parameters are judged
    if (identifyUser) {
      ctx.user = await identifyUser();
      ctx.audit.user = ctx.user.login;
      ctx.audit.realm = ctx.user.realm;
    }
    const admin = await identify();
    if (admin) {
      let realms: '*' | string[] = '*';
      if (def.policy && services.policies) {
        const decision = services.policies.adminAllowed(admin.name, def.policy.scope, def.policy.action);
        if (!decision.allowed) {
          throw Errors.notAllowed({ what: `to ${def.policy.action}` });
        }
        realms = decision.realms;
      }
      ctx.admin = { ...admin, realms };
    }
    ctx.params = Params.from(source.query, source.body);
    // a page's `client` is a value of the call (a policy's client field), never the caller's address
    ctx.client = source.inProcess ? request.ip : clientAddress(services, request, ctx.params);
    const result = await def.handler(ctx);
    ctx.audit.success ??= result.kind !== 'json' || result.status !== false;
    outcome = { result, ctx };
  } catch (e) {
    const err = toOtpdError(e);
    if (!(e instanceof OtpdError)) {
      request.log.error({ err: e, path: def.path }, 'request failed');
      ctx.audit.info ??= `internal error: ${(e as Error)?.name ?? 'Error'}`;
    } else {
      request.log.info({ code: err.code, path: def.path, reason: err.message }, 'request refused');
      ctx.audit.info ??= err.message;
    }
    ctx.audit.success = false;
    ctx.audit.reason ??= err.reason;
    outcome = { error: err, ctx };
  }
  await writeAudit(services, def, ctx);
  return outcome;
}

async function handle(services: Services, def: RouteDef, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const id = def.id ?? (def.path.startsWith('/validate/') ? 0 : 1);
  const auth = authOf(def);
  const identify = async () => (auth === 'admin' ? authenticateAdmin(services, request) : undefined);
  const identifyUser = auth === 'user' ? async () => authenticateUser(services, request) : undefined;
  const outcome = await execute(services, def, request, reply, identify, { query: request.query, body: request.body }, identifyUser);
  if ('result' in outcome) return send(reply, outcome.result, id);
  if (!def.onError) {
    reply.code(outcome.error.httpStatus).type('application/json').send(serialise(errorEnvelope(outcome.error, id)));
    return;
  }
  send(reply, def.onError(outcome.error, outcome.ctx), id);
}

type InProcessCall = { params: Record<string, string | string[]>; request: FastifyRequest; reply: FastifyReply };

/** One in-process call of a declared route, as the identity a page vouches for; a refusal is thrown. */
async function invokeAs(
  app: FastifyInstance, services: Services, path: string, call: InProcessCall,
  who: { refuse(auth: 'none' | 'admin' | 'user'): OtpdError | undefined; admin?: AdminIdentity; user?: UserIdentity },
): Promise<RouteResult> {
  const def = routeTable(app).get(path);
  if (!def) throw Errors.noSuchEndpoint({ path });
  const auth = authOf(def);
  const refusal = who.refuse(auth);
  if (refusal) throw refusal;
  const user = who.user;
  const outcome = await execute(services, def, call.request, call.reply, async () => who.admin, { query: undefined, body: call.params, inProcess: true },
    auth === 'user' && user ? async () => user : undefined);
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

/**
 * Calls a declared admin route in-process for a web page, as the given (already
 * authenticated, CSRF-checked) administrator: the same admin policy check, handler and
 * audit row as the HTTP call, so no rule is implemented twice. A refusal is thrown.
 */
export function invokeRoute(app: FastifyInstance, services: Services, path: string, call: InProcessCall & { admin?: AdminIdentity }): Promise<RouteResult> {
  // fail closed: an admin route is never run in-process without an authenticated admin, and a
  // user-session route never for a management page (the pages act as administrators)
  return invokeAs(app, services, path, call, {
    admin: call.admin,
    refuse: (auth) => (auth === 'user' || (auth === 'admin' && !call.admin) ? Errors.notAuthenticated() : undefined),
  });
}

/**
 * Calls a declared self-service route in-process for a portal page, as the given user (the
 * page checked the `user_selfservice` session and its own CSRF token): the same selfservice
 * rights, handler and audit row as the HTTP call. Only `auth: 'user'` routes and the public
 * ones (login) run so; an admin route never does. A refusal is thrown.
 */
export function invokeUserRoute(app: FastifyInstance, services: Services, path: string, call: InProcessCall & { user?: UserIdentity }): Promise<RouteResult> {
  return invokeAs(app, services, path, call, {
    user: call.user,
    refuse: (auth) => (auth === 'admin' || (auth === 'user' && !call.user) ? Errors.noUserSession() : undefined),
  });
}

function send(reply: FastifyReply, result: RouteResult, id: number): void {
  if (result.httpStatus) reply.code(result.httpStatus);
  if (result.kind === 'json') {
    reply.type('application/json').send(serialise(resultEnvelope(result.value, result.id ?? id, result.detail, result.status ?? true)));
  } else if (result.kind === 'text') {
    reply.type(result.contentType ?? 'text/plain').send(result.body);
  } else {
    if (result.headers) reply.headers(result.headers);
    reply.type(result.contentType ?? 'application/json').send(typeof result.body === 'string' || Buffer.isBuffer(result.body) ? result.body : serialise(result.body));
  }
}

async function writeAudit(services: Services, def: RouteDef, ctx: RouteContext): Promise<void> {
  if (def.audit === false) return;
  try {
    await services.audit.write({
      action: def.path.slice(1),
      success: ctx.audit.success ?? false,
      serial: ctx.audit.serial,
      tokenType: ctx.audit.tokenType,
      user: ctx.audit.user,
      realm: ctx.audit.realm,
      administrator: ctx.admin?.name,
      actionDetail: ctx.audit.actionDetail,
      info: ctx.audit.info,
      reason: ctx.audit.reason,
      client: ctx.client,
      requestId: ctx.request.id,
    });
  } catch (e) {
    ctx.request.log.error({ err: e }, 'audit row not written');
  }
}

/** spec 1.1: the `client` parameter counts only for callers listed in mayOverwriteClient. */
function clientAddress(services: Services, request: FastifyRequest, params: Params): string {
  const remote = request.ip;
  const override = params.get('client');
  if (override) {
    const allowed = services.config.list('mayOverwriteClient');
    if (allowed.includes(remote) && isIP(override)) return override;
  }
  return remote;
}
