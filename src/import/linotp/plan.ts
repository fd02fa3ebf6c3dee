import { decryptLinotpConfigValue, decryptLinotpSeed, isLinotpPinHash, LINOTP_PIN_MARKER, type LinotpKeys } from '../../crypto/linotp.ts';
import type { KeyRing } from '../../crypto/keyring.ts';
import { HASHES, type HashName } from '../../otp/hotp.ts';
import type { PolicyInput } from '../../policy/match.ts';
import { LIMITS } from '../../tokens/limits.ts';
import type { ImportedToken } from '../../tokens/repository.ts';
import { tokenProblem } from '../tokens.ts';
import type { LinotpConfigRow, LinotpSnapshot } from './source.ts';

/** Something of the LinOTP database otpd does not take, and why. */
export interface Refusal {
  kind: 'token' | 'policy' | 'config' | 'provider' | 'resolver' | 'realm';
  name: string;
  reason: string;
}

export interface PlannedProvider {
  type: 'sms' | 'email';
  name: string;
  className: string;
  /** JSON text, decrypted (a secret: never printed). */
  config: string;
  timeout: string;
  isDefault: boolean;
}

/** What the LinOTP database holds, translated to otpd's terms; `apply.ts` checks and stores it. */
export interface LinotpPlan {
  resolvers: { name: string; type: string; params: Record<string, string> }[];
  realms: { name: string; resolvers: string[] }[];
  defaultRealm?: string;
  policies: PolicyInput[];
  providers: PlannedProvider[];
  /** System configuration entries, values decrypted; `secret` ones are never printed. */
  config: { key: string; value: string; secret: boolean }[];
  /** Tokens with their seeds sealed under otpd's key, and the seeds in clear to compare with existing tokens. */
  tokens: { row: ImportedToken; secret: Buffer }[];
  refused: Refusal[];
  /** Unsupported token types and their serials. */
  skippedTypes: Map<string, string[]>;
  /** Changes made on the way in (a value clamped to otpd's limit, a key dropped), one line each. */
  notes: string[];
}

/** Token types otpd has; LinOTP's others (ocra2, motp, yubikey, remote, radius, qr, push, …) are skipped. */
const TOKEN_TYPES = new Set(['hmac', 'totp', 'sms', 'email', 'spass', 'pw']);
/** Token info keys otpd reads; others are dropped with a note (nothing is stored that otpd ignores). */
const INFO_KEYS: Record<string, readonly string[]> = {
  hmac: ['hashlib'],
  totp: ['hashlib', 'timeStep', 'timeShift'],
  sms: ['hashlib', 'phone'],
  email: ['hashlib', 'email_address'],
  spass: [],
  pw: [],
};

const RESOLVER_KEY = /^(\w+resolver)\.(\w+)\.([A-Za-z0-9_-]+)$/;
const PROVIDER_KEY = /^(SMS|Email|Push|Voice)Provider\.([A-Za-z0-9_-]+)(?:\.(Config|Timeout|Managed))?$/;
const PROVIDER_TYPES: Record<string, 'sms' | 'email' | undefined> = { SMS: 'sms', Email: 'email' };
const POLICY_ATTRS = new Set(['action', 'scope', 'realm', 'user', 'client', 'time', 'active']);

const truthy = (v: unknown): boolean => ['1', 'true', 't', 'yes'].includes(String(v ?? '').trim().toLowerCase());
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const num = (v: unknown, fallback: number): number => {
  const n = Number(v);
  return v === null || v === undefined || v === '' || !Number.isFinite(n) ? fallback : Math.trunc(n);
};

/** A config entry's name without LinOTP's prefix, and whether LinOTP stored it encrypted. */
function entryName(row: LinotpConfigRow): { name: string; encrypted: boolean } {
  const encrypted = row.key.startsWith('enclinotp.') || ['password', 'encrypted_data'].includes(row.type.toLowerCase());
  return { name: row.key.replace(/^(enc)?linotp\./, ''), encrypted };
}

/**
 * Translates a LinOTP snapshot: config entries into resolvers, realms, policies, providers and
 * system config; token rows into otpd token rows (seeds decrypted with LinOTP's key and sealed
 * with otpd's, PINs kept in LinOTP's hash format behind LINOTP_PIN_MARKER). Pure except for
 * the random IVs of the sealing; nothing is stored here.
 */
