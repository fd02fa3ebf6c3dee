/**
 * `/validate/check_status` (spec 1.3.6): polling a transaction's challenges. The caller proves
 * the first factor of the challenge's owner (per otppin: the token PIN, the user-store password;
 * nothing for only_otp / ignore_pin), and then sees the state of the transaction's challenges.
 * A wrong pass is an attempt like a wrong one at /validate/check (the token's fail counter and
 * the account's limit); an unknown transaction, or one of another user or serial, answers exactly
 * like a wrong pass, after the same work, so polling is no oracle.
 */
import type { TokenService } from '../enrollment/tokens.ts';
import type { Token } from '../tokens/types.ts';
import type { AccountGuard } from './account-guard.ts';
import type { Challenge, ChallengeRepository } from './challenges.ts';
import { fail, type CheckOutcome } from './outcome.ts';
import { otppinMode } from './policies.ts';
import type { DirectoryUser, PolicyPort, PolicySubject, UserPort } from './ports.ts';

export interface StatusRequest {
  transactionId: string;
  pass: string;
  user?: string;
  realm?: string;
  serial?: string;
  client: string;
}

export interface TransactionStatus {
  challenge: Challenge;
  token: Token;
  /** 'open' while it can still be answered. */
  status: 'open' | 'closed';
}

export interface StatusDeps {
  tokens: TokenService;
  challenges: ChallengeRepository;
  users: UserPort;
  policies: PolicyPort;
  guard: AccountGuard;
}

const subjectOf = (u: DirectoryUser) => `${u.login}@${u.realm}`;

/** The outcome (accepted = the pass matched) and, when it did, the transaction's challenges. */
export async function checkStatus(deps: StatusDeps, req: StatusRequest, now: number): Promise<{ outcome: CheckOutcome; transactions: TransactionStatus[] }> {
  const none = { transactions: [] };
  const base = req.transactionId.split('.')[0];
  let user: DirectoryUser | null = null;
  if (req.user) {
    const { login, realm } = deps.users.splitUser(req.user, req.realm);
    user = await deps.users.findUser(login, realm);
    if (!user) {
      await deps.guard.unknownAccount(now, req.pass);
      return { outcome: fail('userNotFound', 'User not found', { audit: { user: login, realm } }), ...none };
    }
  }
  let challenges = /^\d{1,20}$/.test(base) ? await deps.challenges.byTransaction(base) : [];
  if (user) challenges = challenges.filter((c) => c.subject === subjectOf(user!));
  if (req.serial) challenges = challenges.filter((c) => c.serial === req.serial);
  // without a user, the owner named in the (first) challenge; challenges of others are not shown
  const subjectKey = challenges[0]?.subject;
  challenges = challenges.filter((c) => c.subject === subjectKey && c.subject !== '');
  if (!user && subjectKey) {
    const at = subjectKey.lastIndexOf('@');
    user = await deps.users.findUser(subjectKey.slice(0, at), subjectKey.slice(at + 1));
  }
  const tokens = new Map<number, Token>();
  for (const c of challenges) {
    const t = tokens.get(c.tokenId) ?? (await deps.tokens.repository.byId(c.tokenId));
    if (t) tokens.set(c.tokenId, t);
  }
  const owned = challenges.filter((c) => tokens.has(c.tokenId));
  if (!user || owned.length === 0) {
    await deps.guard.unknownAccount(now, req.pass);
    return { outcome: fail('noSuchTransaction', 'no challenge of this transaction for the user or serial', { audit: { serial: req.serial } }), ...none };
  }
  const owner = user;
  const subject: PolicySubject = { login: owner.login, realm: owner.realm, resolver: owner.resolver, client: req.client, userInfo: owner.info };
  const mode = otppinMode(deps.policies, subject);
  const involved = [...tokens.values()];
  const audit = { user: owner.login, realm: owner.realm, serial: involved.map((t) => t.serial).join(','), tokenType: [...new Set(involved.map((t) => t.type))].join(',') };
  let matched = false;
  const outcome = await deps.guard.guarded(owner, now, async (account) => {
    const repo = deps.tokens.repository;
    const [accountOk, ...won] = await Promise.all([account.reserve(), ...involved.map((t) => repo.reserveAttempt(t.id))]);
    const reserved = involved.filter((_, i) => won[i]);
    if (!accountOk) {
      await repo.releaseAttempt(reserved.map((t) => t.id));
      return account.refused();
    }
    if (reserved.length === 0) return fail('tokenLocked', 'Failcounter exceeded', { notAGuess: true, audit });
    try {
      matched = mode === 1 ? req.pass !== '' && (await deps.users.checkPassword(owner, req.pass))
        : mode === 0 ? reserved.some((t) => deps.tokens.checkPin(t, req.pass))
          : true;
    } catch (e) {
      await repo.releaseAttempt(reserved.map((t) => t.id)).catch(() => undefined);
      throw e;
    }
    if (!matched) return fail(mode === 1 ? 'wrongPassword' : 'wrongPin', mode === 1 ? 'wrong user password -1' : 'wrong otp pin -1', { audit });
    // polling proves the first factor only: the attempt is given back, nothing is reset
    await repo.releaseAttempt(reserved.map((t) => t.id));
    return fail('transactionStatus', 'transaction status', { notAGuess: true, audit });
  });
  if (!matched || outcome.reason !== 'transactionStatus') return { outcome, ...none };
  return {
    outcome,
    transactions: owned.map((c) => ({ challenge: c, token: tokens.get(c.tokenId)!, status: c.status === 'open' && c.expiresAt > now ? 'open' : 'closed' })),
  };
}
