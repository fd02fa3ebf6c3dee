import { Type } from 'typebox';
import { CONFIG, FAMILIES, configDefaults, type ConfigSpec } from '../config/catalogue.ts';
import { checkConfigValue, planConfigWrite, settableConfigKey } from '../config/admin-write.ts';
import { describeType, isSecretSchema } from '../config/values.ts';
import { Errors } from '../errors.ts';
import { defineRoutes, ok, type Api } from './route.ts';

/** LinOTP's legacy provider keys: setting them imports the provider (DeliveryService.importLegacyProviders). */
const LEGACY_PROVIDER_KEYS = new Set(['SMSProvider', 'SMSProviderConfig', 'EmailProvider', 'EmailProviderConfig']);

/** How a form asks for a value of this type. */
type ValueKind = 'integer' | 'boolean' | 'choice' | 'list' | 'text' | 'secret';

/** One catalogue entry as `/system/getConfigCatalogue` shows it (a family has `family: true` and no default). */
function entryView(key: string, s: ConfigSpec, stored?: boolean) {
  const schema = s.type as { minimum?: number; maximum?: number; enum?: readonly (string | number)[]; description?: string };
  const kind: ValueKind = isSecretSchema(s.type) ? 'secret'
    : Array.isArray(schema.enum) ? 'choice'
      : Type.IsInteger(s.type) ? 'integer'
        : Type.IsBoolean(s.type) ? 'boolean'
          : Type.IsArray(s.type) ? 'list' : 'text';
  return {
    key, kind, type: s.refused ? null : describeType(s.type),
    ...(kind === 'integer' ? { minimum: schema.minimum, maximum: schema.maximum } : {}),
    ...(kind === 'choice' ? { choices: schema.enum!.map(String) } : {}),
    ...(kind === 'text' && schema.description ? { format: schema.description } : {}),
    default: s.default ?? null, help: s.help, origin: s.origin,
    ...(s.refused ? { refused: s.refused } : {}),
    ...(stored === undefined ? { family: true } : { stored }),
  };
}

export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/system/setConfig',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const p = ctx.params;
        const config = ctx.services.config;
        const out: Record<string, boolean> = {};
        if (p.has('key')) {
          const key = p.require('key').replace(/^linotp\./, '');
          const write = planConfigWrite(config, 'key', key, p.require('value'), p.get('type') ?? '');
          if (write) await config.set(key, write.value, write.type, p.get('description') ?? '');
          out[`setConfig ${key}`] = true;
          ctx.audit.info = key;
          if (LEGACY_PROVIDER_KEYS.has(key)) await ctx.services.delivery.importLegacyProviders();
          return ok(out);
        }
        const names = p.keys().filter((k) => !k.endsWith('.type') && !k.endsWith('.desc') && k !== 'session' && k !== 'csrf_token');
        if (names.length === 0) throw Errors.missingParameter({ name: 'key' });
        // every key is checked (placeholders resolved) before any is written
        const writes = names.map((raw) => {
          const key = raw.replace(/^linotp\./, '');
          return { key, write: planConfigWrite(config, raw, key, p.get(raw) ?? '', p.get(`${raw}.type`) ?? ''), description: p.get(`${raw}.desc`) ?? '' };
        });
        for (const { key, write, description } of writes) {
          if (write) await config.set(key, write.value, write.type, description);
          out[`setConfig ${key}:${config.shown(key) ?? ''}`] = true;
        }
        ctx.audit.info = names.join(',');
        if (names.some((n) => LEGACY_PROVIDER_KEYS.has(n.replace(/^linotp\./, '')))) await ctx.services.delivery.importLegacyProviders();
        return ok(out);
      },
    },
    {
      path: '/system/getConfig',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const config = ctx.services.config;
        const key = ctx.params.get('key');
        if (key !== undefined) {
          const k = key.replace(/^linotp\./, '');
          return ok({ [`getConfig ${k}`]: config.shown(k) ?? null });
        }
        const all: Record<string, string> = configDefaults();
        for (const e of config.shownEntries()) all[e.key] = e.value;
        return ok(Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b))));
      },
    },
    {
      // the catalogue itself (otpd's own; LinOTP has none), so a form can offer each key with its type
      path: '/system/getConfigCatalogue',
      policy: { scope: 'system', action: 'read' },
      handler: async (ctx) => {
        const stored = new Set(ctx.services.config.shownEntries().map((e) => e.key));
        return ok({
          keys: Object.entries(CONFIG).map(([key, s]) => entryView(key, s as ConfigSpec, stored.has(key))),
          families: FAMILIES.map((f) => entryView(f.key, f)),
        });
      },
    },
    {
      path: '/system/delConfig',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const key = ctx.params.require('key').replace(/^linotp\./, '');
        await ctx.services.config.delete(key);
        ctx.audit.info = key;
        return ok({ [`delConfig ${key}`]: true });
      },
    },
    {
      path: '/system/setDefault',
      methods: ['POST'],
      policy: { scope: 'system', action: 'write' },
      handler: async (ctx) => {
        const known = ['DefaultMaxFailCount', 'DefaultSyncWindow', 'DefaultCountWindow', 'DefaultOtpLen', 'DefaultResetFailCount'];
        const given = known.filter((k) => ctx.params.has(k));
        if (given.length === 0) throw Errors.usage({ usage: `set one of ${known.join(', ')}` });
        for (const k of given) checkConfigValue(settableConfigKey(k, k), k, ctx.params.get(k)!);
        const out: Record<string, boolean> = {};
        for (const k of given) {
          await ctx.services.config.set(k, ctx.params.get(k)!);
          out[`set ${k}`] = true;
        }
        return ok(out);
      },
    },
  ]);
}
