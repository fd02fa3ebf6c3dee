import type { Logger } from 'pino';
import { httpRequest } from '../delivery/net/http-client.ts';
import type { Clock } from '../util/clock.ts';
import { createHostPolicy } from '../util/net.ts';
import { accept, fail, type ChallengeInfo, type CheckOutcome, type CheckRequest } from '../validation/outcome.ts';
import { parseForwardTargets, type ForwardTarget } from './targets.ts';

/** What is forwarded: the request as the client sent it (user, realm, pass, transaction). */
export type ForwardRequest = Pick<CheckRequest, 'user' | 'realm' | 'pass' | 'transactionId' | 'client'>;

/**
 * Forwards a validation to the old server of a switch-over (policy `forward_server`): LinOTP's
 * `/validate/check` with user, realm, pass, transactionid and client, each target in turn
 * until one answers. Its answer becomes otpd's: accepted, refused, or its challenge (the client
 * answers with the old server's transaction id, which is forwarded again). No target
 * answering is an outage (`unavailable`: ERR2004 over HTTP, silence over RADIUS).
 */
export class Forwarder {
  private readonly hosts = createHostPolicy({ purpose: 'forward targets' });

  constructor(private readonly logger: Logger, private readonly clock: Clock) {}

  async forward(req: ForwardRequest, policyValue: string): Promise<CheckOutcome> {
    let targets: ForwardTarget[];
    try {
      targets = parseForwardTargets(policyValue);
    } catch (e) {
      // a stored value that no longer parses: fail closed
      return fail('forwardUnavailable', `forward_server unusable: ${(e as Error).message}`, { unavailable: true });
    }
    const form: Record<string, string> = { user: req.user ?? '', pass: req.pass ?? '' };
    if (req.realm) form.realm = req.realm;
    if (req.transactionId) form.transactionid = req.transactionId;
    if (req.client) form.client = req.client;
    const problems: string[] = [];
    for (const t of targets) {
      const where = new URL(t.url).host;
      try {
        const res = await httpRequest({
          url: t.url, method: 'POST', form, connectTimeoutMs: Math.min(t.timeoutMs, 3000), timeoutMs: t.timeoutMs,
          signal: AbortSignal.timeout(t.timeoutMs + 500), hosts: this.hosts, maxBodyBytes: 65536,
        });
        const outcome = answerOf(res.status, res.body, where, this.clock.now());
        if (outcome) return outcome;
        problems.push(`${where}: HTTP ${res.status}, no LinOTP answer`);
      } catch (e) {
        problems.push(`${where}: ${(e as Error).message}`);
      }
    }
    this.logger.error({ targets: targets.map((t) => new URL(t.url).host), problems }, 'forward_server: no old server answered');
    return fail('forwardUnavailable', `forward_server: no server answered (${problems.join('; ')})`, { unavailable: true });
  }
}

/** The old server's LinOTP envelope as an outcome, or null when the body is none. */
function answerOf(status: number, body: string, where: string, now: number): CheckOutcome | null {
  let json: { result?: { status?: unknown; value?: unknown }; detail?: Record<string, unknown> };
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  const r = json?.result;
  if (!r || typeof r !== 'object' || status >= 500) return null;
  const detail = json.detail ?? {};
  if (r.status === true && r.value === true) return accept('forwarded', { actionDetail: `forwarded to ${where}: accepted` });
  const tid = typeof detail.transactionid === 'string' ? detail.transactionid : undefined;
  if (r.status === true && tid && /^[0-9A-Za-z.]{1,64}$/.test(tid)) {
    const s = (k: string) => (typeof detail[k] === 'string' ? (detail[k] as string).slice(0, 200) : '');
    const challenge: ChallengeInfo = {
      transactionId: tid, message: s('message') || 'challenge', ...(typeof detail.state === 'string' ? { state: s('state') } : {}),
      serial: s('linotp_tokenserial'), tokenType: s('linotp_tokentype'), description: s('linotp_tokendescription'),
      expiresAt: now + 120_000,
    };
    return { ok: false, reason: 'forwardedChallenge', challenges: [challenge], audit: { actionDetail: `forwarded to ${where}: challenge` } };
  }
  if (r.status === false) return fail('forwardedRefused', `forwarded to ${where}: it answered an error`);
  return fail('forwardedRefused', `forwarded to ${where}: refused`);
}
