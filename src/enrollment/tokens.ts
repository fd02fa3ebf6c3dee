import { randomBytes } from 'node:crypto';
import QRCode from 'qrcode';
import type { ConfigService } from '../config/service.ts';
import { LIMITS } from '../tokens/limits.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { randomHex } from '../crypto/random.ts';
import { LINOTP_PIN_MARKER, linotpPinMatches } from '../crypto/linotp.ts';
import { Errors } from '../errors.ts';
import { findCounter } from '../otp/hotp.ts';
import type { Clock } from '../util/clock.ts';
import type { DirectoryUser, PolicyPort, UserPort } from '../validation/ports.ts';
import { canonicalType, requireTokenType, tokenType } from '../tokens/registry.ts';
import type { TokenRepository } from '../tokens/repository.ts';
import { checkPhone } from '../tokens/sms.ts';
import { checkEmailAddress } from '../tokens/email.ts';
import { destinationChanged } from '../tokens/destination.ts';
import type { ParamReader, Token, TokenDraft } from '../tokens/types.ts';
import { USAGE_INFO, parseUsageTime } from '../tokens/usage.ts';

/** The usage settings of /admin/set and /admin/setValidity (LinOTP's names, case-insensitive). */
export const USAGE_PARAMS = ['countAuth', 'countAuthMax', 'countAuthSuccess', 'countAuthSuccessMax', 'validityPeriodStart', 'validityPeriodEnd'] as const;

/**
 * Reads the usage settings: `countAuth` / `countAuthSuccess` set the counters, `countAuthMax` /
 * `countAuthSuccessMax` the limits and `validityPeriodStart` / `validityPeriodEnd` the period
 * (stored as ISO 8601 in the token info). An empty value clears a limit or a period end.
 */
export function usageSettings(params: { getCaseInsensitive(k: string): string | undefined }): {
  names: string[]; columns: { count_auth?: number; count_auth_success?: number }; info: Record<string, string>; clear: string[];
} {
  const names: string[] = [];
  const columns: { count_auth?: number; count_auth_success?: number } = {};
  const info: Record<string, string> = {};
  const clear: string[] = [];
  const count = (name: string, v: string): number => {
    if (!/^\d{1,9}$/.test(v.trim())) throw Errors.invalidParameter({ name, why: 'not a whole number (0-999999999)' });
    return Number(v.trim());
  };
  const infoKey: Record<string, string> = {
    countAuthMax: USAGE_INFO.authMax, countAuthSuccessMax: USAGE_INFO.successMax,
    validityPeriodStart: USAGE_INFO.validityStart, validityPeriodEnd: USAGE_INFO.validityEnd,
  };
  for (const name of USAGE_PARAMS) {
    const v = params.getCaseInsensitive(name);
    if (v === undefined) continue;
    names.push(name);
    if (name === 'countAuth') columns.count_auth = count(name, v);
    else if (name === 'countAuthSuccess') columns.count_auth_success = count(name, v);
    else if (v.trim() === '') clear.push(infoKey[name]);
    else if (name === 'countAuthMax' || name === 'countAuthSuccessMax') info[infoKey[name]] = String(count(name, v));
    else {
      const ms = parseUsageTime(v);
      if (ms === null) throw Errors.invalidParameter({ name, why: 'use ISO 8601 (2026-12-31T23:59:00Z), DD/MM/YY HH:MM (UTC) or Unix seconds' });
      info[infoKey[name]] = new Date(ms).toISOString();
    }
  }
  return { names, columns, info, clear };
}

export interface AdminScope {
  /** '*' or the realms an admin may touch (admin policies). */
  realms: '*' | string[];
}

export interface InitResult {
  serial: string;
  detail: Record<string, unknown>;
  created: boolean;
}

