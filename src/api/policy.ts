/**
 * Policy administration, LinOTP-compatible (spec 1.5): /system/setPolicy,
 * getPolicy (filters, export=true → policy.cfg), delPolicy, importPolicy,
 * checkPolicy (LinOTP's `allowed`/`policy` plus otpd's simulation and its explanation in
 * plain sentences) and
 * getPolicyDef (the action catalogue).
 */
import { Errors } from '../errors.ts';
import { ACTIONS, SCOPES, type Scope, type ValueType, isScope } from '../policy/catalogue.ts';
import type { Policy, PolicyInput } from '../policy/match.ts';
import { explainSimulation } from '../policy/explain.ts';
import { formatPolicyFile, parsePolicyFile, withImportDefaults } from '../policy/policyfile.ts';
import type { Params } from './params.ts';
import { type Api, defineRoutes, ok, raw } from './route.ts';

const READ = { scope: 'system' as const, action: 'read' };
const WRITE = { scope: 'system' as const, action: 'write' };
const ATTRIBUTES = ['action', 'scope', 'realm', 'user', 'time', 'client', 'active'] as const;

/** LinOTP's getPolicy entry: fields in this order, active as "True"/"False". */
function linotpPolicy(p: Policy) {
  return {
    action: p.action,
    scope: p.scope,
    realm: p.realm,
    user: p.user,
    time: p.time,
    client: p.client,
    active: p.active ? 'True' : 'False',
    name: p.name,
  };
}

function byName(policies: Policy[]): Record<string, ReturnType<typeof linotpPolicy>> {
  return Object.fromEntries(policies.map((p) => [p.name, linotpPolicy(p)]));
}

function requireNonEmpty(params: Params, key: string): string {
  const v = params.require(key);
  if (v.trim() === '') throw Errors.invalidParameter({ name: key, why: 'must not be empty' });
  return v;
}

/** LinOTP's getPolicyDef type names. */
function linotpType(t: ValueType): { type: string; value?: (string | number)[] } {
  switch (t.kind) {
    case 'bool':
      return { type: 'bool' };
    case 'int':
      return t.min !== undefined && t.max !== undefined && t.max - t.min < 100
        ? { type: 'int', value: Array.from({ length: t.max - t.min + 1 }, (_, i) => t.min! + i) }
        : { type: 'int' };
    case 'set':
      return { type: 'set', value: [...t.values] };
    default:
      return { type: 'str' };
  }
}

