/**
 * The overload test's HTTP load generator, run as its own process (pinned by the test to the
 * core otpd does not use), so what saturates is otpd, not the client: raw keep-alive TCP
 * connections with pre-formatted requests, no HTTP client library. Each request is
 * `/validate/check` with the next valid OTP of one of the given HOTP tokens (round robin).
 *
 *   closed loop: `concurrency` connections, each sending its next request when answered;
 *   open loop: `rate` requests a second on schedule whatever comes back; a request waits for an
 *     idle connection (a new one is opened up to `maxConnections`), and its latency counts from
 *     when it was due, so a slow server cannot hide in the client's queue.
 *
 *   node --import tsx test/faults/http-flood.ts CONFIG.json  → one JSON line (FloodResult)
 *
 * A request unanswered after `timeoutMs` is counted as hung and its connection closed.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { hotp } from '../../src/otp/hotp.ts';

export interface FloodConfig {
  port: number;
  tokens: { serial: string; seedHex: string; pin: string; counter: number }[];
  mode: 'closed' | 'open';
  /** closed loop: connections */
  concurrency?: number;
  /** open loop: requests a second */
  rate?: number;
  durationMs: number;
  timeoutMs: number;
  /** open loop: most connections at once. @default 4000 */
  maxConnections?: number;
  /**
   * open loop: connections opened (and each checked with a GET /healthz) before the load
   * starts, like a client's keep-alive pool; more are opened when all are busy. @default 0
   */
  preconnect?: number;
}

export interface LatencyFigures { count: number; p50: number; p99: number; max: number }

export interface FloodResult {
  sent: number;
  elapsedMs: number;
  /** answers a second while the load ran (closed loop: the capacity) */
  answeredPerSecond: number;
  /** HTTP 200, `value` true / false */
  ok: LatencyFigures & { accepted: number; refused: number };
  /** HTTP 503 */
  shed: LatencyFigures & { withRetryAfter: number; withErr2009: number };
  /** neither 200 nor 503, or a body that is no envelope: status and the start of the body */
  other: { count: number; samples: string[] };
  /** answers carrying a stack trace or a source path */
  stacks: number;
  /** no answer within timeoutMs */
  hung: number;
  /** connection errors (reset, refused) */
  errors: { count: number; samples: string[] };
  /** per second of the run (by due time): requests due, 200s, 503s, p99 of the 200s */
  perSecond: { sent: number; ok: number; shed: number; okP99: number }[];
  /** the next unused counter of each token */
  counters: Record<string, number>;
  /** connections open at most at once */
  peakConnections: number;
  /** the generator's own CPU time over the run, as a share of one core */
  cpuShare: number;
  /** p99 of how late the pacer sent a request due (ms): the generator keeping up */
  pacerLagP99: number;
  /** how long new connections took to connect (ms), and how long answers took from the write */
  connectMs: LatencyFigures;
  fromWriteMs: LatencyFigures;
}

