import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import { sendNotice } from '../delivery/notice.ts';
import type { DeliveryService } from '../delivery/service.ts';
import type { TokenService } from '../enrollment/tokens.ts';
import { Errors } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { canonicalType, tokenType } from '../tokens/registry.ts';
import type { Token } from '../tokens/types.ts';
import type { Clock } from '../util/clock.ts';
import { maskForOwner } from '../util/phone.ts';
import type { AccountGuard } from '../validation/account-guard.ts';
import { accept, fail, type CheckOutcome } from '../validation/outcome.ts';
import type { DirectoryUser, PolicySubject } from '../validation/ports.ts';
import type { ValidationService } from '../validation/service.ts';
import { SelfServiceRights, type SelfServiceAction } from './rights.ts';

/** Who acts: the session's user as the directory knows them now, the client, and how they logged in. */
export interface Actor {
  user: DirectoryUser;
  client: string;
  /** The session was opened with a second factor. */
  mfa: boolean;
}

export interface SelfServiceDeps {
  tokens: TokenService;
  validation: ValidationService;
  rights: SelfServiceRights;
  guard: AccountGuard;
  delivery: DeliveryService;
  db: Db;
  config: ConfigService;
  clock: Clock;
  logger: Logger;
}

/** A plain parameter reader over a map, for the token types' `init`. */
const reader = (entries: [string, string][]) => {
  const m = new Map(entries);
  return { get: (k: string) => m.get(k), has: (k: string) => m.has(k), list: (k: string) => (m.has(k) ? [m.get(k)!] : []) };
};

const ENROLLABLE = ['hmac', 'totp', 'sms', 'email'] as const;
type Enrollable = (typeof ENROLLABLE)[number];

/** A self-enrolled app token that has not yet been confirmed with its first code. */
export const isPending = (t: Token) => t.info.rollout === 'pending';

/**
 * What a user may do with their own tokens (`/userservice/*`, the `/selfservice/` portal). Every
 * action needs its selfservice policy right; a serial the user does not own is answered as if
 * it did not exist. Adding, removing or weakening a factor (enroll, assign, delete, unassign,
 * setpin, reset) needs a session opened with a second factor while the user owns a token
 * (security B.2 #24); a new phone number or e-mail address is told to the old ones.
 */
export class SelfService {
  constructor(private readonly deps: SelfServiceDeps) {}

  subject(actor: Actor): PolicySubject {
    const u = actor.user;
    return { login: u.login, realm: u.realm, resolver: u.resolver, client: actor.client, userInfo: u.info };
  }

  async ownTokens(user: DirectoryUser): Promise<Token[]> {
    return this.deps.tokens.repository.find({ owner: { resolver: user.resolver, userId: user.userId } });
  }

  /** The user's token with this serial; 2901 for a serial that is someone else's or nobody's. */
  async own(user: DirectoryUser, serial: string | undefined): Promise<Token> {
    if (serial === undefined || serial === '') throw Errors.missingParameter({ name: 'serial' });
    const t = await this.deps.tokens.repository.bySerial(serial);
    if (!t || t.userId !== user.userId || t.resolver !== user.resolver) throw Errors.notOwnToken({ serial });
    return t;
  }

  private allow(actor: Actor, action: SelfServiceAction): void {
    this.deps.rights.require(this.subject(actor), action);
  }

  /** B.2 #24: a factor is added, removed or weakened only in a session opened with one (unless the user owns none). */
  private async requireSecondFactor(actor: Actor, what: string): Promise<void> {
    if (actor.mfa) return;
    if ((await this.ownTokens(actor.user)).length > 0) throw Errors.secondFactorNeeded({ what });
  }

  async setActive(actor: Actor, serial: string | undefined, active: boolean): Promise<number> {
    this.allow(actor, active ? 'enable' : 'disable');
    const t = await this.own(actor.user, serial);
    if (active && isPending(t)) throw Errors.enrollmentNotConfirmed({ serial: t.serial });
    return this.deps.tokens.setActive([t], active);
  }

  async remove(actor: Actor, serial: string | undefined): Promise<number> {
    this.allow(actor, 'delete');
    const t = await this.own(actor.user, serial);
    await this.requireSecondFactor(actor, 'delete a token');
    return this.deps.tokens.repository.delete([t.id]);
  }

