/**
 * The help-desk calls of `/admin/*` (spec 1.4, 4.6): lost-token replacements, finding a token by
 * an OTP value, serial checks, copying a PIN or an owner between tokens, token realms, the
 * validity settings, and `/admin/setPin` (which otpd's token types have nothing for).
 */
import { Errors } from '../errors.ts';
import { copyTokenPin, copyTokenUser, issueLostToken, serialByOtp } from '../enrollment/helpdesk.ts';
import type { Token } from '../tokens/types.ts';
import { maskForOwner } from '../util/phone.ts';
import { defineRoutes, ok, type Api, type RouteContext } from './route.ts';
import { ownEntry } from '../util/json.ts';

const scopeOf = (ctx: RouteContext) => ({ realms: ctx.admin?.realms ?? ('*' as const) });

/** The token of parameter `name`, visible to this administrator (else the same "no token" either way). */
async function visibleToken(ctx: RouteContext, name: string): Promise<Token> {
  const serial = ctx.params.require(name);
  const token = await ctx.services.tokens.repository.bySerial(serial);
  const scope = scopeOf(ctx);
  if (!token || (scope.realms !== '*' && !token.realms.some((r) => scope.realms.includes(r)))) throw Errors.noSuchToken({ selector: `serial ${serial}` });
  return token;
}

const LOST_KINDS: Record<string, 'password' | 'email' | 'sms'> = { password: 'password', pw: 'password', email: 'email', sms: 'sms' };

