// Invariant (issue 16, bad input): no parameter of any HTTP endpoint, in any carrier, breaks
// otpd. Every route Fastify registered (the JSON API, /auth, the management and self-service
// pages, HEAD included) gets requests past its credential check whose parameters (found by
// watching which names the route reads) are mutated: wrong types, sizes around every limit,
// NUL and control bytes, invalid UTF-8 and broken percent escapes, repeated and list
// parameters, odd names, deep JSON, bodies over the limit, every content type, secrets
// spoilt in secret fields. Every answer comes within a bounded time, is below 500, holds no
// stack trace or source path and no planted secret, and an API error is LinOTP's envelope
// (never ERR-311, the internal error). The log of the whole run, at trace level with otpd's
// redaction, holds no seed, PIN, password or OTP the run used. The heap stays bounded.
// This is the fast run (a few seconds, `npm test`); test/faults/fuzz.test.ts is the long one
// against a real process. OTPD_FUZZ_SEED replays a run.
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { after, before, describe, test } from 'node:test';
import { captureLogs } from '../helpers/logs.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { HOTP_KEY, HOTP_PIN, SPASS_PIN, prng, type Answer, type FuzzRequest } from './fuzz-kit.ts';
import { ADMIN_PASSWORD, HotpCounter, Secrets, credentialsVia, discoverVia, setupCalls, standingCalls, targetsOf, walk, writeUsers, type Credentials } from './fuzz-setup.ts';

const SEED = Number(process.env.OTPD_FUZZ_SEED ?? (Date.now() % 2 ** 31));
const PER_ROUTE = Number(process.env.OTPD_FUZZ_PER_ROUTE ?? 4);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('HTTP parameter fuzz (in-process)', () => {
  const logs = captureLogs('trace');
  const secrets = new Secrets();
  const counter = new HotpCounter(HOTP_KEY);
  const otp = () => {
    const v = counter.take();
    secrets.otp(v);
    return v;
  };
  let t: TestApp;
  let gateway: HttpGateway;
  let credentials: (check: boolean) => Promise<Credentials>;

  const send = async (r: FuzzRequest): Promise<Answer> => {
    const started = performance.now();
    const res = await t.app.inject({ method: r.method, url: r.url, headers: r.headers, payload: r.body });
    return { status: res.statusCode, headers: res.headers, body: res.body, ms: performance.now() - started };
  };
  const form = (path: string, f: Record<string, string>, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url: path, payload: new URLSearchParams(f).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });

  before(async () => {
    process.stdout.write(`# fuzz seed ${SEED}\n`);
    gateway = await new HttpGateway().start();
    t = await startTestApp({ logger: logs.logger });
    // the helper's admin gets this run's own password (keeping the API key the helper made)
    await t.services.admins.setPassword('admin', ADMIN_PASSWORD, { keepApiKeys: true });
    secrets.add('API key', t.apiKey);
    const calls = setupCalls(writeUsers(t.dataDir), gateway.url);
    for (const [path, f] of calls) {
      const res = await form(path, f, { authorization: `Bearer ${t.apiKey}` });
      assert.equal(JSON.parse(res.body).result.status, true, `${path}: ${res.body}`);
    }
    credentials = credentialsVia(send, t.apiKey, () => t.services.admins.createApiKey('admin', 'fuzz'), standingCalls(calls));
    const creds = await credentials(true);
    assert.ok(creds.user.session && creds.user.csrf && creds.admin.csrf, 'an admin session, a user session with its portal CSRF token');
  });
  after(async () => {
    await t?.close();
    await gateway?.stop();
  });

  test('every route, every carrier: bounded, below 500, no stack, no secret, the envelope; the log holds no secret', { timeout: 120_000 }, async () => {
    await t.app.ready();
    const targets = targetsOf(t.routes);
    assert.ok(targets.length > 150, `only ${targets.length} route methods`);
    const discoveryStarted = Date.now();
    const names = await discoverVia(targets, send, credentials, otp);
    process.stdout.write(`# discovery ${Date.now() - discoveryStarted} ms\n`);
    const withNames = [...names.values()].filter((n) => n.length > 1).length;
    // the routes with parameters make themselves known: the walk fuzzes what they really read
    assert.ok((names.get('/admin/init') ?? []).includes('otpkey'), `/admin/init reads ${names.get('/admin/init')}`);
    assert.ok((names.get('/validate/check') ?? []).includes('pass'), `/validate/check reads ${names.get('/validate/check')}`);

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    const result = await walk({
      targets, names, perRoute: PER_ROUTE, rnd: prng(SEED), secrets, otp, credentials, send,
      between: async () => {
        // a real login now and then: its OTP is one more secret the log must not hold
        await form('/validate/check', { user: 'alice', realm: 'corp', pass: `${HOTP_PIN}${otp()}` });
      },
    });
    gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    process.stdout.write(`# ${result.requests} requests to ${targets.length} route methods (${withNames} with several parameters) in ${Date.now() - started} ms; `
      + `statuses ${JSON.stringify(Object.fromEntries(result.statuses))}; slowest ${result.slowestMs.toFixed(0)} ms; heap +${heapGrowthMb.toFixed(1)} MB; ${logs.raw.length} log lines\n`);
    process.stdout.write(`# refused at the credential check: ${JSON.stringify(Object.fromEntries(result.refusedAtCheck))}\n`);
    process.stdout.write(`# slowest routes: ${[...result.msByRoute].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([r, ms]) => `${r} ${ms.toFixed(0)}`).join(', ')}\n`);
    assert.deepEqual(result.problems, [], `seed ${SEED}`);
    // the walk got past every route's credential and CSRF check to its parameters
    assert.deepEqual(result.walledOff, [], 'routes whose every request was refused at the credential check');
    assert.ok((result.statuses.get(200) ?? 0) > result.requests / 10, 'a tenth of the requests or more were served: the walk reaches the handlers');
    assert.ok((result.statuses.get(400) ?? 0) > result.requests / 10, 'and many were refused as bad input');

    // the log of the whole run: no secret, no stack in a line a client could provoke
    assert.ok(logs.raw.length > result.requests, 'every request was logged');
    const leaks = logs.raw.map((l) => [secrets.find(l), l] as const).filter(([s]) => s);
    assert.deepEqual(leaks.slice(0, 3), [], 'log lines with secrets');
    // the heap after the run: what the run left behind is the log it kept in memory, not the requests
    assert.ok(heapGrowthMb < 150, `heap grew by ${heapGrowthMb.toFixed(1)} MB`);
    // and the server still works
    const ok = await form('/validate/check', { serial: 'SPASS1', pass: SPASS_PIN });
    assert.ok(ok.statusCode === 200, ok.body);
  });
});