/** LinOTP's `/admin/show` token dictionary (spec 1.4), in its key order. */
export function tokenDict(t: Token, owner?: DirectoryUser | null): Record<string, unknown> {
  const info: Record<string, string> = { ...t.info };
  return {
    'LinOtp.TokenId': t.id,
    'LinOtp.TokenDesc': t.description,
    'LinOtp.TokenSerialnumber': t.serial,
    'LinOtp.TokenType': t.type === 'hmac' || t.type === 'totp' ? t.type.toUpperCase() : t.type,
    'LinOtp.TokenInfo': `{\n${Object.entries(info).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n')}\n}`,
    'LinOtp.IdResolver': t.resolver,
    'LinOtp.IdResClass': t.resolverClass,
    'LinOtp.Userid': t.userId,
    'LinOtp.OtpLen': t.otplen,
    'LinOtp.MaxFail': t.maxFail,
    'LinOtp.Isactive': t.active,
    'LinOtp.FailCount': t.failCount,
    'LinOtp.Count': t.counter,
    'LinOtp.CountWindow': t.countWindow,
    'LinOtp.SyncWindow': t.syncWindow,
    'LinOtp.CreationDate': new Date(t.createdAt).toUTCString(),
    'LinOtp.LastAuthSuccess': t.lastAuthSuccess ? new Date(t.lastAuthSuccess).toUTCString() : '',
    'LinOtp.LastAuthMatch': t.lastAuthMatch ? new Date(t.lastAuthMatch).toUTCString() : '',
    'LinOtp.RealmNames': t.realms,
    'User.description': owner?.info.description ?? '',
    'User.userid': t.userId,
    'User.username': owner?.login ?? '',
  };
}

/**
 * Token administration (`/admin/*`): init, show, remove, enable, disable, reset,
 * resync, set, assign, unassign, owner lookup. Seeds are sealed with the key ring;
 * PINs are stored as keyed hashes with a per-token salt.
 */
export class TokenService {
  constructor(
    private readonly repo: TokenRepository,
    private readonly keyring: KeyRing,
    private readonly config: ConfigService,
    private readonly clock: Clock,
    private readonly users: UserPort | undefined,
    private readonly policies: PolicyPort,
  ) {}

  get repository(): TokenRepository {
    return this.repo;
  }

  pinFields(pin: string | undefined): { pinHash: string; pinSalt: string } {
    if (pin === undefined || pin === '') return { pinHash: '', pinSalt: '' };
    const salt = randomHex(16);
    return { pinHash: this.keyring.hash('pin', `${salt}\0${pin}`), pinSalt: salt };
  }

  /**
   * Constant-time PIN check; an empty stored PIN matches only the empty input. A PIN imported
   * from LinOTP (`pin_salt` marked LINOTP_PIN_MARKER) is checked in LinOTP's format.
   */
  checkPin(token: Token, pin: string): boolean {
    if (token.pinHash === '') return pin === '';
    if (token.pinSalt.startsWith(LINOTP_PIN_MARKER)) return linotpPinMatches(pin, token.pinSalt.slice(LINOTP_PIN_MARKER.length), token.pinHash);
    return this.keyring.verifyHash('pin', `${token.pinSalt}\0${pin}`, token.pinHash);
  }

  /**
   * checkPin, and a matching PIN still in LinOTP's format (an imported token) is re-hashed into
   * otpd's keyed hash at once: a conditional write on the old hash, so a parallel check that
   * already upgraded it is left alone.
   */
  async checkPinUpgrading(token: Token, pin: string): Promise<boolean> {
    const matched = this.checkPin(token, pin);
    if (matched && token.pinSalt.startsWith(LINOTP_PIN_MARKER)) {
      const { pinHash, pinSalt } = this.pinFields(pin);
      await this.repo.replacePin(token.id, { hash: token.pinHash, salt: token.pinSalt }, { hash: pinHash, salt: pinSalt });
    }
    return matched;
  }

  private decoy: Token | undefined;

  /**
   * The CPU work of checking one HOTP token (seed decryption, PIN hash, OTP window) on a
   * throwaway token, so an answer for a user or token that does not exist costs the same
   * as a wrong OTP (security B.2 #9). Always false.
   */
  decoyCheck(pass: string, now: number): false {
    this.decoy ??= {
      id: 0, serial: '', type: 'hmac', description: '', keyEnc: this.keyring.encrypt('seed', randomBytes(20)), otplen: 6, hashlib: 'sha1',
      counter: 0, countWindow: this.config.number('DefaultCountWindow'), syncWindow: 0, maxFail: 0, failCount: 0, active: false,
      ...this.pinFields(randomBytes(16).toString('hex')), userId: '', resolver: '', resolverClass: '', info: {}, realms: [], createdAt: 0,
      lastAuthSuccess: null, lastAuthMatch: null, countAuth: 0, countAuthSuccess: 0,
    };
    const secret = this.secretOf(this.decoy);
    this.checkPin(this.decoy, pass.slice(0, -6));
    tokenType('hmac')?.verify(this.decoy, secret, pass.slice(-6), now);
    return false;
  }

