import { randomHex } from '../crypto/random.ts';
import type { Clock } from '../util/clock.ts';
import { newOutboxRow } from './outbox.ts';
import type { OutboxRepository } from './outbox-repository.ts';
import type { AttemptRow } from './repository.ts';
import type { ChannelType, OutgoingMessage } from './types.ts';

export interface DeliveryLogEntry {
  id: number;
  channel: string;
  to: string;
  status: string;
  provider: string;
  providerMessageId: string;
  error: string;
  user: string;
  realm: string;
  serial: string;
  client: string;
  createdAt: number;
  finishedAt: number | null;
  expiresAt: number;
  attempts: { no: number; provider: string; status: string; providerMessageId: string; error: string; startedAt: number; finishedAt: number | null }[];
}

export interface DeliveryLogFilter {
  status?: string;
  channel?: string;
  user?: string;
  realm?: string;
  serial?: string;
  /** Created at or after (epoch ms). */
  since?: number;
  /** Created before (epoch ms). */
  until?: number;
  /** @default 1 */
  page?: number;
  /** 1–500. @default 50 */
  size?: number;
  /** By creation: `desc` newest first. @default 'desc' */
  order?: 'asc' | 'desc';
}

export interface DeliveryLogDeps {
  outbox: OutboxRepository;
  clock: Clock;
}

/**
 * The delivery log: every outbox row with its attempts, masked destinations,
 * statuses, providers and errors; never a code. Besides the messages the
 * dispatcher sends, it records the ones that are never sent: refusals by the
 * send limits and administrators' test messages.
 */
export class DeliveryLog {
  constructor(private readonly deps: DeliveryLogDeps) {}

  async list(filter: DeliveryLogFilter): Promise<{ total: number; page: number; entries: DeliveryLogEntry[] }> {
    const size = Math.min(500, Math.max(1, filter.size ?? 50));
    const page = Math.max(1, filter.page ?? 1);
    const { rows, total } = await this.deps.outbox.log({ ...filter, offset: (page - 1) * size, limit: size });
    const attempts = await this.deps.outbox.attemptsOf(rows.map((r) => r.id));
    const byOutbox = new Map<number, AttemptRow[]>();
    for (const a of attempts) {
      const list = byOutbox.get(Number(a.outbox_id)) ?? [];
      list.push(a);
      byOutbox.set(Number(a.outbox_id), list);
    }
    return {
      total,
      page,
      entries: rows.map((r) => ({
        id: Number(r.id),
        channel: r.channel,
        to: r.destination_masked,
        status: r.status,
        provider: r.provider,
        providerMessageId: r.provider_message_id,
        error: r.error,
        user: r.user_name,
        realm: r.realm,
        serial: r.serial,
        client: r.client,
        createdAt: Number(r.created_at),
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
        expiresAt: Number(r.expires_at),
        attempts: (byOutbox.get(Number(r.id)) ?? []).map((a) => ({
          no: a.attempt_no,
          provider: a.provider,
          status: a.status,
          providerMessageId: a.provider_message_id,
          error: a.error,
          startedAt: Number(a.started_at),
          finishedAt: a.finished_at === null ? null : Number(a.finished_at),
        })),
      })),
    };
  }

  /** A message the send limits or number checks refused: a final row without text. */
  async recordRefusal(msg: OutgoingMessage, maskedTo: string, reason: string): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.outbox.insertLogOnly(newOutboxRow(msg, now, {
      idempotency_key: `refused:${randomHex(12)}`,
      destination_masked: maskedTo,
      status: 'refused',
      error: reason.slice(0, 512),
      expires_at: now,
      finished_at: now,
    }));
  }

  /** An administrator's test message through one provider (sent at `startedAt`, answered now). */
  async recordTest(test: { channel: ChannelType; provider: string; maskedTo: string; startedAt: number; status: 'accepted' | 'failed'; providerMessageId: string; error: string }): Promise<void> {
    await this.deps.outbox.insertLogOnly(newOutboxRow({ channel: test.channel, serial: 'test message' }, test.startedAt, {
      idempotency_key: `test:${randomHex(12)}`,
      destination_masked: test.maskedTo,
      providers: JSON.stringify([test.provider]),
      status: test.status,
      attempts: 1,
      provider: test.provider,
      provider_message_id: test.providerMessageId.slice(0, 255),
      error: test.error.slice(0, 512),
      expires_at: test.startedAt,
      finished_at: this.deps.clock.now(),
    }));
  }
}
