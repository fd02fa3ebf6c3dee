import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Database, DeliveryAttemptTable, DeliveryOutboxTable, DeliveryProviderTable } from '../store/schema.ts';

export type OutboxRow = Selectable<DeliveryOutboxTable>;
export type AttemptRow = Selectable<DeliveryAttemptTable>;
export type ProviderRow = Selectable<DeliveryProviderTable>;
export type OutboxStatus = 'queued' | 'sending' | 'retry' | 'accepted' | 'delivered' | 'failed' | 'expired' | 'refused';

/** Statuses after which nothing is sent any more (the payload is wiped). */
export const FINAL_STATUSES: readonly OutboxStatus[] = ['accepted', 'delivered', 'failed', 'expired', 'refused'];
const OPEN_STATUSES: OutboxStatus[] = ['queued', 'retry'];

export interface CounterBucket {
  scope: string;
  bucket: string;
  windowStart: number;
  max: number;
  expiresAt: number;
}

type Executor = Kysely<Database> | Transaction<Database>;

const n = (v: unknown) => Number(v ?? 0);

/**
 * All SQL of the delivery area. Every state change of a message is a
 * conditional write on its lease, so two dispatchers (threads or nodes)
 * can never send the same attempt.
 */
export class DeliveryRepository {
  constructor(private readonly db: Db) {}

  private get k(): Kysely<Database> {
    return this.db.kysely;
  }

  /** INSERT … that does nothing when the key exists, on all three dialects. */
  private insertIgnore<T extends keyof Database>(exec: Executor, table: T, values: any) {
    const q = exec.insertInto(table).values(values);
    return this.db.dialect === 'mysql' ? q.ignore() : q.onConflict((oc) => oc.doNothing());
  }

  // ---- providers ------------------------------------------------------------

  listProviders(type?: string): Promise<ProviderRow[]> {
    let q = this.k.selectFrom('delivery_providers').selectAll().orderBy('type').orderBy('name');
    if (type) q = q.where('type', '=', type);
    return q.execute();
  }

  async getProvider(type: string, name: string): Promise<ProviderRow | undefined> {
    return this.k.selectFrom('delivery_providers').selectAll().where('type', '=', type).where('name', '=', name).executeTakeFirst();
  }

