import type { Logger } from 'pino';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';
import type { DeliveryService } from './service.ts';

/** A message to a user that carries no code: e.g. "a new phone number was added" (security B.2 #24). */
export interface Notice {
  channel: 'sms' | 'email';
  to: string;
  text: string;
  subject: string;
  serial: string;
  client: string;
  user?: string;
  realm?: string;
  /** One notice per key: a retried call does not send it twice. */
  key: string;
}

/**
 * Sends a notice through the default provider of its channel, under the same send limits as a
 * code, and returns at once (the outbox retries a failure). False when a limit refused it or it
 * could not be queued: logged at warn, never an error of the change it announces.
 */
export async function sendNotice(deps: { delivery: DeliveryService; db: Db; clock: Clock; logger: Logger }, n: Notice): Promise<boolean> {
  const { delivery } = deps;
  try {
    const limits = await delivery.checkLimits({ channel: n.channel, to: n.to, text: n.text, serial: n.serial, client: n.client, user: n.user, realm: n.realm });
    if (!limits.ok) {
      deps.logger.warn({ serial: n.serial, channel: n.channel, reason: limits.reason }, 'notice not sent: send limit');
      return false;
    }
    const at = deps.clock.now();
    const { id } = await deps.db.kysely.transaction().execute((trx) =>
      delivery.enqueue(trx, { channel: n.channel, to: limits.normalizedTo, text: n.text, subject: n.subject, serial: n.serial, client: n.client, user: n.user, realm: n.realm }, {
        providers: [], idempotencyKey: n.key, expiresAt: at + 3_600_000,
      }),
    );
    void delivery.dispatchAndWait(id, 0).catch(() => undefined);
    return true;
  } catch (err) {
    deps.logger.warn({ serial: n.serial, channel: n.channel, err }, 'notice not sent');
    return false;
  }
}
