import type { Token, TokenType } from '../tokens/types.ts';
import type { Challenge } from './challenges.ts';
import { otpLength, splitPass, type OtpPinMode } from './split.ts';

/** Everything classification reads about one token and one pass; no port, no database. */
export interface ClassifyInput {
  token: Token;
  type: TokenType;
  pass: string;
  mode: OtpPinMode;
  /** Config `PrependPin` (spec 2.4): the PIN comes before the OTP. */
  prependPin: boolean;
  /** The request names a user (the user-store password can be checked). */
  hasUser: boolean;
  /** A PIN-only pass may ask for a challenge: a challenge-only type, or policy challenge_response lists the type. */
  challengeCapable: boolean;
  /** The request answers a challenge (`transactionid` / `state` given). */
  answersTransaction: boolean;
  /** Open, unexpired challenges of this token for this request's user (of the named transaction, if any). */
  openChallenges: Challenge[];
  now: number;
  /**
   * The token's seed, opened only when an OTP is checked against it (an answer through the
   * challenge handler never needs it).
   */
  seed: () => Buffer;
  /** The challenge handler's constant-time check of a code against one challenge (sms, email). */
  matchesChallenge?: (challenge: Challenge, otp: string) => boolean;
}

/** Where an OTP matched: `matched`/`next` feed the conditional single-use write (`counter <= matched`). */
export interface OtpMatch {
  matched: number;
  next: number;
}

/** What a pass means for a token (spec 2.2): LinOTP's valid / pin-matching / challenge / invalid tokens. */
export type Classification =
  | ({ kind: 'valid'; token: Token; challenge?: Challenge } & OtpMatch)
  | { kind: 'pin'; token: Token; challenges: Challenge[] }
  | { kind: 'challenge'; token: Token }
  | { kind: 'invalid'; token: Token; challenges: Challenge[] }
  /**
   * The request answers a transaction this token has no open challenge of (closed by an
   * earlier answer, expired, or another user's): nothing was compared with anything, so the
   * pass is no guess and spends no attempt.
   */
  | { kind: 'notOpen'; token: Token }
  /**
   * The first factor matched and the OTP is the value this token accepted last (a copy of a
   * login that lost its race by a whole request): refused like any used value, but no guess.
   */
  | { kind: 'replay'; token: Token };

/**
 * A first-factor check classification needs answered: against the token PIN (a keyed hash)
 * or the user-store password (a directory bind). The caller does the check; only the caller
 * has the key ring and the user store.
 */
export interface PinCheck {
  against: 'tokenPin' | 'storePassword';
  pin: string;
}

/**
 * The classify step as a generator: it yields each first-factor check it needs, in the
 * order and only when it needs it (a directory bind is a network round trip), and returns
 * the classification. Pure: the same input and answers give the same questions and
 * result. {@link classifyWith} runs it against a checker.
 */
export function* classify(f: ClassifyInput): Generator<PinCheck, Classification, boolean> {
  const { token: t, type, pass, mode } = f;
  const mine = f.openChallenges;
  const invalid = (challenges: Challenge[]): Classification => ({ kind: 'invalid', token: t, challenges });
  const split = () => splitPass(pass, t, type, mode, f.prependPin);

  if (f.answersTransaction && f.challengeCapable) {
    // An answer to a challenge: the bare OTP, or PIN + OTP when the pass is longer — one
    // reading per pass, so the OTP window is computed once (B.2 #5).
    if (mine.length === 0) return { kind: 'notOpen', token: t };
    if (mode === 2 || pass.length <= otpLength(t, type)) return answerOpen(f, pass) ?? invalid(mine);
    const { pin, otp } = split();
    if (yield* firstFactor(f, pin)) return answerOpen(f, otp) ?? { kind: 'pin', token: t, challenges: mine };
    return invalid(mine);
  }
  if (type.mode === 'challenge') {
    // challenge-only token: PIN+OTP against its open challenges, or PIN alone triggers one
    const { pin, otp } = split();
    if (mine.length > 0 && otp !== '') {
      const m = answerOpen(f, otp);
      if (m && (yield* firstFactor(f, pin))) return m;
      if (m) return invalid(mine);
    }
    // under otppin=2 there is no PIN: whatever is not the code asks for one (LinOTP's only_otp)
    if (yield* firstFactor(f, mode === 2 ? '' : pass)) return { kind: 'challenge', token: t };
    if (mine.length > 0 && otp !== '' && (yield* firstFactor(f, pin))) return { kind: 'pin', token: t, challenges: mine };
    return invalid(mine);
  }
  // authenticate(): PIN + OTP in one step
  const { pin, otp } = split();
  if (mode === 1) {
    // OTP first (spec 2.4): a matching OTP with a wrong password asks the directory once; a
    // wrong OTP still asks it, to tell a wrong OTP (PIN matched) from a wrong password
    const match = matchOtp(f, otp);
    if (match && (yield* firstFactor(f, pin))) return { kind: 'valid', token: t, ...match };
    if (f.challengeCapable && (yield* firstFactor(f, pass))) return { kind: 'challenge', token: t };
    if (match) return invalid([]);
    return (yield* firstFactor(f, pin)) ? pinMatched(f, otp) : invalid([]);
  }
  const pinMatches = yield* firstFactor(f, pin);
  // the OTP is checked whether or not the PIN matched, over the whole window: no timing
  // difference tells which was wrong. After a matched PIN a match is the success the answer
  // says anyway, so the search may end there (a success costs one HMAC, not the window's ten).
  const match = matchOtp(f, otp, pinMatches);
  if (pinMatches && match) return { kind: 'valid', token: t, ...match };
  if (f.challengeCapable && (yield* firstFactor(f, mode === 2 ? '' : pass)) && (mode !== 2 || pass === '')) return { kind: 'challenge', token: t };
  if (pinMatches) return pinMatched(f, otp);
  return invalid([]);
}