const STACK = /\bat [\w$.<>]+ \(|node:internal|\.ts:\d+/;

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FloodConfig;
const tokens = config.tokens.map((t) => ({ ...t, seed: Buffer.from(t.seedHex, 'hex') }));
const head = `POST /validate/check HTTP/1.1\r\nHost: 127.0.0.1:${config.port}\r\nContent-Type: application/x-www-form-urlencoded\r\n`;
let n = 0;
function nextRequest(): Buffer {
  const t = tokens[n++ % tokens.length]!;
  const body = `serial=${encodeURIComponent(t.serial)}&pass=${encodeURIComponent(t.pin + hotp(t.seed, t.counter++))}`;
  return Buffer.from(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

interface Pending { dueAt: number; second: number }
interface Conn { socket: net.Socket; buf: Buffer; busy?: Pending; sentAt: number; ready: boolean; openedAt: number }

const okMs: number[] = [];
const shedMs: number[] = [];
let accepted = 0;
let refused = 0;
let withRetryAfter = 0;
let withErr2009 = 0;
let stacks = 0;
let hung = 0;
const other = { count: 0, samples: [] as string[] };
const errors = { count: 0, samples: [] as string[] };
const perSecond: { sent: number; ok: number; shed: number; okMs: number[] }[] = [];
const pacerLag: number[] = [];
const connectMs: number[] = [];
const fromWriteMs: number[] = [];
const conns = new Set<Conn>();
const idle: Conn[] = [];
const backlog: Pending[] = [];
let peakConnections = 0;
let running = true;
let outstanding = 0;
let sent = 0;
const pool = await preconnect(config.preconnect ?? 0);
const started = performance.now();
const cpuStart = process.cpuUsage();

/** Keep-alive connections, each accepted by the server (a /healthz answered on it), 50 at a time. */
async function preconnect(count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i += 50) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: config.port, noDelay: true });
      socket.once('error', reject);
      let text = '';
      socket.on('data', function onHealth(d) {
        text += d.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        if (end >= 0 && text.length >= end + 4 + length) {
          socket.off('data', onHealth);
          socket.off('error', reject);
          resolve(socket);
        }
      });
      socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${config.port}\r\n\r\n`);
    }))));
  }
  return sockets;
}

function bucket(second: number) {
  while (perSecond.length <= second) perSecond.push({ sent: 0, ok: 0, shed: 0, okMs: [] });
  return perSecond[second]!;
}

function finish(conn: Conn, status: number, headers: string, body: string): void {
  const p = conn.busy!;
  conn.busy = undefined;
  outstanding--;
  const now = performance.now();
  const ms = now - p.dueAt;
  fromWriteMs.push(now - conn.sentAt);
  const b = bucket(p.second);
  if (STACK.test(body)) stacks++;
  let envelope: any;
  try {
    envelope = JSON.parse(body);
  } catch {
    envelope = undefined;
  }
  if (status === 200 && typeof envelope?.result?.value === 'boolean') {
    okMs.push(ms);
    b.ok++;
    b.okMs.push(ms);
    if (envelope.result.value) accepted++;
    else refused++;
  } else if (status === 503) {
    shedMs.push(ms);
    b.shed++;
    if (/\r\nretry-after: *1\r\n/i.test(headers)) withRetryAfter++;
    if (envelope?.result?.status === false && envelope.result.error?.code === 2009) withErr2009++;
  } else {
    other.count++;
    if (other.samples.length < 5) other.samples.push(`${status} ${body.slice(0, 200)}`);
  }
  if (/\r\nconnection: *close\r\n/i.test(headers)) drop(conn);
  else release(conn);
}

function onData(conn: Conn, chunk: Buffer): void {
  conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
  for (;;) {
    const end = conn.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const headers = conn.buf.subarray(0, end + 2).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
    if (conn.buf.length < end + 4 + length) return;
    const body = conn.buf.subarray(end + 4, end + 4 + length).toString('utf8');
    conn.buf = conn.buf.subarray(end + 4 + length);
    if (!conn.busy) {
      // an answer nobody asked for: the server is talking out of turn
      other.count++;
      if (other.samples.length < 5) other.samples.push(`unsolicited ${headers.slice(0, 100)}`);
      continue;
    }
    finish(conn, Number(headers.slice(9, 12)), headers, body);
  }
}

function drop(conn: Conn, why?: string): void {
  if (!conns.delete(conn)) return;
  const i = idle.indexOf(conn);
  if (i >= 0) idle.splice(i, 1);
  conn.socket.destroy();
  if (conn.busy && why) {
    outstanding--;
    errors.count++;
    if (errors.samples.length < 5) errors.samples.push(why);
    conn.busy = undefined;
  }
  if (running) pump();
}

function open(existing?: net.Socket): Conn {
  const socket = existing ?? net.connect({ host: '127.0.0.1', port: config.port, noDelay: true });
  const conn: Conn = { socket, buf: Buffer.alloc(0), sentAt: 0, ready: existing !== undefined, openedAt: performance.now() };
  conns.add(conn);
  peakConnections = Math.max(peakConnections, conns.size);
  socket.on('connect', () => {
    conn.ready = true;
    connectMs.push(performance.now() - conn.openedAt);
    release(conn);
  });
  if (existing) idle.push(conn);
  socket.on('data', (d) => onData(conn, d));
  socket.on('error', (e) => drop(conn, e.message));
  socket.on('close', () => drop(conn, conn.busy ? 'closed by the server' : undefined));
  return conn;
}

function send(conn: Conn, p: Pending): void {
  conn.busy = p;
  conn.sentAt = performance.now();
  conn.socket.write(nextRequest());
}

/** An idle connection: the next waiting request goes out on it (closed loop: a new request). */
function release(conn: Conn): void {
  if (config.mode === 'closed') {
    if (!running) return;
    const now = performance.now();
    const second = Math.floor((now - started) / 1000);
    bucket(second).sent++;
    outstanding++;
    sent++;
    send(conn, { dueAt: now, second });
    return;
  }
  const p = backlog.shift();
  if (p) send(conn, p);
  else idle.push(conn);
}

function pump(): void {
  while (backlog.length && idle.length) send(idle.pop()!, backlog.shift()!);
  // connections still connecting will take from the backlog; open more only for what they cannot
  let connecting = 0;
  for (const c of conns) if (!c.ready) connecting++;
  while (backlog.length > connecting && conns.size < (config.maxConnections ?? 4000)) {
    open();
    connecting++;
  }
}

const sweeper = setInterval(() => {
  const now = performance.now();
  for (const c of conns) {
    if (c.busy && now - c.busy.dueAt > config.timeoutMs) {
      hung++;
      outstanding--;
      c.busy = undefined;
      drop(c);
    }
  }
  // a request still waiting for a connection after the timeout has no answer either
  while (backlog.length && now - backlog[0]!.dueAt > config.timeoutMs) {
    backlog.shift();
    hung++;
    outstanding--;
  }
}, 100);

if (config.mode === 'closed') {
  for (let k = 0; k < (config.concurrency ?? 16); k++) open();
} else {
  for (const socket of pool) open(socket);
  const rate = config.rate!;
  const pacer = setInterval(() => {
    const now = performance.now();
    const elapsed = now - started;
    if (elapsed >= config.durationMs) {
      clearInterval(pacer);
      return;
    }
    const due = Math.floor((elapsed / 1000) * rate);
    for (; sent < due; sent++) {
      const dueAt = started + (sent / rate) * 1000;
      pacerLag.push(now - dueAt);
      const second = Math.floor((dueAt - started) / 1000);
      bucket(second).sent++;
      outstanding++;
      backlog.push({ dueAt, second });
    }
    pump();
  }, 1);
}

await new Promise((r) => setTimeout(r, config.durationMs));
running = false;
const loadMs = performance.now() - started;
const answeredInLoad = okMs.length + shedMs.length + other.count;
// what is in flight gets its answer or times out
const drainUntil = performance.now() + config.timeoutMs + 500;
while (outstanding > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
clearInterval(sweeper);
const cpu = process.cpuUsage(cpuStart);
for (const c of [...conns]) drop(c);

const figures = (xs: number[]): LatencyFigures => {
  const s = xs.slice().sort((a, b) => a - b);
  const at = (p: number) => Math.round(s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0);
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: Math.round(s.at(-1) ?? 0) };
};
const result: FloodResult = {
  sent,
  elapsedMs: Math.round(loadMs),
  answeredPerSecond: Math.round(answeredInLoad / (loadMs / 1000)),
  ok: { ...figures(okMs), accepted, refused },
  shed: { ...figures(shedMs), withRetryAfter, withErr2009 },
  other,
  stacks,
  hung,
  errors,
  perSecond: perSecond.map((b) => ({ sent: b.sent, ok: b.ok, shed: b.shed, okP99: figures(b.okMs).p99 })),
  counters: Object.fromEntries(tokens.map((t) => [t.serial, t.counter])),
  peakConnections,
  cpuShare: Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - started)) * 100) / 100,
  pacerLagP99: figures(pacerLag).p99,
  connectMs: figures(connectMs),
  fromWriteMs: figures(fromWriteMs),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