  /** Seals a seed or static password for the token row (the key ring's `seed` key). */
  sealSecret(secret: Buffer): string {
    return this.keyring.encrypt('seed', secret);
  }

  secretOf(token: Token): Buffer {
    return this.keyring.decrypt('seed', token.keyEnc);
  }

  defaults() {
    return {
      otplen: this.config.number('DefaultOtpLen'),
      hashlib: this.config.value('hotp.hashlib'),
      totpStepSeconds: this.config.number('totp.timeStep'),
      totpWindowSteps: this.config.number('totp.timeWindow'),
    };
  }

  /** Resolves `user` (+ `realm`) to a directory user, or a clear error. */
  async requireUser(userParam: string, realmParam?: string): Promise<DirectoryUser> {
    const users = this.users;
    if (!users) throw Errors.noUserStore();
    const { login, realm } = users.splitUser(userParam, realmParam);
    const user = await users.findUser(login, realm);
    if (!user) throw Errors.unknownUser({ user: `${login}@${realm || '(no realm)'}` });
    return user;
  }

  async generateSerial(prefix: string): Promise<string> {
    for (let i = 0; i < 10; i++) {
      const serial = `${prefix}${randomHex(4).toUpperCase()}`;
      if (!(await this.repo.serialExists(serial))) return serial;
    }
    throw Errors.noFreeSerial();
  }

  /**
   * `/admin/init`, and the self-service enroll with `pending`: a new token that stays inactive,
   * marked `rollout: pending`, until its owner confirms it with a first code (userservice verify).
   */
  async init(params: ParamReader & { list?(k: string): string[] }, scope: AdminScope, draftOverride?: TokenDraft, opts: { pending?: boolean } = {}): Promise<InitResult> {
    const typeName = canonicalType(params.get('type') ?? 'hmac');
    const type = requireTokenType(typeName);
    const genkey = ['1', 'true'].includes((params.get('genkey') ?? '').toLowerCase());
    const draft = draftOverride ?? type.init(params, this.defaults(), genkey || !params.has('otpkey'));
    const owner = params.get('user') ? await this.requireUser(params.get('user')!, params.get('realm')) : undefined;
    const tokenRealms = owner ? [owner.realm] : (params.get('tokenrealm') ?? params.get('realm') ?? '').split(',').map((r) => r.trim().toLowerCase()).filter(Boolean);
    this.assertRealmsAllowed(scope, tokenRealms);
    const description = params.get('description') ?? '';
    if (description.length > 255) throw Errors.invalidParameter({ name: 'description', why: 'longer than 255 characters' });
    let serial = params.get('serial');
    if (serial !== undefined) {
      if (!/^[A-Za-z0-9_.:@-]{1,64}$/.test(serial)) throw Errors.invalidParameter({ name: 'serial', why: 'use 1-64 of A-Z a-z 0-9 _ . : @ -' });
    } else {
      const prefix = params.get('prefix') ?? type.prefix;
      if (!/^[A-Za-z0-9_-]{0,32}$/.test(prefix)) throw Errors.invalidParameter({ name: 'prefix', why: 'use up to 32 of A-Z a-z 0-9 _ -' });
      serial = await this.generateSerial(prefix);
    }
    if (owner) await this.checkMaxToken(owner, typeName);
    const existing = await this.repo.bySerial(serial);
    const pin = params.get('pin');
    // bounded by their catalogue entries (LIMITS)
    const countWindow = this.config.number('DefaultCountWindow');
    const syncWindow = this.config.number('DefaultSyncWindow');
    const maxFail = this.config.number('DefaultMaxFailCount');
    const keyEnc = this.keyring.encrypt('seed', draft.secret);
    if (existing && opts.pending) throw Errors.invalidParameter({ name: 'serial', why: 'a token with this serial exists' });
    if (existing) {
      if (existing.type !== typeName) {
        throw Errors.tokenTypeClash({ serial, type: existing.type, newType: typeName });
      }
      this.assertTokenAllowed(scope, existing);
      const info = { ...existing.info, ...draft.info };
      const write = destinationChanged(existing.info, info) ? this.repo.updateDestination.bind(this.repo) : this.repo.update.bind(this.repo);
      await write(existing.id, {
        key_enc: keyEnc, otplen: draft.otplen, hashlib: draft.hashlib, counter: 0, fail_count: 0,
        token_info: JSON.stringify(info),
        ...(params.has('description') ? { description } : {}),
        ...(pin !== undefined ? (({ pinHash, pinSalt }) => ({ pin_hash: pinHash, pin_salt: pinSalt }))(this.pinFields(pin)) : {}),
        ...(owner ? { user_id: owner.userId, resolver: owner.resolver, resolver_class: owner.resolverClass } : {}),
      });
      if (owner || tokenRealms.length) await this.repo.setRealms(existing.id, tokenRealms);
    } else {
      const { pinHash, pinSalt } = this.pinFields(pin);
      await this.repo.insert({
        serial, type: typeName, description, keyEnc, otplen: draft.otplen, hashlib: draft.hashlib,
        countWindow, syncWindow, maxFail, pinHash, pinSalt,
        userId: owner?.userId ?? '', resolver: owner?.resolver ?? '', resolverClass: owner?.resolverClass ?? '',
        info: opts.pending ? { ...draft.info, rollout: 'pending' } : draft.info, realms: tokenRealms, createdAt: this.clock.now(),
        ...(opts.pending ? { active: false } : {}),
      });
    }
    const detail: Record<string, unknown> = { serial };
    // The seed is shown once, and only when the server generated it.
    if (draft.enrollmentUrl && !params.has('otpkey')) {
      const url = draft.enrollmentUrl(serial, owner ? `${owner.login}@${owner.realm}` : serial);
      detail.googleurl = {
        order: '0',
        description: 'OTPAuth Url',
        value: url,
        img: `<img id="challenge_qrcode" width=250 src="${await QRCode.toDataURL(url)}"/>`,
      };
    }
    return { serial, detail, created: !existing };
  }

