// Invariant: write access to the database is not enough to forge the audit log unnoticed.
// Rows are chained with HMAC-SHA-256 under a key derived from the key file (never in the
// database), the head row carries an HMAC over (sequence, last id, last hash), and each node
// keeps a keyed anchor of the newest row it wrote beside the key file in the data directory.
// `otpd audit verify` (exit 1) and verifyAuditChain catch: a row rewritten and the chain
// recomputed the old SHA-256 way; the newest rows deleted together with the head row; the head
// rolled back to an older (genuine) value; an unkeyed chain grafted over keyed rows. It names the
// first broken row (id and sequence). A writer never extends a head it cannot authenticate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { verifyAuditChain } from '../../src/audit/verify.ts';
import { systemClock } from '../../src/util/clock.ts';
import { sql } from 'kysely';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices } from '../../src/services.ts';

const ZERO = '0'.repeat(64);

/** The attacker's tool: the pre-0610 unkeyed chain, sha256(prev ‖ "\n" ‖ canonical row). */
function sha256Chain(prev: string, r: Record<string, unknown>): string {
  const canonical = JSON.stringify([
    r.ts, r.action, r.success, r.serial, r.token_type, r.user, r.realm, r.administrator,
    r.action_detail, r.info, r.server, r.client, r.log_level, Number(r.clearance_level),
  ]);
  return createHash('sha256').update(prev).update('\n').update(canonical).digest('hex');
}

async function rows(t: TestDb) {
  return t.db.kysely.selectFrom('audit').selectAll().orderBy('id').execute();
}

/** Rewrites row `id` and re-chains it and everything after it, head included, with SHA-256. */
async function rewriteAndRechain(t: TestDb, id: number, change: Record<string, string>) {
  await t.db.kysely.updateTable('audit').set(change).where('id', '=', id).execute();
  const all = await rows(t);
  let prev = ZERO;
  for (const r of all) {
    if (Number(r.id) >= id) {
      const hash = sha256Chain(prev, r);
      await t.db.kysely.updateTable('audit').set({ prev_hash: prev, hash }).where('id', '=', r.id).execute();
      prev = hash;
    } else prev = r.hash;
  }
  await t.db.kysely.updateTable('audit_head').set({ last_id: Number(all.at(-1)!.id), last_hash: prev }).where('id', '=', 1).execute();
}

