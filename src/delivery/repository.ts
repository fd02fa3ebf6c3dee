import type { Kysely, Selectable, Transaction } from 'kysely';
import type { DialectName } from '../store/db.ts';
import type { Database, DeliveryAttemptTable, DeliveryOutboxTable, DeliveryProviderTable } from '../store/schema.ts';

/**
 * Row types and SQL helpers shared by the delivery repositories: the outbox and its
 * attempts (outbox-repository.ts), providers and their health (provider-repository.ts),
 * send-limit counters (counter-repository.ts). Only the delivery services use them;
 * provider modules never see the database.
 */

export type OutboxRow = Selectable<DeliveryOutboxTable>;
export type AttemptRow = Selectable<DeliveryAttemptTable>;
export type ProviderRow = Selectable<DeliveryProviderTable>;
export type OutboxStatus = 'queued' | 'sending' | 'retry' | 'accepted' | 'delivered' | 'failed' | 'expired' | 'refused';

/** Statuses after which nothing is sent any more (the payload is wiped). */
export const FINAL_STATUSES: readonly OutboxStatus[] = ['accepted', 'delivered', 'failed', 'expired', 'refused'];
export const OPEN_STATUSES: OutboxStatus[] = ['queued', 'retry'];

export type Executor = Kysely<Database> | Transaction<Database>;

/** A count or id column as a number (drivers give bigint or string for some). */
export const n = (v: unknown) => Number(v ?? 0);

export { insertIgnore } from '../store/insert.ts';
