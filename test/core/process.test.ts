// Invariants of the running process: first start creates a 0600 key file and a migrated
// database and tells how to create an admin; a bad setting stops start-up naming the key;
// `kill -9` right after a success answer leaves the OTP used; the audit chain detects a
// deleted or altered row; the CLI manages admins and API keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import Database from 'better-sqlite3';
import { hotp } from '../../src/otp/hotp.ts';
import { waitFor } from '../helpers/wait.ts';

const BIN = join(import.meta.dirname, '../../bin/otpd.mjs');
const KEY = '3132333435363738393031323334353637383930';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function cli(dir: string, args: string[], input?: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: dir, input, encoding: 'utf8', env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'warn', ...env } });
}

async function startServer(dir: string, port: number, extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: String(port), OTPD_LOG_LEVEL: 'info', ...extraEnv } });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const healthy = async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ?? false;
  await waitFor(healthy, { what: 'the server to answer /healthz', timeoutMs: 20_000, intervalMs: 50 }).catch((e: Error) => {
    throw new Error(`${e.message}; its output:\n${log}`);
  });
  return { child, log: () => log };
}

const form = (o: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(o), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

test('first start, kill -9 after success, restart: the OTP stays used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-proc-'));
  try {
    const port = await freePort();
    const first = await startServer(dir, port);
    assert.equal(statSync(join(dir, 'data/otpd.key')).mode & 0o777, 0o600);
    assert.match(first.log(), /otpd admin add/);
    // admin via CLI (password on stdin) and an API key
    assert.equal(cli(dir, ['admin', 'add', 'root'], 'root-password-1\n').status, 0);
    const key = cli(dir, ['admin', 'apikey', 'root']).stdout.trim();
    assert.match(key, /^otpd_/);
    const auth = { authorization: `Bearer ${key}` };
    const init = await fetch(`http://127.0.0.1:${port}/admin/init`, { ...form({ type: 'hmac', serial: 'K9', otpkey: KEY, pin: 'p' }), headers: { ...form({}).headers, ...auth } });
    assert.equal(((await init.json()) as any).result.value, true);
    const pass = `p${hotp(Buffer.from(KEY, 'hex'), 0)}`;
    const res = await fetch(`http://127.0.0.1:${port}/validate/check`, form({ serial: 'K9', pass }));
    const body = (await res.json()) as any;
    first.child.kill('SIGKILL');
    assert.equal(body.result.value, true);
    await new Promise((r) => first.child.once('exit', r));
    const second = await startServer(dir, port);
    try {
      const replay = (await (await fetch(`http://127.0.0.1:${port}/validate/check`, form({ serial: 'K9', pass }))).json()) as any;
      assert.equal(replay.result.value, false);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
    // audit chain: intact, then detected after tampering
    const ok = cli(dir, ['audit', 'verify']);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /intact/);
    const db = new Database(join(dir, 'data/otpd.sqlite'));
    const original = (db.prepare('select action_detail from audit where id = 2').get() as { action_detail: string }).action_detail;
    db.prepare("update audit set action_detail = 'forged' where id = 2").run();
    const altered = cli(dir, ['audit', 'verify']);
    assert.equal(altered.status, 1);
    assert.match(altered.stdout, /row 2: content does not match/);
    db.prepare('update audit set action_detail = ? where id = 2').run(original);
    assert.equal(cli(dir, ['audit', 'verify']).status, 0, 'restored row verifies again');
    db.prepare('delete from audit where id = 2').run();
    const deleted = cli(dir, ['audit', 'verify']);
    assert.equal(deleted.status, 1);
    assert.match(deleted.stdout, /row 3: chain broken/);
    const last = db.prepare('select max(id) as id from audit').get() as { id: number };
    db.prepare('delete from audit where id = ?').run(last.id);
    db.close();
    assert.match(cli(dir, ['audit', 'verify']).stdout, /newest row\(s\) missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad setting stops start-up with the key name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-cfg-'));
  try {
    const r = cli(dir, ['serve'], undefined, { OTPD_PORT: '99999' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /OTPD_PORT \(port\): must be <= 65535/);
    const r2 = cli(dir, ['serve'], undefined, { OTPD_DATABASE_URL: 'oracle://x' });
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /OTPD_DATABASE_URL \(databaseUrl\)/);
    const r3 = cli(dir, ['serve'], undefined, { OTPD_LOG_LEVEL: 'loud' });
    assert.match(r3.stderr, /OTPD_LOG_LEVEL \(logLevel\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admin CLI: add, list, password, remove; --help on every command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-cli-'));
  try {
    assert.equal(cli(dir, ['init']).status, 0);
    assert.equal(cli(dir, ['admin', 'add', 'ops'], 'first-password\n').status, 0);
    const dup = cli(dir, ['admin', 'add', 'ops'], 'first-password\n');
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /exists already/);
    assert.equal(cli(dir, ['admin', 'add', 'weak'], 'short\n').status, 1);
    assert.match(cli(dir, ['admin', 'list']).stdout, /^ops\t/m);
    assert.equal(cli(dir, ['admin', 'password', 'ops'], 'second-password\n').status, 0);
    assert.equal(cli(dir, ['admin', 'remove', 'ops']).status, 0);
    assert.doesNotMatch(cli(dir, ['admin', 'list']).stdout, /ops/);
    for (const args of [['--help'], ['serve', '--help'], ['init', '--help'], ['migrate', '--help'], ['admin', '--help'], ['admin', 'add', '--help'], ['admin', 'apikey', '--help'], ['audit', 'verify', '--help']]) {
      const r = cli(dir, args);
      assert.equal(r.status, 0, args.join(' '));
      assert.match(r.stdout, /Usage: otpd/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