async function withChain(dialect: Parameters<typeof createTestDb>[0], fn: (t: TestDb, chain: { key: Buffer; anchorPath: string }, dir: string) => Promise<void>) {
  const t = await createTestDb(dialect);
  const dir = mkdtempSync(join(tmpdir(), 'otpd-anchor-'));
  try {
    await fn(t, { key: randomBytes(32), anchorPath: join(dir, 'audit-anchor.json') }, dir);
  } finally {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function writeRows(w: AuditWriter, n: number, from = 0) {
  await Promise.all(Array.from({ length: n }, (_, i) => w.write({ action: 'validate/check', success: true, serial: `S${from + i}`, user: `u${from + i}` })));
  await w.settled();
}

for (const { dialect, skip } of await availableDialects()) {
  test(`${dialect}: a row rewritten and re-chained with SHA-256 is caught at that row`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      await writeRows(w, 20);
      assert.equal((await verifyAuditChain(t.db, chain)).ok, true);
      const target = (await rows(t))[6]!;
      await rewriteAndRechain(t, Number(target.id), { user: 'mallory' });
      const res = await verifyAuditChain(t.db, chain);
      assert.equal(res.ok, false);
      assert.equal(res.firstBroken?.id, Number(target.id));
      assert.equal(res.firstBroken?.seq, 7);
      assert.match(res.problems[0]!, new RegExp(`^row ${target.id}: `));
    });
  });

  test(`${dialect}: deleting the newest rows together with the head row is caught`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      await writeRows(w, 20);
      const all = await rows(t);
      await t.db.kysely.deleteFrom('audit').where('id', '>', Number(all[14]!.id)).execute();
      await t.db.kysely.deleteFrom('audit_head').execute();
      const res = await verifyAuditChain(t.db, chain);
      assert.equal(res.ok, false);
      assert.match(res.problems.join('\n'), /head/);
      // a head re-created for the new last row (no key to seal it) fails as well
      await t.db.kysely.insertInto('audit_head').values({ id: 1, last_id: Number(all[14]!.id), last_hash: all[14]!.hash }).execute();
      const again = await verifyAuditChain(t.db, chain);
      assert.equal(again.ok, false);
      assert.match(again.problems.join('\n'), /head/);
      // also without the anchor file: the head alone is keyed
      assert.equal((await verifyAuditChain(t.db, { key: chain.key })).ok, false);
    });
  });

  test(`${dialect}: the head rolled back to a genuine older value is caught by the anchor`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      await writeRows(w, 10);
      const oldHead = await t.db.kysely.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
      await writeRows(w, 10, 10);
      const all = await rows(t);
      await t.db.kysely.deleteFrom('audit').where('id', '>', Number(all[9]!.id)).execute();
      await t.db.kysely.updateTable('audit_head').set(oldHead).where('id', '=', 1).execute();
      const res = await verifyAuditChain(t.db, chain);
      assert.equal(res.ok, false);
      assert.match(res.problems.join('\n'), /anchor/);
      // the writer refuses to extend the rolled-back chain (that would launder it)
      await assert.rejects(w.write({ action: 'validate/check', success: true }), /rolled back|anchor/);
      assert.equal((await rows(t)).length, 10);
    });
  });

  test(`${dialect}: a head reset to its initial unkeyed state over keyed rows is caught; a verify that raced the first keyed writes is not`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      // the race, made deterministic: verify reads the initial head, then the first keyed
      // rows commit before it reads the rows (a proxy runs the writes before the first row query)
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      let injected = false;
      const later = (q: object): object => new Proxy(q, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv) as unknown;
          if (typeof v !== 'function') return v;
          if (prop === 'execute') return async (...a: unknown[]) => {
            if (!injected) { injected = true; await writeRows(w, 5); }
            return (v as (...x: unknown[]) => unknown).apply(target, a);
          };
          return (...a: unknown[]) => {
            const r = (v as (...x: unknown[]) => unknown).apply(target, a);
            return r && typeof r === 'object' ? later(r) : r;
          };
        },
      });
      const kysely = new Proxy(t.db.kysely, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv) as unknown;
          if (prop === 'selectFrom') return (table: 'audit') => (table === 'audit' ? later(target.selectFrom(table)) : target.selectFrom(table));
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
        },
      });
      const raced = await verifyAuditChain({ ...t.db, kysely } as typeof t.db, chain);
      assert.ok(injected, 'the writes ran between the head read and the row read');
      assert.deepEqual(raced.problems, [], 'a verify racing the first keyed writes sees no false break');
      assert.equal(raced.rows, 5);
      assert.equal((await verifyAuditChain(t.db, chain)).ok, true);
      // the forgery: the head put back to its initial state (hiding that it was keyed) is caught
      await t.db.kysely.updateTable('audit_head').set({ seq: 0, mac: '', last_id: 0, last_hash: ZERO }).where('id', '=', 1).execute();
      const forged = await verifyAuditChain(t.db, chain);
      assert.equal(forged.ok, false);
      assert.match(forged.problems.join('\n'), /head is unkeyed but the chain is keyed/);
    });
  });

  test(`${dialect}: a writer never extends a head it cannot authenticate`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      await writeRows(w, 5);
      const all = await rows(t);
      // truncate two rows and point the head at the new last row
      await t.db.kysely.deleteFrom('audit').where('id', '>', Number(all[2]!.id)).execute();
      await t.db.kysely.updateTable('audit_head').set({ last_id: Number(all[2]!.id), last_hash: all[2]!.hash }).where('id', '=', 1).execute();
      const fresh = new AuditWriter(t.db, systemClock, 'node-b', { key: chain.key });
      await assert.rejects(fresh.write({ action: 'validate/check', success: true }), /head/);
      assert.equal((await rows(t)).length, 3, 'nothing written');
      assert.equal((await verifyAuditChain(t.db, { key: chain.key })).ok, false);
    });
  });

  test(`${dialect}: concurrent burst from two nodes while a row is forged: nothing seals the forgery`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      const a = new AuditWriter(t.db, systemClock, 'node-a', chain);
      const b = new AuditWriter(t.db, systemClock, 'node-b', { key: chain.key });
      await writeRows(a, 10);
      const target = (await rows(t))[4]!;
      // outcomes are collected as they happen (a rejection is expected once the head is forged)
      const writes: Promise<{ ok: true } | { ok: false; error: unknown }>[] = [];
      for (let i = 0; i < 120; i++) {
        writes.push((i % 2 ? a : b).write({ action: 'validate/check', success: true, serial: `B${i}` }).then(() => ({ ok: true as const }), (error: unknown) => ({ ok: false as const, error })));
        if (i === 60) await rewriteAndRechain(t, Number(target.id), { user: 'mallory' });
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      const outcomes = await Promise.all(writes);
      const fulfilled = outcomes.filter((r) => r.ok).length;
      for (const r of outcomes) if (!r.ok) assert.match(String(r.error), /refusing to extend the audit chain/);
      assert.equal((await rows(t)).length, 10 + fulfilled, 'every answered write is a row, no rejected one is');
      const res = await verifyAuditChain(t.db, chain);
      assert.equal(res.ok, false);
      assert.equal(res.firstBroken?.id, Number(target.id));
    });
  });

  test(`${dialect}: an existing unkeyed chain is sealed by a marker row and checked as legacy`, { skip }, async () => {
    await withChain(dialect, async (t, chain) => {
      let prev = ZERO;
      let lastId = 0;
      for (let i = 0; i < 5; i++) {
        const r = { ts: new Date().toISOString(), action: 'validate/check', success: '1', serial: `L${i}`, token_type: '', user: 'old', realm: '', administrator: '', action_detail: '', info: '', server: 'old-node', client: '', log_level: 'INFO', clearance_level: 0 };
        const hash = sha256Chain(prev, r);
        await t.db.kysely.insertInto('audit').values({ ...r, prev_hash: prev, hash }).execute();
        lastId = Number((await t.db.kysely.selectFrom('audit').select((eb) => eb.fn.max('id').as('m')).executeTakeFirstOrThrow()).m);
        prev = hash;
      }
      await t.db.kysely.updateTable('audit_head').set({ last_id: lastId, last_hash: prev }).where('id', '=', 1).execute();
      const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
      await writeRows(w, 3);
      const res = await verifyAuditChain(t.db, chain);
      assert.equal(res.ok, true, res.problems.join('\n'));
      assert.equal(res.rows, 9, '5 legacy + marker + 3');
      assert.equal(res.legacyRows, 5);
      assert.match(res.notes.join('\n'), /5 rows .*unkeyed/);
      const marker = (await rows(t))[5]!;
      assert.equal(marker.action, 'audit/chain-keyed');
      // rewriting the legacy part and re-chaining it no longer matches what the marker sealed
      await rewriteAndRechain(t, Number((await rows(t))[1]!.id), { user: 'mallory' });
      const bad = await verifyAuditChain(t.db, chain);
      assert.equal(bad.ok, false);
      assert.equal(bad.firstBroken?.id, Number(marker.id));
    });
  });
}

