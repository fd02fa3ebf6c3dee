/**
 * `otpd backup DIR` / `otpd restore DIR` for the embedded SQLite database (docs/backup.md): a
 * consistent online copy of the database (`VACUUM INTO`, one read transaction: the server keeps
 * answering) and the key file, in a directory with a manifest of checksums. PostgreSQL and
 * MariaDB are backed up with their own tools (pg_dump, mariadb-dump) plus the key file; for them
 * these commands refuse with that pointer.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Settings } from '../config/settings.ts';
import { KeyRing } from '../crypto/keyring.ts';
import { processOutput, type CliOutput } from './output.ts';

const FORMAT = 'otpd-backup';
const DATABASE = 'otpd.sqlite';
const KEY = 'otpd.key';
const MANIFEST = 'manifest.json';
/** The audit anchor of a node (audit/writer.ts): newer than a restored database by design. */
const AUDIT_ANCHOR = 'audit-anchor.json';

export interface BackupManifest {
  format: typeof FORMAT;
  version: 1;
  /** ISO time the copy was taken. */
  created: string;
  database: { file: typeof DATABASE; bytes: number; sha256: string };
  keyFile: { file: typeof KEY; sha256: string };
}

/** Thrown for a refused backup or restore; the message says why and what to do. */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The SQLite file of the settings; refuses PostgreSQL/MariaDB with the tools to use instead. */
function sqlitePath(settings: Settings, verb: 'backup' | 'restore'): string {
  const url = settings.databaseUrl;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '' || path === ':memory:') throw new BackupError(`otpd ${verb}: the database is in memory; there is nothing to ${verb}`);
    return resolve(path);
  }
  const tool = /^postgres/.test(url)
    ? verb === 'backup' ? 'pg_dump --format=custom --file=otpd.dump "$OTPD_DATABASE_URL"' : 'pg_restore --clean --if-exists --no-owner --dbname="$OTPD_DATABASE_URL" otpd.dump'
    : verb === 'backup' ? 'mariadb-dump --single-transaction --routines otpd > otpd.sql' : 'mariadb otpd < otpd.sql';
  throw new BackupError(
    `otpd ${verb} handles the embedded SQLite database only; this instance uses ${/^postgres/.test(url) ? 'PostgreSQL' : 'MariaDB/MySQL'}: ` +
    `use its own tool (${tool}) and ${verb === 'backup' ? 'copy' : 'put back'} the key file ${settings.keyFile} (mode 0600) with it; see docs/backup.md`,
  );
}

