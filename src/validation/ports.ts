/**
 * What validation needs from other layers, injected by the composition root
 * (src/services.ts): the user stores (users/directory.ts), the policies
 * (policy/service.ts), the challenge handlers of out-of-band token types
 * (validation/oob/) and the no-token hook (enrollment/autoenroll.ts).
 */
import type { DirectoryUser } from '../users/types.ts';
import type { PolicySubject, Scope } from '../policy/service.ts';
import type { Token } from '../tokens/types.ts';
import type { Challenge } from './challenges.ts';
import type { ChallengeInfo, CheckOutcome, CheckRequest } from './outcome.ts';

export type { DirectoryUser, UserInfo } from '../users/types.ts';
export type { PolicySubject, Scope } from '../policy/service.ts';

export interface UserPort {
  splitUser(user: string, realm?: string): { login: string; realm: string };
  findUser(login: string, realm: string): Promise<DirectoryUser | null>;
  findById(resolver: string, userId: string, realm: string): Promise<DirectoryUser | null>;
  checkPassword(user: DirectoryUser, password: string): Promise<boolean>;
  defaultRealm(): string | undefined;
  realmExists(realm: string): boolean;
  realmsOfResolver(resolver: string): string[];
}

export interface PolicyPort {
  value(scope: Scope, action: string, subject: PolicySubject, opts?: { ignoreTime?: boolean }): string | number | boolean | undefined;
  has(scope: Scope, action: string, subject: PolicySubject, opts?: { ignoreTime?: boolean }): boolean;
  anyPolicy(scope: Scope, action?: string): boolean;
  adminAllowed(admin: string, scope: 'admin' | 'system' | 'audit', action: string): { allowed: boolean; realms: '*' | string[] };
}

export interface ChallengeInput {
  token: Token;
  user: DirectoryUser | null;
  subject: PolicySubject;
  request: CheckRequest;
  now: number;
}

/** What a challenge-capable token type (sms, email) plugs in: creating and answering challenges. */
export interface ChallengeHandler {
  create(input: ChallengeInput): Promise<{ ok: true; challenge: ChallengeInfo } | { ok: false; reason: string }>;
  /** Does `otp` answer this open challenge of the token? Constant time. */
  matches(token: Token, challenge: Challenge, otp: string): boolean;
  /** After a successful answer to one of this handler's challenges (e.g. `autosms`). */
  succeeded?(input: ChallengeInput): Promise<void>;
  /** May this token get a challenge without a PIN (check_s + `challenge`, e.g. policy trigger_sms)? */
  triggerWithoutPin?(token: Token, subject: PolicySubject): boolean;
}

/**
 * Called when a resolved user owns no token at all (autoenrollment plugs in here). An
 * outcome that accepts or carries a challenge is the answer; otherwise its `error` is kept
 * for the refusal.
 */
export type NoTokenHook = (input: { user: DirectoryUser; subject: PolicySubject; request: CheckRequest; pass: string }) => Promise<CheckOutcome | null>;

/** Policy `forward_server`: sends the request to the old server of a switch-over and returns its answer as an outcome. */
export type ForwardPort = (req: CheckRequest, policyValue: string) => Promise<CheckOutcome>;
