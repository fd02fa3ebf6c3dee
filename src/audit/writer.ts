import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../store/db.ts';
import type { AuditTable } from '../store/schema.ts';
import { insertReturningId } from '../store/insert.ts';
import type { Clock } from '../util/clock.ts';

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
  client?: string;
  logLevel?: string;
}

/** An audit row as hashed: every column but the id and the chain fields. */
export type AuditRow = Omit<AuditTable, 'id' | 'prev_hash' | 'hash'>;

const MAX = 511;
const clip = (s: string | undefined) => {
  const v = s ?? '';
  return v.length > MAX ? `${v.slice(0, MAX - 1)}…` : v;
};

/** Hash of a row chained to its predecessor: sha256(prev_hash ‖ canonical row). */
export function chainHash(prevHash: string, row: AuditRow): string {
  const canonical = JSON.stringify([
    row.ts, row.action, row.success, row.serial, row.token_type, row.user, row.realm, row.administrator,
    row.action_detail, row.info, row.server, row.client, row.log_level, row.clearance_level,
  ]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

/**
 * Writes hash-chained audit rows. Events of one event-loop turn are written in one
 * transaction (group commit); the single `audit_head` row is locked for update,
 * so writers on several nodes extend the chain one after another.
 */
export class AuditWriter {
  private pending: { row: AuditRow; done: (e?: Error) => void }[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly server: string,
    private readonly logger?: Logger,
  ) {}

  /** Resolves when the row is committed. */
  write(event: AuditEvent): Promise<void> {
    const row: AuditRow = {
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
      server: clip(this.server),
      client: clip(event.client),
      log_level: event.logLevel ?? 'INFO',
      clearance_level: 0,
    };
    return new Promise((resolve, reject) => {
      this.pending.push({ row, done: (e) => (e ? reject(e) : resolve()) });
      if (!this.flushing) this.flushing = new Promise((r) => setImmediate(r)).then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, 500);
      try {
        await this.db.kysely.transaction().execute(async (trx) => {
          let head = trx.selectFrom('audit_head').select(['last_id', 'last_hash']).where('id', '=', 1);
          if (this.db.dialect !== 'sqlite') head = head.forUpdate();
          const current = await head.executeTakeFirstOrThrow();
          let prev = current.last_hash;
          let lastId = Number(current.last_id);
          for (const { row } of batch) {
            const hash = chainHash(prev, row);
            lastId = await insertReturningId(this.db.dialect, trx.insertInto('audit').values({ ...row, prev_hash: prev, hash }));
            prev = hash;
          }
          await trx.updateTable('audit_head').set({ last_id: lastId, last_hash: prev }).where('id', '=', 1).execute();
        });
        for (const p of batch) p.done();
      } catch (e) {
        this.logger?.error({ err: (e as Error).message }, 'audit write failed');
        for (const p of batch) p.done(e as Error);
      }
    }
    this.flushing = null;
  }
}

export interface VerifyResult {
  ok: boolean;
  rows: number;
  problems: string[];
}

/** Walks the chain: an altered, deleted or inserted row breaks it. */
export async function verifyAuditChain(db: Db): Promise<VerifyResult> {
  const problems: string[] = [];
  let prev = '0'.repeat(64);
  let rows = 0;
  let lastId = 0;
  const pageSize = 5000;
  for (;;) {
    const page = await db.kysely.selectFrom('audit').selectAll().where('id', '>', lastId).orderBy('id').limit(pageSize).execute();
    for (const r of page) {
      rows++;
      if (r.prev_hash !== prev) problems.push(`row ${r.id}: chain broken before this row (a row was deleted or inserted)`);
      const expected = chainHash(r.prev_hash, { ...r, clearance_level: Number(r.clearance_level) });
      if (expected !== r.hash) problems.push(`row ${r.id}: content does not match its hash (altered)`);
      prev = r.hash;
      lastId = Number(r.id);
    }
    if (page.length < pageSize) break;
  }
  const head = await db.kysely.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
  if (head && head.last_hash !== prev) problems.push(`newest row(s) missing: head ${head.last_id} does not match the last row ${lastId}`);
  return { ok: problems.length === 0, rows, problems };
}