  /** Inserts or replaces a provider; `makeDefault` clears the flag of the others of its type. */
  async saveProvider(row: Omit<ProviderRow, 'id' | 'created_at'>, makeDefault: boolean, now: number): Promise<void> {
    await this.k.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('delivery_providers').select(['id']).where('type', '=', row.type).where('name', '=', row.name).executeTakeFirst();
      if (makeDefault) await trx.updateTable('delivery_providers').set({ is_default: 0 }).where('type', '=', row.type).execute();
      const values = { ...row, is_default: makeDefault ? 1 : row.is_default, updated_at: now };
      if (existing) await trx.updateTable('delivery_providers').set(values).where('id', '=', existing.id).execute();
      else await trx.insertInto('delivery_providers').values({ ...values, created_at: now }).execute();
      // LinOTP: with no default of this type, the first provider becomes it.
      const hasDefault = await trx.selectFrom('delivery_providers').select('id').where('type', '=', row.type).where('is_default', '=', 1).executeTakeFirst();
      if (!hasDefault) {
        await trx.updateTable('delivery_providers').set({ is_default: 1 }).where('type', '=', row.type).where('name', '=', row.name).execute();
      }
    });
  }

  async setDefaultProvider(type: string, name: string, now: number): Promise<boolean> {
    return this.k.transaction().execute(async (trx) => {
      const target = await trx.selectFrom('delivery_providers').select('id').where('type', '=', type).where('name', '=', name).executeTakeFirst();
      if (!target) return false;
      await trx.updateTable('delivery_providers').set({ is_default: 0 }).where('type', '=', type).execute();
      await trx.updateTable('delivery_providers').set({ is_default: 1, updated_at: now }).where('id', '=', target.id).execute();
      return true;
    });
  }

  async deleteProvider(type: string, name: string): Promise<boolean> {
    const res = await this.k.deleteFrom('delivery_providers').where('type', '=', type).where('name', '=', name).executeTakeFirst();
    await this.k.deleteFrom('delivery_health').where('provider_key', '=', `${type}:${name}`).execute();
    return n(res.numDeletedRows) > 0;
  }

  /** Policies whose action mentions `<action>=` (for the "provider used in policies" refusal). */
  async policiesWithAction(action: string): Promise<{ name: string; action: string }[]> {
    try {
      return await this.k.selectFrom('policies').select(['name', 'action']).where('action', 'like', `%${action}%`).execute();
    } catch {
      return []; // no policies table in this installation
    }
  }

  // ---- outbox ---------------------------------------------------------------

  /** Writes the row in the caller's transaction; an existing idempotency key returns the first row's id. */
  async enqueue(exec: Executor, row: Omit<OutboxRow, 'id'>): Promise<number> {
    const found = await exec.selectFrom('delivery_outbox').select('id').where('idempotency_key', '=', row.idempotency_key).executeTakeFirst();
    if (found) return n(found.id);
    await this.insertIgnore(exec, 'delivery_outbox', row).execute();
    let q = exec.selectFrom('delivery_outbox').select('id').where('idempotency_key', '=', row.idempotency_key);
    // MySQL's repeatable read would show the snapshot without a concurrent winner's row; a locking read sees it.
    if (this.db.dialect === 'mysql') q = q.modifyEnd(sql`lock in share mode`); // MariaDB has no FOR SHARE; FOR UPDATE would deadlock with INSERT IGNORE's shared lock
    const after = await q.executeTakeFirstOrThrow();
    return n(after.id);
  }

  async insertLogOnly(row: Omit<OutboxRow, 'id'>): Promise<number> {
    return this.enqueue(this.k, row);
  }

  getOutbox(id: number): Promise<OutboxRow | undefined> {
    return this.k.selectFrom('delivery_outbox').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Takes the lease of a message that is due: open and due, or "sending"
   * with an expired lease (its dispatcher died). Returns the row when this
   * owner got it.
   */
  async claim(id: number, owner: string, now: number, leaseMs: number): Promise<OutboxRow | undefined> {
    const res = await this.k
      .updateTable('delivery_outbox')
      .set({ status: 'sending', lease_owner: owner, lease_until: now + leaseMs, updated_at: now })
      .where('id', '=', id)
      .where((eb) =>
        eb.or([
          eb.and([eb('status', 'in', OPEN_STATUSES), eb('next_attempt_at', '<=', now)]),
          eb.and([eb('status', '=', 'sending'), eb('lease_until', '<', now)]),
        ]),
      )
      .executeTakeFirst();
    if (n(res.numUpdatedRows) !== 1) return undefined;
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
   * owner saw and inserts the attempt row with its unique key. Undefined =
   * the lease was lost or the attempt exists already; then nothing is sent.
   */
  async beginAttempt(id: number, owner: string, seenAttempts: number, provider: string, now: number, leaseMs: number): Promise<{ attemptNo: number; attemptKey: string } | undefined> {
    const attemptNo = seenAttempts + 1;
    const attemptKey = `${id}:${attemptNo}`;
    return this.k.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('delivery_outbox')
        .set({ attempts: attemptNo, provider, lease_until: now + leaseMs, updated_at: now })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .where('status', '=', 'sending')
        .where('attempts', '=', seenAttempts)
        .executeTakeFirst();
      if (n(res.numUpdatedRows) !== 1) return undefined;
      const inserted = await this.insertIgnore(trx, 'delivery_attempts', {
        outbox_id: id,
        attempt_no: attemptNo,
        attempt_key: attemptKey,
        provider,
        status: 'sending',
        provider_message_id: '',
        error: '',
        started_at: now,
        finished_at: null,
      }).executeTakeFirst();
      if (n(inserted.numInsertedOrUpdatedRows) !== 1) throw new AttemptExists();
      return { attemptNo, attemptKey };
    }).catch((e) => {
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

  /** The delivery log, newest first. */
  async log(filter: { status?: string; channel?: string; user?: string; realm?: string; serial?: string; since?: number; until?: number; offset: number; limit: number }): Promise<{ rows: OutboxRow[]; total: number }> {
    let q = this.k.selectFrom('delivery_outbox');
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.channel) q = q.where('channel', '=', filter.channel);
    if (filter.user) q = q.where('user_name', '=', filter.user);
    if (filter.realm) q = q.where('realm', '=', filter.realm);
    if (filter.serial) q = q.where('serial', '=', filter.serial);
    if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('created_at', '<', filter.until);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute();
    return { rows, total: n(total.c) };
  }

  async pruneLog(before: number): Promise<void> {
    await this.k.deleteFrom('delivery_outbox').where('created_at', '<', before).where('status', 'in', [...FINAL_STATUSES]).execute();
  }

  // ---- send-limit counters --------------------------------------------------

  /**
   * Counts one send in every bucket, all or nothing: each bucket is a
   * conditional increment (`count < max`) in one transaction; the first
   * bucket at its limit rolls everything back and is returned.
   */
  async consume(buckets: CounterBucket[]): Promise<{ ok: true } | { ok: false; bucket: CounterBucket }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.k.transaction().execute(async (trx) => {
          for (const b of buckets) if (!(await this.countOne(trx, b))) throw new OverLimit(b);
          return { ok: true as const };
        });
      } catch (e) {
        if (e instanceof OverLimit) return { ok: false, bucket: e.bucket };
        if (attempt < 8 && isRetryableConflict(e)) {
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
          continue;
        }
        throw e;
      }
    }
  }

  /** One conditional increment; false when the bucket is at its limit. */
  private async countOne(trx: Transaction<Database>, b: CounterBucket): Promise<boolean> {
    const row = { scope: b.scope, bucket: b.bucket, window_start: b.windowStart, count: 1, expires_at: b.expiresAt };
    const increment = () =>
      trx
        .updateTable('delivery_counters')
        .set({ count: sql`${sql.ref('count')} + 1` })
        .where('scope', '=', b.scope)
        .where('bucket', '=', b.bucket)
        .where('window_start', '=', b.windowStart)
        .where('count', '<', b.max)
        .executeTakeFirst();
    if (this.db.dialect !== 'mysql') {
      // One atomic statement: insert the window's row, or count up while below the limit.
      const res = await trx
        .insertInto('delivery_counters')
        .values(row)
        .onConflict((oc) =>
          oc
            .columns(['scope', 'bucket', 'window_start'])
            .doUpdateSet({ count: sql`${sql.ref('delivery_counters.count')} + 1` })
            .where('delivery_counters.count', '<', b.max),
        )
        .executeTakeFirst();
      return n(res.numInsertedOrUpdatedRows) === 1;
    }
    // MySQL: update first (row locks in a fixed order), create the row only when missing;
    // INSERT IGNORE before UPDATE would take shared locks and deadlock under bursts.
    if (n((await increment()).numUpdatedRows) === 1) return true;
    const inserted = await trx.insertInto('delivery_counters').values(row).ignore().executeTakeFirst();
    if (n(inserted.numInsertedOrUpdatedRows) === 1) return true;
    return n((await increment()).numUpdatedRows) === 1;
  }

  async counterValue(scope: string, bucket: string, windowStart: number): Promise<number> {
    const row = await this.k.selectFrom('delivery_counters').select('count').where('scope', '=', scope).where('bucket', '=', bucket).where('window_start', '=', windowStart).executeTakeFirst();
    return n(row?.count);
  }

  async pruneCounters(now: number): Promise<void> {
    await this.k.deleteFrom('delivery_counters').where('expires_at', '<', now).execute();
  }

  // ---- provider health ------------------------------------------------------

  async health(keys: string[]): Promise<Map<string, { failures: number; downUntil: number; lastError: string }>> {
    if (keys.length === 0) return new Map();
    const rows = await this.k.selectFrom('delivery_health').selectAll().where('provider_key', 'in', keys).execute();
    return new Map(rows.map((r) => [r.provider_key, { failures: n(r.failures), downUntil: n(r.down_until), lastError: r.last_error }]));
  }

  async allHealth(): Promise<{ key: string; failures: number; downUntil: number; lastError: string }[]> {
    const rows = await this.k.selectFrom('delivery_health').selectAll().execute();
    return rows.map((r) => ({ key: r.provider_key, failures: n(r.failures), downUntil: n(r.down_until), lastError: r.last_error }));
  }

  /** One more failure: back-off doubles from `baseMs` up to `maxMs`. */
  async markUnhealthy(key: string, reason: string, now: number, baseMs: number, maxMs: number): Promise<number> {
    await this.insertIgnore(this.k, 'delivery_health', { provider_key: key, failures: 0, down_until: 0, last_error: '', updated_at: now }).execute();
    const row = await this.k.selectFrom('delivery_health').select('failures').where('provider_key', '=', key).executeTakeFirst();
    const failures = n(row?.failures) + 1;
    const downUntil = now + Math.min(maxMs, baseMs * 2 ** Math.min(20, failures - 1));
    await this.k
      .updateTable('delivery_health')
      .set({ failures: sql`${sql.ref('failures')} + 1`, down_until: downUntil, last_error: reason.slice(0, 512), updated_at: now })
      .where('provider_key', '=', key)
      .execute();
    return downUntil;
  }

  async markHealthy(key: string, now: number): Promise<void> {
    await this.k.updateTable('delivery_health').set({ failures: 0, down_until: 0, updated_at: now }).where('provider_key', '=', key).where('failures', '>', 0).execute();
  }
}

class OverLimit extends Error {
  constructor(readonly bucket: CounterBucket) {
    super('over limit');
  }
}

class AttemptExists extends Error {}

/** Deadlocks and serialisation failures: the transaction may simply run again. */
function isRetryableConflict(e: unknown): boolean {
  const err = e as { code?: string; errno?: number };
  return err?.code === '40P01' || err?.code === '40001' || err?.code === 'ER_LOCK_DEADLOCK' || err?.errno === 1213 || err?.code === 'SQLITE_BUSY';
}
