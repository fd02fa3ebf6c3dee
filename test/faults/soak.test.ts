// Invariant (issue 16, soak): a real otpd process under a mixed load at half its measured
// capacity, with periodic faults, stays flat. The run first measures capacity (closed loop,
// the same mix), then sends at half that rate for OTPD_SOAK_SECONDS (default 300): logins
// that succeed (HOTP of LDAP users, two with the directory password as PIN; static
// passwords), wrong OTPs, SMS triggers through an HTTP gateway; every minute slapd is stopped
// for 10 s and restarted, and the gateway hangs for 10 s. Every 10 s it samples the error
// rate (answers other than the expected one), p99 latency, otpd's RSS and open file
// descriptors. No request ever gets a 5xx, a stack trace or no answer within 10 s; outside
// the fault windows the error rate stays below 1 %; p99, RSS and non-socket fds at the end
// stay within bounds of their start, and once the load stops the sockets close again. The
// figures are printed as a table (and written to .test-tmp/soak.md) for docs/reliability.md.
// Run: npm run test:faults -- test/faults/soak.test.ts   (OTPD_SOAK_SECONDS=60 for a short one)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, freePort, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';
import { hotp } from '../../src/otp/hotp.ts';

const SOAK_SECONDS = Number(process.env.OTPD_SOAK_SECONDS ?? 300);
const CAPACITY_SECONDS = Number(process.env.OTPD_SOAK_CAPACITY_SECONDS ?? 5);
const SAMPLE_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
const BIN = join(process.cwd(), 'bin/otpd.mjs');
const LANE_USERS = ['alice', 'bob', 'dave', 'mallory'];
/** The directory passwords of the lanes that log in with them (otppin=1). */
const LANE_PASSWORDS = ['', '', 'davepw', 'mallorypw'];
const WRONG_TOKENS = 200;
const SPASS_TOKENS = 20;
const SMS_TOKENS = 40;
const PIN = 'soakPin-7';
const key = (i: number) => Buffer.from(`soak-hotp-seed-${String(i).padStart(5, '0')}`);

type Kind = 'success' | 'wrong' | 'trigger';
interface Outcome { kind: Kind; ms: number; expected: boolean; bad?: string; shed?: boolean; at: number }

let dir: string;
let slapd: Slapd;
let gateway: HttpGateway;
let child: ChildProcess;
let base: string;
let apiKey: string;
let hanging = false;
let output = '';

function cli(args: string[], input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: dir, input, encoding: 'utf8', env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_LOG_LEVEL: 'warn' } });
}
/**
 * The load's connections: a keep-alive agent of its own, closed when the load ends, so the test
 * can see otpd's sockets go back to where they were (fetch's shared pool would keep idle
 * connections for the server's keep-alive time, 72 s, long after the load).
 */
