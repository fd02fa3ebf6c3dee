import type { Db } from '../store/db.ts';
import { headMac, legacyChainHash, readAnchor, rowMac, sameHex, ZERO, type AuditChainKey } from './chain.ts';

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