  private async checkMaxToken(owner: DirectoryUser, typeName: string): Promise<void> {
    const policies = this.policies;
    const subject = { login: owner.login, realm: owner.realm, resolver: owner.resolver };
    const owned = await this.repo.find({ owner: { resolver: owner.resolver, userId: owner.userId } });
    const max = policies.value('enrollment', 'maxtoken', subject);
    if (typeof max === 'number' && owned.length >= max) {
      throw Errors.tokenLimitPerUser();
    }
    const maxType = policies.value('enrollment', `maxtoken${typeName.toUpperCase()}`, subject);
    if (typeof maxType === 'number' && owned.filter((t) => t.type === typeName).length >= maxType) {
      throw Errors.tokenLimitPerType({ type: typeName, upperType: typeName.toUpperCase() });
    }
    const count = policies.value('enrollment', 'tokencount', subject);
    if (typeof count === 'number' && (await this.repo.count({ realms: [owner.realm] })) >= count) {
      throw Errors.tokenLimitRealm({ realm: owner.realm });
    }
  }

  assertRealmsAllowed(scope: AdminScope, realms: string[]): void {
    if (scope.realms === '*') return;
    const allowed = scope.realms;
    if (realms.length === 0 || realms.some((r) => !allowed.includes(r))) {
      throw Errors.notAllowed({ what: 'for this realm' });
    }
  }

  assertTokenAllowed(scope: AdminScope, token: Token): void {
    if (scope.realms === '*') return;
    const allowed = scope.realms;
    if (!token.realms.some((r) => allowed.includes(r))) throw Errors.notAllowed({ what: `on token ${token.serial}` });
  }

  /** The tokens named by `serial` (or `serial[]`) or owned by `user`, visible to this admin. */
  async select(params: ParamReader & { list(k: string): string[] }, scope: AdminScope, opts: { required?: boolean } = { required: true }): Promise<{ tokens: Token[]; by: 'serial' | 'user'; owner?: DirectoryUser }> {
    let tokens: Token[];
    let by: 'serial' | 'user';
    let owner: DirectoryUser | undefined;
    if (params.has('serial')) {
      const serials = params.list('serial');
      tokens = await this.repo.find({ serials });
      by = 'serial';
    } else if (params.get('user')) {
      owner = await this.requireUser(params.get('user')!, params.get('realm'));
      tokens = await this.repo.find({ owner: { resolver: owner.resolver, userId: owner.userId } });
      by = 'user';
    } else {
      if (opts.required === false) return { tokens: [], by: 'serial' };
      throw Errors.userOrSerialRequired();
    }
    if (scope.realms !== '*') {
      const allowed = scope.realms;
      tokens = tokens.filter((t) => t.realms.some((r) => allowed.includes(r)));
    }
    return { tokens, by, owner };
  }

