// Invariant: twice the measured capacity for 30 s is shed, not queued: what otpd answers keeps
// a bounded latency (maxQueueMs plus the work), the excess gets HTTP 503 with Retry-After and
// ERR2009 in the envelope right after the queue cutoff (never a 500, never a stack trace), RADIUS at twice its own capacity at the same time drops what it cannot take
// (the NAS retries) instead of answering after the client gave up, and the server's open file
// descriptors stay flat; memory reaches a plateau in the flood's first seconds (V8's heap sized
// for the allocation rate) and a second flood right after it climbs no further, neither the heap
// still reachable after a full GC nor RSS nor what lies outside V8's heap. With shedding off (a huge maxInFlight) the same load breaks
// the latency bound: that is what the setting prevents.
//
// otpd is pinned to core 0; the load generators (test/faults/http-flood.ts for HTTP,
// bench/radius-load.ts for RADIUS) are separate processes pinned to core 1 with this test, and
// the HTTP generator reports its own CPU share and pacing lag, so the test shows that otpd, not
// the client, is what saturates. Every bound is relative to the capacity measured in the same
// run, or follows from maxQueueMs; the latency bounds are stretched by the time otpd waited for
// its core while other processes had it (the machine is shared: /proc/PID/schedstat), and a
// request may go unanswered for 10 s only when that stretch takes the bound past 10 s.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { hotp } from '../../src/otp/hotp.ts';
import type { FloodConfig, FloodResult } from './http-flood.ts';
import { HEAP_PROBE_ARGS, memoryAfterGc, memoryPeak } from './heap.ts';
import { Load, OtpdNode, PIN, RADIUS_SECRET, seedOf } from './harness.ts';

const dir = mkdtempSync('/dev/shm/otpd-faults-overload-');
let node: OtpdNode | undefined;
after(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const MAX_QUEUE_MS = 500;
const MAX_IN_FLIGHT = 32;
const RADIUS_MAX_IN_FLIGHT = 16;
const OVERLOAD_MS = Number(process.env.FAULTS_OVERLOAD_MS ?? 30_000);
/** The second flood, right after the first: memory that climbs again is kept per request. */
const SECOND_MS = Math.round((OVERLOAD_MS * 2) / 3);
/** The NAS's timeout: an answer after it is one the client no longer waits for. */
const RADIUS_TIMEOUT_MS = 1000;
/** HTTP tokens OK0..OK127 (valid OTPs round robin), RADIUS users u128..u191 (their OK tokens). */
const HTTP_TOKENS = 128;
const RADIUS_TOKENS = 64;
/**
 * What an answered request may take: the queue cutoff plus the work. The work is at most
 * maxInFlight requests sharing the core (a few ms each, so tens of ms) plus the event loop's
 * turn; 1.5 s leaves room for a shared machine's stalls and is still far below what the same
 * load does without shedding (seconds, growing for as long as the overload lasts).
 */
const ANSWER_BOUND_MS = MAX_QUEUE_MS + 1500;
const GENERATOR = join(import.meta.dirname, 'http-flood.ts');
const RADIUS_GENERATOR = join(import.meta.dirname, '../../bench/radius-load.ts');

const tokenCounters = new Map<string, number>();
const radiusCounters = Array.from({ length: RADIUS_TOKENS }, () => 0);

/** A process on core 1 (the load's core); its last stdout line as JSON. */
function onLoadCore<T>(args: string[], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile('taskset', ['-c', '1', process.execPath, '--import', 'tsx', ...args], { maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${args[0]}: ${err.message}\n${stderr.slice(-2000)}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as T);
      } catch {
        reject(new Error(`${args[0]} printed no figures: ${stdout.slice(-500)} ${stderr.slice(-2000)}`));
      }
    });
  });
}