/** The first factor matched, the OTP did not: a wrong OTP, or the value accepted last sent again. */
function pinMatched(f: ClassifyInput, otp: string): Classification {
  return isLastAccepted(f, otp) ? { kind: 'replay', token: f.token } : { kind: 'pin', token: f.token, challenges: [] };
}

/**
 * Is `otp` the value the token accepted last? Its counter (HOTP) or step (TOTP) is one below
 * the token's next acceptable one; that value is used, so it is refused — but sending it again
 * is no guess at an unknown value.
 */
export function isLastAccepted(f: Pick<ClassifyInput, 'token' | 'type' | 'now' | 'seed'>, otp: string): boolean {
  const t = f.token;
  if (!f.type.hasOtp || otp === '' || t.counter <= 0) return false;
  const m = f.type.verify({ ...t, counter: t.counter - 1, countWindow: 1 }, f.seed(), otp, f.now);
  return m !== null && m.nextCounter === t.counter;
}

/** Runs {@link classify}, answering each check with `check` (which may be async: a directory bind). */
export async function classifyWith(input: ClassifyInput, check: (q: PinCheck) => boolean | Promise<boolean>): Promise<Classification> {
  const steps = classify(input);
  let step = steps.next();
  while (!step.done) step = steps.next(await check(step.value));
  return step.value;
}

/**
 * Does `pin` pass as the token's first factor under the otppin mode (spec 2.4)? Modes 2 and 3
 * decide alone, except for spass: it has nothing but its PIN, so "only the OTP" or "ignore the
 * PIN" must not make it an open door. Autoenrolled tokens (tokeninfo `pin_source=store`, no PIN
 * set) take the user-store password as PIN. An empty password, or none without a user, never matches.
 */
function* firstFactor(f: ClassifyInput, pin: string): Generator<PinCheck, boolean, boolean> {
  const t = f.token;
  const storePassword = function* (): Generator<PinCheck, boolean, boolean> {
    if (!f.hasUser || pin === '') return false;
    return yield { against: 'storePassword', pin };
  };
  if (f.mode === 0) return t.info.pin_source === 'store' && t.pinHash === '' ? yield* storePassword() : yield { against: 'tokenPin', pin };
  if (f.mode === 1) return yield* storePassword();
  if (t.type === 'spass') return yield { against: 'tokenPin', pin };
  return f.mode === 2 ? pin === '' : true;
}

/**
 * Does `otp` match the token? Tokens without an OTP (spass) match an empty OTP and keep
 * their counter, so the single-use write always holds for them; a static value (pw) keeps
 * the counter too; an OTP moves it past the matched value.
 */
export function matchOtp(f: Pick<ClassifyInput, 'token' | 'type' | 'now' | 'seed'>, otp: string, stopAtMatch = false): OtpMatch | null {
  const { token: t, type } = f;
  if (!type.hasOtp) return otp === '' ? { matched: t.counter, next: t.counter } : null;
  const m = type.verify(t, f.seed(), otp, f.now, stopAtMatch);
  if (!m) return null;
  return m.nextCounter > t.counter ? { matched: m.nextCounter - 1, next: m.nextCounter } : { matched: t.counter, next: t.counter };
}

/** Checks `otp` against the open challenges; the first that matches wins. An OTP window is computed once. */
function answerOpen(f: ClassifyInput, otp: string): Classification | null {
  const open = f.openChallenges;
  if (f.matchesChallenge) {
    for (const ch of open) if (f.matchesChallenge(ch, otp)) return { kind: 'valid', token: f.token, matched: f.token.counter, next: f.token.counter, challenge: ch };
    return null;
  }
  const match = open.length > 0 ? matchOtp(f, otp) : null;
  return match ? { kind: 'valid', token: f.token, ...match, challenge: open[0] } : null;
}
