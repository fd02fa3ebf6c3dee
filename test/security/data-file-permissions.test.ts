// Invariant: on first start otpd creates its data directory 0700 and the SQLite database with
// its -wal/-shm files and the key file 0600, whatever the process umask, so other local users
// can read neither token seeds' ciphertexts, hashes and audit log nor the key that opens them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices } from '../../src/services.ts';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(3, '0');

for (const umask of [0o022, 0o002, 0o000]) {
  test(`empty data dir, umask ${umask.toString(8).padStart(3, '0')}: dir 0700, database/wal/shm/key 0600`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'otpd-perm-'));
    const dataDir = join(root, 'nested', 'data');
    const old = process.umask(umask);
    try {
      const settings = loadSettings({ OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent' }, root);
      const services = await createServices({ settings });
      try {
        // a write, so the WAL and its index certainly exist
        await services.admins.add('perm-admin', 'perm-password-1');
        const db = join(dataDir, 'otpd.sqlite');
        assert.ok(existsSync(`${db}-wal`) && existsSync(`${db}-shm`), 'WAL mode files exist while open');
        assert.equal(mode(dataDir), '700', 'data dir');
        assert.equal(mode(join(root, 'nested')), '700', 'created parent');
        assert.equal(mode(db), '600', 'database');
        assert.equal(mode(`${db}-wal`), '600', 'wal');
        assert.equal(mode(`${db}-shm`), '600', 'shm');
        assert.equal(mode(join(dataDir, 'otpd.key')), '600', 'key file');
      } finally {
        await services.close();
      }
    } finally {
      process.umask(old);
      rmSync(root, { recursive: true, force: true });
    }
  });
}
