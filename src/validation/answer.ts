import type { ChallengeInfo, CheckOutcome } from './outcome.ts';

/**
 * The answer step: what an outcome means for the caller, before any face dresses it.
 * `unavailable` first (a store outage is never an accept or a plain reject), then
 * accept, then challenge, else reject.
 */
export type Answer =
  | { kind: 'unavailable' }
  | { kind: 'accept' }
  | { kind: 'challenge'; challenges: ChallengeInfo[] }
  /** `error`: what `detail_on_fail` shows, the outcome's error or else its action detail. */
  | { kind: 'reject'; error: string };

export function answer(out: CheckOutcome): Answer {
  if (out.unavailable) return { kind: 'unavailable' };
  if (out.ok) return { kind: 'accept' };
  if (out.challenges.length > 0) return { kind: 'challenge', challenges: out.challenges };
  return { kind: 'reject', error: out.error ?? out.audit.actionDetail };
}
