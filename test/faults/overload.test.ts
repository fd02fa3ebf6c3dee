// Invariant: twice the measured capacity for 30 s is shed, not queued: what otpd answers keeps
// a bounded latency (maxQueueMs plus the work), the excess gets HTTP 503 with Retry-After and
// ERR2009 in the envelope at once (never a 500, never a stack trace, never a hung request), RADIUS
// drops what it cannot take (the NAS retries) instead of answering ever later, and the server's
// memory and open file descriptors stay flat. With shedding off (a huge maxInFlight) the same
// run fails on latency: that is what the setting prevents.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { after, test } from 'node:test';
import radius from 'radius';
import { Errors } from '../../src/errors.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { Load, OtpdNode, PIN, RADIUS_SECRET, seedOf } from './harness.ts';

const dir = mkdtempSync('/dev/shm/otpd-faults-overload-');
let node: OtpdNode | undefined;
after(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const MAX_QUEUE_MS = 500;
const OVERLOAD_MS = Number(process.env.FAULTS_OVERLOAD_MS ?? 30_000);

function resources(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0), fds: readdirSync(`/proc/${pid}/fd`).length };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

interface Shot { status: number; ms: number; code?: number; retryAfter: string | null; body: string; error?: string }

/** One /validate/check over node:http (the load's own keep-alive agent). */
function post(node: OtpdNode, agent: http.Agent, form: Record<string, string>): Promise<Shot> {
  return new Promise<Shot>((resolve) => {
    const t0 = Date.now();
    const body = new URLSearchParams(form).toString();
    const req = http.request({ host: '127.0.0.1', port: node.port, path: '/validate/check', method: 'POST', agent, timeout: 20_000,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let code: number | undefined;
        try {
          code = JSON.parse(text).result?.error?.code;
        } catch { /* reported by the caller */ }
        resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0, code, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null, body: text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ status: 0, ms: Date.now() - t0, retryAfter: null, body: '', error: e.message }));
    req.end(body);
  });
}

/** The node's capacity: requests a second a closed loop of `concurrency` clients gets answered (valid OTPs, no failure floor). */
async function capacityOf(node: OtpdNode, durationMs: number): Promise<{ rate: number; nextCounter: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: node.tokenCount });
  const start = Date.now();
  let answered = 0;
  let nextCounter = 0;
  // one client per token, each sending its token's OTPs in order
  await Promise.all(Array.from({ length: node.tokenCount }, async (_, i) => {
    let k = 0;
    for (; Date.now() - start < durationMs; k++) {
      const shot = await post(node, agent, { serial: `OK${i}`, pass: `${PIN}${hotp(seedOf(i), k)}` });
      assert.ok(shot.status === 200 && shot.body.includes('"value": true'), shot.body);
      answered++;
    }
    nextCounter = Math.max(nextCounter, k);
  }));
  agent.destroy();
  return { rate: Math.round(answered / ((Date.now() - start) / 1000)), nextCounter };
}

/**
 * Open loop: `rate` requests a second whatever the answers, each the next valid OTP of one of the
 * node's tokens (round robin; a few arrive out of order and are refused, which is fine here).
 * Over node:http with its own keep-alive agent, destroyed at the end so the server's socket
 * count can come back to its baseline.
 */
