/**
 * `otpd backup` / `otpd restore` (docs/backup.md): an online backup of a running instance,
 * restored into a fresh data directory, serves a login with a token enrolled before the backup
 * (its next HOTP value; the values used before the backup stay spent). The backup keeps the key
 * file mode 0600 in a 0700 directory; restore never overwrites a database without --force, and
 * refuses a damaged backup; PostgreSQL/MariaDB are refused with the native tools named.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { buildApp } from '../../src/api/app.ts';
import { registerBackupCommands } from '../../src/cli/backup.ts';
import { loadSettings, type Settings } from '../../src/config/settings.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { createServices } from '../../src/services.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { testTmpDir } from '../helpers/tmp.ts';

const KEY = '3132333435363738393031323334353637383930';
const otp = (counter: number) => `pin${hotp(Buffer.from(KEY, 'hex'), counter)}`;

async function run(settings: Settings, ...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const io = { out: '', err: '', code: 0 };
  const program = new Command().exitOverride();
  registerBackupCommands(program, () => settings, { out: (s) => void (io.out += s), err: (s) => void (io.err += s), failed: (c) => void (io.code = c) });
  await program.parseAsync(args, { from: 'user' });
  return io;
}

/** A fresh otpd (services + app) on `dataDir`; /validate/check for serial K1. */
async function openInstance(dataDir: string) {
  const services = await createServices({ settings: loadSettings({ OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent' }, dataDir) });
  const app = await buildApp(services);
  const check = async (pass: string) => {
    const res = await app.inject({ method: 'POST', url: '/validate/check', payload: new URLSearchParams({ serial: 'K1', pass }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    return JSON.parse(res.body).result.value as boolean;
  };
  return { services, check, close: async () => { await app.close(); await services.close(); } };
}

describe('backup and restore (embedded SQLite)', () => {
  let a: TestApp;
  let settingsA: Settings;
  let dir: string;

  before(async () => {
    a = await startTestApp();
    settingsA = a.services.settings;
    dir = testTmpDir('otpd-backup-');
    const init = await a.admin('/admin/init', { type: 'hmac', serial: 'K1', otpkey: KEY, pin: 'pin' });
    assert.equal(init.json.result.status, true, init.body);
    const check = async (pass: string) => (await a.post('/validate/check', { serial: 'K1', pass })).json.result.value;
    assert.equal(await check(otp(0)), true);
    assert.equal(await check(otp(1)), true);
  });

  after(async () => {
    await a?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('backup of the running instance → restore into a fresh data directory → login with the next HOTP value', async () => {
    const backupDir = join(dir, 'backup1');
    const made = await run(settingsA, 'backup', backupDir);
    assert.equal(made.code, 0, made.err);
    assert.match(made.out, /^backup written to /);
    assert.match(made.err, /warning: the backup holds the key file/);
    assert.equal(statSync(backupDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(backupDir, 'otpd.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(backupDir, 'otpd.sqlite')).mode & 0o777, 0o600);
    assert.deepEqual(readFileSync(join(backupDir, 'otpd.key')), readFileSync(settingsA.keyFile));
    // the source keeps serving while and after the copy is taken
    assert.equal((await a.post('/validate/check', { serial: 'K1', pass: otp(2) })).json.result.value, true);

    const fresh = join(dir, 'fresh');
    const settingsB = loadSettings({ OTPD_DATA_DIR: fresh, OTPD_LOG_LEVEL: 'silent' }, fresh);
    const restored = await run(settingsB, 'restore', backupDir);
    assert.equal(restored.code, 0, restored.err);
    assert.equal(statSync(settingsB.keyFile).mode & 0o777, 0o600);

    const b = await openInstance(fresh);
    try {
      assert.equal(await b.check(otp(1)), false, 'a value spent before the backup stays spent');
      assert.equal(await b.check(otp(2)), true, 'the next value after the backup logs in');
      assert.equal(await b.check(otp(2)), false, 'and is single-use there too');
    } finally {
      await b.close();
    }

    // restore does not overwrite a database without --force
    const again = await run(settingsB, 'restore', backupDir);
    assert.equal(again.code, 1);
    assert.match(again.err, /already exist.*--force/);
    const forced = await run(settingsB, 'restore', backupDir, '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /audit anchor was reset/);
    const c = await openInstance(fresh);
    try {
      const rows = async () => (await c.services.db.kysely.selectFrom('audit').select('id').execute()).length;
      const restoredRows = await rows();
      assert.equal(await c.check(otp(2)), true, 'the restored state again: the value the first restore spent is open once more');
      await c.services.audit.settled();
      assert.equal(await rows(), restoredRows + 1, 'the login is audited after a restore (the old anchor no longer blocks the chain)');
    } finally {
      await c.close();
    }
  });

  test('a backup into a non-empty directory, a damaged backup and a non-backup are refused', async () => {
    const backupDir = join(dir, 'backup2');
    assert.equal((await run(settingsA, 'backup', backupDir)).code, 0);
    const twice = await run(settingsA, 'backup', backupDir);
    assert.equal(twice.code, 1);
    assert.match(twice.err, /exists and is not empty/);

    const db = join(backupDir, 'otpd.sqlite');
    const bytes = readFileSync(db);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(db, bytes);
    const fresh = join(dir, 'fresh2');
    const settingsB = loadSettings({ OTPD_DATA_DIR: fresh, OTPD_LOG_LEVEL: 'silent' }, fresh);
    const damaged = await run(settingsB, 'restore', backupDir);
    assert.equal(damaged.code, 1);
    assert.match(damaged.err, /does not match the backup's checksum/);
    const none = await run(settingsB, 'restore', dir);
    assert.equal(none.code, 1);
    assert.match(none.err, /is not an otpd backup/);
  });

  test('PostgreSQL and MariaDB: refused with the native tools and the key file named', async () => {
    for (const [url, tool] of [['postgres://otpd@127.0.0.1:5432/otpd', /pg_dump/], ['mysql://root@127.0.0.1:3306/otpd', /mariadb-dump/]] as const) {
      const settings = loadSettings({ OTPD_DATA_DIR: join(dir, 'pg'), OTPD_DATABASE_URL: url }, dir);
      const res = await run(settings, 'backup', join(dir, 'never'));
      assert.equal(res.code, 1);
      assert.match(res.err, tool);
      assert.match(res.err, /key file .*otpd\.key/);
      assert.match(res.err, /docs\/backup\.md/);
    }
  });
});
