import type { Selectable } from 'kysely';
import type { AuditTable } from '../store/schema.ts';
import { Errors } from '../errors.ts';
import { tokenDict } from '../enrollment/tokens.ts';
import type { Services } from '../services.ts';
import type { Token } from '../tokens/types.ts';
import { UserLogin } from '../userservice/login.ts';
import { SelfServiceRights } from '../userservice/rights.ts';
import { isPending, SelfService, type Actor } from '../userservice/self-service.ts';
import { USER_SESSION_SECONDS, type SessionRecord, type SessionUser } from '../userservice/sessions.ts';
import { maskForOwner } from '../util/phone.ts';
import { AccountGuard } from '../validation/account-guard.ts';
import type { CheckOutcome } from '../validation/outcome.ts';
import type { DirectoryUser, PolicySubject } from '../validation/ports.ts';
import { challengeDetail } from './challenge-detail.ts';
import { clearUserSessionCookie, setUserSessionCookie, USER_SESSION_COOKIE } from './user-auth.ts';
import { defineRoutes, ok, raw, type Api, type RouteContext, type RouteDef, type RouteResult } from './route.ts';

/** LinOTP's `detail.message` when the password was right and the second factor is owed. */
export const CREDENTIALS_VERIFIED = 'credential verified - additional authentication parameter required';

/**
 * A `history` row's cells: LinOTP's self-service columns (`date, action, success, serial,
 * token_type, administrator, action_detail, info`), not the 17 of `/audit/search`; the server
 * name and client addresses are no business of the user's.
 */
function historyCells(r: Selectable<AuditTable>): unknown[] {
  return [r.ts, r.action, r.success, r.serial, r.token_type, r.administrator, r.action_detail, r.info];
}

/** LinOTP `get_pre_context`: realms and the selfservice settings of the default realm's users. */
function preContext(services: Services, rights: SelfServiceRights, subject?: PolicySubject): Record<string, unknown> {
  const users = services.users;
  const defaultRealm = users.defaultRealm() ?? '';
  const realms: Record<string, unknown> = {};
  for (const name of users.realmNames()) realms[name] = { default: name === defaultRealm, realmname: name };
  const s: PolicySubject = subject ?? { login: '', realm: defaultRealm, client: '' };
  return {
    realms,
    settings: {
      default_realm: defaultRealm, realm_box: false, mfa_login: rights.flag(s, 'mfa_login'), mfa_3_fields: rights.flag(s, 'mfa_3_fields'),
      autoassign: false, autoenroll: false,
      footer_text: rights.text(s, 'footer_text'), imprint_url: rights.text(s, 'imprint_url'), privacy_notice_url: rights.text(s, 'privacy_notice_url'),
    },
  };
}

/** The session's user as the directory knows them now (a removed user has no self-service). */
async function sessionUser(ctx: RouteContext): Promise<DirectoryUser> {
  const u = ctx.user as SessionUser;
  const user = await ctx.services.users.findById(u.resolver, u.userId, u.realm);
  if (!user) throw Errors.noUserSession();
  return user;
}

async function actorOf(ctx: RouteContext): Promise<Actor> {
  return { user: await sessionUser(ctx), client: ctx.client, mfa: (ctx.user as SessionUser).mfa };
}

/**
 * A token as `usertokenlist` shows it: `/admin/show`'s dictionary, plus where an SMS or e-mail
 * token sends its codes (masked) and whether a self-enrolled app token still waits for its
 * first code. Secrets (seed, PIN hash) are never in it.
 */
export function ownTokenDict(t: Token, user: DirectoryUser): Record<string, unknown> {
  const to = t.type === 'sms' ? t.info.phone : t.type === 'email' ? t.info.email_address : undefined;
  return {
    ...tokenDict(t, user),
    ...(to ? { 'otpd.destination': maskForOwner(t.type as 'sms' | 'email', to) } : {}),
    'otpd.pending': isPending(t),
    'otpd.locked': t.failCount >= t.maxFail,
  };
}

/** A token for the login's `tokenList` (LinOTP: serial, type, description), with the masked destination. */
const loginToken = (t: Token) => ({
  serial: t.serial, type: t.type, description: t.description,
  ...(t.type === 'sms' || t.type === 'email' ? { destination: maskForOwner(t.type, t.type === 'sms' ? t.info.phone ?? '' : t.info.email_address ?? '') } : {}),
});

