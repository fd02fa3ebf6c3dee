import { providerConfigRefusal } from '../delivery/config.ts';
import { requestPhoneProblem } from '../util/phone.ts';
import type { DeliveryService, ProviderView } from '../delivery/service.ts';
import { parseActions } from '../policy/parse.ts';
import { providerModules } from '../delivery/registry.ts';
import { Errors } from '../errors.ts';
import { defineRoutes, ok, type Api, type RouteContext, type RouteResult } from './route.ts';

/** LinOTP provider types; otpd offers sms and email (push/voice are refused with a clear message). */
function providerType(ctx: RouteContext): 'sms' | 'email' {
  const type = ctx.params.require('type').trim().toLowerCase();
  if (type === 'sms' || type === 'email') return type;
  if (type === 'push' || type === 'voice') throw Errors.providerRefused({ reason: `otpd has no ${type} providers (sms and email only)` });
  throw Errors.unknownProviderType({ type });
}

const delivery = (ctx: RouteContext): DeliveryService => ctx.services.delivery;

/** The provider a write names (`type`, `name`), written to the audit row as `type:name`. */
function namedProvider(ctx: RouteContext): { type: 'sms' | 'email'; name: string } {
  const type = providerType(ctx);
  const name = ctx.params.require('name');
  ctx.audit.info = `${type}:${name}`;
  return { type, name };
}

/** A write that did not happen: LinOTP's `value: false` with the reason; the audit row records a failure. */
function notDone(ctx: RouteContext, message: string): RouteResult {
  ctx.audit.success = false;
  return ok(false, { message });
}

/** Provider config problems (invalid JSON with its position, schema paths) as one LinOTP error. */
function configError(e: unknown): never {
  throw providerConfigRefusal(e);
}

/** Epoch milliseconds or an ISO date. */
function timeParam(ctx: RouteContext, name: string): number | undefined {
  const v = ctx.params.get(name);
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw Errors.invalidParameter({ name, why: 'use epoch milliseconds or an ISO date' });
  return t;
}

/** A provider's health in getProvider's `detail.health` (see docs/delivery.md, "Failover chain"). */
interface ProviderHealthAnswer {
  /** `healthy`; `backing-off` (skipped until `down_until`); `probing` (back-off over or its probe answered: used again, the next send decides); `unusable` (see `error`). */
  status: 'healthy' | 'backing-off' | 'probing' | 'unusable';
  failures: number;
  /** Epoch ms the back-off ends; 0 when healthy. */
  down_until: number;
  last_error: string;
  error?: string;
}

function healthAnswer(v: ProviderView, now: number): ProviderHealthAnswer {
  const h = v.health;
  const status = v.error ? 'unusable' : h.failures === 0 ? 'healthy' : h.downUntil > now ? 'backing-off' : 'probing';
  return { status, failures: h.failures, down_until: h.failures === 0 ? 0 : h.downUntil, last_error: h.lastError, ...(v.error ? { error: v.error } : {}) };
}

/**
 * The failover chains the `authentication` policies give (`sms_provider=a b`), in the order the
 * dispatcher tries them; a message whose user no such policy matches goes to the default provider.
 */
function failoverChains(ctx: RouteContext, type: 'sms' | 'email') {
  const action = `${type}_provider`;
  return ctx.services.policies.list({ scope: 'authentication', action, includeInactive: true }).map((p) => {
    let value: unknown;
    try {
      value = parseActions('authentication', p.action, { onUnsupported: () => undefined }).get(action);
    } catch {
      value = undefined; // a stored policy that does not parse applies to nobody
    }
    const providers = [...new Set(String(value ?? '').split(/[\s,]+/).filter(Boolean))];
    return { policy: p.name, active: p.active, realm: p.realm, user: p.user, client: p.client, providers };
  });
}