/** One HTTP load run (closed or open loop) over the HTTP tokens; their counters carry on to the next run. */
async function flood(target: OtpdNode, opts: Omit<FloodConfig, 'port' | 'tokens'>): Promise<FloodResult> {
  const cfg: FloodConfig = {
    port: target.port,
    tokens: Array.from({ length: HTTP_TOKENS }, (_, i) => ({ serial: `OK${i}`, seedHex: seedOf(i).toString('hex'), pin: PIN, counter: tokenCounters.get(`OK${i}`) ?? 0 })),
    ...opts,
  };
  const file = join(dir, `flood-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  const result = await onLoadCore<FloodResult>([GENERATOR, file], opts.durationMs + opts.timeoutMs + 30_000);
  for (const [serial, counter] of Object.entries(result.counters)) tokenCounters.set(serial, counter);
  return result;
}

interface RadiusResult { sent: number; accept: number; reject: number; timeouts: number; late: number; answered: number; rps: number; p99_ms: number; max_ms: number }

/** RADIUS Access-Requests with the next valid OTPs of the RADIUS users (closed loop at rate 0). */
async function radiusLoad(target: OtpdNode, seconds: number, concurrency: number, rate: number): Promise<RadiusResult> {
  // enough OTPs for the run in order, round robin over the users; the next run starts after the last one sent
  const count = Math.ceil((rate || 20_000) * seconds * 1.2);
  const lines: string[] = [];
  const start = [...radiusCounters];
  for (let k = 0; k < count; k++) {
    const t = k % RADIUS_TOKENS;
    lines.push(`u${HTTP_TOKENS + t}\t${PIN}${hotp(seedOf(HTTP_TOKENS + t), start[t]! + Math.floor(k / RADIUS_TOKENS))}`);
  }
  const file = join(dir, `radius-${Date.now()}.txt`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const result = await onLoadCore<RadiusResult>([RADIUS_GENERATOR, String(target.radiusPort), RADIUS_SECRET, file, String(seconds), String(concurrency), String(rate), String(RADIUS_TIMEOUT_MS)],
    seconds * 1000 + 30_000);
  for (let t = 0; t < RADIUS_TOKENS; t++) radiusCounters[t] = start[t]! + Math.ceil((result.sent - t) / RADIUS_TOKENS);
  return result;
}

function resources(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0), fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** The main thread's time on a CPU and waiting for one (ns, /proc/PID/schedstat). */
function sched(pid: number): { runNs: number; waitNs: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
  return { runNs: run!, waitNs: wait! };
}
/**
 * How much longer otpd took than it would have with its core to itself: (run + wait) / run over
 * the interval. Other processes on the shared core make otpd wait for it while it has work;
 * every latency stretches by that much for the machine's sake, not otpd's.
 */
const slowdown = (a: { runNs: number; waitNs: number }, b: { runNs: number; waitNs: number }) =>
  Math.max(1, (b.runNs - a.runNs + b.waitNs - a.waitNs) / Math.max(1, b.runNs - a.runNs));

const STACK = /\bat [\w.<>]+ \(|node:internal|\.ts:\d+/;

test('2x capacity for 30 s, then again: bounded latency, 503 + Retry-After, RADIUS drops, memory and fds flat; without shedding the bound breaks', { timeout: 600_000 }, async () => {
  node = await OtpdNode.create({ dir, tokens: HTTP_TOKENS + RADIUS_TOKENS, config: { DefaultCountWindow: '100' } });
  const env = { OTPD_MAX_QUEUE_MS: String(MAX_QUEUE_MS), OTPD_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), OTPD_RADIUS_MAX_IN_FLIGHT: String(RADIUS_MAX_IN_FLIGHT), OTPD_LOG_LEVEL: 'error' };
  // the heap probe: the heap still reachable after a full GC, before and after the flood
  const heapFile = join(dir, 'heap.jsonl');
  const heapTrace = join(dir, 'heap-trace.jsonl');
  await node.start({ ...env, OTPD_TEST_HEAP_FILE: heapFile, OTPD_TEST_HEAP_TRACE: heapTrace }, { cpu: 0, nodeArgs: HEAP_PROBE_ARGS });
  // this process (sampling only) on the load's core too
  execFileSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const pid = node.child!.pid!;

  // capacity, closed loop: as many clients as requests otpd serves at once
  const radiusCapacity = await radiusLoad(node, 3, RADIUS_MAX_IN_FLIGHT, 0);
  await flood(node, { mode: 'closed', concurrency: MAX_IN_FLIGHT, durationMs: 2000, timeoutMs: 10_000 }); // warm-up
  const closed = await flood(node, { mode: 'closed', concurrency: MAX_IN_FLIGHT, durationMs: 5000, timeoutMs: 10_000 });
  // the best whole second of the run: the machine is shared, and an estimate from a slow
  // stretch would not overload otpd once it gets its core back
  const capacity = Math.max(closed.answeredPerSecond, ...closed.perSecond.slice(1, -1).map((s) => s.ok));
  assert.ok(capacity > 50 && closed.ok.accepted > closed.ok.count * 0.95, `capacity run: ${JSON.stringify({ ...closed, perSecond: undefined, counters: undefined })}`);
  assert.ok(radiusCapacity.rps > 20 && radiusCapacity.late === 0, `RADIUS capacity run: ${JSON.stringify(radiusCapacity)}`);

  // 2x for 30 s, HTTP and RADIUS each at twice its own capacity. The HTTP clients keep a pool of
  // connections open (a proxy's or a load balancer's keep-alive pool) big enough for 2x at the
  // bound: a storm of new connections would wait in the kernel's accept queue (511) and its SYN
  // retries (1 s, 3 s, ...) before otpd sees a byte, where no shedding of otpd's can act.
  const pool = Math.min(3000, Math.ceil((2 * capacity * ANSWER_BOUND_MS) / 1000));
  await new Promise((r) => setTimeout(r, 1000));
  const heapBefore = await memoryAfterGc(pid, heapFile);
  const baseline = resources(pid);
  const samples: { rssKb: number; fds: number }[] = [];
  const floodStart = Date.now();
  // RSS and fds once a second while the flood lasts (not the drain after it)
  const sampler = setInterval(() => Date.now() - floodStart <= OVERLOAD_MS && samples.push(resources(pid)), 1000);
  const sched0 = sched(pid);
  const [http, rad] = await Promise.all([
    flood(node, { mode: 'open', rate: 2 * capacity, durationMs: OVERLOAD_MS, timeoutMs: 10_000, preconnect: pool }),
    radiusLoad(node, OVERLOAD_MS / 1000, 0, Math.round(2 * radiusCapacity.rps)),
  ]);
  clearInterval(sampler);
  const floodEnd = Date.now();
  const stretch = slowdown(sched0, sched(pid));
  // the latency bounds, stretched by what the machine's other work took from otpd's core
  const answerBound = Math.round(ANSWER_BOUND_MS * stretch);
  const shedBound = Math.round((MAX_QUEUE_MS + 1000) * stretch);
  // the generators closed their connections: the server sees it at once
  await new Promise((r) => setTimeout(r, 1000));
  const end = resources(pid);
  const heapAfter = await memoryAfterGc(pid, heapFile);
  const third = Math.max(1, Math.floor(samples.length / 3));
  const avgMb = (xs: { rssKb: number }[]) => Math.round(xs.reduce((a, x) => a + x.rssKb, 0) / xs.length / 1024);
  const report = {
    capacity, capacityP99: closed.ok.p99, radiusCapacity: Math.round(radiusCapacity.rps), slowdown: Math.round(stretch * 100) / 100, answerBound, shedBound,
    http: { offered: http.sent, ok: http.ok, shed: http.shed, other: http.other, hung: http.hung, errors: http.errors, stacks: http.stacks,
      okPerSecond: Math.round(http.ok.count / (http.elapsedMs / 1000)), peakConnections: http.peakConnections, connectMs: http.connectMs, fromWriteMs: http.fromWriteMs, generatorCpu: http.cpuShare, pacerLagP99: http.pacerLagP99,
      okP99BySecond: http.perSecond.map((s) => s.okP99) },
    radius: rad,
    rssMb: { baseline: baseline.rssKb >> 10, firstThird: avgMb(samples.slice(0, third)), middleThird: avgMb(samples.slice(third, -third)), lastThird: avgMb(samples.slice(-third)), end: end.rssKb >> 10,
      bySecond: samples.map((x) => x.rssKb >> 10) },
    fds: { baseline: baseline.fds, max: Math.max(...samples.map((s) => s.fds)), end: end.fds },
    heapAfterGcMb: { before: Math.round(heapBefore.heapMb * 10) / 10, after: Math.round(heapAfter.heapMb * 10) / 10, rssBefore: Math.round(heapBefore.rssMb), rssAfter: Math.round(heapAfter.rssMb) },
    peakMb: memoryPeak(heapTrace, floodStart, floodEnd),
  };
  console.log('# overload', JSON.stringify({ ...report, radius: undefined }));
  console.log('# overload radius', JSON.stringify(rad));

  // the generator had CPU to spare and sent what was due, so what saturated is otpd (how late
  // it sent, when the machine's other work held it up, counts in the latencies: due time to answer)
  assert.ok(http.cpuShare < 0.5 && http.sent >= 2 * capacity * (OVERLOAD_MS / 1000) * 0.95, `the load generator fell behind: ${JSON.stringify(report)}`);
  // every request answered, as an envelope, 200 or 503, no stack trace
  assert.deepEqual({ other: http.other, errors: http.errors, stacks: http.stacks }, { other: { count: 0, samples: [] }, errors: { count: 0, samples: [] }, stacks: 0 }, JSON.stringify(report));
  // none without an answer within 10 s, unless the machine stretched the bound past that
  if (answerBound < 10_000) assert.equal(http.hung, 0, `requests without an answer in 10 s: ${JSON.stringify(report)}`);
  // the excess was shed, each with Retry-After and ERR2009, right after the queue cutoff
  // (at least some: on a shared machine otpd may get more of its core back during the run than
  // while its capacity was measured, and then serve more of the 2x)
  assert.ok(http.shed.count > http.sent * 0.05, `load was shed: ${JSON.stringify(report)}`);
  assert.equal(http.shed.withRetryAfter, http.shed.count, 'every 503 has Retry-After: 1');
  assert.equal(http.shed.withErr2009, http.shed.count, 'every 503 is the ERR2009 envelope');
  assert.ok(http.shed.p99 <= shedBound, `p99 of shed requests ${http.shed.p99} ms > ${shedBound}: ${JSON.stringify(report)}`);
  // what is answered waits at most the queue cutoff plus the work, from the first second to the last
  assert.ok(http.ok.p99 <= answerBound, `p99 of answered requests ${http.ok.p99} ms > ${answerBound}: ${JSON.stringify(report)}`);
  // and otpd kept serving: shedding costs little, so the answered rate stays near the capacity
  // (the capacity's share of the core it got, when the machine took some of it)
  assert.ok(report.http.okPerSecond >= (capacity * 0.4) / stretch, `answered ${report.http.okPerSecond}/s under overload, capacity ${capacity}/s: ${JSON.stringify(report)}`);
  // RADIUS: the excess dropped (the client's timeouts), nothing answered after the client gave up
  assert.ok(rad.timeouts > 0 && rad.answered > 0, `RADIUS shed some and answered some: ${JSON.stringify(report)}`);
  // (a few may be: a packet admitted just before the machine's other work takes the core from
  // otpd for a second; nothing otpd decides can prevent that. Before the lag-aware drop 8-26 %
  // of the answers here came late, with it 0-1 %.)
  assert.ok(rad.late <= rad.sent * 0.02, `RADIUS answers after the client's ${RADIUS_TIMEOUT_MS} ms: ${JSON.stringify(report)}`);
  // flat: no growth from the first third of the run to the last; the sockets are the load's
  // connections (at most one per request in flight), closed again after it
  assert.ok(report.fds.max <= baseline.fds + http.peakConnections + 64, `fds beyond the load's connections: ${JSON.stringify(report)}`);
  assert.ok(end.fds <= baseline.fds + 16, `fds after the run: ${JSON.stringify(report)}`);
  // recovery: answered at once right after the flood
  assert.equal((await new Load(node).one('wrong', 5000)).value, false, 'answered again right after the flood');

  // memory: what the flood left reachable after a full GC (a leak per request, shed or served,
  // would be tens of MB after ~70 000 requests); the bound leaves room for what is kept on
  // purpose for a while: RADIUS replies for retransmissions (30 s), caches of bounded size
  assert.ok(heapAfter.heapMb <= heapBefore.heapMb + 24, `heap after GC grew over the flood: ${JSON.stringify(report.heapAfterGcMb)}`);

  // memory flat: the same overload again, right after the first. RSS rises in the first
  // seconds of a flood with V8's heap, which V8 sizes from the allocation rate (up to a few times
  // what is live) and keeps while the rate lasts; that is a plateau, not a trend. What a second
  // flood must not do is climb past it: memory kept per request (on the heap or outside it)
  // would add about as much again as the first flood did.
  const flood2Start = Date.now();
  const [http2, rad2] = await Promise.all([
    flood(node, { mode: 'open', rate: 2 * capacity, durationMs: SECOND_MS, timeoutMs: 10_000, preconnect: pool }),
    radiusLoad(node, SECOND_MS / 1000, 0, Math.round(2 * radiusCapacity.rps)),
  ]);
  const flood2End = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  const end2 = resources(pid);
  const heapAfter2 = await memoryAfterGc(pid, heapFile);
  const memory = {
    heapAfterGcMb: [heapBefore, heapAfter, heapAfter2].map((m) => Math.round(m.heapMb * 10) / 10),
    peak1: report.peakMb, peak2: memoryPeak(heapTrace, flood2Start, flood2End),
    second: { offered: http2.sent, ok: http2.ok.count, shed: http2.shed.count, radiusAnswered: rad2.answered, radiusLate: rad2.late, fdsEnd: end2.fds },
  };
  console.log('# overload memory', JSON.stringify(memory));
  assert.deepEqual({ other: http2.other.count, errors: http2.errors.count, stacks: http2.stacks }, { other: 0, errors: 0, stacks: 0 }, `second flood: ${JSON.stringify(memory)}`);
  assert.ok(http2.shed.count > 0 && http2.ok.count > 0, `second flood served and shed: ${JSON.stringify(memory)}`);
  // the heap still reachable after a full GC: where the first flood left it (both hold the
  // last 30 s of RADIUS replies), not that again on top. Measured without a leak it moved
  // -4.4 to +1.5 MB (+1.5 with FAULTS_OVERLOAD_MS=10000: the 30 s RADIUS reply cache not yet full after a 10 s flood); the bound is 2 MB plus 256 bytes per request answered in the second flood,
  // so a leak of 1 KB per answered /validate/check (tried: injected into the handler) fails it
  const answered2 = http2.ok.count + rad2.answered;
  const heapBound2 = heapAfter.heapMb + 2 + (answered2 * 256) / 2 ** 20;
  assert.ok(heapAfter2.heapMb <= heapBound2, `heap after GC grew again over the second flood (bound ${heapBound2.toFixed(1)} MB): ${JSON.stringify(memory)}`);
  // RSS and what lies outside V8's heap: the second flood's peaks within the first's (V8 may
  // size its heap a step differently from one flood to the next: a quarter of the peak)
  assert.ok(memory.peak2.rssMb <= memory.peak1.rssMb * 1.25 + 16, `RSS climbed past the first flood's peak: ${JSON.stringify(memory)}`);
  assert.ok(memory.peak2.outsideHeapMb <= memory.peak1.outsideHeapMb + 32, `memory outside V8's heap climbed past the first flood's: ${JSON.stringify(memory)}`);
  assert.ok(end2.fds <= baseline.fds + 16, `fds after the second flood: ${JSON.stringify(memory)}`);

  // the same overload with shedding off: everything is admitted, the queue grows, the bound breaks
  await node.stop();
  await node.start({ ...env, OTPD_MAX_IN_FLIGHT: '100000' }, { cpu: 0 });
  const sched1 = sched(node.child!.pid!);
  const unshed = await flood(node, { mode: 'open', rate: 2 * capacity, durationMs: 12_000, timeoutMs: 10_000, preconnect: pool });
  const unshedBound = Math.round(ANSWER_BOUND_MS * slowdown(sched1, sched(node.child!.pid!)));
  const unshedReport = { bound: unshedBound, offered: unshed.sent, ok: unshed.ok, shed: unshed.shed, hung: unshed.hung, errors: unshed.errors.count, okP99BySecond: unshed.perSecond.map((s) => s.okP99), generatorCpu: unshed.cpuShare };
  console.log('# without shedding', JSON.stringify(unshedReport));
  assert.equal(unshed.shed.count, 0, 'nothing shed with a huge maxInFlight');
  assert.ok(unshed.ok.p99 > unshedBound * 2 || unshed.hung > unshed.sent * 0.05, `without shedding the latency bound breaks: ${JSON.stringify(unshedReport)}`);
  for (const body of unshed.other.samples) assert.doesNotMatch(body, STACK);
});