export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/admin/losttoken',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'losttoken' },
      handler: async (ctx) => {
        const original = await visibleToken(ctx, 'serial');
        const kindParam = (ctx.params.get('type') || 'password').toLowerCase();
        const kind = ownEntry(LOST_KINDS, kindParam);
        if (!kind) throw Errors.invalidParameter({ name: 'type', why: 'use password, email or sms' });
        ctx.audit.serial = original.serial;
        ctx.audit.tokenType = original.type;
        if (original.userId === '') throw Errors.tokenNotAssigned({ serial: original.serial });
        const owner = await ctx.services.tokens.owner(original);
        if (!owner) throw Errors.tokenNotAssigned({ serial: original.serial });
        ctx.audit.user = owner.login;
        ctx.audit.realm = owner.realm;
        const res = await issueLostToken(ctx.services, original, owner, kind);
        ctx.audit.serial = `${original.serial},${res.serial}`;
        ctx.audit.tokenType = `${original.type},${res.type}`;
        ctx.audit.actionDetail = `lost token: ${res.serial} (${res.type}) valid until ${res.endDate}, ${original.serial} disabled`;
        const value: Record<string, unknown> = { serial: res.serial, type: res.type, end_date: res.endDate };
        if (res.password !== undefined) value.password = res.password;
        if (res.destination !== undefined) value[res.type === 'sms' ? 'phone' : 'email'] = maskForOwner(res.type === 'sms' ? 'sms' : 'email', res.destination);
        return ok(value, res.password !== undefined ? { message: 'the password is shown once: read it to the user now' } : undefined);
      },
    },
    {
      path: '/admin/getSerialByOtp',
      policy: { scope: 'admin', action: 'getserial' },
      handler: async (ctx) => {
        const p = ctx.params;
        const otp = p.require('otp');
        if (otp === '') throw Errors.invalidParameter({ name: 'otp', why: 'empty' });
        const realm = p.get('realm')?.toLowerCase();
        const allowed = scopeOf(ctx).realms;
        const realms = realm ? (allowed === '*' || allowed.includes(realm) ? [realm] : []) : allowed;
        const assigned = p.has('assigned') ? p.bool('assigned') : p.has('unassigned') ? !p.bool('unassigned') : undefined;
        const token = await serialByOtp(ctx.services.tokens, otp, { realms, type: p.get('type') || undefined, assigned }, ctx.services.clock.now());
        if (!token) {
          ctx.audit.success = false;
          return ok({ serial: '', user_login: '', user_resolver: '', user_resclass: '' });
        }
        ctx.audit.serial = token.serial;
        ctx.audit.tokenType = token.type;
        const owner = await ctx.services.tokens.owner(token).catch(() => null);
        return ok({ serial: token.serial, user_login: owner?.login ?? '', user_resolver: token.resolver, user_resclass: token.resolverClass });
      },
    },
    {
      path: '/admin/check_serial',
      policy: { scope: 'admin', action: 'show' },
      handler: async (ctx) => {
        const serial = ctx.params.require('serial');
        const repo = ctx.services.tokens.repository;
        if (!(await repo.serialExists(serial))) return ok({ unique: true, new_serial: serial });
        for (let i = 1; i < 100; i++) {
          const candidate = `${serial}_${String(i).padStart(2, '0')}`;
          if (!(await repo.serialExists(candidate))) return ok({ unique: false, new_serial: candidate });
        }
        return ok({ unique: false, new_serial: '' });
      },
    },
    {
      path: '/admin/copyTokenPin',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'copytokenpin' },
      handler: async (ctx) => {
        const from = await visibleToken(ctx, 'from');
        const to = await visibleToken(ctx, 'to');
        ctx.audit.serial = `${from.serial},${to.serial}`;
        await copyTokenPin(ctx.services.tokens, from, to);
        ctx.audit.actionDetail = `PIN of ${from.serial} copied to ${to.serial}`;
        return ok(true);
      },
    },
    {
      path: '/admin/copyTokenUser',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'copytokenuser' },
      handler: async (ctx) => {
        const from = await visibleToken(ctx, 'from');
        const to = await visibleToken(ctx, 'to');
        ctx.audit.serial = `${from.serial},${to.serial}`;
        await copyTokenUser(ctx.services.tokens, from, to, scopeOf(ctx));
        ctx.audit.actionDetail = `owner of ${from.serial} copied to ${to.serial}`;
        return ok(true);
      },
    },
    {
      path: '/admin/tokenrealm',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'set' },
      handler: async (ctx) => {
        const token = await visibleToken(ctx, 'serial');
        const realms = [...new Set(ctx.params.list('realms').map((r) => r.toLowerCase()))];
        if (!ctx.params.has('realms')) throw Errors.missingParameter({ name: 'realms' });
        for (const r of realms) if (!ctx.services.users.realmExists(r)) throw Errors.unknownRealm({ realm: r });
        ctx.services.tokens.assertRealmsAllowed(scopeOf(ctx), realms);
        ctx.audit.serial = token.serial;
        ctx.audit.tokenType = token.type;
        await ctx.services.tokens.repository.setRealms(token.id, realms);
        ctx.audit.actionDetail = `token realms: ${realms.join(',') || '(none)'}`;
        return ok(1);
      },
    },
    {
      path: '/admin/setValidity',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'set' },
      handler: async (ctx) => {
        const { tokens } = await ctx.services.tokens.select(ctx.params, scopeOf(ctx));
        ctx.audit.serial = tokens.map((t) => t.serial).join(',');
        if (tokens.length === 0) throw Errors.noSuchToken({ selector: ctx.params.has('serial') ? `serial ${ctx.params.list('serial').join(', ')}` : `user ${ctx.params.get('user')}` });
        return ok(await ctx.services.tokens.setValidity(tokens, ctx.params));
      },
    },
    {
      // spec 1.4: LinOTP's setPin sets the user (or SO) PIN of mOTP/OCRA2 tokens; otpd's types have none
      path: '/admin/setPin',
      methods: ['POST'],
      policy: { scope: 'admin', action: 'set' },
      handler: async (ctx) => {
        const token = await visibleToken(ctx, 'serial');
        if (!ctx.params.has('userpin') && !ctx.params.has('sopin')) throw Errors.missingParameter({ name: 'userpin' });
        ctx.audit.serial = token.serial;
        ctx.audit.tokenType = token.type;
        throw Errors.noUserPin({ serial: token.serial, type: token.type });
      },
    },
  ]);
}