/**
 * Provider administration (spec 1.5, 6.1): /system/setProvider, getProvider,
 * setDefaultProvider, delProvider, testProvider; and otpd's delivery log
 * (/system/deliveryLog). Secrets come back as `__CENSORED__`, which sent back
 * unchanged keeps the stored value.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/system/setProvider',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const p = ctx.params;
        const { type, name } = namedProvider(ctx);
        try {
          await delivery(ctx).setProvider({
            type,
            name,
            className: p.require('class'),
            config: p.require('config'),
            timeout: p.require('timeout'),
            isDefault: p.bool('default'),
            managed: p.get('managed') || undefined,
          });
        } catch (e) {
          configError(e);
        }
        return ok(true);
      },
    },
    {
      path: '/system/getProvider',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const type = providerType(ctx);
        const name = ctx.params.get('name') || undefined;
        const all = await delivery(ctx).listProviders(type);
        const now = ctx.services.clock.now();
        const out: Record<string, Record<string, unknown>> = {};
        const health: Record<string, ProviderHealthAnswer> = {};
        for (const v of all.filter((p) => !name || p.name === name)) {
          out[v.name] = {
            Class: v.className,
            Timeout: v.timeout,
            ...(v.managed ? { Managed: true } : { Config: JSON.stringify(v.config) }),
            Default: v.isDefault,
          };
          health[v.name] = healthAnswer(v, now);
        }
        // LinOTP's value stays as it was; otpd's health and failover order ride in `detail`
        return ok(out, { health, default: all.find((p) => p.isDefault)?.name ?? null, failover: failoverChains(ctx, type) });
      },
    },
    {
      path: '/system/getProviderDef',
      policy: { scope: 'system', action: 'read' },
      audit: false,
      handler: async (ctx) => {
        const type = ctx.params.get('type') ? providerType(ctx) : undefined;
        const out: Record<string, unknown> = {};
        // the demo's capture providers exist only in demo mode
        for (const m of providerModules.filter((x) => (!type || x.type === type) && (!x.demoOnly || ctx.services.demo))) {
          // the TypeBox schema is JSON Schema: sent as JSON, so a page in-process sees what a client sees
          out[m.className] = { type: m.type, name: m.displayName, aliases: [...m.aliases], schema: JSON.parse(JSON.stringify(m.schema)) as unknown };
        }
        return ok(out);
      },
    },
    {
      path: '/system/setDefaultProvider',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const { type, name } = namedProvider(ctx);
        if (await delivery(ctx).setDefaultProvider(type, name)) return ok(true);
        return notDone(ctx, `Unknown provider! '${name}'`);
      },
    },
    {
      path: '/system/delProvider',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const { type, name } = namedProvider(ctx);
        const res = await delivery(ctx).deleteProvider(type, name, ctx.params.get('managed') || undefined);
        if (res.ok) return ok(true);
        return notDone(ctx, res.message);
      },
    },
    {
      path: '/system/testProvider',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const type = providerType(ctx);
        const name = ctx.params.require('name');
        const to = ctx.params.get('to') ?? ctx.params.get('phone') ?? ctx.params.get('email');
        if (!to) throw Errors.missingParameter({ name: 'to' });
        const unencodedPlus = type === 'sms' ? requestPhoneProblem(to) : null;
        if (unencodedPlus) throw Errors.invalidParameter({ name: 'to', why: unencodedPlus });
        const text = ctx.params.get('message') || undefined;
        if (text !== undefined && text.length > 480) throw Errors.invalidParameter({ name: 'message', why: 'longer than 480 characters' });
        ctx.audit.info = `${type}:${name}`;
        const r = await delivery(ctx).testProvider(type, name, to, text);
        ctx.audit.success = r.ok;
        return ok(r.ok, { status: r.status, ...(r.error ? { message: r.error } : {}), ...(r.providerMessageId ? { provider_message_id: r.providerMessageId } : {}) });
      },
    },
    {
      path: '/system/deliveryLog',
      policy: { scope: 'system', action: 'read' },
      audit: false,
      handler: async (ctx) => {
        const p = ctx.params;
        const channel = p.get('type') ?? p.get('channel');
        if (channel !== undefined && channel !== '' && channel !== 'sms' && channel !== 'email') throw Errors.invalidParameter({ name: 'type', why: 'use sms or email' });
        const order = (p.get('sortorder') ?? '').toLowerCase();
        if (order !== '' && order !== 'asc' && order !== 'desc') throw Errors.invalidParameter({ name: 'sortorder', why: 'use asc or desc' });
        const log = await delivery(ctx).deliveryLog({
          status: p.get('status') || undefined,
          channel: channel || undefined,
          user: p.get('user') || undefined,
          realm: p.get('realm') || undefined,
          serial: p.get('serial') || undefined,
          since: timeParam(ctx, 'since'),
          until: timeParam(ctx, 'until'),
          page: p.int('page', 1, 1, 1_000_000),
          size: p.int('pagesize', p.int('rp', 50, 1, 500), 1, 500),
          ...(order === 'asc' ? { order: 'asc' as const } : {}),
        });
        return ok(log);
      },
    },
  ]);
}
