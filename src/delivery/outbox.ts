import type { Kysely, Transaction } from 'kysely';
import { drive, type Steps } from '../store/transaction.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import { Errors } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import type { Clock } from '../util/clock.ts';
import { maskDestination } from '../util/phone.ts';
import type { OutboxRepository } from './outbox-repository.ts';
import type { OutboxRow } from './repository.ts';
import type { OutgoingMessage } from './types.ts';

export interface EnqueueOptions {
  /** The ordered chain from the sms_provider / email_provider policy; [] = the default provider. */
  providers: string[];
  /** One message per key: a second enqueue with it returns the first row. */
  idempotencyKey: string;
  /** When the code stops being valid; nothing is sent after that. */
  expiresAt: number;
}

export interface OutboxDeps {
  outbox: OutboxRepository;
  keyring: KeyRing;
  clock: Clock;
}

/**
 * The way into the outbox: a message is written inside the caller's transaction
 * (the same one as its challenge), its text sealed with the key ring and its
 * destination kept only masked and as a keyed hash. The dispatcher sends it.
 */
export class Outbox {
  constructor(private readonly deps: OutboxDeps) {}

  /**
   * Writes the outbox row inside the caller's transaction. A second call with the
   * same idempotency key returns the first row and sends nothing more.
   */
  async enqueue(trx: Transaction<Database>, msg: OutgoingMessage, opts: EnqueueOptions): Promise<{ id: number }> {
    return drive(trx, this.enqueueSteps(trx, msg, opts));
  }

  /** {@link enqueue} as a step of the caller's atomic step (store/transaction.ts atomicSteps). */
  *enqueueSteps(k: Kysely<Database>, msg: OutgoingMessage, opts: EnqueueOptions): Steps<{ id: number }> {
    if (!opts.idempotencyKey || opts.idempotencyKey.length > 255) throw Errors.invalidIdempotencyKey();
    const { keyring } = this.deps;
    const providers = opts.providers.map((p) => p.trim()).filter(Boolean);
    const id = yield* this.deps.outbox.enqueueSteps(k, newOutboxRow(msg, this.deps.clock.now(), {
      idempotency_key: opts.idempotencyKey,
      destination_masked: maskDestination(msg.channel, msg.to),
      destination_hash: keyring.hash('delivery-destination', msg.to.trim().toLowerCase()).slice(0, 64),
      payload_enc: keyring.encrypt('config', JSON.stringify(msg)),
      providers: JSON.stringify(providers).slice(0, 1024),
      status: 'queued',
      expires_at: opts.expiresAt,
    }));
    return { id };
  }
}

/** A new outbox/delivery-log row for `msg`: the columns every new row shares, then `fields`. */
export function newOutboxRow(
  msg: Pick<OutgoingMessage, 'channel' | 'user' | 'realm' | 'serial' | 'client'>,
  now: number,
  fields: Pick<OutboxRow, 'idempotency_key' | 'destination_masked' | 'status' | 'expires_at'> & Partial<Omit<OutboxRow, 'id'>>,
): Omit<OutboxRow, 'id'> {
  return {
    channel: msg.channel,
    destination_hash: '',
    payload_enc: '',
    providers: '[]',
    refused: '[]',
    attempts: 0,
    next_attempt_at: now,
    lease_owner: '',
    lease_until: 0,
    provider: '',
    provider_message_id: '',
    error: '',
    user_name: (msg.user ?? '').slice(0, 255),
    realm: (msg.realm ?? '').slice(0, 255),
    serial: (msg.serial ?? '').slice(0, 255),
    client: (msg.client ?? '').slice(0, 64),
    created_at: now,
    updated_at: now,
    finished_at: null,
    ...fields,
  };
}
