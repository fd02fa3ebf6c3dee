import { Errors } from '../errors.ts';
import { defineRoutes, ok, type Api } from './route.ts';

/**
 * Local administrators over HTTP (otpd's own; LinOTP has no such endpoints):
 * `/admin/admins/list`, `/admin/admins/create`, `/admin/admins/delete`. Like API keys they
 * count as system configuration (`system` scope: `read` to list, `write` to change). A
 * password is taken on create and never shown, audited or logged; no answer holds a hash.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/admin/admins/list',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const admins = await ctx.services.admins.list();
        return ok(admins.map((a) => ({ name: a.name, created: new Date(a.created_at).toISOString(), activeApiKeys: a.apiKeys })));
      },
    },
    {
      path: '/admin/admins/create',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        // a leaked API key must not be able to make itself a password login that outlives it
        if (ctx.admin!.via !== 'session') throw Errors.adminSessionRequired();
        const name = ctx.params.require('name');
        ctx.audit.info = name;
        await ctx.services.admins.add(name, ctx.params.require('password'));
        ctx.audit.actionDetail = `admin ${name} created`;
        return ok(true);
      },
    },
    {
      path: '/admin/admins/delete',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const name = ctx.params.require('name');
        ctx.audit.info = name;
        if (name === ctx.admin!.name) throw Errors.cannotRemoveSelf({ name });
        await ctx.services.admins.remove(name);
        ctx.audit.actionDetail = `admin ${name} removed with its sessions and API keys`;
        return ok(true);
      },
    },
  ]);
}
