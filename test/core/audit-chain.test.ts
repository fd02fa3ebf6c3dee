// Invariant: the audit chain stays intact under concurrent writers on every database (SQLite
// appends inside the write group, PostgreSQL/MariaDB under the locked head row), and
// verification detects altered rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableDialects, createTestDb } from '../helpers/db.ts';
import { AuditWriter, verifyAuditChain } from '../../src/audit/writer.ts';
import { systemClock } from '../../src/util/clock.ts';

for (const { dialect, skip } of await availableDialects()) {
  test(`audit chain under concurrent writers on ${dialect}`, { skip }, async () => {
    const t = await createTestDb(dialect);
    try {
      const nodeA = new AuditWriter(t.db, systemClock, 'node-a');
      const nodeB = new AuditWriter(t.db, systemClock, 'node-b');
      const writes = [];
      for (let i = 0; i < 300; i++) {
        const w = i % 2 ? nodeA : nodeB;
        writes.push(w.write({ action: 'validate/check', success: i % 3 === 0, serial: `S${i}`, user: `u${i}` }));
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(writes);
      const ok = await verifyAuditChain(t.db);
      assert.deepEqual(ok, { ok: true, rows: 300, problems: [] });
      await t.db.kysely.updateTable('audit').set({ user: 'mallory' }).where('serial', '=', 'S17').execute();
      const bad = await verifyAuditChain(t.db);
      assert.equal(bad.ok, false);
      assert.match(bad.problems.join('\n'), /content does not match its hash/);
    } finally {
      await t.drop();
    }
  });
}
