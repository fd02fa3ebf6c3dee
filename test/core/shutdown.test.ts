// Graceful shutdown: on SIGTERM `otpd serve` stops accepting, and every HTTP request in flight
// gets its complete answer, including requests waiting for an SMS dispatch, whose sends also
// finish and are recorded as accepted; then the process exits 0. A shutdown that cannot finish
// within OTPD_SHUTDOWN_SECONDS exits 1 saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { BIN, spawnServe, type ServeProcess } from '../helpers/serve.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKENS = 12;

/** True when a new TCP connection to the port is refused. */
const refused = (port: number) => new Promise<boolean>((resolve) => {
  const socket = connect(port, '127.0.0.1');
  socket.once('connect', () => {
    socket.destroy();
    resolve(false);
  });
  socket.once('error', () => resolve(true));
});

function cli(dir: string, args: string[], input?: string): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, input, encoding: 'utf8', env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** A server with an admin API key, an HTTP SMS provider at `gatewayUrl` and TOKENS SMS tokens (PIN 1234). */
async function serverWithSmsTokens(dir: string, gatewayUrl: string, env: Record<string, string> = {}) {
  cli(dir, ['admin', 'add', 'admin'], 'admin-password-1\n');
  const key = cli(dir, ['admin', 'apikey', 'admin']);
  const server = await spawnServe(dir, env);
  const post = async (path: string, form: Record<string, string>, auth = false) => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', body: new URLSearchParams(form), headers: auth ? { authorization: `Bearer ${key}` } : {} });
    return { status: res.status, text: await res.text() };
  };
  const admin = async (path: string, form: Record<string, string>) => {
    const r = await post(path, form, true);
    const { result } = JSON.parse(r.text);
    assert.ok(result.status === true && result.value !== false, `${path}: ${r.text}`);
  };
  await admin('/system/setConfig', { DeliveryAllowedCountryCodes: '49', DeliveryWaitMs: '10000' });
  await admin('/system/setProvider', { type: 'sms', name: 'gw', class: 'HttpSMSProvider', timeout: '10', default: 'true', config: JSON.stringify({ URL: gatewayUrl, RETURN_SUCCESS: 'OK' }) });
  for (let i = 0; i < TOKENS; i++) await admin('/admin/init', { type: 'sms', serial: `SMS${i}`, phone: `+49151234567${String(i).padStart(2, '0')}`, pin: '1234' });
  return { server, post };
}

test('SIGTERM under load: requests in flight (waiting on SMS dispatches) all get complete answers, sends finish, exit 0', async () => {
  const dir = testTmpDir('otpd-shutdown-');
  const gateway = await new HttpGateway({ respond: () => ({ body: 'OK', delayMs: 1200 }) }).start();
  let server: ServeProcess | undefined;
  try {
    const s = await serverWithSmsTokens(dir, `${gateway.url}/send`);
    server = s.server;
    // every request triggers an SMS and waits (DeliveryWaitMs) for the gateway's acceptance
    const inFlight = Array.from({ length: TOKENS }, (_, i) => s.post('/validate/check', { serial: `SMS${i}`, pass: '1234' }));
    await waitFor(() => gateway.requests.length === TOKENS, { what: 'every SMS to reach the gateway', timeoutMs: 15_000 });
    server.child.kill('SIGTERM');
    // new connections are refused once the listener is closed
    await waitFor(() => refused(server!.port), { what: 'the listener to refuse connections', timeoutMs: 3000 });

    const answers = await Promise.all(inFlight);
    for (const a of answers) {
      assert.equal(a.status, 200, a.text);
      const body = JSON.parse(a.text);
      assert.equal(body.result.status, true, a.text);
      assert.equal(body.result.value, false, 'a challenge, not a login');
      assert.match(body.detail.transactionid, /^\d+$/, a.text);
      assert.equal(body.detail.message, 'sms submitted', a.text);
    }
    const exit = await server.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, server.output());
    assert.match(server.output(), /SIGTERM: shutting down/);
    assert.match(server.output(), /shutdown complete/);
    assert.equal(gateway.requests.length, TOKENS, 'each message sent once');
    const db = new Database(join(dir, 'data/otpd.sqlite'), { readonly: true });
    const statuses = db.prepare('select status, count(*) as n from delivery_outbox group by status').all();
    db.close();
    assert.deepEqual(statuses, [{ status: 'accepted', n: TOKENS }], 'every dispatch finished and was recorded');
  } finally {
    await server?.stop();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a shutdown that cannot finish within OTPD_SHUTDOWN_SECONDS exits 1 and says so', async () => {
  const dir = testTmpDir('otpd-shutdown-');
  const gateway = await new HttpGateway({ respond: () => ({ body: 'OK', delayMs: 8000 }) }).start();
  let server: ServeProcess | undefined;
  try {
    const s = await serverWithSmsTokens(dir, `${gateway.url}/send`, { OTPD_SHUTDOWN_SECONDS: '1' });
    server = s.server;
    const stuck = s.post('/validate/check', { serial: 'SMS0', pass: '1234' }).catch((e: Error) => e);
    await waitFor(() => gateway.requests.length === 1, { what: 'the SMS to reach the gateway', timeoutMs: 15_000 });
    const started = Date.now();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    assert.equal(exit.code, 1, server.output());
    assert.ok(Date.now() - started < 5000, 'bounded by the setting, not by the gateway');
    assert.match(server.output(), /shutdown took longer than OTPD_SHUTDOWN_SECONDS \(1 s\)/);
    await stuck;
  } finally {
    await server?.stop();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
