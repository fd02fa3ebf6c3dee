/**
 * What goes into the validation pipeline and what comes out, the same for HTTP and
 * RADIUS. Presentation (LinOTP's `detail`, Access-Challenge attributes) belongs to
 * api/ and radius/; both start from the same answer (answer.ts).
 */
import type { DirectoryUser } from '../users/types.ts';
import type { Reason } from './reasons.ts';

/** One authentication request, the same for HTTP and RADIUS. */
export interface CheckRequest {
  user?: string;
  realm?: string;
  pass?: string;
  serial?: string;
  /** Answer to this challenge (`transactionid` or `state`). */
  transactionId?: string;
  client: string;
  tokenType?: string;
  /** `data` / `message`: SMS text override. */
  message?: string;
  /** `challenge` parameter: with check_s and no pass, asks for a challenge (policy trigger_sms). */
  challenge?: string;
  /**
   * Which entry point asks: check_s has no user and never autoenrolls. `userservice` is the
   * second step of the self-service login: the login checked the user-store password itself, so
   * the pass is the OTP alone (otppin 2), and a user without tokens is refused (no
   * autoenrollment, passthru or passOnNoToken: those are for /validate, not for the portal).
   */
  entry: 'check' | 'simplecheck' | 'check_s' | 'samlcheck' | 'radius' | 'userservice';
}

export interface ChallengeInfo {
  transactionId: string;
  message: string;
  /** sms/email carry `state` (= transaction id); HMAC challenges do not. */
  state?: string;
  serial: string;
  tokenType: string;
  description: string;
  info?: string;
  expiresAt: number;
  /** Out-of-band: where the code went, masked (`+49 151 ****78`, `a***@example.org`); never the full address. */
  destination?: string;
  /** Out-of-band: the provider accepted the code (`sent`) or the bounded wait ran out first (`pending`). */
  delivery?: 'sent' | 'pending';
}

/** The audit fields of an outcome: never secrets. */
export interface OutcomeAudit {
  user?: string;
  realm?: string;
  serial?: string;
  tokenType?: string;
  actionDetail: string;
  info?: string;
}

export interface CheckOutcome {
  ok: boolean;
  /** Why it ended so: a stable code, written to the audit row's `reason`. */
  reason: Reason;
  challenges: ChallengeInfo[];
  audit: OutcomeAudit;
  user?: DirectoryUser | null;
  /** Details for `detail_on_fail` / autoenrollment errors. */
  error?: string;
  /** A user store could not be asked: the answer is an error, never "authenticated". */
  unavailable?: boolean;
  /**
   * A failure that was no guess — no secret was checked (every token locked, inactive or not
   * allowed) or a replay of the value just accepted: it spends no attempt of the account.
   */
  notAGuess?: boolean;
  /**
   * A challenge was due after the first factor matched, but no code went out (no destination,
   * a send limit, the provider refused): the user can try again or ask for help.
   */
  notSent?: boolean;
  /** A failure that went the whole way (tokens reserved and checked): its time sets the failure floor. */
  fullCheck?: boolean;
}

type OutcomeExtra = Partial<Omit<CheckOutcome, 'ok' | 'reason' | 'audit'>> & { audit?: Partial<OutcomeAudit> };

/** A refusal: `actionDetail` is the audit text unless `extra.audit` names another. */
export const fail = (reason: Reason, actionDetail: string, extra: OutcomeExtra = {}): CheckOutcome => ({
  ok: false, reason, challenges: [], ...extra, audit: { actionDetail, ...extra.audit },
});

/** An acceptance. */
export const accept = (reason: Reason, audit: OutcomeAudit): CheckOutcome => ({ ok: true, reason, challenges: [], audit });

/** The audit's serial and type columns for several tokens: comma lists, types without repeats. */
export function serialsOf(tokens: { serial: string; type: string }[]): { serial: string; tokenType: string } {
  return { serial: tokens.map((t) => t.serial).join(','), tokenType: [...new Set(tokens.map((t) => t.type))].join(',') };
}
