import { Errors } from '../errors.ts';
import { tokenDict } from '../enrollment/tokens.ts';
import type { Services } from '../services.ts';
import { UserLogin } from '../userservice/login.ts';
import { USER_SESSION_SECONDS, type SessionUser } from '../userservice/sessions.ts';
import { AccountGuard } from '../validation/account-guard.ts';
import { clearUserSessionCookie, setUserSessionCookie, USER_SESSION_COOKIE } from './user-auth.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';

/** The selfservice actions `pre_context` reports as settings (LinOTP `get_pre_context`), with their defaults. */
const PRE_CONTEXT_SETTINGS: [setting: string, action: string, fallback: unknown][] = [
  ['mfa_login', 'mfa_login', false], ['mfa_3_fields', 'mfa_3_fields', false],
  ['autoassign', 'autoassignment', false], ['autoenroll', 'autoenrollment', false],
  ['footer_text', 'footer_text', null], ['imprint_url', 'imprint_url', null], ['privacy_notice_url', 'privacy_notice_url', null],
];

function preContext(services: Services, client: string): Record<string, unknown> {
  const users = services.users;
  const defaultRealm = users.defaultRealm() ?? '';
  const realms: Record<string, unknown> = {};
  for (const name of users.realmNames()) realms[name] = { default: name === defaultRealm, realmname: name };
  const settings: Record<string, unknown> = { default_realm: defaultRealm, realm_box: false };
  for (const [setting, action, fallback] of PRE_CONTEXT_SETTINGS) {
    settings[setting] = services.policies.value('selfservice', action, { login: '', realm: '', client }) ?? fallback;
  }
  return { realms, settings };
}

/** The session's user as the directory knows them now (a removed user has no self-service). */
async function sessionUser(ctx: RouteContext) {
  const u = ctx.user as SessionUser;
  const user = await ctx.services.users.findById(u.resolver, u.userId, u.realm);
  if (!user) throw Errors.noUserSession();
  return user;
}

/** The user's own tokens, in `/admin/show`'s dictionary: owner = the session's resolver and user id, nothing else. */
async function ownTokens(ctx: RouteContext) {
  const user = await sessionUser(ctx);
  const tokens = await ctx.services.tokens.repository.find({ owner: { resolver: user.resolver, userId: user.userId } });
  return { user, tokens: tokens.map((t) => tokenDict(t, user)) };
}

/**
 * The LinOTP self-service API, first slice (spec 1.6): login (user-store password, under the
 * account attempt limit), logout, pre_context, context, userinfo, usertokenlist. Every call
 * but pre_context, login and logout needs the `user_selfservice` session and an equal
 * `session` parameter (api/user-auth.ts).
 */
export function register(api: Api): void {
  const { services } = api;
  const login = new UserLogin({
    users: services.users, policies: services.policies, clock: services.clock,
    guard: new AccountGuard(services.accountAttempts, services.tokens, services.config),
  });
  defineRoutes(api, [
    {
      path: '/userservice/pre_context',
      handler: async (ctx) => ok(preContext(ctx.services, ctx.client)),
    },
    {
      path: '/userservice/login',
      methods: ['POST'],
      id: 0,
      handler: async (ctx) => {
        const name = ctx.params.get('login') ?? ctx.params.get('username') ?? '';
        const realm = ctx.params.get('realm') ?? '';
        const password = ctx.params.get('password') ?? '';
        ctx.audit.user = name;
        ctx.audit.realm = realm;
        const { outcome, user } = await login.checkPassword({ login: name, realm, password, client: ctx.client });
        ctx.audit.reason = outcome.reason;
        ctx.audit.actionDetail = outcome.audit.actionDetail;
        // wrong password, unknown user, throttled or locked account: one answer (the audit row tells them apart)
        if (!user) {
          ctx.audit.success = false;
          return { kind: 'json', value: false, status: true };
        }
        ctx.audit.user = user.login;
        ctx.audit.realm = user.realm;
        // fail closed: the second factor of mfa_login is not built yet, so the password alone must not do
        if (login.mfaLogin(user, ctx.client)) throw Errors.mfaLoginUnsupported();
        const cookie = await ctx.services.userSessions.create({ realm: user.realm, resolver: user.resolver, userId: user.userId, login: user.login }, USER_SESSION_SECONDS);
        setUserSessionCookie(ctx.reply, cookie, USER_SESSION_SECONDS, ctx.request.protocol === 'https');
        ctx.audit.actionDetail = `expires: ${new Date(ctx.services.clock.now() + USER_SESSION_SECONDS * 1000).toISOString()}`;
        ctx.audit.info = `${user.login}@${user.realm} logged in`;
        return ok(true);
      },
    },
    {
      path: '/userservice/logout',
      methods: ['POST'],
      handler: async (ctx) => {
        const cookie = ctx.request.cookies?.[USER_SESSION_COOKIE];
        if (cookie) {
          const u = await ctx.services.userSessions.find(cookie);
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
      handler: async (ctx) => ok((await ownTokens(ctx)).tokens),
    },
    {
      path: '/userservice/context',
      auth: 'user',
      handler: async (ctx) => {
        const { user, tokens } = await ownTokens(ctx);
        const pre = preContext(ctx.services, ctx.client);
        return ok({ ...pre, user: { ...user.info }, imprint: {}, tokenArray: tokens, actions: [] });
      },
    },
  ]);
}