/** Writes a file through a temporary name and fsync, then renames it into place. */
function writeAtomically(path: string, data: Buffer, mode: number): void {
  const tmp = `${path}.restore-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Copies the database (online, consistent) and the key file into `dir` (created mode 0700; it
 * must not exist or be empty), checks the copy's integrity and writes the manifest.
 */
export async function backup(settings: Settings, dir: string): Promise<BackupManifest> {
  const source = sqlitePath(settings, 'backup');
  if (!existsSync(source)) throw new BackupError(`no database at ${source}: nothing to back up`);
  if (!existsSync(settings.keyFile)) throw new BackupError(`no key file at ${settings.keyFile}: without it a backup cannot be restored`);
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0) throw new BackupError(`${target} exists and is not empty: give a new directory`);
  mkdirSync(target, { recursive: true, mode: 0o700 });
  chmodSync(target, 0o700);
  const copy = join(target, DATABASE);
  const { default: SQLite } = await import('better-sqlite3');
  const db = new SQLite(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // one read transaction: a consistent snapshot while the server keeps writing (WAL)
    db.prepare('VACUUM INTO ?').run(copy);
  } finally {
    db.close();
  }
  chmodSync(copy, 0o600);
  const check = new SQLite(copy, { readonly: true, fileMustExist: true });
  try {
    const result = check.pragma('integrity_check', { simple: true });
    if (result !== 'ok') throw new BackupError(`the copy failed its integrity check: ${String(result)}`);
  } finally {
    check.close();
  }
  writeFileSync(join(target, KEY), readFileSync(settings.keyFile), { mode: 0o600 });
  chmodSync(join(target, KEY), 0o600);
  const manifest: BackupManifest = {
    format: FORMAT,
    version: 1,
    created: new Date().toISOString(),
    database: { file: DATABASE, bytes: statSync(copy).size, sha256: sha256(copy) },
    keyFile: { file: KEY, sha256: sha256(join(target, KEY)) },
  };
  writeFileSync(join(target, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return manifest;
}

/** Reads and verifies a backup directory: manifest, checksums, a key file that loads. */
export function readBackup(dir: string): { manifest: BackupManifest; database: string; keyFile: string } {
  const source = resolve(dir);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(readFileSync(join(source, MANIFEST), 'utf8')) as BackupManifest;
  } catch (e) {
    throw new BackupError(`${source} is not an otpd backup (${MANIFEST}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (manifest.format !== FORMAT || manifest.version !== 1) throw new BackupError(`${source}: not an otpd backup of a version this otpd reads`);
  const database = join(source, DATABASE);
  const keyFile = join(source, KEY);
  for (const [path, expected] of [[database, manifest.database?.sha256], [keyFile, manifest.keyFile?.sha256]] as const) {
    if (!existsSync(path)) throw new BackupError(`${path} is missing from the backup`);
    if (sha256(path) !== expected) throw new BackupError(`${path} does not match the backup's checksum (damaged or altered): not restored`);
  }
  try {
    KeyRing.load(keyFile);
  } catch (e) {
    throw new BackupError(`the backup's key file cannot be used: ${(e as Error).message}`);
  }
  return { manifest, database, keyFile };
}

/**
 * Puts a backup in place of the configured database and key file. Refuses to replace an existing
 * database or key file unless `force` (otpd must be stopped for that). Removes this node's audit
 * anchor, which is ahead of the restored audit rows by design.
 */
export function restore(settings: Settings, dir: string, opts: { force?: boolean } = {}): { manifest: BackupManifest; database: string; keyFile: string; anchorRemoved: boolean } {
  const target = sqlitePath(settings, 'restore');
  const backupFiles = readBackup(dir);
  const existing = [target, `${target}-wal`, settings.keyFile].filter((p) => existsSync(p) && statSync(p).size > 0);
  if (existing.length > 0 && !opts.force) {
    throw new BackupError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: restore does not overwrite a database or key file; stop otpd and repeat with --force to replace them`);
  }
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(settings.keyFile), { recursive: true, mode: 0o700 });
  for (const stale of [`${target}-wal`, `${target}-shm`]) rmSync(stale, { force: true });
  writeAtomically(target, readFileSync(backupFiles.database), 0o600);
  writeAtomically(settings.keyFile, readFileSync(backupFiles.keyFile), 0o600);
  const anchor = join(settings.dataDir, AUDIT_ANCHOR);
  const anchorRemoved = existsSync(anchor);
  rmSync(anchor, { force: true });
  return { manifest: backupFiles.manifest, database: target, keyFile: settings.keyFile, anchorRemoved };
}

/** `otpd backup DIR` and `otpd restore DIR [--force]`; `settings` loads the instance's settings. */
export function registerBackupCommands(program: Command, settings: () => Settings, io: CliOutput = processOutput): void {
  const guard = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      io.err(`otpd: ${(e as Error).message}\n`);
      io.failed(1);
    }
  };
  program
    .command('backup')
    .description('copy the embedded SQLite database (online, consistent) and the key file into a new directory DIR (mode 0700) with a checksum manifest. The backup holds the key file: keep it as safe as the server. PostgreSQL/MariaDB: see docs/backup.md')
    .argument('<dir>', 'new or empty directory')
    .action(guard(async (dir: string) => {
      const m = await backup(settings(), dir);
      io.out(`backup written to ${resolve(dir)}: ${m.database.file} (${m.database.bytes} bytes), ${m.keyFile.file}, ${MANIFEST}\n`);
      io.err('warning: the backup holds the key file: anyone who reads it can decrypt every token seed and stored secret. Keep it as safe as the server (it is mode 0700/0600 here), and never beside the database\'s other copies.\n');
    }));
  program
    .command('restore')
    .description('put a backup made by "otpd backup" in place of the configured SQLite database and key file (checksums verified). Refuses to overwrite an existing database or key file without --force; stop otpd first')
    .argument('<dir>', 'backup directory')
    .option('--force', 'replace an existing database and key file')
    .action(guard(async (dir: string, opts: { force?: boolean }) => {
      const r = restore(settings(), dir, opts);
      io.out(`restored the backup of ${r.manifest.created}: database ${r.database}, key file ${r.keyFile}${r.anchorRemoved ? '; this node\'s audit anchor was reset (the restored chain is the reference from now on)' : ''}\nstart otpd to use it (pending migrations are applied at start)\n`);
    }));
}