  async unassign(actor: Actor, serial: string | undefined): Promise<number> {
    this.allow(actor, 'unassign');
    const t = await this.own(actor.user, serial);
    await this.requireSecondFactor(actor, 'unassign a token');
    await this.deps.tokens.unassign([t]);
    return 1;
  }

  async reset(actor: Actor, serial: string | undefined): Promise<number> {
    this.allow(actor, 'reset');
    const t = await this.own(actor.user, serial);
    await this.requireSecondFactor(actor, 'reset the fail counter');
    return this.deps.tokens.resetFailCount([t]);
  }

  async setPin(actor: Actor, serial: string | undefined, pin: string | undefined): Promise<number> {
    this.allow(actor, 'setOTPPIN');
    const t = await this.own(actor.user, serial);
    if (pin === undefined) throw Errors.missingParameter({ name: 'userpin' });
    await this.requireSecondFactor(actor, 'set a PIN');
    this.deps.rights.checkPin(this.subject(actor), pin);
    const { pinHash, pinSalt } = this.deps.tokens.pinFields(pin);
    return this.deps.tokens.repository.update(t.id, { pin_hash: pinHash, pin_salt: pinSalt });
  }

  async setDescription(actor: Actor, serial: string | undefined, description: string | undefined): Promise<number> {
    this.allow(actor, 'setDescription');
    const t = await this.own(actor.user, serial);
    if (description === undefined) throw Errors.missingParameter({ name: 'description' });
    if (description.length > 255) throw Errors.invalidParameter({ name: 'description', why: 'longer than 255 characters' });
    return this.deps.tokens.repository.update(t.id, { description });
  }

  /** Two consecutive codes of an HOTP/TOTP token, under the account's attempt limit. */
  async resync(actor: Actor, serial: string | undefined, otp1: string, otp2: string): Promise<boolean> {
    this.allow(actor, 'resync');
    const t = await this.own(actor.user, serial);
    if (t.type !== 'hmac' && t.type !== 'totp') throw Errors.invalidParameter({ name: 'serial', why: `a ${t.type} token has no codes to resynchronise` });
    let ok = false;
    await this.deps.guard.guarded(actor.user, this.deps.clock.now(), async (account) => {
      if (!(await account.reserve())) return account.refused();
      ok = await this.deps.tokens.resync(t, otp1, otp2);
      return ok ? accept('authenticated', { actionDetail: 'token resynchronised' }) : fail('wrongOtp', 'resync: the codes do not follow each other');
    });
    return ok;
  }

  /**
   * Tests a token (and confirms a self-enrolled app token: its first right code makes it
   * active). HOTP/TOTP: the OTP alone, through the validation pipeline (fail counter, replay,
   * account limit). SMS/e-mail: without an OTP a code is sent; with the OTP and transaction id
   * the answer is checked.
   */
  async verify(actor: Actor, serial: string | undefined, otp: string | undefined, transactionId: string | undefined): Promise<CheckOutcome> {
    this.allow(actor, 'verify');
    const t = await this.own(actor.user, serial);
    const u = actor.user;
    if (isPending(t)) {
      if (otp === undefined || otp === '') throw Errors.missingParameter({ name: 'otp' });
      return this.confirm(actor, t, otp);
    }
    if ((otp === undefined || otp === '') && tokenType(t.type)?.mode === 'challenge') {
      return this.deps.validation.triggerSecondFactor(u, t.serial, actor.client);
    }
    if (otp === undefined) throw Errors.missingParameter({ name: 'otp' });
    return this.deps.validation.check({ user: u.login, realm: u.realm, serial: t.serial, pass: otp, transactionId, client: actor.client, entry: 'userservice' });
  }

  /** The first code of a pending app token: checked under the token's and the account's limits, then the token is active. */
  private async confirm(actor: Actor, t: Token, otp: string): Promise<CheckOutcome> {
    const repo = this.deps.tokens.repository;
    const now = this.deps.clock.now();
    const audit = { serial: t.serial, tokenType: t.type };
    return this.deps.guard.guarded(actor.user, now, async (account) => {
      const [accountOk, tokenOk] = await Promise.all([account.reserve(), repo.reserveAttempt(t.id)]);
      if (!accountOk) {
        if (tokenOk) await repo.releaseAttempt([t.id]);
        return account.refused();
      }
      if (!tokenOk) return fail('tokenLocked', 'Failcounter exceeded', { notAGuess: true, audit });
      const type = tokenType(t.type);
      const match = type?.verify(t, this.deps.tokens.secretOf(t), otp, now);
      if (!match) return fail('wrongOtp', 'wrong otp value', { audit });
      const { rollout: _pending, ...info } = t.info;
      const won = await repo.activatePending(t.id, match.nextCounter - 1, match.nextCounter, JSON.stringify(info), now);
      if (!won) return fail('replay', 'wrong otp value (already used)', { notAGuess: true, audit });
      return accept('authenticated', { ...audit, actionDetail: `token ${t.serial} confirmed with its first code and enabled` });
    });
  }