export function planLinotpImport(snapshot: LinotpSnapshot, keys: LinotpKeys, keyring: KeyRing, defaults: { countWindow: number; syncWindow: number; maxFail: number; totpWindow: number; now: number }): LinotpPlan {
  const plan: LinotpPlan = { resolvers: [], realms: [], policies: [], providers: [], config: [], tokens: [], refused: [], skippedTypes: new Map(), notes: [] };
  const resolvers = new Map<string, { type: string; params: Record<string, string> }>();
  const policies = new Map<string, Record<string, string>>();
  const providers = new Map<string, { type: string; name: string; className?: string; config?: string; timeout?: string; managed?: boolean }>();
  const defaultProviders = new Map<string, string>();

  for (const row of snapshot.config) {
    const { name, encrypted } = entryName(row);
    let value = row.value;
    if (encrypted) {
      try {
        value = decryptLinotpConfigValue(keys, row.value);
      } catch (e) {
        plan.refused.push({ kind: 'config', name, reason: (e as Error).message });
        continue;
      }
    }
    const policy = /^Policy\.([^.]+)\.(\w+)$/.exec(name);
    if (policy) {
      const [, pname, attr] = policy as unknown as [string, string, string];
      if (!POLICY_ATTRS.has(attr)) {
        plan.refused.push({ kind: 'policy', name: pname, reason: `unknown policy attribute '${attr}'` });
        continue;
      }
      policies.set(pname, { ...(policies.get(pname) ?? {}), [attr]: value });
      continue;
    }
    const realm = /^useridresolver\.group\.(.+)$/.exec(name);
    if (realm) {
      plan.realms.push({ name: realm[1]!.toLowerCase(), resolvers: value.split(',').map((s) => s.trim()).filter(Boolean) });
      continue;
    }
    const resolver = RESOLVER_KEY.exec(name);
    if (resolver) {
      const [, type, field, rname] = resolver as unknown as [string, string, string, string];
      const entry = resolvers.get(rname) ?? { type, params: {} };
      if (entry.type !== type) plan.refused.push({ kind: 'resolver', name: rname, reason: `defined as both ${entry.type} and ${type}` });
      entry.params[field] = value;
      resolvers.set(rname, entry);
      continue;
    }
    if (name === 'DefaultRealm') {
      if (value.trim() !== '') plan.defaultRealm = value.trim().toLowerCase();
      continue;
    }
    const defaultProvider = /^Provider\.Default\.(\w+)_provider$/.exec(name);
    if (defaultProvider) {
      defaultProviders.set(defaultProvider[1]!.toLowerCase(), value);
      continue;
    }
    const provider = PROVIDER_KEY.exec(name);
    if (provider) {
      const [, kind, pname, attr] = provider as unknown as [string, string, string, string | undefined];
      const key = `${kind}\0${pname}`;
      const entry = providers.get(key) ?? { type: kind, name: pname };
      if (attr === 'Config') entry.config = value;
      else if (attr === 'Timeout') entry.timeout = value;
      else if (attr === 'Managed') entry.managed = true;
      else entry.className = value;
      providers.set(key, entry);
      continue;
    }
    if (name === 'policy_action_validation') {
      if (!truthy(value)) plan.notes.push('config policy_action_validation=False dropped: otpd always validates policy actions (every policy is checked on the way in)');
      continue;
    }
    plan.config.push({ key: name, value, secret: encrypted });
  }

  for (const [name, r] of [...resolvers].sort(([a], [b]) => a.localeCompare(b))) plan.resolvers.push({ name, ...r });
  for (const [name, attrs] of policies) {
    plan.policies.push({ name, scope: attrs.scope ?? '', action: attrs.action ?? '', realm: attrs.realm, user: attrs.user, client: attrs.client, time: attrs.time, active: attrs.active });
  }
  for (const p of providers.values()) {
    const type = PROVIDER_TYPES[p.type];
    if (!type) {
      plan.refused.push({ kind: 'provider', name: p.name, reason: `${p.type} providers: otpd has no ${p.type.toLowerCase()} tokens` });
      continue;
    }
    if (!p.className) {
      plan.refused.push({ kind: 'provider', name: p.name, reason: 'no provider class' });
      continue;
    }
    if (p.managed) plan.notes.push(`provider ${type}/${p.name}: LinOTP's "managed" protection is not carried over (otpd needs its password); set it again with /system/setProvider managed=…`);
    plan.providers.push({
      type, name: p.name, className: p.className, config: p.config ?? '{}', timeout: p.timeout ?? '5',
      isDefault: defaultProviders.get(type) === p.name,
    });
  }

  for (const raw of snapshot.tokens) planToken(raw, snapshot, keys, keyring, defaults, plan);
  return plan;
}

