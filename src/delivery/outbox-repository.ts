import { sql, type Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import { atomicSteps, affected, drive, type Steps } from '../store/transaction.ts';
import type { DialectName } from '../store/db.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { healthyQuery } from './provider-repository.ts';
import { FINAL_STATUSES, OPEN_STATUSES, insertIgnore, n, type AttemptRow, type Executor, type OutboxRow, type OutboxStatus } from './repository.ts';

/**
 * The outbox (one row per message, also the delivery log) and its attempts. Every
 * state change of a message is a conditional write on its lease, so two dispatchers
 * (threads or nodes) can never send the same attempt.
 */
export class OutboxRepository {
  constructor(private readonly db: Db) {}

  private get k(): Kysely<Database> {
    return this.db.kysely;
  }

  /** Writes the row in the caller's transaction; an existing idempotency key returns the first row's id. */
  async enqueue(exec: Executor, row: Omit<OutboxRow, 'id'>): Promise<number> {
    return drive(exec, this.enqueueSteps(exec, row));
  }

  /** {@link enqueue} as a step (store/transaction.ts atomicSteps). */
  *enqueueSteps(k: Executor, row: Omit<OutboxRow, 'id'>): Steps<number> {
    const { dialect } = this.db;
    const key = { key: row.idempotency_key };
    const found = (yield byKeyQuery.bind(k, dialect, key)).rows[0] as { id: unknown } | undefined;
    if (found) return n(found.id);
    yield outboxInsertQuery(dialect).bind(k, dialect, row);
    // MySQL's repeatable read would show the snapshot without a concurrent winner's row; a locking read sees it.
    const after = (yield (dialect === 'mysql' ? byKeySharedQuery : byKeyQuery).bind(k, dialect, key)).rows[0] as { id: unknown } | undefined;
    if (!after) throw new Error('outbox row not found after its insert');
    return n(after.id);
  }

  async insertLogOnly(row: Omit<OutboxRow, 'id'>): Promise<number> {
    return this.enqueue(this.k, row);
  }

  async getOutbox(id: number): Promise<OutboxRow | undefined> {
    return (await rowQuery.run(this.k, this.db.dialect, { id })).rows[0];
  }

  /**
   * Takes the lease of a message that is due: open and due, or "sending"
   * with an expired lease (its dispatcher died). Returns the row when this
   * owner got it.
   */
  async claim(id: number, owner: string, now: number, leaseMs: number): Promise<OutboxRow | undefined> {
    const res = await claimQuery.run(this.k, this.db.dialect, { id, owner, now, leaseUntil: now + leaseMs });
    if (affected(res) !== 1) return undefined;
    const row = await this.getOutbox(id);
    return row && row.lease_owner === owner && row.status === 'sending' ? row : undefined;
  }

  /** Ids of messages a dispatcher may claim now. */
  async dueIds(now: number, limit: number): Promise<number[]> {
    const rows = await this.k
      .selectFrom('delivery_outbox')
      .select('id')
      .where((eb) =>
        eb.or([
          eb.and([eb('status', 'in', OPEN_STATUSES), eb('next_attempt_at', '<=', now)]),
          eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', now)]),
        ]),
      )
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    return rows.map((r) => n(r.id));
  }

  /**
   * Starts one attempt under the lease: bumps `attempts` from the value this
   * owner saw and inserts the attempt row with its unique key, in one atomic step
   * that is durable when this resolves (the provider is called only after it).
   * Undefined = the lease was lost or the attempt exists already; then nothing is sent.
   */
  async beginAttempt(id: number, owner: string, seenAttempts: number, provider: string, now: number, leaseMs: number): Promise<{ attemptNo: number; attemptKey: string } | undefined> {
    const attemptNo = seenAttempts + 1;
    const attemptKey = `${id}:${attemptNo}`;
    const dialect = this.db.dialect;
    return atomicSteps(this.db, function* (k) {
      const bumped = yield attemptBumpQuery.bind(k, dialect, { id, owner, seenAttempts, attemptNo, provider, leaseUntil: now + leaseMs, now });
      if (affected(bumped) !== 1) return undefined;
      const inserted = yield attemptInsertQuery(dialect).bind(k, dialect, { id, attemptNo, attemptKey, provider, now });
      // the bump above is undone with it
      if (affected(inserted) !== 1) throw new AttemptExists();
      return { attemptNo, attemptKey };
    }).catch((e: unknown) => {
      if (e instanceof AttemptExists) return undefined;
      throw e;
    });
  }

  async finishAttempt(attemptKey: string, status: string, providerMessageId: string, error: string, now: number): Promise<void> {
    await this.k
      .updateTable('delivery_attempts')
      .set({ status, provider_message_id: providerMessageId.slice(0, 255), error: error.slice(0, 512), finished_at: now })
      .where('attempt_key', '=', attemptKey)
      .execute();
  }

  /**
   * A provider accepted the message: its attempt, the provider's health (failures in a row
   * end) and the message's final state, in one atomic step (one commit instead of three; a
   * crash can no longer leave an accepted attempt under a message still "sending", which a
   * dispatcher taking over the lease would send again). `finalized` false: the lease was lost.
   * `healed`: the provider had failures before.
   */
  async recordAccepted(id: number, owner: string, attemptKey: string, provider: string, providerMessageId: string, healthKey: string, now: number): Promise<{ finalized: boolean; healed: boolean }> {
    const dialect = this.db.dialect;
    const messageId = providerMessageId.slice(0, 255);
    return atomicSteps(this.db, function* (k) {
      yield acceptedAttemptQuery.bind(k, dialect, { attemptKey, providerMessageId: messageId, now });
      const healed = affected(yield healthyQuery.bind(k, dialect, { key: healthKey, now })) > 0;
      const finalized = affected(yield acceptedQuery.bind(k, dialect, { id, owner, provider, providerMessageId: messageId, now })) === 1;
      return { finalized, healed };
    });
  }

  /** Records providers that refused this message for good (still under the lease). */
  async setRefused(id: number, owner: string, refused: string[], now: number): Promise<void> {
    await this.k.updateTable('delivery_outbox').set({ refused: JSON.stringify(refused), updated_at: now }).where('id', '=', id).where('lease_owner', '=', owner).execute();
  }

  /** Ends a message: final status, payload wiped, lease released. False when the lease was lost. */
  async finalize(
    id: number,
    owner: string,
    status: Exclude<OutboxStatus, 'queued' | 'sending' | 'retry'>,
    fields: { provider?: string; providerMessageId?: string; error?: string },
    now: number,
  ): Promise<boolean> {
    const res = await this.k
      .updateTable('delivery_outbox')
      .set({
        status,
        payload_enc: '',
        lease_owner: '',
        lease_until: 0,
        updated_at: now,
        finished_at: now,
        ...(fields.provider !== undefined ? { provider: fields.provider } : {}),
        ...(fields.providerMessageId !== undefined ? { provider_message_id: fields.providerMessageId.slice(0, 255) } : {}),
        ...(fields.error !== undefined ? { error: fields.error.slice(0, 512) } : {}),
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'sending')
      .executeTakeFirst();
    return n(res.numUpdatedRows) === 1;
  }

  /** Puts a message back for a later pass and releases the lease. */
  async scheduleRetry(id: number, owner: string, nextAt: number, error: string, now: number): Promise<boolean> {
    const res = await this.k
      .updateTable('delivery_outbox')
      .set({ status: 'retry', next_attempt_at: nextAt, lease_owner: '', lease_until: 0, error: error.slice(0, 512), updated_at: now })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('status', '=', 'sending')
      .executeTakeFirst();
    return n(res.numUpdatedRows) === 1;
  }

  /** Expires open messages whose code is no longer valid; returns them. */
  async expireOverdue(now: number): Promise<OutboxRow[]> {
    const rows = await this.k
      .selectFrom('delivery_outbox')
      .selectAll()
      .where('expires_at', '<=', now)
      .where((eb) => eb.or([eb('status', 'in', OPEN_STATUSES), eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', now)])]))
      .limit(500)
      .execute();
    const expired: OutboxRow[] = [];
    for (const r of rows) {
      const res = await this.k
        .updateTable('delivery_outbox')
        .set({ status: 'expired', payload_enc: '', lease_owner: '', lease_until: 0, updated_at: now, finished_at: now, error: r.error || 'code expired before delivery' })
        .where('id', '=', r.id)
        .where('status', '=', r.status)
        .where('lease_until', '=', r.lease_until)
        .executeTakeFirst();
      if (n(res.numUpdatedRows) === 1) expired.push({ ...r, status: 'expired' });
    }
    return expired;
  }

  /** A delivery receipt: accepted → delivered/failed. Returns the messages it changed. */
  async applyReceipt(channel: string, provider: string, providerMessageId: string, status: 'delivered' | 'failed', detail: string, now: number): Promise<OutboxRow[]> {
    const rows = await this.k
      .selectFrom('delivery_outbox')
      .selectAll()
      .where('channel', '=', channel)
      .where('provider', '=', provider)
      .where('provider_message_id', '=', providerMessageId)
      .where('status', 'in', ['accepted', 'delivered'])
      .execute();
    const changed: OutboxRow[] = [];
    for (const r of rows) {
      if (r.status === status) continue;
      await this.k
        .updateTable('delivery_outbox')
        .set({ status, updated_at: now, ...(status === 'failed' ? { error: detail.slice(0, 512) } : {}) })
        .where('id', '=', r.id)
        .execute();
      await this.k
        .updateTable('delivery_attempts')
        .set({ status, error: status === 'failed' ? detail.slice(0, 512) : '' })
        .where('outbox_id', '=', r.id)
        .where('provider_message_id', '=', providerMessageId)
        .execute();
      changed.push({ ...r, status });
    }
    return changed;
  }

  async attemptsOf(ids: number[]): Promise<AttemptRow[]> {
    if (ids.length === 0) return [];
    return this.k.selectFrom('delivery_attempts').selectAll().where('outbox_id', 'in', ids).orderBy('outbox_id').orderBy('attempt_no').execute();
  }

  /** The delivery log, newest first (`order: 'asc'`: oldest first). */
  async log(filter: { status?: string; channel?: string; user?: string; realm?: string; serial?: string; since?: number; until?: number; offset: number; limit: number; order?: 'asc' | 'desc' }): Promise<{ rows: OutboxRow[]; total: number }> {
    let q = this.k.selectFrom('delivery_outbox');
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.channel) q = q.where('channel', '=', filter.channel);
    if (filter.user) q = q.where('user_name', '=', filter.user);
    if (filter.realm) q = q.where('realm', '=', filter.realm);
    if (filter.serial) q = q.where('serial', '=', filter.serial);
    if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('created_at', '<', filter.until);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('id', filter.order === 'asc' ? 'asc' : 'desc').offset(filter.offset).limit(filter.limit).execute();
    return { rows, total: n(total.c) };
  }

  async pruneLog(before: number): Promise<void> {
    await this.k.deleteFrom('delivery_outbox').where('created_at', '<', before).where('status', 'in', [...FINAL_STATUSES]).execute();
  }
}

class AttemptExists extends Error {}

// The statements of every message's enqueue and dispatch, compiled once (store/prepared.ts)
const byKeyQuery = new PreparedQuery<{ key: string }>((k, p) => k.selectFrom('delivery_outbox').select('id').where('idempotency_key', '=', p.key));
// MariaDB has no FOR SHARE; FOR UPDATE would deadlock with INSERT IGNORE's shared lock
const byKeySharedQuery = new PreparedQuery<{ key: string }>((k, p) => k.selectFrom('delivery_outbox').select('id').where('idempotency_key', '=', p.key).modifyEnd(sql`lock in share mode`));
const outboxInsert = (dialect: DialectName) => new PreparedQuery<Omit<OutboxRow, 'id'>>((k, p) => insertIgnore(dialect, k, 'delivery_outbox', {
  idempotency_key: p.idempotency_key, channel: p.channel, destination_masked: p.destination_masked, destination_hash: p.destination_hash,
  payload_enc: p.payload_enc, providers: p.providers, refused: p.refused, status: p.status, attempts: p.attempts, next_attempt_at: p.next_attempt_at,
  lease_owner: p.lease_owner, lease_until: p.lease_until, provider: p.provider, provider_message_id: p.provider_message_id, error: p.error,
  user_name: p.user_name, realm: p.realm, serial: p.serial, client: p.client, created_at: p.created_at, updated_at: p.updated_at,
  expires_at: p.expires_at, finished_at: p.finished_at,
} satisfies Record<keyof Omit<OutboxRow, 'id'>, unknown>));
const outboxInserts = { mysql: outboxInsert('mysql'), other: outboxInsert('postgres') };
const outboxInsertQuery = (dialect: DialectName) => (dialect === 'mysql' ? outboxInserts.mysql : outboxInserts.other);
const rowQuery = new PreparedQuery<{ id: number }, OutboxRow>((k, p) => k.selectFrom('delivery_outbox').selectAll().where('id', '=', p.id));
const claimQuery = new PreparedQuery<{ id: number; owner: string; now: number; leaseUntil: number }>((k, p) => k
  .updateTable('delivery_outbox')
  .set({ status: 'sending', lease_owner: p.owner, lease_until: p.leaseUntil, updated_at: p.now })
  .where('id', '=', p.id)
  .where((eb) =>
    eb.or([
      eb.and([eb('status', 'in', OPEN_STATUSES), eb('next_attempt_at', '<=', p.now)]),
      eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', p.now)]),
    ]),
  ));
const attemptBumpQuery = new PreparedQuery<{ id: number; owner: string; seenAttempts: number; attemptNo: number; provider: string; leaseUntil: number; now: number }>((k, p) => k
  .updateTable('delivery_outbox')
  .set({ attempts: p.attemptNo, provider: p.provider, lease_until: p.leaseUntil, updated_at: p.now })
  .where('id', '=', p.id)
  .where('lease_owner', '=', p.owner)
  .where('status', '=', 'sending')
  .where('attempts', '=', p.seenAttempts));
type AttemptInsert = { id: number; attemptNo: number; attemptKey: string; provider: string; now: number };
const attemptInsert = (dialect: DialectName) => new PreparedQuery<AttemptInsert>((k, p) => insertIgnore(dialect, k, 'delivery_attempts', {
  outbox_id: p.id, attempt_no: p.attemptNo, attempt_key: p.attemptKey, provider: p.provider, status: 'sending',
  provider_message_id: '', error: '', started_at: p.now, finished_at: null,
}));
const attemptInserts = { mysql: attemptInsert('mysql'), other: attemptInsert('postgres') };
const attemptInsertQuery = (dialect: DialectName) => (dialect === 'mysql' ? attemptInserts.mysql : attemptInserts.other);
const acceptedAttemptQuery = new PreparedQuery<{ attemptKey: string; providerMessageId: string; now: number }>((k, p) => k
  .updateTable('delivery_attempts')
  .set({ status: 'accepted', provider_message_id: p.providerMessageId, error: '', finished_at: p.now })
  .where('attempt_key', '=', p.attemptKey));
const acceptedQuery = new PreparedQuery<{ id: number; owner: string; provider: string; providerMessageId: string; now: number }>((k, p) => k
  .updateTable('delivery_outbox')
  .set({ status: 'accepted', payload_enc: '', lease_owner: '', lease_until: 0, updated_at: p.now, finished_at: p.now, provider: p.provider, provider_message_id: p.providerMessageId, error: '' })
  .where('id', '=', p.id)
  .where('lease_owner', '=', p.owner)
  .where('status', '=', 'sending'));