async function openLoop(node: OtpdNode, rate: number, durationMs: number, firstCounter: number, sample: () => void): Promise<Shot[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const shots: Promise<Shot>[] = [];
  const start = Date.now();
  let sent = 0;
  const sampler = setInterval(sample, 1000);
  while (Date.now() - start < durationMs) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    for (; sent < due; sent++) {
      const i = sent % node.tokenCount;
      const counter = firstCounter + Math.floor(sent / node.tokenCount);
      shots.push(post(node, agent, { serial: `OK${i}`, pass: `${PIN}${hotp(seedOf(i), counter)}` }));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  clearInterval(sampler);
  const all = await Promise.all(shots);
  agent.destroy();
  return all;
}

/** RADIUS at `rate` packets a second; the answers' latencies and how many got none. */
async function radiusFlood(port: number, rate: number, durationMs: number): Promise<{ answered: number[]; silent: number }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const sentAt = new Map<number, number>();
  const answered: number[] = [];
  socket.on('message', (msg) => {
    const t = sentAt.get(msg[1]!);
    if (t !== undefined) {
      answered.push(Date.now() - t);
      sentAt.delete(msg[1]!);
    }
  });
  let silent = 0;
  let id = 0;
  const start = Date.now();
  while (Date.now() - start < durationMs) {
    const i = id++ % 256;
    if (sentAt.has(i)) silent++; // no answer in the 256 packets since: dropped
    sentAt.set(i, Date.now());
    socket.send(radius.encode({ code: 'Access-Request', secret: RADIUS_SECRET, identifier: i, attributes: [['User-Name', `w${i % 8}`], ['User-Password', `${PIN}000000`]], add_message_authenticator: true }), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await new Promise((r) => setTimeout(r, 2000));
  silent += sentAt.size;
  socket.close();
  return { answered, silent };
}

// TODO: the node:http load generator saturates its own core before otpd does: in runs at 2x the
// closed-loop capacity (~1,100-1,400 req/s here) RADIUS on the same otpd answered within 74-463 ms
// while HTTP latencies measured by the client reached 5-10 s, most of it in the client. Needs a
// cheaper generator (autocannon with a setupRequest per OTP) before it can fail for otpd's sake.
test('2x capacity for 30 s: bounded latency, 503 + Retry-After, RADIUS drops, memory and fds flat', {
  todo: 'the load generator, not otpd, is the bottleneck on 2 cores (see the comment above)',
}, async () => {
  node = await OtpdNode.create({ dir, tokens: 32 });
  await node.start({ OTPD_MAX_QUEUE_MS: String(MAX_QUEUE_MS), OTPD_MAX_IN_FLIGHT: process.env.FAULTS_MAX_IN_FLIGHT ?? '32', OTPD_RADIUS_MAX_IN_FLIGHT: '16', OTPD_LOG_LEVEL: 'error' }, { cpu: 0 });
  // the load generator on the other core: what is measured is otpd's capacity, not the client's
  execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const pid = node.child!.pid!;
  // capacity: a closed loop of 32 clients (one per token) for 5 s, enough to keep both cores busy
  const { rate: capacity, nextCounter } = await capacityOf(node, 5000);
  assert.ok(capacity > 20, `capacity ${capacity}/s`);
  if (process.env.FAULTS_DEBUG) console.error('capacity', capacity);
  const baseline = resources(pid);
  const samples: { rssKb: number; fds: number }[] = [];
  const [shots, rad] = await Promise.all([
    openLoop(node, 2 * capacity, OVERLOAD_MS, nextCounter, () => samples.push(resources(pid))),
    radiusFlood(node.radiusPort, 100, OVERLOAD_MS),
  ]);
  const answered = shots.filter((s) => s.status === 200);
  const shed = shots.filter((s) => s.status === 503);
  const other = shots.filter((s) => s.status !== 200 && s.status !== 503);
  const p99 = percentile(answered.map((s) => s.ms), 99);
  const shedP99 = percentile(shed.map((s) => s.ms), 99);
  // the load's sockets are closed (agent.destroy()); the server sees it at once
  await new Promise((r) => setTimeout(r, 1000));
  const end = resources(pid);
  const third = Math.max(1, Math.floor(samples.length / 3));
  const avg = (xs: { rssKb: number }[]) => xs.reduce((a, x) => a + x.rssKb, 0) / xs.length;
  const report = {
    capacity, offered: shots.length, answered: answered.length, shed: shed.length, other: other.length, p99, shedP99,
    radius: { answered: rad.answered.length, silent: rad.silent, p99: percentile(rad.answered, 99) },
    rssMb: { baseline: baseline.rssKb >> 10, firstThird: avg(samples.slice(0, third)) / 1024 | 0, lastThird: avg(samples.slice(-third)) / 1024 | 0, end: end.rssKb >> 10 },
    fds: { baseline: baseline.fds, max: Math.max(...samples.map((s) => s.fds)), end: end.fds },
  };
  console.log('overload', report);
  assert.deepEqual(other.slice(0, 3).map((s) => `${s.status} ${s.error ?? s.body.slice(0, 200)}`), [], `neither answered nor shed: ${JSON.stringify(report)}`);
  assert.ok(shed.length > shots.length * 0.1, `load was shed: ${JSON.stringify(report)}`);
  for (const s of shed) {
    assert.equal(s.code, Errors.overloaded.code, s.body);
    assert.equal(s.retryAfter, '1');
  }
  for (const s of [...answered, ...shed]) assert.doesNotMatch(s.body, /\bat [\w.<>]+ \(|node:internal|\.ts:\d+/);
  // what is answered waits at most the queue cutoff plus the work; a shed answer comes right after the cutoff
  assert.ok(p99 <= MAX_QUEUE_MS + 2000, `p99 of answered requests ${p99} ms: ${JSON.stringify(report)}`);
  assert.ok(shedP99 <= MAX_QUEUE_MS + 1500, `p99 of shed requests ${shedP99} ms: ${JSON.stringify(report)}`);
  // RADIUS: answered ones within a NAS's timeout; the excess dropped, not queued
  assert.ok(percentile(rad.answered, 99) <= 3000, `RADIUS p99: ${JSON.stringify(report)}`);
  // flat: no growth from the first third of the run to the last, back to the baseline after it
  assert.ok(report.rssMb.lastThird <= report.rssMb.firstThird + 48, `RSS grew: ${JSON.stringify(report)}`);
  assert.ok(end.fds <= baseline.fds + 16, `fds after the run: ${JSON.stringify(report)}`);
  // recovery: a valid OTP right after the flood
  assert.equal((await new Load(node).one('wrong', 5000)).value, false, 'answered again right after the flood');
});
