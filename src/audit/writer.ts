import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import type { Transaction } from 'kysely';
import type { AuditTable, Database } from '../store/schema.ts';
import { insertReturningId } from '../store/insert.ts';
import type { Clock } from '../util/clock.ts';
import { currentRequestId } from '../util/request-context.ts';

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

/** An audit row as hashed: every column but the id and the chain fields. */
export type AuditRow = Omit<AuditTable, 'id' | 'seq' | 'prev_hash' | 'hash' | 'request_id' | 'reason'> & { request_id: string; reason: string };

/**
 * What keys the chain: `key` (KeyRing.deriveKey('audit-chain'), never in the database) and
 * where this node keeps its anchor, the newest (sequence, id, hash) it wrote, beside the key
 * file in the data directory. Without `anchorPath` a rollback of the head to an older genuine
 * value cannot be told (see docs/configuration.md, "Audit log").
 */
export interface AuditChainKey {
  key: Buffer;
  /** @default none (no anchor) */
  anchorPath?: string;
}

/** The chain key of a node: derived from its key file, anchor `audit-anchor.json` in its data directory. */
export function auditChainKey(keyring: KeyRing, dataDir: string): AuditChainKey {
  return { key: keyring.deriveKey('audit-chain'), anchorPath: join(dataDir, 'audit-anchor.json') };
}

/** The chain was tampered with in a way the writer must not extend (that would seal the forgery). */
export class AuditChainError extends Error {
  constructor(message: string) {
    super(`${message}; refusing to extend the audit chain, run "otpd audit verify"`);
    this.name = 'AuditChainError';
  }
}

const ZERO = '0'.repeat(64);
const MAX = 511;
const clip = (s: string | undefined) => {
  const v = s ?? '';
  return v.length > MAX ? `${v.slice(0, MAX - 1)}…` : v;
};

/**
 * Columns added after the keyed chain (migration 0630 on), by name, those that are set only:
 * a row written before a column existed (or without a value for it) keeps its MAC, and a value
 * set, changed or cleared later breaks it. A new column joins here under its own name.
 */
function laterColumns(row: AuditRow): Record<string, string> {
  const out: Record<string, string> = {};
  if (row.request_id) out.request_id = row.request_id;
  if (row.reason) out.reason = row.reason;
  return out;
}

function canonical(row: AuditRow): string {
  const columns: unknown[] = [
    row.ts, row.action, row.success, row.serial, row.token_type, row.user, row.realm, row.administrator,
    row.action_detail, row.info, row.server, row.client, row.log_level, Number(row.clearance_level),
  ];
  const later = laterColumns(row);
  if (Object.keys(later).length > 0) columns.push(later);
  return JSON.stringify(columns);
}

/** The unkeyed chain of rows written before migration 0610 (seq 0): sha256(prev_hash ‖ "\n" ‖ canonical row). */
export function legacyChainHash(prevHash: string, row: AuditRow): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonical(row)).digest('hex');
}

/** A keyed row: HMAC-SHA-256(key, "row" ‖ seq ‖ prev_hash ‖ canonical row). */
export function rowMac(key: Buffer, seq: number, prevHash: string, row: AuditRow): string {
  return createHmac('sha256', key).update(`row\n${seq}\n${prevHash}\n`).update(canonical(row)).digest('hex');
}

/** The head's seal: HMAC-SHA-256(key, "head" ‖ seq ‖ last id ‖ last hash). */
export function headMac(key: Buffer, seq: number, lastId: number, lastHash: string): string {
  return createHmac('sha256', key).update(`head\n${seq}\n${lastId}\n${lastHash}`).digest('hex');
}

