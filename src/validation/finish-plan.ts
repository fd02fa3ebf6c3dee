import type { Token } from '../tokens/types.ts';
import type { Challenge } from './challenges.ts';
import type { Classification } from './classify.ts';
import type { OtpPinMode } from './split.ts';

type Valid = Extract<Classification, { kind: 'valid' }>;

/**
 * What the classifications of one request add up to (spec 2.3, LinOTP's
 * `finish_checked_tokens`), before any write: the service carries it out.
 */
export type FinishPlan =
  /** More than one token matched: nobody is let in. */
  | { kind: 'ambiguous'; valid: Valid[] }
  /** Exactly one matched: its single-use write decides. */
  | { kind: 'success'; valid: Valid }
  /** Tokens whose first factor asks for a challenge: every attempt is given back. */
  | { kind: 'challenge'; tokens: Token[] }
  /** The first factor matched, the OTP did not: only these tokens keep their attempt; their open challenges count a failure. */
  | { kind: 'wrongOtp'; tokens: Token[]; challenges: Challenge[] }
  /** Nothing matched: every token that compared something keeps its attempt; the open challenges answered count a failure. */
  | { kind: 'wrongFirstFactor'; reason: 'wrongPin' | 'wrongPassword'; detail: string; challenges: Challenge[]; compared: Token[] }
  /** The transaction answered is open for none of the tokens: nothing was compared, every attempt is given back. */
  | { kind: 'notOpen'; tokens: Token[] }
  /** The first factor matched and the OTP is the value accepted last: refused, no guess, every attempt is given back. */
  | { kind: 'replay'; tokens: Token[] };

export function planFinish(classified: Classification[], mode: OtpPinMode): FinishPlan {
  const valid = classified.filter((c): c is Valid => c.kind === 'valid');
  if (valid.length > 1) return { kind: 'ambiguous', valid };
  if (valid.length === 1) return { kind: 'success', valid: valid[0] };
  const triggering = classified.filter((c) => c.kind === 'challenge');
  if (triggering.length > 0) return { kind: 'challenge', tokens: triggering.map((c) => c.token) };
  const pinMatching = classified.filter((c) => c.kind === 'pin');
  if (pinMatching.length > 0) return { kind: 'wrongOtp', tokens: pinMatching.map((c) => c.token), challenges: pinMatching.flatMap((c) => c.challenges) };
  const replays = classified.filter((c) => c.kind === 'replay');
  if (replays.length > 0) return { kind: 'replay', tokens: replays.map((c) => c.token) };
  const compared = classified.filter((c) => c.kind !== 'notOpen').map((c) => c.token);
  if (compared.length === 0) return { kind: 'notOpen', tokens: classified.map((c) => c.token) };
  const challenges = classified.flatMap((c) => (c.kind === 'invalid' ? c.challenges : []));
  return mode === 1
    ? { kind: 'wrongFirstFactor', reason: 'wrongPassword', detail: 'wrong user password -1', challenges, compared }
    : { kind: 'wrongFirstFactor', reason: 'wrongPin', detail: 'wrong otp pin -1', challenges, compared };
}
