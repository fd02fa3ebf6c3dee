// Throughput of /validate/check on the embedded SQLite default (WAL, synchronous=FULL, group
// commit), as a ratio against a Fastify hello-world measured in the same run on the same
// machine (autocannon, 20 connections, after a 1 s warm-up each). Prints figures only.
// BENCH_SECONDS (default 5) sets the length of each run; BENCH_DB another database URL.
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../src/config/settings.ts';
import { startServer } from '../src/server.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 20;
/** Wrong-OTP requests rotate over this many tokens so none reaches MaxFail (100) during a run. */
const FAIL_TOKENS = 400;

async function run(url: string, bodies?: string[], seconds = DURATION): Promise<number> {
  const result = await autocannon({
    url, connections: CONNECTIONS, duration: seconds,
    ...(bodies
      ? { requests: bodies.map((body) => ({ method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })) }
      : {}),
  });
  if (result.non2xx > 0 || result.errors > 0) console.log(`  (${result.non2xx} non-2xx, ${result.errors} errors)`);
  return result.requests.average;
}

const hello = Fastify();
hello.get('/', async () => ({ hello: 'world' }));
const helloUrl = await hello.listen({ port: 0, host: '127.0.0.1' });
await run(helloUrl, undefined, 1);
const baseline = await run(helloUrl);
await hello.close();
console.log(`baseline fastify hello-world: ${baseline.toFixed(0)} req/s`);

const dir = mkdtempSync(join(tmpdir(), 'otpd-bench-'));
const running = await startServer(loadSettings({ OTPD_DATA_DIR: dir, OTPD_PORT: '0', OTPD_LOG_LEVEL: 'warn', ...(process.env.BENCH_DB ? { OTPD_DATABASE_URL: process.env.BENCH_DB } : {}) }, dir));
const { tokens } = running.services;
const init = (serial: string, type: string, extra: Record<string, string>) =>
  tokens.init({ get: (k) => ({ type, serial, ...extra } as Record<string, string>)[k], has: (k) => k in { type, serial, ...extra } }, { realms: '*' });
for (let i = 0; i < FAIL_TOKENS; i++) await init(`BENCH-HOTP-${i}`, 'hmac', { otpkey: '3132333435363738393031323334353637383930', pin: 'pin' });
await init('BENCH-SPASS', 'spass', { pin: 'static-pin' });
const resetFails = async () => {
  await running.services.db.kysely.updateTable('tokens').set({ fail_count: 0 }).execute();
};

const cases: [string, string[]][] = [
  ['wrong OTP (PIN ok, 10 HMACs, fail-counter write + audit row)', Array.from({ length: FAIL_TOKENS }, (_, i) => `serial=BENCH-HOTP-${i}&pass=pin000000`)],
  ['spass success (conditional write + audit row)', ['serial=BENCH-SPASS&pass=static-pin']],
];
for (const [name, bodies] of cases) {
  await resetFails();
  await run(`${running.url}/validate/check`, bodies, 1);
  await resetFails();
  const rps = await run(`${running.url}/validate/check`, bodies);
  const locked = await running.services.db.kysely.selectFrom('tokens').select('serial').where('fail_count', '>=', 100).execute();
  console.log(`${name}: ${rps.toFixed(0)} req/s = ${(rps / baseline).toFixed(3)}x baseline${locked.length ? ` (${locked.length} tokens locked: figure includes lockout answers)` : ''}`);
}
await running.stop();
rmSync(dir, { recursive: true, force: true });