  async setActive(tokens: Token[], active: boolean): Promise<number> {
    let n = 0;
    for (const t of tokens) n += await this.repo.update(t.id, { active: active ? 1 : 0 });
    return n;
  }

  async resetFailCount(tokens: Token[]): Promise<number> {
    await this.repo.resetFail(tokens.map((t) => t.id));
    return tokens.length;
  }

  /** Two consecutive OTPs within the SyncWindow move the counter past the second one. */
  async resync(token: Token, otp1: string, otp2: string): Promise<boolean> {
    if (token.type !== 'hmac' && token.type !== 'totp') return false;
    const secret = this.secretOf(token);
    if (token.type === 'hmac') {
      const c1 = findCounter(secret, otp1, token.counter, token.syncWindow, token.otplen, token.hashlib);
      if (c1 < 0 || findCounter(secret, otp2, c1 + 1, 1, token.otplen, token.hashlib) !== c1 + 1) return false;
      return this.repo.consume(token.id, c1 + 1, c1 + 2, this.clock.now());
    }
    const period = Number(token.info.timeStep ?? 30);
    const now = Math.floor(this.clock.now() / 1000 / period);
    const windowSteps = Math.ceil(token.syncWindow / 10);
    const from = Math.max(token.counter, now - windowSteps);
    const c1 = findCounter(secret, otp1, from, 2 * windowSteps, token.otplen, token.hashlib);
    if (c1 < 0 || findCounter(secret, otp2, c1 + 1, 1, token.otplen, token.hashlib) !== c1 + 1) return false;
    const shift = (c1 + 1 - now) * period;
    await this.repo.update(token.id, { token_info: JSON.stringify({ ...token.info, timeShift: String(shift) }) });
    return this.repo.consume(token.id, c1 + 1, c1 + 2, this.clock.now());
  }

