import type { Logger } from 'pino';
import type { Db } from '../store/db.ts';
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';
import { insertReturningId } from '../store/insert.ts';
import type { Clock } from '../util/clock.ts';
import { currentRequestId } from '../util/request-context.ts';
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

/**
 * Writes HMAC-chained audit rows. Events of one event-loop turn are written in one
 * transaction (group commit); the single `audit_head` row is locked for update,
 * so writers on several nodes extend the chain one after another. The writer checks
 * the head's MAC (and this node's anchor) before extending it: a forged, truncated or
 * rolled-back chain is never sealed by a new write.
 */
export class AuditWriter {
  private pending: { row: AuditRow; done: (e?: Error) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private anchored: Anchor | undefined;
  /** False when the anchor file is not ours (bad MAC): it is then left for verify to report. */
  private anchorWritable = true;
  private anchorWriting: Promise<void> | null = null;
  private anchorDirty = false;

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
      if (!this.flushing) this.flushing = new Promise((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  /** Resolves when every queued row is committed (or failed) and the anchor file is written. */
  async settled(): Promise<void> {
    while (this.flushing || this.anchorWriting) await (this.flushing ?? this.anchorWriting);
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

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, 500);
      try {
        const committed = await this.db.kysely.transaction().execute(async (trx) => {
          let head = trx.selectFrom('audit_head').select(['last_id', 'last_hash', 'seq', 'mac']).where('id', '=', 1);
          if (this.db.dialect !== 'sqlite') head = head.forUpdate();
          const current = await head.executeTakeFirst();
          if (!current) throw new AuditChainError('the audit head row is missing (deleted, possibly with the newest rows)');
          const headSeq = Number(current.seq);
          const headId = Number(current.last_id);
          if (current.mac !== '' ? !sameHex(current.mac, headMac(this.chain.key, headSeq, headId, current.last_hash)) : headSeq !== 0) {
            throw new AuditChainError('the audit head does not carry a valid MAC (forged or altered)');
          }
          await this.checkNotRolledBack(trx, headSeq, current.last_hash);
          const rows = batch.map((b) => b.row);
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
            lastId = await insertReturningId(this.db.dialect, trx.insertInto('audit').values({ ...row, seq, prev_hash: prev, hash }));
            prev = hash;
          }
          await trx.updateTable('audit_head')
            .set({ last_id: lastId, last_hash: prev, seq, mac: headMac(this.chain.key, seq, lastId, prev) })
            .where('id', '=', 1).execute();
          return { seq, id: lastId, hash: prev };
        });
        this.anchored = committed;
        this.scheduleAnchorWrite();
        for (const p of batch) p.done();
      } catch (e) {
        this.logger?.error({ err: e }, 'audit write failed');
        for (const p of batch) p.done(e as Error);
      }
    }
    this.flushing = null;
  }

  /** The head must not be behind, or beside, the newest row this node wrote (its anchor). */
  private async checkNotRolledBack(trx: Transaction<Database>, headSeq: number, headHash: string): Promise<void> {
    const a = this.anchored;
    if (!a) return;
    if (headSeq < a.seq) throw new AuditChainError(`the audit chain was rolled back: the head is at sequence ${headSeq}, this node's anchor at ${a.seq}`);
    if (headSeq === a.seq) {
      if (headHash !== a.hash) throw new AuditChainError(`the audit chain was rolled back and rewritten: the head at sequence ${headSeq} differs from this node's anchor`);
      return;
    }
    const found = await trx.selectFrom('audit').select(['id', 'hash']).where('seq', '=', a.seq).execute();
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
        this.anchorDirty = false;
        await writeAnchor(this.chain, this.anchored!);
      }
    })()
      .catch((e: unknown) => this.logger?.error({ err: e, path: this.chain.anchorPath }, 'audit anchor not written'))
      .finally(() => {
        this.anchorWriting = null;
        if (this.anchorDirty) this.scheduleAnchorWrite();
      });
  }
}
