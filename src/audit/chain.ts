import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KeyRing } from '../crypto/keyring.ts';
import type { AuditTable } from '../store/schema.ts';

/** The audit chain's primitives, shared by the writer (audit/writer.ts) and the verifier (audit/verify.ts). */

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

export const ZERO = '0'.repeat(64);
const MAX = 511;
export const clip = (s: string | undefined) => {
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

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Anchor {
  seq: number;
  id: number;
  hash: string;
}

type AnchorRead = { kind: 'none' } | { kind: 'ok'; anchor: Anchor } | { kind: 'bad'; reason: string };

export function readAnchor(chain: AuditChainKey): AnchorRead {
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
export async function writeAnchor(chain: AuditChainKey, anchor: Anchor): Promise<void> {
  const path = chain.anchorPath!;
  const current = readAnchor(chain);
  if (current.kind === 'ok' && current.anchor.seq >= anchor.seq) return;
  // The data directory holds nothing else when the database and the key file live elsewhere
  // (a node of several on PostgreSQL/MariaDB): nobody may have created it yet.
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ ...anchor, mac: anchorMac(chain.key, anchor) })}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
