import type { Answer } from '../validation/answer.ts';
import type { ChallengeInfo } from '../validation/outcome.ts';

/** spec 1.3.1: the `detail` of a value-false answer that triggered challenges. */
export function challengeDetail(challenges: ChallengeInfo[]): Record<string, unknown> | undefined {
  if (challenges.length === 0) return undefined;
  const one = (c: ChallengeInfo) => ({
    transactionid: c.transactionId,
    message: c.message,
    ...(c.state !== undefined ? { state: c.state } : {}),
    ...(c.info !== undefined ? { info: c.info } : {}),
    linotp_tokenserial: c.serial,
    linotp_tokentype: c.tokenType,
    linotp_tokendescription: c.description,
  });
  if (challenges.length === 1) return one(challenges[0]);
  return {
    challenges: Object.fromEntries(challenges.map((c) => [c.serial, one(c)])),
    transactionid: challenges[0].transactionId.slice(0, 14),
    message: 'Multiple challenges submitted.',
  };
}

/** spec 1.3.2: the plain-text answer of /validate/simplecheck. */
export function simplecheckText(a: Answer): string {
  if (a.kind === 'accept') return ':-)';
  if (a.kind === 'challenge') return `:-( ${a.challenges[0].transactionId} ${a.challenges[0].message}`;
  return ':-(';
}