export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/system/setPolicy',
      methods: ['POST'],
      policy: WRITE,
      handler: async (ctx) => {
        const p = ctx.params;
        const name = requireNonEmpty(p, 'name');
        const input: PolicyInput = {
          name,
          scope: requireNonEmpty(p, 'scope'),
          action: requireNonEmpty(p, 'action'),
          realm: p.require('realm'),
          user: p.get('user') ?? '',
          client: p.get('client') ?? '',
          time: p.get('time') ?? '',
          active: p.get('active') ?? 'True',
        };
        ctx.audit.info = name;
        ctx.audit.actionDetail = `scope=${input.scope}, action=${input.action}`.slice(0, 500);
        await ctx.services.policies.set(input, { enforce: p.bool('enforce') });
        return ok({ [`setPolicy ${name}`]: Object.fromEntries(ATTRIBUTES.map((a) => [a, true])) });
      },
    },
    {
      path: '/system/getPolicy',
      policy: READ,
      handler: async (ctx) => {
        const p = ctx.params;
        const name = p.get('name');
        const list = ctx.services.policies.list({
          name: name === undefined || name === '' ? undefined : name,
          scope: p.get('scope') || undefined,
          realm: p.get('realm') || undefined,
          action: p.get('action') || undefined,
          user: p.get('user') || undefined,
          includeInactive: p.bool('display_inactive'),
        });
        ctx.audit.info = `name = ${name ?? ''}, realm = ${p.get('realm') ?? ''}, scope = ${p.get('scope') ?? ''}`;
        if ((p.get('export') ?? '').toLowerCase() === 'true') {
          return raw(formatPolicyFile(list), 'text/plain; charset=utf-8', { 'content-disposition': 'attachment; filename="policy.cfg"' });
        }
        return ok(byName(list));
      },
    },
    {
      path: '/system/delPolicy',
      methods: ['POST'],
      policy: WRITE,
      handler: async (ctx) => {
        const names = ctx.params.list('name');
        if (names.length === 0) throw Errors.missingParameter({ name: 'name' });
        for (const n of names) {
          if (!/^[A-Za-z0-9_]+$/.test(n)) {
            throw Errors.invalidPolicyName();
          }
        }
        const deleted = await ctx.services.policies.delete(names, { enforce: ctx.params.bool('enforce') });
        const result: Record<string, boolean> = {};
        for (const n of deleted) for (const a of ATTRIBUTES) result[`linotp.Policy.${n}.${a}`] = true;
        ctx.audit.info = names.join(',');
        ctx.audit.success = deleted.length > 0;
        return ok({ delPolicy: { result } });
      },
    },
    {
      path: '/system/importPolicy',
      methods: ['POST'],
      policy: WRITE,
      handler: async (ctx) => {
        // `file`: LinOTP's multipart upload (api/multipart.ts) or the file's text as a form field.
        // The policies that compile are stored; each refused one is listed with its reason.
        const file = ctx.params.get('file');
        if (file === undefined) throw Errors.missingParameter({ name: 'file' });
        if (file.trim() === '') throw Errors.policyFileEmpty();
        const inputs = withImportDefaults(parsePolicyFile(file));
        const { imported, refused } = await ctx.services.policies.importEach(inputs, { enforce: ctx.params.bool('enforce') });
        // nothing of the file could be stored: an error naming every refusal (2012), as setPolicy answers
        if (imported.length === 0 && refused.length > 0) await ctx.services.policies.import(inputs, { enforce: ctx.params.bool('enforce') });
        ctx.audit.info = `Policies imported: ${imported.join(', ')}${refused.length ? `; refused: ${refused.map((r) => r.name).join(', ')}` : ''}`.slice(0, 500);
        ctx.audit.success = refused.length === 0;
        return ok(imported.length, { imported, refused });
      },
    },
    {
      path: '/system/checkPolicy',
      policy: READ,
      handler: async (ctx) => {
        const p = ctx.params;
        for (const key of ['user', 'realm', 'scope', 'action', 'client']) {
          if (!p.has(key)) throw Errors.missingParameter({ name: key });
        }
        const scope = p.require('scope');
        if (!isScope(scope)) throw Errors.invalidParameter({ name: 'scope', why: `unknown scope (one of ${SCOPES.join(', ')})` });
        const action = p.require('action');
        const user = p.require('user');
        const realm = p.require('realm');
        const client = p.require('client');
        const resolver = p.get('resolver') || undefined;
        const svc = ctx.services.policies;
        // user attributes for #attr conditions: from the user store when the user exists
        let userInfo: Record<string, string> | undefined;
        let resolverFromStore: string | undefined;
        const users = ctx.services.users;
        if (users && user && !user.includes('*')) {
          const found = await users.findUser(user, realm).catch(() => null);
          if (found) {
            resolverFromStore = found.resolver;
            userInfo = Object.fromEntries(Object.entries(found.info).filter((e): e is [string, string] => typeof e[1] === 'string'));
          }
        }
        const simulation = svc.simulate({ user, realm, client, scope, action: action || undefined, resolver: resolver ?? resolverFromStore, userInfo });
        const value: Record<string, unknown> = {};
        const unsupported = simulation.actions[0]?.unsupported;
        if (action && unsupported !== undefined) {
          // no policy can grant or set it, whatever the scope holds
          value.allowed = false;
          value.policy = `action '${action}' (scope ${scope}) is not supported by otpd: ${unsupported}`;
        } else if (scope === 'admin' || scope === 'system' || scope === 'audit') {
          if (!svc.anyPolicy(scope)) {
            value.allowed = true;
            value.policy = `No policies in scope ${scope}`;
          } else {
            const granted = simulation.actions[0]?.admin?.grantedBy ?? [];
            value.allowed = simulation.actions[0]?.admin?.allowed ?? false;
            value.policy = byName(svc.list({ name: granted }).filter((x) => granted.includes(x.name)));
          }
        } else {
          const winners = new Set(simulation.actions.flatMap((a) => (a.source === 'policy' ? a.winners : [])));
          value.allowed = winners.size > 0;
          value.policy = byName(svc.list().filter((x) => winners.has(x.name)));
        }
        value.simulation = simulation;
        // the same answer in plain sentences (the management UI's simulator shows them)
        value.explanation = explainSimulation(simulation);
        ctx.audit.actionDetail = `action = ${action}, realm = ${realm}, scope = ${scope}`;
        return ok(value);
      },
    },
    {
      // Only the actions otpd acts on: LinOTP clients build their action lists from this
      // answer, and offering an action setPolicy refuses would be a trap. The shape stays
      // LinOTP's; a scope with no supported action (selfservice, notification) is {}.
      path: '/system/getPolicyDef',
      policy: READ,
      handler: async (ctx) => {
        const scope = ctx.params.get('scope') || undefined;
        if (scope !== undefined && !isScope(scope)) return ok({});
        const defs = (s: Scope) =>
          Object.fromEntries(
            ACTIONS.filter((a) => a.scope === s && a.status !== 'unsupported').flatMap((a) =>
              (a.family ?? [a.name]).map((n) => [n, { ...linotpType(a.type), desc: a.description }]),
            ),
          );
        return ok(scope !== undefined && isScope(scope) ? defs(scope) : Object.fromEntries(SCOPES.map((s) => [s, defs(s)])));
      },
    },
  ]);
}