function planToken(raw: Record<string, unknown>, snapshot: LinotpSnapshot, keys: LinotpKeys, keyring: KeyRing, defaults: { countWindow: number; syncWindow: number; maxFail: number; totpWindow: number; now: number }, plan: LinotpPlan): void {
  const serial = str(raw.linotptokenserialnumber);
  const type = str(raw.linotptokentype).toLowerCase();
  if (!TOKEN_TYPES.has(type)) {
    plan.skippedTypes.set(type, [...(plan.skippedTypes.get(type) ?? []), serial]);
    return;
  }
  const refuse = (reason: string) => void plan.refused.push({ kind: 'token', name: serial, reason });
  let info: Record<string, unknown> = {};
  const infoText = str(raw.linotptokeninfo);
  if (infoText.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(infoText);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) info = parsed as Record<string, unknown>;
      else return refuse('token info is not a JSON object');
    } catch {
      return refuse('token info is not JSON');
    }
  }
  let secret: Buffer = Buffer.alloc(0);
  if (type !== 'spass') {
    try {
      secret = decryptLinotpSeed(keys, str(raw.linotpkeyenc), str(raw.linotpkeyiv));
    } catch (e) {
      return refuse((e as Error).message);
    }
  }
  if (type === 'pw' && /^\$\d\$|^\$[a-z0-9-]+\$/.test(secret.toString('utf8'))) {
    return refuse('LinOTP keeps only a hash of this static password; otpd needs it in clear (enroll a new pw token)');
  }
  const pinHash = str(raw.linotppinhash).trim();
  const pinIv = str(raw.linotpseed).trim();
  if (pinHash !== '' && !isLinotpPinHash(pinIv, pinHash)) {
    return refuse('the PIN is not stored as the salted SHA-256 hash of spec 9.2 (an encrypted PIN?); set a new PIN after importing by hand');
  }
  const hashlib = str(info.hashlib || 'sha1').toLowerCase();
  if (!HASHES.includes(hashlib as HashName)) return refuse(`hash algorithm ${hashlib} is not supported (sha1, sha256, sha512)`);
  const otplen = type === 'pw' ? secret.length : type === 'spass' ? 0 : num(raw.linotpotplen, 6);
  const timeStep = type === 'totp' ? num(info.timeStep, 30) : undefined;
  const problem = tokenProblem({ serial, type, secret, otplen, timeStep });
  if (problem) return refuse(problem);

  const kept: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (INFO_KEYS[type]!.includes(k)) kept[k] = str(v);
    else dropped.push(k);
  }
  if (type === 'totp') {
    kept.timeStep = String(timeStep);
    kept.timeWindow = String(defaults.totpWindow);
    kept.timeShift ??= '0';
    kept.hashlib = hashlib;
  }
  if (type === 'hmac' || type === 'sms' || type === 'email') kept.hashlib = hashlib;
  if (dropped.length > 0) plan.notes.push(`token ${serial}: token info ${dropped.sort().join(', ')} not carried over (otpd does not read ${dropped.length === 1 ? 'it' : 'them'})`);

  const clamp = (what: string, v: number, max: number, fallback: number): number => {
    const n = v > 0 ? v : fallback;
    if (n <= max) return n;
    plan.notes.push(`token ${serial}: ${what} ${n} is above otpd's limit ${max}: set to ${max}`);
    return max;
  };
  const maxFail = clamp('max fail', num(raw.linotpmaxfail, defaults.maxFail), LIMITS.maxMaxFail, defaults.maxFail);
  const resolverClass = str(raw.linotpidresclass);
  const userId = str(raw.linotpuserid);
  plan.tokens.push({
    secret,
    row: {
      serial, type, description: str(raw.linotptokendesc).slice(0, 255), keyEnc: keyring.encrypt('seed', secret), otplen,
      hashlib: hashlib as HashName,
      counter: Math.max(0, num(raw.linotpcount, 0)),
      countWindow: clamp('count window', num(raw.linotpcountwindow, defaults.countWindow), LIMITS.maxCountWindow, defaults.countWindow),
      syncWindow: clamp('sync window', num(raw.linotpsyncwindow, defaults.syncWindow), LIMITS.maxSyncWindow, defaults.syncWindow),
      maxFail,
      failCount: Math.min(Math.max(0, num(raw.linotpfailcount, 0)), maxFail),
      active: truthy(raw.linotpisactive),
      pinHash, pinSalt: pinHash === '' ? '' : `${LINOTP_PIN_MARKER}${pinIv.toLowerCase()}`,
      userId, resolver: userId === '' ? '' : resolverClass.slice(resolverClass.lastIndexOf('.') + 1), resolverClass: userId === '' ? '' : resolverClass,
      info: kept,
      realms: snapshot.tokenRealms.get(num(raw.linotptokenid, -1)) ?? [],
      createdAt: defaults.now,
    },
  });
}
