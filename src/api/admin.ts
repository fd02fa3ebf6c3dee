import { sendNotice } from '../delivery/notice.ts';
import { Errors } from '../errors.ts';
import { parseExpiry } from '../admins/expiry.ts';
import type { ApiKeyInfo } from '../admins/service.ts';
import { tokenDict } from '../enrollment/tokens.ts';
import { canonicalType } from '../tokens/registry.ts';
import type { Token } from '../tokens/types.ts';
import { SESSION_COOKIE, clearSessionCookies, newSessionSecrets, setSessionCookies } from './auth.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';
import { ownEntry } from '../util/json.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What /admin/apikey/list shows of a key: never the key or its hash. */
export const apiKeyView = (k: ApiKeyInfo) => ({
  id: k.id, admin: k.admin, label: k.label, prefix: k.prefix, state: k.state,
  created: iso(k.createdAt), expires: iso(k.expiresAt), lastUsed: iso(k.lastUsedAt), revoked: iso(k.revokedAt),
});

export const ADMIN_POLICY_WARNING = 'no admin policy is defined: every administrator may do everything in every realm (see docs/policies.md)';

const scopeOf = (ctx: RouteContext) => ({ realms: ctx.admin?.realms ?? ('*' as const) });

function auditTokens(ctx: RouteContext, tokens: Token[]): void {
  ctx.audit.serial = tokens.map((t) => t.serial).join(',');
  ctx.audit.tokenType = [...new Set(tokens.map((t) => t.type))].join(',');
}

/** Count-returning token actions (enable, disable, reset): spec 1.4. */
function countAction(path: string, action: string, run: (ctx: RouteContext, tokens: Token[]) => Promise<number>) {
  return {
    path,
    methods: ['POST'] as ('POST')[],
    policy: { scope: 'admin' as const, action },
    handler: async (ctx: RouteContext) => {
      const { tokens, by } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
      auditTokens(ctx, tokens);
      const n = await run(ctx, tokens);
      if (n === 0) return ok(0, { message: by === 'serial' ? `No token with serial ${ctx.params.get('serial')}` : 'No tokens for this user' });
      return ok(n);
    },
  };
}

/**
 * Security B.2 item 24: a changed phone number or e-mail address of an sms/email token is
 * audited and announced to the old destination, so a hijacked token does not go unnoticed.
 */
async function notifyRebinding(ctx: RouteContext, before: Token[]): Promise<void> {
  const changes: string[] = [];
  for (const old of before) {
    const key = old.type === 'sms' ? 'phone' : old.type === 'email' ? 'email_address' : undefined;
    if (!key || !old.info[key]) continue;
    const now = await ctx.services.tokens.repository.byId(old.id);
    if (!now || now.info[key] === old.info[key]) continue;
    changes.push(`${old.serial}: ${key} changed`);
    const channel = old.type === 'sms' ? 'sms' : 'email';
    const text = `The ${channel === 'sms' ? 'phone number' : 'e-mail address'} of your authentication token ${old.serial} was changed by an administrator. If you did not ask for this, contact your help desk.`;
    await sendNotice(ctx.services, {
      channel, to: old.info[key], text, subject: 'Your authentication token was changed', serial: old.serial, client: ctx.client,
      key: `rebind:${old.serial}:${ctx.services.clock.now()}`,
    });
  }
  if (changes.length) ctx.audit.actionDetail = `rebinding: ${changes.join('; ')}`;
}

