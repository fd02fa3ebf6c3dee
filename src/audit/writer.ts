import type { Logger } from 'pino';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';
import { currentRequestId } from '../util/request-context.ts';
import { PreparedQuery } from '../store/prepared.ts';
import { drive, driveSync, type Steps } from '../store/transaction.ts';
import { AuditChainError, clip, headMac, readAnchor, rowMac, sameHex, writeAnchor, type Anchor, type AuditChainKey, type AuditRow } from './chain.ts';

export { auditChainKey, AuditChainError, type AuditChainKey, type AuditRow } from './chain.ts';

/** One audit event, LinOTP's columns (spec 1.8, 9.1). Never an OTP, PIN or password. */
export interface AuditEvent {
  action: string;
  success: boolean;
  serial?: string;
  tokenType?: string;
  user?: string;
  realm?: string;
  administrator?: string;
  actionDetail?: string;
  info?: string;
  /** A stable code for why it ended so (validation/reasons.ts, or an error's catalogue key). */
  reason?: string;
  client?: string;
  logLevel?: string;
  /** The HTTP request that made the event. @default the request being served (util/request-context.ts), else none */
  requestId?: string;
}

/** One extension of the chain: yields each query it needs and is sent its result. */
type Extension = Steps<Anchor>;

/** The anchor file is written at most this often; a crash can leave it this far behind the chain (it is not fsynced either). */
export const ANCHOR_INTERVAL_MS = 100;

// The statements of every audit batch, compiled once (store/prepared.ts)
const headRead = (locked: boolean) => new PreparedQuery<{ id: number }>((k, p) => {
  const q = k.selectFrom('audit_head').select(['last_id', 'last_hash', 'seq', 'mac']).where('id', '=', p.id);
  return locked ? q.forUpdate() : q;
});
const headOfSqlite = headRead(false);
const headLocked = headRead(true);
const headWrite = new PreparedQuery<{ lastId: number; lastHash: string; seq: number; mac: string }>((k, p) =>
  k.updateTable('audit_head').set({ last_id: p.lastId, last_hash: p.lastHash, seq: p.seq, mac: p.mac }).where('id', '=', 1));
type AuditInsert = AuditRow & { seq: number; prev_hash: string; hash: string };
/** One insert per set of columns (the rows of row() all have the same) and per kind of id: RETURNING or insertId. */
const inserts = new Map<string, PreparedQuery<AuditInsert>>();
function auditInsert(values: AuditInsert, returning: boolean): PreparedQuery<AuditInsert> {
  const columns = Object.keys(values) as (keyof AuditInsert)[];
  const shape = `${returning}:${columns.join(',')}`;
  let q = inserts.get(shape);
  if (!q) {
    q = new PreparedQuery<AuditInsert>((k, p) => {
      const insert = k.insertInto('audit').values(Object.fromEntries(columns.map((c) => [c, p[c]])) as AuditInsert);
      return returning ? insert.returning('id') : insert;
    });
    inserts.set(shape, q);
  }
  return q;
}

/**
 * Writes HMAC-chained audit rows. The single `audit_head` row is read (locked for update on
 * PostgreSQL and MariaDB), its MAC (and this node's anchor) checked, the rows inserted and the
 * head moved, with nothing in between: a forged, truncated or rolled-back chain is never
 * sealed by a new write, and writers on several nodes extend the chain one after another.
 * The events of one event-loop turn are written together, all or none: on SQLite right before
 * the group commit of the requests that wrote them (the same commit as their counter writes,
 * no explicit transaction), on PostgreSQL and MariaDB in one transaction.
 */