const agent = new http.Agent({ keepAlive: true });
function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: string; json: any }> {
  const payload = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, {
      method: 'POST', agent, timeout: REQUEST_TIMEOUT_MS,
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('error', reject);
      res.on('end', () => {
        let json: any;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
const admin = (path: string, form: Record<string, string>) => post(path, form, { authorization: `Bearer ${apiKey}` });

before(async () => {
  dir = testTmpDir('otpd-soak-');
  mkdirSync(join(dir, 'data'));
  slapd = await startSlapd();
  gateway = await new HttpGateway({ respond: () => (hanging ? { delayMs: 30_000 } : { body: 'OK' }) }).start();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  assert.equal(cli(['admin', 'add', 'admin'], 'soak-admin-pw\n').status, 0);
  apiKey = cli(['admin', 'apikey', 'admin']).stdout.trim();
  child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: String(port), OTPD_LOG_LEVEL: 'warn' } });
  child.stdout!.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-20_000)));
  await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok, { what: 'otpd to answer /healthz', timeoutMs: 30_000, intervalMs: 100 });
  const setup: [string, Record<string, string>][] = [
    ['/system/setResolver', { name: 'ldap', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: slapd.url, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: '2' }],
    ['/system/setRealm', { realm: 'corp', resolvers: 'useridresolver.LDAPIdResolver.IdResolver.ldap' }],
    ['/system/setDefaultRealm', { realm: 'corp' }],
    ['/system/setDefault', { DefaultMaxFailCount: '100' }],
    // triggers are a fifth of the load (about ten a second): the send limits (1,000 SMS a day to
    // one country, 30 an hour to one number prefix, ...) would refuse them after a minute or two
    ['/system/setConfig', Object.fromEntries(['PerUser', 'PerDestination', 'PerPrefix', 'PerCountry', 'PerClient', 'Global'].map((k) => [`DeliveryLimit${k}`, 'off']))],
    // two of the lanes log in with the directory password before the OTP: slapd going away shows in their answers (ERR2004)
    ['/system/setPolicy', { name: 'soak_otppin', scope: 'authentication', action: 'otppin=1', user: `${LANE_USERS[2]}, ${LANE_USERS[3]}`, realm: 'corp', client: '' }],
    ['/system/setProvider', { type: 'sms', name: 'gw', class: 'HttpSMSProvider', timeout: '2', default: 'true', config: JSON.stringify({ URL: `${gateway.url}/send`, RETURN_SUCCESS: 'OK' }) }],
    ...LANE_USERS.map((u, i): [string, Record<string, string>] => ['/admin/init', { type: 'hmac', serial: `LANE${i}`, otpkey: key(i).toString('hex'), pin: PIN, user: u, realm: 'corp' }]),
    ...Array.from({ length: WRONG_TOKENS }, (_, i): [string, Record<string, string>] => ['/admin/init', { type: 'hmac', serial: `WRONG${i}`, otpkey: key(1000 + i).toString('hex'), pin: PIN }]),
    ...Array.from({ length: SPASS_TOKENS }, (_, i): [string, Record<string, string>] => ['/admin/init', { type: 'spass', serial: `SPASS${i}`, pin: `${PIN}s${i}` }]),
    ...Array.from({ length: SMS_TOKENS }, (_, i): [string, Record<string, string>] => ['/admin/init', { type: 'sms', serial: `SMS${i}`, phone: '+4915123456789', pin: PIN }]),
  ];
  for (const [path, form] of setup) {
    const r = await admin(path, form);
    assert.equal(r.json?.result?.status, true, `${path} ${form.serial ?? ''}: ${r.body}`);
  }
});

after(async () => {
  hanging = false;
  agent.destroy();
  child?.kill('SIGKILL');
  await gateway?.stop();
  await slapd?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The load: request kinds in a fixed mix; HOTP lanes keep their own counters (one request in flight each). */
class Load {
  private counters = LANE_USERS.map(() => 0);
  private laneBusy = LANE_USERS.map(() => false);
  private n = 0;
  readonly outcomes: Outcome[] = [];
  inFlight = 0;

  async one(): Promise<void> {
    const n = this.n++;
    const pick = n % 20;
    const kind: Kind = pick < 9 ? 'success' : pick < 16 ? 'wrong' : 'trigger';
    const started = performance.now();
    this.inFlight++;
    let expected = false;
    let bad: string | undefined;
    let shed = false;
    let lane = -1;
    try {
      let form: Record<string, string>;
      let path = '/validate/check_s';
      if (kind === 'success') {
        lane = this.laneBusy.findIndex((b) => !b);
        if (lane >= 0 && n % 2 === 0) {
          this.laneBusy[lane] = true;
          path = '/validate/check';
          form = { user: LANE_USERS[lane], realm: 'corp', pass: `${lane >= 2 ? LANE_PASSWORDS[lane] : PIN}${hotp(key(lane), this.counters[lane])}` };
        } else {
          lane = -1;
          const i = n % SPASS_TOKENS;
          form = { serial: `SPASS${i}`, pass: `${PIN}s${i}` };
        }
      } else if (kind === 'wrong') form = { serial: `WRONG${n % WRONG_TOKENS}`, pass: `${PIN}000000` };
      else form = { serial: `SMS${n % SMS_TOKENS}`, pass: PIN };
      const r = await post(path, form);
      // a request shed under a fault's backlog (503, ERR2009) is an answer, counted as not expected
      if (r.status === 503 && r.json?.result?.error?.code === 2009) shed = true;
      else if (r.status >= 500) bad = `HTTP ${r.status}: ${r.body.slice(0, 200)}`;
      else if (!r.json) bad = `not JSON: ${r.body.slice(0, 200)}`;
      else if (/\bat [\w$.<>]+ \(|node:internal|\.ts:\d+/.test(r.body)) bad = `a stack trace: ${r.body.slice(0, 200)}`;
      const value = r.json?.result?.value;
      if (kind === 'success') expected = r.json?.result?.status === true && value === true;
      else if (kind === 'wrong') expected = r.json?.result?.status === true && value === false;
      else expected = r.json?.result?.status === true && value === false && typeof r.json?.detail?.transactionid === 'string';
      // a lane's OTP is spent when accepted; an unclear outcome skips one (the look-ahead covers it)
      if (lane >= 0 && (expected || r.json?.result?.error === undefined)) this.counters[lane]++;
    } catch (e) {
      bad = `no answer: ${(e as Error).message}`;
      if (lane >= 0) this.counters[lane]++;
    } finally {
      if (lane >= 0) this.laneBusy[lane] = false;
      this.inFlight--;
      this.outcomes.push({ kind, ms: performance.now() - started, expected, bad, shed, at: Date.now() });
    }
  }

  /** Closed loop: `workers` back-to-back clients for `seconds`; the answers per second. */
  async closed(workers: number, seconds: number): Promise<number> {
    const from = this.outcomes.length;
    const end = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: workers }, async () => {
      while (Date.now() < end) await this.one();
    }));
    return (this.outcomes.length - from) / seconds;
  }
}