/** The answer of a validation that did not let the user in: value false, with the challenge or message to act on. */
function notYet(out: CheckOutcome, message: string): RouteResult {
  const detail = challengeDetail(out.challenges);
  if (detail) {
    const c = out.challenges[0];
    return ok(false, { ...detail, ...(c.destination ? { destination: c.destination } : {}), ...(c.delivery ? { delivery: c.delivery } : {}) });
  }
  return ok(false, { message });
}

/**
 * The LinOTP self-service API (spec 1.6). `login` checks the user-store password and, under
 * selfservice `mfa_login`, a second factor: the OTP in the same call, or a later call with the
 * pending cookie that sends a code (no `otp`) or answers it (`otp`). Every other call but
 * pre_context and logout needs an `authenticated` `user_selfservice` session and an equal
 * `session` parameter (api/user-auth.ts), and its selfservice policy right.
 */
export function register(api: Api): void {
  const { services } = api;
  const guard = new AccountGuard(services.accountAttempts, services.tokens, services.config);
  const login = new UserLogin({ users: services.users, clock: services.clock, guard });
  const rights = new SelfServiceRights(services.policies);
  const self = new SelfService({
    tokens: services.tokens, validation: services.validation, rights, guard, delivery: services.delivery,
    db: services.db, config: services.config, clock: services.clock, logger: services.logger,
  });
  const subjectOf = (user: DirectoryUser, client: string): PolicySubject => ({ login: user.login, realm: user.realm, resolver: user.resolver, client, userInfo: user.info });

  const openSession = async (ctx: RouteContext, user: SessionUser, pendingCookie?: string): Promise<RouteResult> => {
    const cookie = pendingCookie ? await ctx.services.userSessions.promote(pendingCookie, user) : await ctx.services.userSessions.create(user);
    if (!cookie) {
      // a parallel finish of the same login won: this one opens nothing
      ctx.audit.success = false;
      ctx.audit.reason = 'challengeAlreadyAnswered';
      return ok(false, { message: 'this login was finished by another request' });
    }
    setUserSessionCookie(ctx.reply, cookie, USER_SESSION_SECONDS, ctx.request.protocol === 'https');
    ctx.audit.success = true;
    ctx.audit.actionDetail = `${user.mfa ? 'password and second factor' : 'password only'}; expires: ${new Date(ctx.services.clock.now() + USER_SESSION_SECONDS * 1000).toISOString()}`;
    ctx.audit.info = `${user.login}@${user.realm} logged in`;
    return ok(true);
  };

  /** The second step of an mfa_login login, with the pending cookie: send a code, or check one. */
  const secondStep = async (ctx: RouteContext, cookie: string, rec: SessionRecord): Promise<RouteResult> => {
    const user = await ctx.services.users.findById(rec.resolver, rec.userId, rec.realm);
    if (!user) throw Errors.noUserSession();
    ctx.audit.user = user.login;
    ctx.audit.realm = user.realm;
    const otp = ctx.params.get('otp');
    const serial = ctx.params.get('serial');
    let out: CheckOutcome;
    if (otp === undefined || otp === '') {
      out = await ctx.services.validation.triggerSecondFactor(user, serial, ctx.client);
      if (out.challenges.length > 0) await ctx.services.userSessions.challengeTriggered(cookie, out.challenges[0].transactionId.split('.')[0]);
    } else {
      const transactionId = ctx.params.get('transactionid') ?? (rec.transactionId || undefined);
      out = await ctx.services.validation.check({ user: user.login, realm: user.realm, pass: otp, serial, transactionId, client: ctx.client, entry: 'userservice' });
    }
    recordOutcome(ctx, out);
    if (out.ok) return openSession(ctx, { realm: user.realm, resolver: user.resolver, userId: user.userId, login: user.login, mfa: true }, cookie);
    ctx.audit.success = false;
    if (out.reason === 'otpRequired') return ok(false, { message: 'enter the current code of your token' });
    return notYet(out, out.unavailable ? 'the user directory is not reachable' : 'wrong or expired code');
  };

  const recordOutcome = (ctx: RouteContext, out: CheckOutcome) => {
    ctx.audit.reason = out.reason;
    ctx.audit.actionDetail = out.audit.actionDetail;
    if (out.audit.serial) ctx.audit.serial = out.audit.serial;
    if (out.audit.tokenType) ctx.audit.tokenType = out.audit.tokenType;
  };

  /** A token call: the actor, the serial in the audit row, then the action. */
  const tokenCall = (path: string, run: (actor: Actor, ctx: RouteContext) => Promise<RouteResult>): RouteDef => ({
    path,
    auth: 'user',
    handler: async (ctx) => {
      const serial = ctx.params.get('serial');
      if (serial) ctx.audit.serial = serial;
      return run(await actorOf(ctx), ctx);
    },
  });

  defineRoutes(api, [
    {
      path: '/userservice/pre_context',
      handler: async (ctx) => ok(preContext(ctx.services, rights)),
    },
    {
      path: '/userservice/login',
      methods: ['POST'],
      id: 0,
      handler: async (ctx) => {
        const cookie = ctx.request.cookies?.[USER_SESSION_COOKIE];
        const password = ctx.params.get('password');
        if (cookie && password === undefined) {
          const rec = await ctx.services.userSessions.record(cookie);
          if (rec && rec.state !== 'authenticated') return secondStep(ctx, cookie, rec);
        }
        const name = ctx.params.get('login') ?? ctx.params.get('username') ?? '';
        const realm = ctx.params.get('realm') ?? '';
        ctx.audit.user = name;
        ctx.audit.realm = realm;
        const mfaFor = (u: DirectoryUser) => rights.flag(subjectOf(u, ctx.client), 'mfa_login');
        const { outcome, user } = await login.checkPassword({ login: name, realm, password: password ?? '', client: ctx.client }, { secondFactorFollows: mfaFor });
        ctx.audit.reason = outcome.reason;
        ctx.audit.actionDetail = outcome.audit.actionDetail;
        // wrong password, unknown user, throttled or locked account: one answer (the audit row tells them apart)
        if (!user) {
          ctx.audit.success = false;
          return { kind: 'json', value: false, status: true };
        }
        ctx.audit.user = user.login;
        ctx.audit.realm = user.realm;
        const who = { realm: user.realm, resolver: user.resolver, userId: user.userId, login: user.login };
        if (!mfaFor(user)) return openSession(ctx, { ...who, mfa: false });
        const tokens = await self.ownTokens(user);
        if (tokens.length === 0) {
          if (rights.flag(subjectOf(user, ctx.client), 'mfa_passOnNoToken')) return openSession(ctx, { ...who, mfa: false });
          ctx.audit.success = false;
          ctx.audit.reason = 'noTokenAssigned';
          return ok(false, { message: 'you have no token: ask your administrator' });
        }
        const otp = ctx.params.get('otp');
        if (otp !== undefined && otp !== '') {
          const out = await ctx.services.validation.check({ user: user.login, realm: user.realm, pass: otp, serial: ctx.params.get('serial'), client: ctx.client, entry: 'userservice' });
          recordOutcome(ctx, out);
          if (out.ok) return openSession(ctx, { ...who, mfa: true });
          ctx.audit.success = false;
          return notYet(out, 'wrong or expired code');
        }
        const pending = await ctx.services.userSessions.create({ ...who, mfa: false }, { state: 'credentials_verified' });
        setUserSessionCookie(ctx.reply, pending, USER_SESSION_SECONDS, ctx.request.protocol === 'https');
        ctx.audit.success = false;
        const usable = tokens.filter((t) => t.active && t.failCount < t.maxFail);
        return ok(false, { message: CREDENTIALS_VERIFIED, tokenList: usable.map(loginToken) });
      },
    },
    {
      path: '/userservice/logout',
      methods: ['POST'],
      handler: async (ctx) => {
        const cookie = ctx.request.cookies?.[USER_SESSION_COOKIE];
        if (cookie) {
          const u = await ctx.services.userSessions.record(cookie);
          if (u) { ctx.audit.user = u.login; ctx.audit.realm = u.realm; }
          await ctx.services.userSessions.end(cookie);
        }
        clearUserSessionCookie(ctx.reply);
        return ok(true);
      },
    },
    {
      path: '/userservice/userinfo',
      auth: 'user',
      handler: async (ctx) => ok({ ...(await sessionUser(ctx)).info }),
    },
    {
      path: '/userservice/usertokenlist',
      auth: 'user',
      handler: async (ctx) => {
        const user = await sessionUser(ctx);
        return ok((await self.ownTokens(user)).map((t) => ownTokenDict(t, user)));
      },
    },
    {
      path: '/userservice/context',
      auth: 'user',
      handler: async (ctx) => {
        const actor = await actorOf(ctx);
        const subject = self.subject(actor);
        const tokens = (await self.ownTokens(actor.user)).map((t) => ownTokenDict(t, actor.user));
        return ok({ ...preContext(ctx.services, rights, subject), user: { ...actor.user.info }, imprint: {}, tokenArray: tokens, actions: rights.granted(subject), mfa: actor.mfa });
      },
    },
    tokenCall('/userservice/enable', async (a, ctx) => ok({ 'enable token': await self.setActive(a, ctx.params.get('serial'), true) })),
    tokenCall('/userservice/disable', async (a, ctx) => ok({ 'disable token': await self.setActive(a, ctx.params.get('serial'), false) })),
    tokenCall('/userservice/delete', async (a, ctx) => ok({ 'delete token': await self.remove(a, ctx.params.get('serial')) })),
    tokenCall('/userservice/reset', async (a, ctx) => ok({ 'reset Failcounter': await self.reset(a, ctx.params.get('serial')) })),
    tokenCall('/userservice/unassign', async (a, ctx) => ok({ 'unassign token': await self.unassign(a, ctx.params.get('serial')) })),
    tokenCall('/userservice/setpin', async (a, ctx) => ok({ 'set userpin': await self.setPin(a, ctx.params.get('serial'), ctx.params.get('userpin') ?? ctx.params.get('pin')) })),
    tokenCall('/userservice/setdescription', async (a, ctx) => ok({ 'set description': await self.setDescription(a, ctx.params.get('serial'), ctx.params.get('description')) })),
    tokenCall('/userservice/resync', async (a, ctx) => {
      const p = ctx.params;
      const done = await self.resync(a, p.get('serial'), p.require('otp1'), p.require('otp2'));
      ctx.audit.success = done;
      return ok({ 'resync Token': done });
    }),
    tokenCall('/userservice/verify', async (a, ctx) => {
      const p = ctx.params;
      const out = await self.verify(a, p.get('serial'), p.get('otp'), p.get('transactionid'));
      recordOutcome(ctx, out);
      ctx.audit.success = out.ok;
      return out.ok ? ok(true) : notYet(out, out.reason === 'tokenLocked' ? 'the token is locked: reset it first' : 'wrong or expired code');
    }),
    tokenCall('/userservice/assign', async (a, ctx) => {
      const p = ctx.params;
      await self.assign(a, p.get('serial'), p.get('otp'), p.get('pin'), p.get('description'));
      return ok({ 'assign token': true });
    }),
    tokenCall('/userservice/getSerialByOtp', async (a, ctx) => {
      const serial = await self.serialByOtp(a, ctx.params.get('otp'), ctx.params.get('type'));
      if (serial) ctx.audit.serial = serial;
      ctx.audit.success = serial !== '';
      return ok({ serial });
    }),
    tokenCall('/userservice/enroll', async (a, ctx) => {
      const p = ctx.params;
      const names = ['type', 'description', 'prefix', 'pin', 'phone', 'email_address', 'serial', 'otpkey', 'genkey'] as const;
      const given = Object.fromEntries(names.filter((n) => p.has(n)).map((n) => [n, p.get(n)!]));
      const res = await self.enroll(a, given);
      ctx.audit.serial = res.serial;
      ctx.audit.tokenType = p.get('type') ?? 'hmac';
      return ok(true, res.detail);
    }),
    {
      path: '/userservice/history',
      auth: 'user',
      handler: async (ctx) => {
        const actor = await actorOf(ctx);
        rights.require(self.subject(actor), 'history');
        const p = ctx.params;
        const rp = p.int('rp', 15, 1, 100);
        const page = p.int('page', 1, 1, 1_000_000);
        const q = ctx.services.db.kysely.selectFrom('audit').where('user', '=', actor.user.login).where('realm', '=', actor.user.realm);
        const total = Number((await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst())?.n ?? 0);
        const rows = await q.selectAll().orderBy('id', 'desc').limit(rp).offset((page - 1) * rp).execute();
        return raw({ page, total, rows: rows.map((r) => ({ id: Number(r.id), cell: historyCells(r) })) });
      },
    },
  ]);
}