export class AuditWriter {
  private pending: { row: AuditRow; done: (e?: Error) => void }[] = [];
  private flushing: Promise<void> | null = null;
  /** SQLite batches handed to a group that has not committed yet. */
  private readonly uncommitted = new Set<Promise<void>>();
  /** The newest committed head this node wrote. */
  private anchored: Anchor | undefined;
  /** False when the anchor file is not ours (bad MAC): it is then left for verify to report. */
  private anchorWritable = true;
  private anchorWriting: Promise<void> | null = null;
  private anchorDirty = false;
  private anchorWrittenAt = -Infinity;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly server: string,
    private readonly chain: AuditChainKey,
    private readonly logger?: Logger,
  ) {
    const read = readAnchor(chain);
    if (read.kind === 'ok') this.anchored = read.anchor;
    if (read.kind === 'bad') {
      this.anchorWritable = false;
      logger?.error({ path: chain.anchorPath, reason: read.reason }, 'audit anchor file is not valid; left untouched');
    }
  }

  /** Resolves when the row is committed. */
  write(event: AuditEvent): Promise<void> {
    const row = this.row(event);
    return new Promise((resolve, reject) => {
      this.pending.push({ row, done: (e) => (e ? reject(e) : resolve()) });
      if (this.flushing) return;
      this.flushing = this.db.atomically ? this.flushInGroup() : new Promise((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  /** Resolves when every queued row is committed (or failed) and the anchor file is written. */
  async settled(): Promise<void> {
    while (this.flushing || this.uncommitted.size > 0 || this.anchorWriting) {
      await Promise.allSettled([this.flushing, ...this.uncommitted, this.anchorWriting]);
    }
  }

  private row(event: AuditEvent): AuditRow {
    return {
      ts: new Date(this.clock.now()).toISOString(),
      action: clip(event.action),
      success: event.success ? '1' : '0',
      serial: clip(event.serial),
      token_type: clip(event.tokenType),
      user: clip(event.user),
      realm: clip(event.realm),
      administrator: clip(event.administrator),
      action_detail: clip(event.actionDetail),
      info: clip(event.info),
      reason: clip(event.reason),
      server: clip(this.server),
      client: clip(event.client),
      log_level: event.logLevel ?? 'INFO',
      clearance_level: 0,
      request_id: (event.requestId ?? currentRequestId() ?? '').slice(0, 64),
    };
  }

  /**
   * SQLite: the rows queued until the open group commits are written right before its COMMIT,
   * all or none, and settle with that commit (the same one as the requests' own writes).
   */
  private async flushInGroup(): Promise<void> {
    let batch: typeof this.pending = [];
    const done = (async () => {
      try {
        const { value: head, committed } = await this.db.atomically!((exec) => {
          batch = this.pending.splice(0);
          // rows written from here on go to the next group
          this.flushing = null;
          return driveSync(exec, this.extend(batch.map((b) => b.row)));
        });
        await committed;
        this.committed(head);
        for (const p of batch) p.done();
      } catch (e) {
        this.logger?.error({ err: e }, 'audit write failed');
        if (batch.length === 0) {
          batch = this.pending.splice(0);
          this.flushing = null;
        }
        for (const p of batch) p.done(e as Error);
      }
    })();
    this.uncommitted.add(done);
    await done;
    this.uncommitted.delete(done);
  }

  /** PostgreSQL, MariaDB: the queued rows in one transaction with the head locked for update. */
  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, 500);
      try {
        const head = await this.db.kysely.transaction().execute((trx) => drive(trx, this.extend(batch.map((b) => b.row))));
        this.committed(head);
        for (const p of batch) p.done();
      } catch (e) {
        this.logger?.error({ err: e }, 'audit write failed');
        for (const p of batch) p.done(e as Error);
      }
    }
    this.flushing = null;
  }

  private committed(head: Anchor): void {
    if (!this.anchored || head.seq > this.anchored.seq) this.anchored = head;
    this.scheduleAnchorWrite();
  }

  /** Checks the head and appends the rows after it; the queries in order, with nothing between them. */
  private *extend(batch: AuditRow[]): Extension {
    const { kysely, dialect } = this.db;
    const head = (dialect === 'sqlite' ? headOfSqlite : headLocked).bind(kysely, dialect, { id: 1 });
    const current = (yield head).rows[0] as { last_id: number; last_hash: string; seq: number; mac: string } | undefined;
    if (!current) throw new AuditChainError('the audit head row is missing (deleted, possibly with the newest rows)');
    const headSeq = Number(current.seq);
    const headId = Number(current.last_id);
    if (current.mac !== '' ? !sameHex(current.mac, headMac(this.chain.key, headSeq, headId, current.last_hash)) : headSeq !== 0) {
      throw new AuditChainError('the audit head does not carry a valid MAC (forged or altered)');
    }
    yield* this.checkNotRolledBack(headSeq, current.last_hash);
    const rows = [...batch];
    if (current.mac === '' && headId !== 0) {
      // rows from before migration 0610: the first keyed row seals their last hash
      rows.unshift(this.row({ action: 'audit/chain-keyed', success: true, requestId: '', info: `keyed chain starts; rows up to id ${headId} use the unkeyed SHA-256 chain` }));
    }
    let prev = current.last_hash;
    let seq = headSeq;
    let lastId = headId;
    for (const row of rows) {
      seq++;
      const hash = rowMac(this.chain.key, seq, prev, row);
      const values = { ...row, seq, prev_hash: prev, hash };
      // the new id: RETURNING on SQLite/PostgreSQL, insertId on MariaDB
      const res = yield auditInsert(values, dialect !== 'mysql').bind(kysely, dialect, values);
      lastId = Number(dialect === 'mysql' ? res.insertId : (res.rows[0] as { id: number }).id);
      prev = hash;
    }
    yield headWrite.bind(kysely, dialect, { lastId, lastHash: prev, seq, mac: headMac(this.chain.key, seq, lastId, prev) });
    return { seq, id: lastId, hash: prev };
  }

  /** The head must not be behind, or beside, the newest row this node wrote (its anchor). */
  private *checkNotRolledBack(headSeq: number, headHash: string): Steps<void> {
    const a = this.anchored;
    if (!a) return;
    if (headSeq < a.seq) throw new AuditChainError(`the audit chain was rolled back: the head is at sequence ${headSeq}, this node's anchor at ${a.seq}`);
    if (headSeq === a.seq) {
      if (headHash !== a.hash) throw new AuditChainError(`the audit chain was rolled back and rewritten: the head at sequence ${headSeq} differs from this node's anchor`);
      return;
    }
    const found = (yield this.db.kysely.selectFrom('audit').select(['id', 'hash']).where('seq', '=', a.seq).compile()).rows as { id: number; hash: string }[];
    if (found.length !== 1 || found[0].hash !== a.hash || Number(found[0].id) !== a.id) {
      throw new AuditChainError(`the audit chain was rolled back: the row this node anchored (sequence ${a.seq}, id ${a.id}) is gone or changed`);
    }
  }

  private scheduleAnchorWrite(): void {
    if (!this.chain.anchorPath || !this.anchorWritable) return;
    this.anchorDirty = true;
    if (this.anchorWriting) return;
    this.anchorWriting = (async () => {
      while (this.anchorDirty) {
        // at most one file write per ANCHOR_INTERVAL_MS: each is a read, a temporary file and a
        // rename (about 4 % of a success's CPU when written after every commit); the anchor in
        // memory, which every append checks, is always the newest
        const wait = this.anchorWrittenAt + ANCHOR_INTERVAL_MS - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.anchorDirty = false;
        await writeAnchor(this.chain, this.anchored!);
        this.anchorWrittenAt = performance.now();
      }
    })()
      .catch((e: unknown) => this.logger?.error({ err: e, path: this.chain.anchorPath }, 'audit anchor not written'))
      .finally(() => {
        this.anchorWriting = null;
        if (this.anchorDirty) this.scheduleAnchorWrite();
      });
  }
}
