/**
 * The help-desk token calls behind `/admin/losttoken`, `/admin/copyTokenPin`,
 * `/admin/copyTokenUser`, `/admin/tokenrealm` and `/admin/getSerialByOtp` (spec 1.4, 4.6).
 * Each takes the tokens the administrator may touch (checked by the caller through
 * {@link TokenService.assertTokenAllowed}) and writes through the token repository.
 */
import { randomInt } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { Errors } from '../errors.ts';
import { requireTokenType, tokenType, canonicalType } from '../tokens/registry.ts';
import type { Token } from '../tokens/types.ts';
import { USAGE_INFO } from '../tokens/usage.ts';
import type { DirectoryUser, PolicyPort } from '../validation/ports.ts';
import type { AdminScope, TokenService } from './tokens.ts';

const POOLS: Record<string, string> = {
  c: 'abcdefghijkmnopqrstuvwxyz',
  C: 'ABCDEFGHJKLMNPQRSTUVWXYZ',
  n: '23456789',
  s: '!#$%&()*+,-./:;<=>?@[]_{}',
};

/**
 * A random password of `length` characters from the classes of `contents` (C upper case,
 * c lower case, n digits, s special; spec 3.1 lostTokenPWContents), at least one of each class
 * when the length allows. Look-alike characters (0 O 1 l I) are left out: a help desk reads it out.
 */
export function lostTokenPassword(length: number, contents: string): string {
  const classes = [...new Set(contents.split('').filter((c) => c in POOLS))];
  if (classes.length === 0) classes.push('c', 'C', 'n');
  const all = classes.map((c) => POOLS[c]).join('');
  const chars = classes.slice(0, length).map((c) => POOLS[c][randomInt(POOLS[c].length)]);
  while (chars.length < length) chars.push(all[randomInt(all.length)]);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

/** `lostTokenValid`: whole days (`3`) or a duration of d/h/m/s parts (`1d12h`), in milliseconds. */
export function lostTokenValidity(value: string): number {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 86_400_000;
  const unit: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };
  let ms = 0;
  for (const [, n, u] of v.matchAll(/(\d+)([dhms])/g)) ms += Number(n) * unit[u];
  return ms;
}

/** @default 10 characters (spec 3.1). */
export const LOST_TOKEN_PW_LEN = 10;
/** @default letters and digits (spec 3.1). */
export const LOST_TOKEN_PW_CONTENTS = 'cCn';
/** @default one day, when no lostTokenValid policy applies. */
export const LOST_TOKEN_VALID = '1d';

export interface LostTokenResult {
  serial: string;
  type: 'pw' | 'email' | 'sms';
  /** The temporary password (type pw): shown once, never stored in clear. */
  password?: string;
  /** Where codes go (email/sms), as the user store has it. */
  destination?: string;
  /** End of the validity period (ISO 8601). */
  endDate: string;
}

export interface HelpdeskDeps {
  tokens: TokenService;
  policies: PolicyPort;
  clock: Clock;
}

/**
 * spec 4.6: a replacement `lost<serial>` for the owner of `original`: a `pw` token with a random
 * password (enrollment lostTokenPWLen, lostTokenPWContents), or an email/sms token to the owner's
 * user-store address; the original's PIN is copied (not from a spass token, whose PIN is its whole
 * secret), the validity ends after lostTokenValid, and the original is disabled. The replacement is
 * created once: a second call (also a parallel one) finds the serial taken and is refused.
 */
