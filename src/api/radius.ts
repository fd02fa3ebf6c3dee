import { Errors } from '../errors.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';

const service = (ctx: RouteContext) => ctx.services.radiusClients;

/** Strict boolean parameter: a typo must not silently switch the BlastRADIUS protection off. */
function booleanParam(ctx: RouteContext, name: string, fallback: boolean): boolean {
  const raw = ctx.params.get(name);
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw Errors.invalidParameter({ name, why: 'use true or false' });
}

/** This node's RADIUS server re-reads its clients at once; other nodes follow through the revision watcher. */
async function notifyLocalNode(ctx: RouteContext): Promise<void> {
  await ctx.services.watcher.refresh();
}

/**
 * RADIUS client (NAS) management: /system/setRadiusClient, /system/getRadiusClients,
 * /system/delRadiusClient. Secrets are returned as `__CENSORED__`; sending that back
 * keeps the stored secret.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/system/setRadiusClient',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const p = ctx.params;
        const name = p.require('name');
        ctx.audit.info = name;
        const { created } = await service(ctx).set({
          name,
          address: p.require('address'),
          secret: p.require('secret'),
          realm: p.get('realm') ?? '',
          require_message_authenticator: booleanParam(ctx, 'require_message_authenticator', true),
        });
        ctx.audit.actionDetail = created ? 'created' : 'updated';
        await notifyLocalNode(ctx);
        return ok(true);
      },
    },
    {
      path: '/system/getRadiusClients',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const name = ctx.params.get('name');
        const clients = (await service(ctx).list()).filter((c) => name === undefined || c.name === name);
        return ok(Object.fromEntries(clients.map((c) => [c.name, c])));
      },
    },
    {
      path: '/system/delRadiusClient',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const name = ctx.params.require('name');
        ctx.audit.info = name;
        if (!(await service(ctx).remove(name))) throw Errors.noSuchRadiusClient({ name });
        await notifyLocalNode(ctx);
        return ok(true);
      },
    },
  ]);
}