test('fault injection: a batch failing mid-way leaves the chain and head intact; an unwritable anchor does not stop auditing', async () => {
  await withChain('sqlite', async (t, chain) => {
    const w = new AuditWriter(t.db, systemClock, 'node-a', chain);
    await writeRows(w, 5);
    // the third row of the next batch makes the insert fail inside the transaction
    await t.db.kysely.executeQuery(sql`create trigger boom before insert on audit when new.serial = 'BOOM' begin select raise(abort, 'injected fault'); end`.compile(t.db.kysely));
    const batch = ['A', 'B', 'BOOM', 'C'].map((serial) => w.write({ action: 'validate/check', success: true, serial }));
    const settled = await Promise.allSettled(batch);
    assert.deepEqual(settled.map((r) => r.status), ['rejected', 'rejected', 'rejected', 'rejected'], 'one transaction: all or nothing');
    assert.equal((await rows(t)).length, 5);
    await t.db.kysely.executeQuery(sql`drop trigger boom`.compile(t.db.kysely));
    await writeRows(w, 3, 100);
    const res = await verifyAuditChain(t.db, chain);
    assert.equal(res.ok, true, res.problems.join('\n'));
    assert.equal(res.rows, 8);
    // an anchor that cannot be written is logged, the rows are still written and verify
    const lost = new AuditWriter(t.db, systemClock, 'node-b', { key: chain.key, anchorPath: join(chain.anchorPath, 'no-such-dir', 'a.json') });
    await writeRows(lost, 2, 200);
    assert.equal((await verifyAuditChain(t.db, chain)).ok, true);
  });
});

test('otpd audit verify exits 1 and names the first broken row', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-verify-'));
  try {
    const env = { OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'silent' };
    const services = await createServices({ settings: loadSettings(env, dir) });
    for (let i = 0; i < 8; i++) await services.audit.write({ action: 'validate/check', success: true, serial: `S${i}` });
    const target = (await services.db.kysely.selectFrom('audit').selectAll().orderBy('id').execute())[3]!;
    await services.close();
    const bin = join(import.meta.dirname, '../../bin/otpd.mjs');
    const cli = () => spawnSync(process.execPath, [bin, 'audit', 'verify'], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
    const ok = cli();
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /intact: 8 rows/);
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dir, 'data/otpd.sqlite'));
    const update = db.prepare('update audit set user = ?, hash = ?, prev_hash = ? where id = ?');
    const all = db.prepare('select * from audit order by id').all() as Record<string, unknown>[];
    let prev = ZERO;
    for (const r of all) {
      if (Number(r.id) === Number(target.id)) r.user = 'mallory';
      if (Number(r.id) >= Number(target.id)) {
        const hash = sha256Chain(prev, r);
        update.run(r.user, hash, prev, r.id);
        prev = hash;
      } else prev = r.hash as string;
    }
    db.prepare('update audit_head set last_hash = ?').run(prev);
    db.close();
    const bad = cli();
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, new RegExp(`first broken row: id ${target.id} \\(sequence 4\\)`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
