import { isIP } from 'node:net';
import { CONFIG_DEFAULTS, LIMITS } from '../config/defaults.ts';
import { ErrorCodes, OtpdError, badParameter } from '../errors.ts';
import { defineRoutes, ok, type Api } from './route.ts';
import { limitProblem } from '../delivery/settings.ts';
import { PlaceholderWithoutSecretError } from '../config/secrets.ts';
import type { ConfigService } from '../config/service.ts';

const KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
/** LinOTP's legacy provider keys: setting them imports the provider (DeliveryService.importLegacyProviders). */
const LEGACY_PROVIDER_KEYS = new Set(['SMSProvider', 'SMSProviderConfig', 'EmailProvider', 'EmailProviderConfig']);

/** Keys whose values are bounded so one request's work stays bounded (security B.2 item 5). */
const BOUNDS: Record<string, [number, number]> = {
  DefaultMaxFailCount: [1, LIMITS.maxMaxFail],
  DefaultCountWindow: [1, LIMITS.maxCountWindow],
  DefaultSyncWindow: [1, LIMITS.maxSyncWindow],
  DefaultOtpLen: [6, 10],
  DefaultChallengeValidityTime: [1, 3600],
  SMSProviderTimeout: [1, 600],
  EmailChallengeValidityTime: [1, 600],
  TransactionIdLength: [12, 17],
  ChallengeMaxAttempts: [1, 100],
  'totp.timeWindow': [0, LIMITS.maxTotpWindowSteps],
  DeliveryWaitMs: [100, 60_000],
  DeliveryPollMs: [100, 60_000],
  DeliveryBackoffMs: [1000, 3_600_000],
  DeliveryBackoffMaxMs: [1000, 86_400_000],
  DeliveryRetryMs: [100, 3_600_000],
  DeliveryRetryMaxMs: [100, 86_400_000],
  DeliveryLogRetentionDays: [1, 3650],
  UserCacheTTL: [0, 86_400],
  AccountFailDelayAfter: [1, 100],
  AccountFailDelayBase: [1, 3600],
  AccountFailDelayMax: [1, 86_400],
  AccountMaxFail: [1, LIMITS.maxMaxFail],
  AccountMaxParallel: [1, 100],
};

/** Host policy settings of providers and user stores (util/net.ts createHostPolicy). */
const HOST_SWITCHES = new Set(['DeliveryDenyPrivateHosts', 'UserStoreDenyPrivateHosts']);
const HOST_LISTS = new Set(['DeliveryAllowedHosts', 'UserStoreAllowedHosts']);
const HOST_PATTERN = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function checkValue(key: string, value: string): void {
  const bound = BOUNDS[key];
  if (bound) {
    if (!/^\d+$/.test(value)) throw badParameter(key, 'not an integer');
    const n = Number(value);
    if (n < bound[0] || n > bound[1]) throw badParameter(key, `must be between ${bound[0]} and ${bound[1]}`);
  }
  if (key.startsWith('DeliveryLimit')) {
    const problem = limitProblem(value);
    if (problem) throw badParameter(key, problem);
  }
  if (key === 'DeliveryPhoneValidation' && !['valid', 'possible'].includes(value)) throw badParameter(key, "use 'valid' or 'possible'");
  if (key === 'RadiusReplyAttributes' && value !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw badParameter(key, `invalid JSON: ${(e as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw badParameter(key, 'must be a JSON object of attribute name to template string');
    }
  }
  if (HOST_SWITCHES.has(key) && !/^(true|false|1|0|yes|no|on|off)$/i.test(value.trim())) throw badParameter(key, 'use True or False');
  if (HOST_LISTS.has(key)) {
    const bad = value.split(',').map((h) => h.trim()).filter((h) => h !== '' && !HOST_PATTERN.test(h) && isIP(h) === 0);
    if (bad.length > 0) throw badParameter(key, `not a host name or *.domain pattern: ${bad.join(', ')}`);
  }
  if (key === 'hotp.hashlib' && !['sha1', 'sha256', 'sha512'].includes(value)) throw badParameter(key, 'use sha1, sha256 or sha512');
  if (value.length > 4096) throw badParameter(key, 'value longer than 4096 characters');
}

/** The admin write for one key, placeholders resolved (null: the stored entry stays as it is); refusals name the parameter. */
function resolveWrite(config: ConfigService, param: string, key: string, value: string, type: string) {
  try {
    return config.resolveAdminWrite(key, value, type);
  } catch (e) {
    if (e instanceof PlaceholderWithoutSecretError) throw badParameter(param, e.message);
    throw e;
  }
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
          if (!KEY.test(key)) throw badParameter('key', 'use 1-128 of A-Z a-z 0-9 _ . : -');
          const value = p.require('value');
          checkValue(key, value);
          const write = resolveWrite(config, 'value', key, value, p.get('type') ?? '');
          if (write) await config.set(key, write.value, write.type, p.get('description') ?? '');
          out[`setConfig ${key}`] = true;
          ctx.audit.info = key;
          if (LEGACY_PROVIDER_KEYS.has(key)) await ctx.services.delivery.importLegacyProviders();
          return ok(out);
        }
        const names = p.keys().filter((k) => !k.endsWith('.type') && !k.endsWith('.desc') && k !== 'session' && k !== 'csrf_token');
        if (names.length === 0) throw new OtpdError(ErrorCodes.parameter, "Missing parameter: 'key'");
        // every key is checked (placeholders resolved) before any is written
        const writes = names.map((raw) => {
          const key = raw.replace(/^linotp\./, '');
          if (!KEY.test(key)) throw badParameter(raw, 'invalid config key');
          const value = p.get(raw) ?? '';
          checkValue(key, value);
          return { key, write: resolveWrite(config, raw, key, value, p.get(`${raw}.type`) ?? ''), description: p.get(`${raw}.desc`) ?? '' };
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
        const all: Record<string, string> = { ...CONFIG_DEFAULTS };
        for (const e of config.shownEntries()) all[e.key] = e.value;
        return ok(Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b))));
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
        if (given.length === 0) throw new OtpdError(ErrorCodes.usage, `Usage: set one of ${known.join(', ')}`);
        for (const k of given) checkValue(k, ctx.params.get(k)!);
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
