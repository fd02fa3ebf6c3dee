// Invariant: the audit chain stays intact under concurrent writers on every database (SQLite
// appends inside the write group, PostgreSQL/MariaDB under the locked head row), and
// verification detects altered rows. The chain is keyed (HMAC under a key from the key file),
// the head carries a MAC over its sequence, and verification also passes while writers append.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableDialects, createTestDb } from '../helpers/db.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { verifyAuditChain } from '../../src/audit/verify.ts';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { systemClock } from '../../src/util/clock.ts';

for (const { dialect, skip } of await availableDialects()) {
  test(`audit chain under concurrent writers on ${dialect}`, { skip }, async () => {
    const t = await createTestDb(dialect);
    const dir = mkdtempSync(join(tmpdir(), 'otpd-audit-'));
    try {
      const key = KeyRing.fromBytes().deriveKey('audit-chain');
      // two nodes: one database, one key file, each its own anchor
      const nodeA = new AuditWriter(t.db, systemClock, 'node-a', { key, anchorPath: join(dir, 'a.json') });
      const nodeB = new AuditWriter(t.db, systemClock, 'node-b', { key, anchorPath: join(dir, 'b.json') });
      const writes = [];
      let verifiedDuringWrites: Promise<Awaited<ReturnType<typeof verifyAuditChain>>> | undefined;
      for (let i = 0; i < 300; i++) {
        const w = i % 2 ? nodeA : nodeB;
        writes.push(w.write({ action: 'validate/check', success: i % 3 === 0, serial: `S${i}`, user: `u${i}` }));
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
        if (i === 150) verifiedDuringWrites = verifyAuditChain(t.db, { key });
      }
      await Promise.all(writes);
      await nodeA.settled();
      await nodeB.settled();
      const during = await verifiedDuringWrites!;
      assert.deepEqual(during.problems, [], 'a verify racing the writers sees no false break');
      const ok = await verifyAuditChain(t.db, { key, anchorPath: join(dir, 'a.json') });
      assert.equal(ok.ok, true);
      assert.equal(ok.rows, 300);
      assert.deepEqual(ok.problems, []);
      assert.equal(ok.legacyRows, 0);
      assert.equal((await verifyAuditChain(t.db, { key, anchorPath: join(dir, 'b.json') })).ok, true);
      const seqs = (await t.db.kysely.selectFrom('audit').select('seq').orderBy('id').execute()).map((r) => Number(r.seq));
      assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i + 1), 'one gapless sequence across both nodes');
      const head = await t.db.kysely.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
      assert.equal(Number(head.seq), 300);
      assert.match(head.mac, /^[0-9a-f]{64}$/);
      // another key file does not verify the chain
      assert.equal((await verifyAuditChain(t.db, { key: randomBytes(32) })).ok, false);
      await t.db.kysely.updateTable('audit').set({ user: 'mallory' }).where('serial', '=', 'S17').execute();
      const bad = await verifyAuditChain(t.db, { key });
      assert.equal(bad.ok, false);
      assert.match(bad.problems.join('\n'), /content does not match its hash/);
    } finally {
      await t.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const { dialect, skip } of await availableDialects()) {
  test(`the request id of a row is under its MAC on ${dialect}; rows without one verify as before`, { skip }, async () => {
    const t = await createTestDb(dialect);
    try {
      const key = KeyRing.fromBytes().deriveKey('audit-chain');
      const w = new AuditWriter(t.db, systemClock, 'node-a', { key });
      await w.write({ action: 'validate/check', success: true, serial: 'R0' });
      await w.write({ action: 'validate/check', success: true, serial: 'R1', requestId: 'req-one' });
      await w.write({ action: 'validate/check', success: true, serial: 'R2' });
      await w.settled();
      const ids = (await t.db.kysely.selectFrom('audit').select(['serial', 'request_id']).orderBy('id').execute()).map((r) => [r.serial, r.request_id]);
      assert.deepEqual(ids, [['R0', ''], ['R1', 'req-one'], ['R2', '']]);
      assert.deepEqual((await verifyAuditChain(t.db, { key })).problems, []);
      for (const [serial, forged] of [['R1', 'req-two'], ['R1', ''], ['R0', 'req-one']]) {
        const before = (await t.db.kysely.selectFrom('audit').select('request_id').where('serial', '=', serial).executeTakeFirstOrThrow()).request_id;
        await t.db.kysely.updateTable('audit').set({ request_id: forged }).where('serial', '=', serial).execute();
        const res = await verifyAuditChain(t.db, { key });
        assert.equal(res.ok, false, `request_id of ${serial} set to '${forged}'`);
        assert.match(res.problems.join('\n'), /content does not match its hash/);
        await t.db.kysely.updateTable('audit').set({ request_id: before }).where('serial', '=', serial).execute();
        assert.equal((await verifyAuditChain(t.db, { key })).ok, true);
      }
    } finally {
      await t.drop();
    }
  });
}
