// Invariant: checking a user-store password never blocks the event loop. The slow crypt
// schemes (sha512/sha256-crypt, md5-crypt, bcrypt, scrypt) run in a small bounded pool of
// worker threads; a crashed worker fails its check as "unavailable" (not a hang, not a wrong
// password); idle workers do not keep the process alive. Stored hashes whose cost is above
// HASH_LIMITS (sha-crypt rounds, bcrypt cost, scrypt memory) are refused as a wrong password,
// with a warning naming the resolver (never the hash).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import bcrypt from 'bcryptjs';
import { HASH_LIMITS, hashCostProblem, md5Crypt, shaCrypt, verifyPassword } from '../../src/users/passwords.ts';
import { PasswordCheckUnavailable, PasswordPool } from '../../src/users/password-pool.ts';
import { passwdResolverType } from '../../src/users/passwd.ts';
import { systemClock } from '../../src/util/clock.ts';
import { haveBinary } from '../helpers/require.ts';

const PW = 'correct horse';
const sha512 = (rounds: number, salt: string) => {
  const h = shaCrypt(PW, `$6$rounds=${rounds}$${salt}`, 'sha512');
  assert.ok(h);
  return h;
};

test('10 parallel checks leave the event loop free (max delay far below the sum of check times)', async () => {
  const hashes = [
    ...Array.from({ length: 6 }, (_, i) => sha512(5000, `salt${i}`)),
    ...Array.from({ length: 2 }, () => bcrypt.hashSync(PW, 8)),
    ...Array.from({ length: 2 }, (_, i) => md5Crypt(PW, `$1$md5s${i}`)!),
  ];
  // the sum of the check times, measured on this machine by checking on the main thread
  const t0 = performance.now();
  for (const h of hashes) {
    if (h.startsWith('$2')) bcrypt.compareSync(PW, h);
    else if (h.startsWith('$6$')) shaCrypt(PW, h, 'sha512');
    else md5Crypt(PW, h);
  }
  const sumMs = performance.now() - t0;
  await verifyPassword(PW, hashes[0]); // start the workers outside the measurement
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  delay.enable();
  const results = await Promise.all([...hashes.map((h) => verifyPassword(PW, h)), ...hashes.map((h) => verifyPassword(`${PW}x`, h))]);
  delay.disable();
  clearInterval(timer);
  assert.deepEqual(results, [...hashes.map(() => true), ...hashes.map(() => false)], 'right answers from the pool');
  const maxMs = delay.max / 1e6;
  assert.ok(sumMs > 60, `the checks take real time (${sumMs.toFixed(0)} ms)`);
  assert.ok(maxMs < (2 * sumMs) / 5, `event-loop max delay ${maxMs.toFixed(1)} ms vs ${sumMs.toFixed(0)} ms of checks ×2`);
  assert.ok(ticks > 3, `the timer kept ticking (${ticks})`);
});

const skipMkpasswd = haveBinary('mkpasswd', 'whois');

test('hashes above the cost caps are refused, even with the right password', { skip: skipMkpasswd }, async () => {
  const rounds = HASH_LIMITS.maxShaCryptRounds + 1;
  const slowSha = spawnSync('mkpasswd', ['-m', 'sha512crypt', '-R', String(rounds), PW], { encoding: 'utf8' }).stdout.trim();
  assert.match(slowSha, new RegExp(`^\\$6\\$rounds=${rounds}\\$`));
  const slowBcrypt = bcrypt.hashSync(PW, HASH_LIMITS.maxBcryptCost + 1);
  for (const h of [slowSha, `{CRYPT}${slowSha}`, slowBcrypt]) {
    assert.ok(hashCostProblem(h), `cost problem named for ${h.slice(0, 12)}`);
    assert.equal(await verifyPassword(PW, h), false, h.slice(0, 12));
  }
  // scrypt above 64 MiB (N=2^15, r=32): refused before any work
  const bigScrypt = '$7$DU..../....saltsalt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  assert.match(hashCostProblem(bigScrypt) ?? '', /scrypt with N=2\^15, r=32/);
  // at the caps they still verify: the default sha-crypt and libxcrypt's default scrypt
  const atCap = spawnSync('mkpasswd', ['-m', 'sha512crypt', '-R', String(HASH_LIMITS.maxShaCryptRounds), PW], { encoding: 'utf8' }).stdout.trim();
  const scryptDefault = spawnSync('mkpasswd', ['-m', 'scrypt', PW], { encoding: 'utf8' }).stdout.trim();
  assert.equal(hashCostProblem(scryptDefault), undefined);
  assert.deepEqual(await Promise.all([verifyPassword(PW, atCap), verifyPassword(PW, scryptDefault), verifyPassword(PW, bcrypt.hashSync(PW, 4))]), [true, true, true]);
});

test('a passwd resolver with a too-costly hash: wrong password, warning names the resolver, not the hash', { skip: skipMkpasswd }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-pwpool-'));
  try {
    const slowSha = spawnSync('mkpasswd', ['-m', 'sha512crypt', '-R', String(HASH_LIMITS.maxShaCryptRounds * 2), PW], { encoding: 'utf8' }).stdout.trim();
    const file = join(dir, 'passwd');
    writeFileSync(file, `carol:${slowSha}:1001:1001:Carol C:/home/carol:/bin/sh\n`);
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
    const store = passwdResolverType.create('localfiles', { fileName: file }, { logger, clock: systemClock });
    const user = await store.lookup('carol');
    assert.ok(user);
    assert.equal(await store.checkPassword(user, PW), false);
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.level === 40 && /rehash/.test(l.msg));
    assert.ok(warn, lines.join(''));
    assert.equal(warn.resolver, 'localfiles');
    assert.match(warn.msg, /resolver localfiles is sha512-crypt with 20000 rounds/);
    assert.ok(!lines.join('').includes(slowSha.split('$').at(-1)!), 'no hash in the log');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pool: a crashed worker is an error, not a hang; bounded queue; idle workers do not hold the process', async () => {
  const pool = new PasswordPool({ size: 1, maxQueue: 2, timeoutMs: 20_000 });
  try {
    const h = sha512(5000, 'crashsalt');
    assert.equal(await pool.verify(PW, h), true);
    // kill the worker in the middle of a check
    const running = pool.verify(PW, sha512(9000, 'crash2'));
    const queued = [pool.verify(PW, h), pool.verify(PW, h)];
    await assert.rejects(pool.verify(PW, h), PasswordCheckUnavailable, 'queue bound');
    const worker = (pool as unknown as { slots: { worker: import('node:worker_threads').Worker }[] }).slots[0]!.worker;
    await worker.terminate();
    await assert.rejects(running, PasswordCheckUnavailable);
    assert.deepEqual(await Promise.all(queued), [true, true], 'a fresh worker takes over the queue');
  } finally {
    await pool.close();
  }
  // a process that used the pool exits by itself when its work is done
  const script = `import { verifyPassword } from ${JSON.stringify(new URL('../../src/users/passwords.ts', import.meta.url).pathname)};
    const ok = await verifyPassword('pw', ${JSON.stringify(md5Crypt('pw', '$1$abc')!)});
    console.log(ok ? 'verified' : 'wrong');`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(child.signal, null, `process exited by itself (stderr: ${child.stderr})`);
  assert.equal(child.stdout.trim(), 'verified');
});
