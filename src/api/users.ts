import { Errors } from '../errors.ts';
import { UserDirectory } from '../users/directory.ts';
import type { DirectoryUser, UserSearch } from '../users/types.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';

/**
 * Resolver and realm administration (spec 1.5, LinOTP's `/system/*Resolver*`
 * and `*Realm*`) and `/admin/userlist`. Secrets come back as `__CENSORED__`;
 * sending that placeholder back keeps the stored value.
 */

/** Parameters that are not resolver configuration. */
const NOT_CONFIG = new Set(['name', 'type', 'previous_name', 'session', 'csrf_token', 'resolver', 'username']);
const SEARCH_FIELDS = ['username', 'userid', 'givenname', 'surname', 'email', 'mobile', 'phone', 'description'] as const;
/** Hard cap of one userlist answer. */
const MAX_USERLIST = 1000;

function directory(ctx: RouteContext): UserDirectory {
  const users = ctx.services.users;
  if (!(users instanceof UserDirectory)) throw Errors.noUserStore();
  return users;
}

function configParams(ctx: RouteContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ctx.params.keys()) {
    if (NOT_CONFIG.has(k)) continue;
    out[k] = ctx.params.get(k) ?? '';
  }
  return out;
}

/** LinOTP's userlist entry: resolver spec + user-info fields. */
function userEntry(u: DirectoryUser): Record<string, string> {
  const out: Record<string, string> = { useridresolver: u.resolverClass };
  for (const [k, v] of Object.entries(u.info)) if (v !== undefined) out[k] = v;
  return out;
}

export function register(api: Api): void {
  const read = { scope: 'system' as const, action: 'read' };
  const write = { scope: 'system' as const, action: 'write' };
  defineRoutes(api, [
    {
      path: '/system/setResolver',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const name = ctx.params.require('name');
        const type = ctx.params.require('type');
        const previous = ctx.params.get('previous_name') || undefined;
        ctx.audit.info = `resolver ${name} (${type})${previous && previous !== name ? ` renamed from ${previous}` : ''}`;
        await directory(ctx).setResolver(name, type, configParams(ctx), previous);
        return ok(true);
      },
    },
    {
      path: '/system/getResolvers',
      policy: read,
      handler: async (ctx) => ok(directory(ctx).listResolvers()),
    },
    {
      path: '/system/getResolver',
      policy: read,
      handler: async (ctx) => {
        const name = ctx.params.require('resolver');
        if (name === '') throw Errors.missingParameter({ name: 'resolver' });
        ctx.audit.info = name;
        return ok(directory(ctx).describeResolver(name));
      },
    },
    {
      path: '/system/delResolver',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const name = ctx.params.require('resolver');
        ctx.audit.info = name;
        return ok(await directory(ctx).deleteResolver(name));
      },
    },
    {
      path: '/system/testResolver',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const name = ctx.params.get('name') ?? ctx.params.get('resolver') ?? '';
        const params = configParams(ctx);
        ctx.audit.info = name;
        const login = ctx.params.get('username') || undefined;
        const health = await directory(ctx).testResolver(name, ctx.params.get('type'), Object.keys(params).length > 0 ? params : undefined, login);
        return ok({
          result: health.ok ? 'success' : 'error',
          steps: health.steps,
          ...(health.userCount !== undefined ? { usercount: health.userCount } : {}),
          ...(health.sample ? { sample: health.sample } : {}),
          ...(health.user !== undefined ? { user: health.user } : {}),
          ...(health.lookupError ? { lookupError: health.lookupError } : {}),
          ...(health.error ? { error: health.error } : {}),
        });
      },
    },
    {
      path: '/system/setRealm',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const realm = ctx.params.require('realm');
        const specs = ctx.params.list('resolvers');
        ctx.audit.info = `realm: ${realm}, resolvers: ${specs.join(',')}`;
        await directory(ctx).setRealm(realm, specs);
        return ok(true);
      },
    },
    {
      path: '/system/getRealms',
      policy: read,
      handler: async (ctx) => {
        const realms = directory(ctx).describeRealms(ctx.params.get('realm'));
        const allowed = ctx.admin?.realms ?? '*';
        if (allowed !== '*') for (const r of Object.keys(realms)) if (!allowed.includes(r)) delete realms[r];
        return ok(realms);
      },
    },
    {
      path: '/system/getDefaultRealm',
      policy: read,
      handler: async (ctx) => {
        const d = directory(ctx);
        const def = d.defaultRealm();
        return ok(def ? d.describeRealms(def) : {});
      },
    },
    {
      path: '/system/delRealm',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const realm = ctx.params.require('realm');
        ctx.audit.info = realm;
        return ok({ delRealm: { result: await directory(ctx).deleteRealm(realm) } });
      },
    },
    {
      path: '/system/setDefaultRealm',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        const realm = (ctx.params.get('realm') ?? '').trim().toLowerCase();
        ctx.audit.info = realm;
        return ok(await directory(ctx).setDefaultRealm(realm));
      },
    },
    {
      path: '/system/resolverCacheFlush',
      methods: ['POST'],
      policy: write,
      handler: async (ctx) => {
        directory(ctx).flushCache();
        return ok(true);
      },
    },
    {
      path: '/admin/userlist',
      policy: { scope: 'admin', action: 'userlist' },
      handler: async (ctx) => {
        const d = directory(ctx);
        const p = ctx.params;
        const realm = (p.get('realm') || d.defaultRealm() || '').toLowerCase();
        if (!realm || !d.realmExists(realm)) throw Errors.unknownRealm({ realm });
        const allowed = ctx.admin?.realms ?? '*';
        if (allowed !== '*' && !allowed.includes(realm)) {
          throw Errors.notAllowed({ what: 'for this realm' });
        }
        const search: UserSearch = {};
        for (const f of SEARCH_FIELDS) {
          const v = p.get(f);
          if (v !== undefined && v !== '') search[f] = v;
        }
        const resolver = p.get('resConf') || undefined;
        const paged = p.has('page') || p.has('rp') || p.has('pagesize');
        const pagesize = p.int('rp', p.int('pagesize', 50, 1, MAX_USERLIST), 1, MAX_USERLIST);
        const page = p.int('page', 1, 1, 1_000_000);
        const limit = paged ? Math.min(page * pagesize + 1, MAX_USERLIST + 1) : MAX_USERLIST;
        const users = await d.listUsers(realm, search, limit, resolver);
        ctx.audit.realm = realm;
        ctx.audit.info = `${users.length} user(s)`;
        if (!paged) return ok(users.map(userEntry));
        const start = (page - 1) * pagesize;
        const rows = users.slice(start, start + pagesize);
        return ok(rows.map(userEntry), { page, pagesize, count: rows.length, more: users.length > start + pagesize });
      },
    },
  ]);
}