  /**
   * Enrolls a token for the user. HOTP/TOTP get a new seed (returned once as otpauth URL and QR
   * code) and stay inactive until their first code (verify). SMS/e-mail go to the user-store
   * mobile number or address only; a new destination is told to the old ones.
   */
  async enroll(actor: Actor, params: { type?: string; description?: string; prefix?: string; pin?: string; phone?: string; email_address?: string; serial?: string; otpkey?: string; genkey?: string }): Promise<{ serial: string; detail: Record<string, unknown> }> {
    const type = canonicalType(params.type ?? 'hmac');
    if (!(ENROLLABLE as readonly string[]).includes(type)) throw Errors.selfserviceTypeRefused({ type: params.type ?? '' });
    const kind = type as Enrollable;
    this.allow(actor, `enroll${kind.toUpperCase()}` as SelfServiceAction);
    if (params.serial !== undefined) throw Errors.invalidParameter({ name: 'serial', why: 'otpd chooses the serial of a self-enrolled token' });
    if (params.otpkey !== undefined) throw Errors.invalidParameter({ name: 'otpkey', why: 'a self-enrolled token gets a seed generated by otpd' });
    if (params.pin !== undefined) {
      this.allow(actor, 'setOTPPIN');
      this.deps.rights.checkPin(this.subject(actor), params.pin);
    }
    await this.requireSecondFactor(actor, 'add a token');
    const u = actor.user;
    const entries: [string, string][] = [['type', kind], ['user', u.login], ['realm', u.realm], ['genkey', '1']];
    if (params.description !== undefined) entries.push(['description', params.description]);
    if (params.prefix !== undefined) entries.push(['prefix', params.prefix]);
    if (params.pin !== undefined) entries.push(['pin', params.pin]);
    let destination: string | undefined;
    if (kind === 'sms' || kind === 'email') {
      destination = this.directoryDestination(u, kind, kind === 'sms' ? params.phone : params.email_address);
      entries.push([kind === 'sms' ? 'phone' : 'email_address', destination]);
    }
    const before = await this.ownTokens(u);
    const res = await this.deps.tokens.init(reader(entries), { realms: [u.realm] }, undefined, { pending: kind === 'hmac' || kind === 'totp' });
    if (destination !== undefined) await this.notifyRebinding(actor, kind as 'sms' | 'email', destination, res.serial, before);
    return { serial: res.serial, detail: res.detail };
  }

  /** The user-store mobile number or address; a different one in the request is refused (edit_sms/edit_email = 0). */
  private directoryDestination(u: DirectoryUser, kind: 'sms' | 'email', asked: string | undefined): string {
    const stored = (kind === 'sms' ? u.info.mobile : u.info.email)?.trim() ?? '';
    const what = kind === 'sms' ? 'mobile number' : 'e-mail address';
    if (stored === '') throw Errors.noDestinationInDirectory({ what });
    const norm = (v: string) => (kind === 'sms' ? v.replace(/[^0-9+]/g, '') : v.trim().toLowerCase());
    if (asked !== undefined && asked.trim() !== '' && norm(asked) !== norm(stored)) {
      throw Errors.destinationNotEditable({ what: kind === 'sms' ? 'The phone number' : 'The e-mail address', masked: maskForOwner(kind, stored) });
    }
    return stored;
  }

