// Throughput of /validate/check on the embedded SQLite default, as a ratio against a Fastify
// hello-world measured in the same run on the same machine (autocannon, 20 connections).
// Prints figures only; nothing here asserts timing.
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../src/config/settings.ts';
import { startServer } from '../src/server.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 20;

async function run(url: string, body?: string): Promise<number> {
  const result = await autocannon({
    url, connections: CONNECTIONS, duration: DURATION, method: body ? 'POST' : 'GET', body,
    headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : undefined,
  });
  if (result.non2xx > 0 || result.errors > 0) console.log(`  (${result.non2xx} non-2xx, ${result.errors} errors)`);
  return result.requests.average;
}

const hello = Fastify();
hello.get('/', async () => ({ hello: 'world' }));
const helloUrl = await hello.listen({ port: 0, host: '127.0.0.1' });
const baseline = await run(helloUrl);
await hello.close();
console.log(`baseline fastify hello-world: ${baseline.toFixed(0)} req/s`);

const dir = mkdtempSync(join(tmpdir(), 'otpd-bench-'));
const running = await startServer(loadSettings({ OTPD_DATA_DIR: dir, OTPD_PORT: '0', OTPD_LOG_LEVEL: 'warn', ...(process.env.BENCH_DB ? { OTPD_DATABASE_URL: process.env.BENCH_DB } : {}) }, dir));
await running.services.admins.add("bench", "bench-password");
const key = await running.services.admins.createApiKey("bench");
const init = async (form: Record<string, string>) => {
  await fetch(`${running.url}/admin/init`, { method: 'POST', body: new URLSearchParams(form), headers: { authorization: `Bearer ${key}` } });
};
await init({ type: 'hmac', serial: 'BENCH-HOTP', otpkey: '3132333435363738393031323334353637383930', pin: 'pin' });
await init({ type: 'spass', serial: 'BENCH-SPASS', pin: 'static-pin' });
await running.services.tokens.repository.update((await running.services.tokens.repository.bySerial('BENCH-HOTP'))!.id, { max_fail: 100, fail_count: 0 });

const cases: [string, string][] = [
  ['wrong OTP (PIN ok, HOTP window of 10 checked, fail counter write)', 'serial=BENCH-HOTP&pass=pin000000'],
  ['spass success (conditional write + audit row)', 'serial=BENCH-SPASS&pass=static-pin'],
];
for (const [name, body] of cases) {
  // keep the HOTP token unlocked: the bench measures the check, not the lockout
  await running.services.tokens.repository.update((await running.services.tokens.repository.bySerial('BENCH-HOTP'))!.id, { max_fail: 100, fail_count: 0 });
  const rps = await run(`${running.url}/validate/check`, body);
  console.log(`${name}: ${rps.toFixed(0)} req/s = ${(rps / baseline).toFixed(3)}x baseline`);
}
await running.stop();
rmSync(dir, { recursive: true, force: true });
