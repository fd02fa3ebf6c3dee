import { Errors } from '../errors.ts';
import { tokenDict } from '../enrollment/tokens.ts';
import type { Services } from '../services.ts';
import { UserLogin } from '../userservice/login.ts';
import { USER_SESSION_SECONDS, type SessionUser } from '../userservice/sessions.ts';
import { AccountGuard } from '../validation/account-guard.ts';
import { clearUserSessionCookie, setUserSessionCookie, USER_SESSION_COOKIE } from './user-auth.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';

/**
 * LinOTP `get_pre_context` settings. They come from selfservice policies there; otpd stores no
 * selfservice policy yet (policy/catalogue.ts refuses the scope), so these are LinOTP's defaults
 * for no policy. `mfa_login` is false: LinOTP then lets the password alone in, and so does this
 * login. A test keeps selfservice `mfa_login` refused until the login enforces it.
 */
function preContext(services: Services): Record<string, unknown> {
  const users = services.users;
  const defaultRealm = users.defaultRealm() ?? '';
  const realms: Record<string, unknown> = {};
  for (const name of users.realmNames()) realms[name] = { default: name === defaultRealm, realmname: name };
  return {
    realms,
    settings: {
      default_realm: defaultRealm, realm_box: false, mfa_login: false, mfa_3_fields: false, autoassign: false, autoenroll: false,
      footer_text: null, imprint_url: null, privacy_notice_url: null,
    },
  };
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
    users: services.users, clock: services.clock,
    guard: new AccountGuard(services.accountAttempts, services.tokens, services.config),
  });
  defineRoutes(api, [
    {
      path: '/userservice/pre_context',
      handler: async (ctx) => ok(preContext(ctx.services)),
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
        const pre = preContext(ctx.services);
        return ok({ ...pre, user: { ...user.info }, imprint: {}, tokenArray: tokens, actions: [] });
      },
    },
  ]);
}