  /** `/admin/set`: returns LinOTP's `{"set <name>": count}` dict. */
  async set(tokens: Token[], params: ParamReader & { getCaseInsensitive(k: string): string | undefined }): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const intParam = (name: string, min: number, max: number): number | undefined => {
      const v = params.getCaseInsensitive(name);
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v)) throw Errors.invalidParameter({ name, why: 'not an integer' });
      const n = Number(v);
      if (n < min || n > max) throw Errors.invalidParameter({ name, why: `must be between ${min} and ${max}` });
      return n;
    };
    const pin = params.getCaseInsensitive('pin');
    const maxFail = intParam('MaxFailCount', 1, LIMITS.maxMaxFail);
    const syncWindow = intParam('SyncWindow', 1, LIMITS.maxSyncWindow);
    const otpLen = intParam('OtpLen', 6, 10);
    const countWindow = intParam('CounterWindow', 1, LIMITS.maxCountWindow);
    const description = params.getCaseInsensitive('description');
    const hashlib = params.getCaseInsensitive('hashlib');
    const timeWindow = intParam('timeWindow', 0, LIMITS.maxTotpWindowSteps);
    const rawPhone = params.getCaseInsensitive('phone');
    const phone = rawPhone === undefined ? undefined : checkPhone(rawPhone);
    const rawEmail = params.getCaseInsensitive('email_address');
    const email = rawEmail === undefined ? undefined : checkEmailAddress(rawEmail);
    if (hashlib !== undefined && !['sha1', 'sha256', 'sha512'].includes(hashlib.toLowerCase())) throw Errors.invalidParameter({ name: 'hashlib', why: 'use sha1, sha256 or sha512' });
    if (description !== undefined && description.length > 255) throw Errors.invalidParameter({ name: 'description', why: 'longer than 255 characters' });
    const usage = usageSettings(params);
    const changes: [string, boolean][] = [
      ['pin', pin !== undefined], ['MaxFailCount', maxFail !== undefined], ['SyncWindow', syncWindow !== undefined],
      ['OtpLen', otpLen !== undefined], ['CounterWindow', countWindow !== undefined], ['description', description !== undefined],
      ['hashlib', hashlib !== undefined], ['timeWindow', timeWindow !== undefined], ['phone', phone !== undefined], ['email_address', email !== undefined],
      ...usage.names.map((n): [string, boolean] => [n, true]),
    ];
    if (!changes.some(([, c]) => c)) {
      throw Errors.usage({ usage: `set pin, MaxFailCount, SyncWindow, OtpLen, CounterWindow, hashlib, timeWindow, description, phone, email_address, ${USAGE_PARAMS.join(', ')}` });
    }
    for (const t of tokens) {
      const info = { ...t.info, ...usage.info };
      for (const k of usage.clear) delete info[k];
      if (hashlib !== undefined) info.hashlib = hashlib.toLowerCase();
      if (timeWindow !== undefined) info.timeWindow = String(timeWindow);
      if (phone !== undefined) info.phone = phone;
      if (email !== undefined) info.email_address = email;
      const write = destinationChanged(t.info, info) ? this.repo.updateDestination.bind(this.repo) : this.repo.update.bind(this.repo);
      await write(t.id, {
        ...(pin !== undefined ? (({ pinHash, pinSalt }) => ({ pin_hash: pinHash, pin_salt: pinSalt }))(this.pinFields(pin)) : {}),
        ...(maxFail !== undefined ? { max_fail: maxFail } : {}),
        ...(syncWindow !== undefined ? { sync_window: syncWindow } : {}),
        ...(otpLen !== undefined ? { otplen: otpLen } : {}),
        ...(countWindow !== undefined ? { count_window: countWindow } : {}),
        ...(description !== undefined ? { description } : {}),
        ...(hashlib !== undefined ? { hashlib: hashlib.toLowerCase() } : {}),
        ...usage.columns,
        token_info: JSON.stringify(info),
      });
    }
    for (const [name, changed] of changes) if (changed) out[`set ${name}`] = tokens.length;
    return out;
  }

  /**
   * `/admin/setValidity`: only the usage settings of {@link usageSettings} (validity period and
   * count limits), LinOTP's `{"set <name>": count}` dict.
   */
  async setValidity(tokens: Token[], params: ParamReader & { getCaseInsensitive(k: string): string | undefined }): Promise<Record<string, number>> {
    const usage = usageSettings(params);
    if (usage.names.length === 0) throw Errors.usage({ usage: `setValidity ${USAGE_PARAMS.join(', ')}` });
    for (const t of tokens) {
      const info = { ...t.info, ...usage.info };
      for (const k of usage.clear) delete info[k];
      await this.repo.update(t.id, { ...usage.columns, token_info: JSON.stringify(info) });
    }
    return Object.fromEntries(usage.names.map((n) => [`set ${n}`, tokens.length]));
  }

  async assign(tokens: Token[], owner: DirectoryUser, pin: string | undefined, scope: AdminScope): Promise<void> {
    this.assertRealmsAllowed(scope, [owner.realm]);
    for (const t of tokens) {
      if (t.userId !== '' && (t.userId !== owner.userId || t.resolver !== owner.resolver)) {
        throw Errors.tokenAssigned({ serial: t.serial });
      }
    }
    await this.checkMaxToken(owner, tokens[0]?.type ?? '');
    for (const t of tokens) {
      await this.repo.update(t.id, {
        user_id: owner.userId, resolver: owner.resolver, resolver_class: owner.resolverClass, fail_count: 0,
        ...(pin !== undefined ? (({ pinHash, pinSalt }) => ({ pin_hash: pinHash, pin_salt: pinSalt }))(this.pinFields(pin)) : {}),
      });
      await this.repo.setRealms(t.id, [owner.realm]);
    }
  }

  async unassign(tokens: Token[]): Promise<void> {
    for (const t of tokens) await this.repo.update(t.id, { user_id: '', resolver: '', resolver_class: '', fail_count: 0 });
  }

  async owner(token: Token): Promise<DirectoryUser | null> {
    if (!token.userId) return null;
    const users = this.users;
    if (!users) return null;
    return users.findById(token.resolver, token.userId, token.realms[0] ?? '');
  }
}