export async function issueLostToken(deps: HelpdeskDeps, original: Token, owner: DirectoryUser, kind: 'password' | 'email' | 'sms'): Promise<LostTokenResult> {
  const { tokens, policies, clock } = deps;
  const repo = tokens.repository;
  const subject = { login: owner.login, realm: owner.realm, resolver: owner.resolver, userInfo: owner.info };
  const serial = `lost${original.serial}`;
  if (serial.length > 64) throw Errors.invalidParameter({ name: 'serial', why: 'lost<serial> would be longer than 64 characters' });
  if (await repo.serialExists(serial)) throw Errors.lostTokenExists({ serial });
  const now = clock.now();
  const valid = policies.value('enrollment', 'lostTokenValid', subject);
  const endMs = now + lostTokenValidity(typeof valid === 'string' || typeof valid === 'number' ? String(valid) : LOST_TOKEN_VALID);
  const endDate = new Date(endMs).toISOString();
  let type: LostTokenResult['type'];
  let password: string | undefined;
  let destination: string | undefined;
  const param: Record<string, string> = {};
  if (kind === 'password') {
    type = 'pw';
    const len = policies.value('enrollment', 'lostTokenPWLen', subject);
    const contents = policies.value('enrollment', 'lostTokenPWContents', subject);
    password = lostTokenPassword(typeof len === 'number' ? len : LOST_TOKEN_PW_LEN, typeof contents === 'string' ? contents : LOST_TOKEN_PW_CONTENTS);
    param.otpkey = password;
  } else {
    type = kind;
    const key = kind === 'sms' ? 'mobile' : 'email';
    destination = owner.info[key]?.trim();
    if (!destination) throw Errors.lostTokenNoDestination({ user: `${owner.login}@${owner.realm}`, what: kind === 'sms' ? 'mobile number' : 'e-mail address' });
    param[kind === 'sms' ? 'phone' : 'email_address'] = destination;
  }
  const draft = requireTokenType(type).init({ get: (k) => param[k], has: (k) => k in param }, tokens.defaults(), false);
  const pin = original.type === 'spass' ? { pinHash: '', pinSalt: '' } : { pinHash: original.pinHash, pinSalt: original.pinSalt };
  try {
    await repo.insert({
      serial, type, description: `lost token replacement of ${original.serial}`.slice(0, 255),
      keyEnc: tokens.sealSecret(draft.secret), otplen: draft.otplen, hashlib: draft.hashlib,
      countWindow: original.countWindow, syncWindow: original.syncWindow, maxFail: original.maxFail, ...pin,
      userId: original.userId, resolver: original.resolver, resolverClass: original.resolverClass,
      info: { ...draft.info, [USAGE_INFO.validityEnd]: endDate }, realms: original.realms, createdAt: now,
    });
  } catch (e) {
    // a parallel call inserted the same serial first (unique key)
    if (await repo.serialExists(serial)) throw Errors.lostTokenExists({ serial });
    throw e;
  }
  await repo.update(original.id, { active: 0 });
  return { serial, type, password, destination, endDate };
}

/** `/admin/copyTokenPin`: the PIN (its keyed hash) of `from` becomes the PIN of `to`. */
export async function copyTokenPin(tokens: TokenService, from: Token, to: Token): Promise<void> {
  await tokens.repository.update(to.id, { pin_hash: from.pinHash, pin_salt: from.pinSalt });
}

/**
 * `/admin/copyTokenUser`: the owner and the token realms of `from` become those of `to`. `to`
 * must be unassigned or already the same owner's (as /admin/assign), and the owner's token limits hold.
 */
export async function copyTokenUser(tokens: TokenService, from: Token, to: Token, scope: AdminScope): Promise<void> {
  if (from.userId === '') throw Errors.tokenNotAssigned({ serial: from.serial });
  const owner = await tokens.owner(from);
  if (!owner) throw Errors.tokenNotAssigned({ serial: from.serial });
  await tokens.assign([to], owner, undefined, scope);
  await tokens.repository.setRealms(to.id, from.realms);
}

/**
 * `/admin/getSerialByOtp`: the serial of the token whose next values hold `otp`, among the
 * tokens of `realms` ('*' = all) that show codes themselves (HOTP, TOTP), optionally only
 * assigned or unassigned ones and of one type. Checks at most `limit` tokens.
 */
export async function serialByOtp(tokens: TokenService, otp: string, filter: { realms: '*' | string[]; type?: string; assigned?: boolean }, nowMs: number, limit = 1000): Promise<Token | undefined> {
  const wanted = filter.type ? canonicalType(filter.type) : undefined;
  const candidates = (await tokens.repository.find({ ...(filter.realms === '*' ? {} : { realms: filter.realms }), ...(wanted ? { type: wanted } : {}) }))
    .filter((t) => t.active && (filter.assigned === undefined || (t.userId !== '') === filter.assigned))
    .filter((t) => tokenType(t.type)?.mode === 'authenticate' && tokenType(t.type)?.hasOtp && t.type !== 'pw')
    .slice(0, limit);
  for (const t of candidates) if (tokenType(t.type)!.verify(t, tokens.secretOf(t), otp, nowMs)) return t;
  return undefined;
}