export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/admin/login',
      methods: ['POST'],
      auth: 'none',
      handler: async (ctx) => {
        const name = ctx.params.get('username') ?? '';
        const password = ctx.params.get('password') ?? '';
        ctx.audit.user = name;
        // the source as the socket or a trusted proxy reports it; the `client` parameter is not a source here
        const outcome = name !== '' && password !== '' ? await ctx.services.admins.login(name, password, ctx.request.ip) : { ok: false as const, throttled: false as const };
        if (!outcome.ok && outcome.throttled) {
          ctx.audit.actionDetail = 'admin login throttled';
          ctx.reply.header('Retry-After', String(outcome.retryAfterSeconds));
          throw Errors.adminLoginThrottled({ seconds: outcome.retryAfterSeconds });
        }
        if (!outcome.ok) {
          ctx.audit.actionDetail = 'admin login failed';
          return { kind: 'json', value: false, detail: { message: 'Bad username or password' }, httpStatus: 401 };
        }
        const { cookie, csrf } = newSessionSecrets();
        const seconds = ctx.services.settings.sessionSeconds;
        await ctx.services.admins.createSession(name, cookie, csrf, seconds);
        setSessionCookies(ctx.reply, cookie, csrf, seconds, ctx.request.protocol === 'https');
        ctx.audit.actionDetail = 'admin login';
        const detail: Record<string, unknown> = { message: `Login successful for ${name}` };
        // with no admin-scope policy every administrator may do everything: say so
        if (!ctx.services.policies.anyPolicy('admin')) detail.warning = ADMIN_POLICY_WARNING;
        return ok(true, detail);
      },
    },
    {
      path: '/admin/logout',
      handler: async (ctx) => {
        const cookie = ctx.request.cookies[SESSION_COOKIE];
        if (cookie) await ctx.services.admins.endSession(cookie);
        clearSessionCookies(ctx.reply);
        return ok(true);
      },
    },
    // otpd's own (LinOTP has no API key endpoints); API keys count as system configuration
    {
      path: '/admin/apikey/list',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const admin = ctx.params.get('admin') || undefined;
        const keys = await ctx.services.admins.listApiKeys(admin);
        return ok(keys.map(apiKeyView));
      },
    },
    {
      path: '/admin/apikey/create',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        // a leaked key must not be able to outlive its expiry or revocation by minting more
        if (ctx.admin!.via !== 'session') throw Errors.sessionRequired();
        const admin = ctx.params.get('admin') || ctx.admin!.name;
        const label = ctx.params.get('label') ?? '';
        const expires = ctx.params.get('expires');
        const now = ctx.services.clock.now();
        const expiresAt = expires ? parseExpiry(expires, now) : undefined;
        const made = await ctx.services.admins.issueApiKey(admin, label, { expiresAt });
        ctx.audit.user = admin;
        ctx.audit.actionDetail = `api key ${made.id} created for ${admin}${made.expiresAt ? `, expires ${new Date(made.expiresAt).toISOString()}` : ''}`;
        return ok({ id: made.id, admin, label, key: made.key, expires: iso(made.expiresAt) }, { message: 'the key is shown once; only its hash is stored' });
      },
    },
    {
      path: '/admin/apikey/revoke',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const id = ctx.params.int('id', -1, 1);
        if (id === -1) throw Errors.missingParameter({ name: 'id' });
        const { admin } = await ctx.services.admins.revokeApiKey(id);
        ctx.audit.user = admin;
        ctx.audit.actionDetail = `api key ${id} of ${admin} revoked`;
        return ok(true);
      },
    },
    {
      path: '/admin/init',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'init' },
      handler: async (ctx) => {
        const type = canonicalType(ctx.params.get('type') ?? 'hmac');
        const policies = ctx.services.policies;
        if (policies && policies.anyPolicy('admin')) {
          const d = policies.adminAllowed(ctx.admin!.name, 'admin', `init${type.toUpperCase()}`);
          if (!d.allowed) throw Errors.notAllowed({ what: `to init token of type ${type}` });
        }
        const res = await ctx.services.tokens.init(ctx.params, scopeOf(ctx));
        ctx.audit.serial = res.serial;
        ctx.audit.tokenType = type;
        ctx.audit.user = ctx.params.get('user');
        ctx.audit.realm = ctx.params.get('realm');
        ctx.audit.actionDetail = res.created ? 'token created' : 'token updated';
        return ok(true, res.detail);
      },
    },
    {
      path: '/admin/show',
      policy: { scope: 'admin', action: 'show' },
      handler: async (ctx) => {
        const p = ctx.params;
        const repo = ctx.services.tokens.repository;
        const realm = p.get('viewrealm') ?? p.get('realm');
        let realms: string[] | undefined = realm && realm !== '*' ? [realm.toLowerCase()] : undefined;
        const allowed = ctx.admin?.realms ?? '*';
        if (allowed !== '*') realms = realms ? realms.filter((r) => allowed.includes(r)) : allowed;
        let owner: { resolver: string; userId: string } | undefined;
        if (p.get('user')) {
          const u = await ctx.services.tokens.requireUser(p.get('user')!, p.get('realm'));
          owner = { resolver: u.resolver, userId: u.userId };
          realms = allowed === '*' ? undefined : realms;
        }
        const filter = { serial: p.get('serial'), owner, realms, text: p.get('filter') || undefined };
        const pagesize = p.int('pagesize', 50, 1, 1000);
        const page = p.int('page', 1, 1, 1_000_000);
        const sortable: Record<string, 'id' | 'serial' | 'type' | 'description' | 'user_id' | 'created_at' | 'fail_count'> = {
          TokenId: 'id', TokenSerialnumber: 'serial', TokenType: 'type', TokenDesc: 'description', Userid: 'user_id', CreationDate: 'created_at', FailCount: 'fail_count',
        };
        const sortBy = ownEntry(sortable, (p.get('sortby') ?? '').replace(/^LinOtp\./, '')) ?? 'id';
        const total = await repo.count(filter);
        const tokens = await repo.find(filter, { offset: (page - 1) * pagesize, limit: pagesize, sortBy, desc: p.get('sortdir') === 'desc' });
        const data = [];
        for (const t of tokens) data.push(tokenDict(t, await ctx.services.tokens.owner(t).catch(() => null)));
        return ok({ data, resultset: { pages: Math.max(1, Math.ceil(total / pagesize)), pagesize, tokens: total, page } });
      },
    },
    {
      path: '/admin/remove',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'remove' },
      handler: async (ctx) => {
        const { tokens } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        auditTokens(ctx, tokens);
        const n = await ctx.services.tokens.repository.delete(tokens.map((t) => t.id));
        if (n === 0) return ok(0, { message: `No token with serials ${ctx.params.list('serial').join(', ')}` });
        return ok(n);
      },
    },
    countAction('/admin/enable', 'enable', (ctx, t) => ctx.services.tokens.setActive(t, true)),
    countAction('/admin/disable', 'disable', (ctx, t) => ctx.services.tokens.setActive(t, false)),
    {
      // spec 1.4: the tokens' fail counters. otpd also clears the account failure limit of the
      // owners (by user: of that user, also one without tokens, e.g. under passthru).
      path: '/admin/reset',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'reset' },
      handler: async (ctx) => {
        const { tokens, by, owner } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        auditTokens(ctx, tokens);
        const n = await ctx.services.tokens.resetFailCount(tokens);
        const owners = new Set(tokens.filter((t) => t.userId !== '').map((t) => `${t.resolver}/${t.userId}`));
        const realms = ctx.admin?.realms ?? '*';
        if (owner && (realms === '*' || realms.includes(owner.realm))) owners.add(`${owner.resolver}/${owner.userId}`);
        for (const userKey of owners) await ctx.services.accountAttempts.reset({ userKey });
        if (n === 0) return ok(0, { message: by === 'serial' ? `No token with serial ${ctx.params.get('serial')}` : 'No tokens for this user' });
        return ok(n);
      },
    },
    {
      path: '/admin/resync',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'resync' },
      handler: async (ctx) => {
        const otp1 = ctx.params.require('otp1');
        const otp2 = ctx.params.require('otp2');
        const { tokens } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        auditTokens(ctx, tokens);
        let done = false;
        for (const t of tokens) done = (await ctx.services.tokens.resync(t, otp1, otp2)) || done;
        return ok(done);
      },
    },
    {
      path: '/admin/set',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'set' },
      handler: async (ctx) => {
        const { tokens } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        auditTokens(ctx, tokens);
        const result = await ctx.services.tokens.set(tokens, ctx.params);
        await notifyRebinding(ctx, tokens);
        return ok(result);
      },
    },
    {
      path: '/admin/assign',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'assign' },
      handler: async (ctx) => {
        const serials = ctx.params.list('serial');
        if (serials.length === 0) throw Errors.missingParameter({ name: 'serial' });
        const owner = await ctx.services.tokens.requireUser(ctx.params.require('user'), ctx.params.get('realm'));
        const tokens = await ctx.services.tokens.repository.find({ serials });
        if (tokens.length !== serials.length) throw Errors.noSuchToken({ selector: `serial ${serials.filter((s) => !tokens.some((t) => t.serial === s)).join(', ')}` });
        tokens.forEach((t) => t.userId === '' || ctx.services.tokens.assertTokenAllowed(scopeOf(ctx), t));
        auditTokens(ctx, tokens);
        ctx.audit.user = owner.login;
        ctx.audit.realm = owner.realm;
        await ctx.services.tokens.assign(tokens, owner, ctx.params.get('pin'), scopeOf(ctx));
        return ok(true, undefined, serials.length);
      },
    },
    {
      path: '/admin/unassign',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'unassign' },
      handler: async (ctx) => {
        const { tokens, by, owner } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        auditTokens(ctx, tokens);
        if (tokens.length === 0) {
          const selector = by === 'user' && owner ? `user ${owner.login}@${owner.realm}` : `serial ${ctx.params.list('serial').join(', ')}`;
          throw Errors.noSuchToken({ selector });
        }
        await ctx.services.tokens.unassign(tokens);
        return ok(true);
      },
    },
    {
      path: '/admin/getTokenOwner',
      policy: { scope: 'admin', action: 'tokenowner' },
      handler: async (ctx) => {
        const serial = ctx.params.require('serial');
        const token = await ctx.services.tokens.repository.bySerial(serial);
        if (token) ctx.services.tokens.assertTokenAllowed(scopeOf(ctx), token);
        ctx.audit.serial = serial;
        const owner = token ? await ctx.services.tokens.owner(token) : null;
        if (!owner) return ok({});
        const { ...info } = owner.info;
        return ok(Object.fromEntries(Object.entries(info).filter(([k]) => !['password', 'cryptpass'].includes(k))));
      },
    },
  ]);
}