  /** Tells each phone number or address the user's codes went to before that a new one now gets them (B.2 #24). */
  private async notifyRebinding(actor: Actor, kind: 'sms' | 'email', destination: string, serial: string, before: Token[]): Promise<void> {
    const norm = (v: string) => v.replace(/\s/g, '').toLowerCase();
    const old = new Map<string, 'sms' | 'email'>();
    for (const t of before) {
      const to = t.type === 'sms' ? t.info.phone : t.type === 'email' ? t.info.email_address : undefined;
      if (to && norm(to) !== norm(destination)) old.set(to, t.type as 'sms' | 'email');
    }
    if (old.size === 0) return;
    const now = this.deps.clock.now();
    const u = actor.user;
    const what = kind === 'sms' ? `phone number ${maskForOwner('sms', destination)}` : `e-mail address ${maskForOwner('email', destination)}`;
    const text = `A new ${what} was added to the sign-in of ${u.login} on ${new Date(now).toISOString().slice(0, 16).replace('T', ' ')} UTC. If this was not you, contact your help desk now.`;
    for (const [to, channel] of old) {
      await sendNotice(this.deps, {
        channel, to, text, subject: 'A new sign-in method was added to your account', user: u.login, realm: u.realm, client: actor.client, serial,
        key: `rebind:${serial}:${channel}:${norm(to)}`,
      });
    }
  }

  /** `assign`: an unassigned token of the user's realm (or of none), proven with one of its codes; LinOTP's optional `description` is set with it. */
  async assign(actor: Actor, serial: string | undefined, otp: string | undefined, pin: string | undefined, description?: string): Promise<void> {
    this.allow(actor, 'assign');
    if (serial === undefined || serial === '') throw Errors.missingParameter({ name: 'serial' });
    if (description !== undefined && description.length > 255) throw Errors.invalidParameter({ name: 'description', why: 'longer than 255 characters' });
    await this.requireSecondFactor(actor, 'assign a token');
    const u = actor.user;
    const t = await this.deps.tokens.repository.bySerial(serial);
    const free = t && t.userId === '' && (t.realms.length === 0 || t.realms.includes(u.realm));
    if (!free) throw Errors.notOwnToken({ serial });
    if (pin !== undefined) {
      this.allow(actor, 'setOTPPIN');
      this.deps.rights.checkPin(this.subject(actor), pin);
    }
    await this.proveWithCode(actor, t, otp);
    await this.deps.tokens.assign([t], u, pin, { realms: [u.realm] });
    if (description !== undefined && description !== '') await this.deps.tokens.repository.update(t.id, { description });
  }

  /** The holder of an unassigned token proves it with a current code (spends an account attempt). */
  private async proveWithCode(actor: Actor, t: Token, otp: string | undefined): Promise<void> {
    const type = tokenType(t.type);
    if (!type || type.mode !== 'authenticate' || !type.hasOtp) throw Errors.invalidParameter({ name: 'serial', why: `a ${t.type} token cannot be assigned in self-service (it has no code to prove it)` });
    if (otp === undefined || otp === '') throw Errors.missingParameter({ name: 'otp' });
    const now = this.deps.clock.now();
    const out = await this.deps.guard.guarded(actor.user, now, async (account) => {
      if (!(await account.reserve())) return account.refused();
      const match = type.verify(t, this.deps.tokens.secretOf(t), otp, now);
      if (!match || !(await this.deps.tokens.repository.consume(t.id, match.nextCounter - 1, match.nextCounter, now))) return fail('wrongOtp', 'wrong otp value', { audit: { serial: t.serial } });
      return accept('authenticated', { actionDetail: 'token proven with a code' });
    });
    if (!out.ok) throw Errors.notOwnToken({ serial: t.serial });
  }

  /** `getSerialByOtp`: the unassigned token of the user's realm that shows this code ('' when none); an account attempt each. */
  async serialByOtp(actor: Actor, otp: string | undefined, typeName: string | undefined): Promise<string> {
    this.allow(actor, 'getserial');
    if (otp === undefined || otp === '') throw Errors.missingParameter({ name: 'otp' });
    const u = actor.user;
    const now = this.deps.clock.now();
    const wanted = typeName ? canonicalType(typeName) : undefined;
    const candidates = (await this.deps.tokens.repository.find({ realms: [u.realm] }))
      .filter((t) => t.userId === '' && t.active && (!wanted || t.type === wanted) && tokenType(t.type)?.mode === 'authenticate' && tokenType(t.type)?.hasOtp)
      .slice(0, 200);
    let found = '';
    await this.deps.guard.guarded(u, now, async (account) => {
      if (!(await account.reserve())) return account.refused();
      for (const t of candidates) {
        if (tokenType(t.type)!.verify(t, this.deps.tokens.secretOf(t), otp, now)) {
          found = t.serial;
          break;
        }
      }
      // finding a serial proves nothing about the account: the attempt is given back, not reset
      return found ? fail('authenticated', 'serial found', { notAGuess: true }) : fail('wrongOtp', 'no unassigned token shows this code');
    });
    return found;
  }
}