const p99 = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
};
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
/** Open file descriptors: all, and those that are not sockets (the load's keep-alive connections are sockets). */
function fds(pid: number): { all: number; files: number } {
  const list = readdirSync(`/proc/${pid}/fd`);
  let sockets = 0;
  for (const fd of list) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return { all: list.length, files: list.length - sockets };
}

interface Sample { t: number; requests: number; errorRate: number; p99: number; rss: number; fds: number; fileFds: number; fault: string }

test(`soak: ${SOAK_SECONDS} s at half capacity with slapd restarts and a hanging gateway: error rate, p99, RSS and fds stay flat`, { timeout: (SOAK_SECONDS + 120) * 1000 }, async () => {
  const load = new Load();
  await load.closed(4, 2); // warm-up
  const capacity = await load.closed(16, CAPACITY_SECONDS);
  const capacityBad = load.outcomes.filter((o) => o.bad);
  assert.deepEqual(capacityBad.slice(0, 3), [], 'answers while measuring capacity');
  const rate = capacity / 2;
  process.stdout.write(`# capacity ${capacity.toFixed(0)} req/s (closed loop, 16 clients); soak at ${rate.toFixed(0)} req/s for ${SOAK_SECONDS} s\n`);

  const pid = child.pid!;
  // where the fds stand without load (the measurement's connections closed)
  await new Promise((r) => setTimeout(r, 3000));
  const baselineFds = fds(pid).all;
  const started = Date.now();
  const faults: { from: number; to: number; what: string }[] = [];
  let fault = '';
  const schedule = (async () => {
    // every minute (from 20 s on): slapd away for 10 s, then 20 s later the gateway hangs for 10 s
    for (let cycle = 0; ; cycle++) {
      const at = started + cycle * 60_000;
      const steps: [number, () => Promise<void>][] = [
        [at + 20_000, async () => {
          fault = 'slapd stopped';
          faults.push({ from: Date.now(), to: 0, what: fault });
          await slapd.stop();
        }],
        [at + 30_000, async () => {
          await slapd.restart();
          faults[faults.length - 1].to = Date.now();
          fault = '';
        }],
        [at + 40_000, async () => {
          fault = 'gateway hangs';
          faults.push({ from: Date.now(), to: 0, what: fault });
          hanging = true;
        }],
        [at + 50_000, async () => {
          hanging = false;
          faults[faults.length - 1].to = Date.now();
          fault = '';
        }],
      ];
      for (const [when, step] of steps) {
        if (when >= started + SOAK_SECONDS * 1000) return;
        await new Promise((r) => setTimeout(r, Math.max(0, when - Date.now())));
        await step();
      }
    }
  })();

  const samples: Sample[] = [];
  let sampledTo = load.outcomes.length;
  const faultsIn = (from: number, to: number) => faults.filter((f) => f.from < to && (f.to === 0 || f.to + 5_000 > from)).map((f) => f.what);
  const sample = () => {
    const window = load.outcomes.slice(sampledTo);
    sampledTo += window.length;
    const now = Date.now();
    samples.push({
      t: Math.round((now - started) / 1000), requests: window.length, errorRate: window.length ? window.filter((o) => !o.expected).length / window.length : 0,
      p99: p99(window.map((o) => o.ms)), rss: rssMb(pid), fds: fds(pid).all, fileFds: fds(pid).files, fault: [...new Set(faultsIn(now - SAMPLE_MS, now))].join(', '),
    });
  };
  const sampler = setInterval(sample, SAMPLE_MS);

  // open loop at `rate`: requests go out on schedule whether or not earlier ones are answered
  const pending = new Set<Promise<void>>();
  const intervalMs = 1000 / rate;
  let next = Date.now();
  while (Date.now() < started + SOAK_SECONDS * 1000) {
    next += intervalMs;
    const p = load.one().finally(() => pending.delete(p));
    pending.add(p);
    const wait = next - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    else if (pending.size > 0 && load.outcomes.length % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  clearInterval(sampler);
  await Promise.all(pending);
  sample();
  await schedule;
  if (!slapdRunning()) await slapd.restart();

  const table = [
    `| t (s) | requests | error rate | p99 (ms) | RSS (MB) | fds (all) | fds (not sockets) | fault in the window |`,
    `|---:|---:|---:|---:|---:|---:|---:|---|`,
    ...samples.map((s) => `| ${s.t} | ${s.requests} | ${(s.errorRate * 100).toFixed(1)} % | ${s.p99.toFixed(0)} | ${s.rss.toFixed(0)} | ${s.fds} | ${s.fileFds} | ${s.fault} |`),
  ].join('\n');
  const soakOutcomes = load.outcomes.filter((o) => o.at >= started);
  const summary = `capacity ${capacity.toFixed(0)} req/s, soak ${rate.toFixed(0)} req/s for ${SOAK_SECONDS} s: ${soakOutcomes.length} requests, `
    + `${soakOutcomes.filter((o) => !o.expected).length} not as expected (${soakOutcomes.filter((o) => o.shed).length} of them shed with 503), ${soakOutcomes.filter((o) => o.bad).length} bad (5xx, stack, no answer)`;
  process.stdout.write(`# ${summary}\n${table.split('\n').map((l) => `# ${l}`).join('\n')}\n`);
  mkdirSync('.test-tmp', { recursive: true });
  writeFileSync('.test-tmp/soak.md', `${summary}\n\n${table}\n`);

  // no request got a 5xx, a stack trace or no answer, faults or not
  assert.deepEqual(soakOutcomes.filter((o) => o.bad).slice(0, 5).map((o) => `${o.kind}: ${o.bad}`), []);
  assert.ok(soakOutcomes.length >= rate * SOAK_SECONDS * 0.9, `sent ${soakOutcomes.length} of ${(rate * SOAK_SECONDS).toFixed(0)}`);
  const quiet = samples.filter((s) => !s.fault && s.requests > 0);
  assert.ok(quiet.length >= 1, 'windows without a fault');
  for (const s of quiet) assert.ok(s.errorRate < 0.01, `error rate ${(s.errorRate * 100).toFixed(1)} % at ${s.t} s without a fault`);
  // flat: the last third against the first third (after the first sample's warm-up)
  const third = Math.max(1, Math.floor(samples.length / 3));
  const first = samples.slice(1, 1 + third);
  const last = samples.slice(-third);
  const max = (xs: number[]) => Math.max(...xs);
  // p99 of the windows without a fault: the last third's median against the median before it
  // (medians, since on a shared machine one window can be slow for another process's sake; a
  // queue that grows shows in every window). A short run has few quiet windows early: then
  // the first sample counts too.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const quiet99 = (xs: Sample[]) => xs.filter((s) => !s.fault && s.requests > 0).map((s) => s.p99);
  const early99 = median(quiet99(samples.slice(0, samples.length - third)));
  const late99 = median(quiet99(last));
  assert.ok(late99 <= early99 * 2 + 100, `p99 without faults (median of the windows): ${early99.toFixed(0)} ms early, ${late99.toFixed(0)} ms late`);
  assert.ok(max(last.map((s) => s.rss)) <= max(first.map((s) => s.rss)) * 1.25 + 20, `RSS ${max(first.map((s) => s.rss)).toFixed(0)} MB early, ${max(last.map((s) => s.rss)).toFixed(0)} MB late`);
  assert.ok(max(last.map((s) => s.fileFds)) <= max(first.map((s) => s.fileFds)) + 10, `fds other than sockets: ${max(first.map((s) => s.fileFds))} early, ${max(last.map((s) => s.fileFds))} late`);
  // the sockets are the load's connections: once it stops (its agent closed) they close, back to where the run began
  agent.destroy();
  const settled = await waitFor(() => (fds(pid).all <= baselineFds + 10 ? fds(pid).all : 0), { what: `otpd's fds to return to ${baselineFds} (+10) after the load`, timeoutMs: 20_000, intervalMs: 500 })
    .catch((e: Error) => assert.fail(`${e.message}: ${fds(pid).all} open`));
  process.stdout.write(`# fds: ${baselineFds} before the soak, ${settled} after it settled\n`);
  // and otpd is still there, answering
  assert.equal(child.exitCode, null, `otpd exited: ${output}`);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});

function slapdRunning(): boolean {
  return spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${slapd.port}`]).status === 0;
}