function anchorMac(key: Buffer, a: Anchor): string {
  return createHmac('sha256', key).update(`anchor\n${a.seq}\n${a.id}\n${a.hash}`).digest('hex');
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

interface Anchor {
  seq: number;
  id: number;
  hash: string;
}

type AnchorRead = { kind: 'none' } | { kind: 'ok'; anchor: Anchor } | { kind: 'bad'; reason: string };

function readAnchor(chain: AuditChainKey): AnchorRead {
  if (!chain.anchorPath || !existsSync(chain.anchorPath)) return { kind: 'none' };
  try {
    const data = JSON.parse(readFileSync(chain.anchorPath, 'utf8')) as Partial<Anchor & { mac: string }>;
    const anchor = { seq: Number(data.seq), id: Number(data.id), hash: String(data.hash) };
    if (!Number.isSafeInteger(anchor.seq) || !Number.isSafeInteger(anchor.id) || typeof data.mac !== 'string') return { kind: 'bad', reason: 'malformed' };
    if (!sameHex(data.mac, anchorMac(chain.key, anchor))) return { kind: 'bad', reason: 'its MAC does not match (altered, or made with another key file)' };
    return { kind: 'ok', anchor };
  } catch (e) {
    return { kind: 'bad', reason: (e as Error).message };
  }
}

/** Writes the anchor atomically, never moving it backwards (another process may share the directory). */
async function writeAnchor(chain: AuditChainKey, anchor: Anchor): Promise<void> {
  const path = chain.anchorPath!;
  const current = readAnchor(chain);
  if (current.kind === 'ok' && current.anchor.seq >= anchor.seq) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ ...anchor, mac: anchorMac(chain.key, anchor) })}\n`, { mode: 0o600 });
  await rename(tmp, path);
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

/** Where the chain first breaks: the row's id and sequence when known (a deleted row has no id). */
export interface BrokenAt {
  id: number | null;
  seq: number | null;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  rows: number;
  /** Rows of the unkeyed SHA-256 chain written before migration 0610 (seq 0). */
  legacyRows: number;
  /** One line per problem, walk order; a row's start with `row <id>: `. */
  problems: string[];
  firstBroken?: BrokenAt;
  /** Not problems: how much of the chain is legacy, whether an anchor was checked. */
  notes: string[];
}

const MAX_PROBLEMS = 1000;

/**
 * Walks the chain: a row altered, deleted, inserted or re-chained without the key, a head
 * that is missing, forged or ahead of the rows, and (with this node's anchor) a head rolled
 * back to an older genuine value all break it. Rows of the unkeyed chain before the first
 * keyed row are checked the old way; the first keyed row seals their last hash. Rows
 * appended by other writers during the walk are checked too.
 */
export async function verifyAuditChain(db: Db, chain: AuditChainKey): Promise<VerifyResult> {
  const broken: BrokenAt[] = [];
  const notes: string[] = [];
  const add = (id: number | null, seq: number | null, reason: string) => {
    if (broken.length < MAX_PROBLEMS) broken.push({ id, seq, reason });
  };
  // anchor before head before rows: each may only be older than the next, never newer
  const anchorRead = readAnchor(chain);
  const head = await db.kysely.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
  const headId = head ? Number(head.last_id) : -1;
  const anchor = anchorRead.kind === 'ok' ? anchorRead.anchor : undefined;
  let atHead: { seq: number; hash: string } | undefined;
  let atAnchor: { id: number; hash: string } | undefined;
  let prev = ZERO;
  let rows = 0;
  let legacyRows = 0;
  let keyed = false;
  let expectSeq = 1;
  let lastId = 0;
  let lastSeq = 0;
  const pageSize = 5000;
  for (;;) {
    const page = await db.kysely.selectFrom('audit').selectAll().where('id', '>', lastId).orderBy('id').limit(pageSize).execute();
    for (const r of page) {
      rows++;
      const id = Number(r.id);
      const seq = Number(r.seq);
      const row = { ...r, clearance_level: Number(r.clearance_level) };
      if (seq === 0) {
        if (keyed) add(id, 0, 'unkeyed row inside the keyed chain (inserted, or a keyed row downgraded)');
        else {
          legacyRows++;
          if (r.prev_hash !== prev) add(id, 0, 'chain broken before this row (a row was deleted or inserted)');
          if (legacyChainHash(r.prev_hash, row) !== r.hash) add(id, 0, 'content does not match its hash (altered)');
        }
      } else {
        keyed = true;
        if (seq !== expectSeq) add(id, seq, `sequence ${seq} where ${expectSeq} was expected (rows deleted, inserted or renumbered)`);
        if (r.prev_hash !== prev) add(id, seq, 'chain broken before this row (a row was deleted or inserted)');
        if (!sameHex(rowMac(chain.key, seq, r.prev_hash, row), r.hash)) add(id, seq, 'content does not match its hash (keyed HMAC: altered, or re-chained without the key)');
        expectSeq = seq + 1;
        lastSeq = seq;
        if (anchor && seq === anchor.seq) atAnchor = { id, hash: r.hash };
      }
      if (id === headId) atHead = { seq, hash: r.hash };
      prev = r.hash;
      lastId = id;
    }
    if (page.length < pageSize) break;
  }

  // The head was read before the rows: an initial (unkeyed, sequence 0) head beside keyed rows
  // is a verify that raced the first keyed writes, not a forgery, when the head is keyed now
  // (every keyed write moves the head in its own transaction).
  const raced = head !== undefined && head.mac === '' && Number(head.seq) === 0 && keyed
    && (await db.kysely.selectFrom('audit_head').select('mac').where('id', '=', 1).executeTakeFirst())?.mac !== '';
  if (raced) notes.push('the first keyed rows were written during this verify; the head is keyed now (verify again to check it)');
  else if (!head) add(null, keyed ? lastSeq + 1 : null, 'the audit head row is missing (deleted, possibly together with the newest rows)');
  else if (head.mac === '') {
    if (keyed || Number(head.seq) !== 0) add(null, null, 'the audit head is unkeyed but the chain is keyed (head replaced without the key)');
    else if (headId !== 0 && atHead?.hash !== head.last_hash) add(null, null, `newest row(s) missing: head ${headId} does not match the last row ${lastId}`);
    else if (rows > 0) notes.push(`chain not keyed yet: all ${rows} rows use the unkeyed SHA-256 chain (forgeable with database access); the next audit write seals them`);
  } else {
    const headSeq = Number(head.seq);
    if (!sameHex(head.mac, headMac(chain.key, headSeq, headId, head.last_hash))) {
      add(null, null, 'the audit head MAC is invalid (head forged or altered, or another key file)');
    } else if (!atHead && headSeq > lastSeq) {
      add(null, lastSeq + 1, `newest row(s) missing: head at sequence ${headSeq} (row ${headId}) but the last row is sequence ${lastSeq} (row ${lastId})`);
    } else if (!atHead || atHead.seq !== headSeq || atHead.hash !== head.last_hash) {
      add(headId, headSeq, 'row named by the audit head does not match it (rows deleted and re-inserted)');
    }
  }
  if (legacyRows > 0) notes.push(`${legacyRows} rows before the keyed chain use the unkeyed SHA-256 chain (legacy), sealed by the first keyed row`);

  if (anchorRead.kind === 'bad') add(null, null, `the audit anchor ${chain.anchorPath} is not valid: ${anchorRead.reason}`);
  else if (anchor) {
    if (!atAnchor) {
      add(null, anchor.seq, `newest row(s) missing: this node's anchor ${chain.anchorPath} records sequence ${anchor.seq} (row ${anchor.id}), which is no longer in the audit table (truncated or rolled back)`);
    } else if (atAnchor.id !== anchor.id || atAnchor.hash !== anchor.hash) {
      add(atAnchor.id, anchor.seq, `differs from this node's anchor ${chain.anchorPath} (rolled back and rewritten)`);
    } else notes.push(`anchor ${chain.anchorPath} matches (sequence ${anchor.seq})`);
  } else if (chain.anchorPath) notes.push(`no anchor at ${chain.anchorPath} yet (this node has written no keyed row)`);

  const problems = broken.map((b) => (b.id !== null ? `row ${b.id}: ${b.reason}` : b.reason));
  return { ok: broken.length === 0, rows, legacyRows, problems, firstBroken: broken[0], notes };
}
