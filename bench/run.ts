/**
 * `npm run bench [-- --quick] [-- --only=success,totp,fail,locked,trigger,ldap,radius,pg,twonode,mariadb]
 * [-- --profile[=DIR]]`: otpd measured from outside, against baselines measured in the same run (issue 15).
 *
 * Every figure comes from separate processes: otpd nodes (bench/otpd-node.mjs, the compiled dist/), the Fastify
 * hello-world (H, bench/hello.ts), the commit baseline (F, bench/fsync.ts), the HTTP load
 * (Debian's wrk with bench/bodies.lua; paced runs with the open loop of bench/paced.ts) and the
 * RADIUS load (bench/radius-load.ts). With two or more cores, servers run on core 0 and load
 * generators on core 1 (taskset). Per case: throughput, p50/p99/max latency, errors, the
 * server's peak RSS (VmHWM, reset per case through /proc/PID/clear_refs), its event-loop delay
 * p99, and the ratio to H. After each database's cases: every OTP the clients saw accepted is a
 * counter advance in the database (and no more advances than requests left unanswered).
 * The last line of output is one JSON object with every figure. --profile runs the SQLite node
 * under `node --cpu-prof` (profiles in DIR, default $TMPDIR/otpd-bench-profiles).
 * BENCH_NODE_ARGS="--flag ..." adds node or V8 flags to the otpd nodes (not H), to measure a flag's effect
 * on the same figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { hotp, totpStep } from '../src/otp/hotp.ts';
import { openDatabase, type Db } from '../src/store/db.ts';
import {
  ACCOUNT_LOCKED, CHAL, EMAIL, HOTP_LOCKED, HOTP_OK, LDAP, PIN, RADIUS_SECRET, SMS, TOTP,
  indices, login, seedOf, serialOf, type Range, type SeedPlan,
} from './layout.ts';
import { startBenchSlapd } from './slapd.ts';
import { startGateway, startSmtpSink } from './providers.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const profileArg = args.find((a) => a === '--profile' || a.startsWith('--profile='));
const profileDir = profileArg?.includes('=') ? profileArg.slice('--profile='.length) : join(tmpdir(), 'otpd-bench-profiles');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const want = (name: string) => !only || only.includes(name);
const SECONDS = quick ? 3 : 10;
const WARM = quick ? 1 : 3;
const CONNECTIONS = 50;
const DB_CONNECTIONS = 16;
const RADIUS_PORT = 19101;
const SLAPD_PORT = 19102;
const PG_ADMIN = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MYSQL_ADMIN = process.env.BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
const pinned = availableParallelism() >= 2;
const SERVER_CORE = '0';
const LOAD_CORE = '1';

const work = mkdtempSync(join(tmpdir(), 'otpd-bench-'));
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------- processes

function command(core: string, cmd: string, argv: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', core, cmd, ...argv]] : [cmd, argv];
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs a load generator (or F) to its end and returns its stdout. */
function runToEnd(core: string, cmd: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  const [c, a] = command(core, cmd, argv);
  const child = track(spawn(c, a, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

const tsNode = (script: string, extra: string[] = []) => ['--import', 'tsx', ...extra, join(HERE, script)];
/** A bench script in plain JavaScript (.mjs) runs without the TypeScript loader. */
const nodeArgv = (script: string, extra: string[] = []) => (script.endsWith('.mjs') ? [...extra, join(HERE, script)] : tsNode(script, extra));

/** A server child (otpd node or hello-world) that reports over IPC. */
class Server {
  constructor(readonly child: ChildProcess, readonly url: string, readonly name: string) {}

  static async start(name: string, script: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Server> {
    // BENCH_NODE_ARGS: node or V8 flags for the otpd nodes (not hello-world), to measure a flag's effect
    const extra = name === 'otpd' ? (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) : [];
    const [c, a] = command(SERVER_CORE, process.execPath, nodeArgv(script, [...extra, ...nodeArgs]));
    const child = track(spawn(c, a, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${name} exited ${code} before it was ready`)));
      child.on('message', (m: { kind: string; url?: string }) => m.kind === 'ready' && resolve(m.url!));
    });
    return new Server(child, url, name);
  }

  get pid(): number {
    // taskset execs node in place: the child's pid is the server's
    return this.child.pid!;
  }

  private ask<T>(kind: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { kind: string }) => {
        if (m.kind !== kind) return;
        this.child.off('message', on);
        resolve(m as T);
      };
      this.child.on('message', on);
      this.child.send({ kind });
    });
  }

  /** Resets the peak RSS and the event-loop histogram before a case. */
  async reset(): Promise<void> {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
    } catch {
      // not permitted: VmHWM is then the peak since start
    }
    if (this.name !== 'hello') await this.ask('reset');
  }

  /** CPU seconds (user + system) the server process used so far, from /proc/PID/stat. */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  peakRssMb(): number {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  }

  async loopDelayP99(): Promise<number | undefined> {
    if (this.name === 'hello') return undefined;
    return (await this.ask<{ p99Ms: number }>('delay')).p99Ms;
  }

  /** Resolves when the node has no HTTP request in flight and its audit rows are written. */
  async idle(): Promise<void> {
    if (this.name !== 'hello') await this.ask('idle');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ kind: 'stop' });
    await exited;
  }
}

// ---------------------------------------------------------------- load

interface Load {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  accepted: number;
  rejected: number;
  /** non-200 answers, socket errors, timeouts */
  errors: number;
  /** requests sent whose answer the client did not see (in flight at the end, timed out) */
  unanswered: number;
  exhausted: boolean;
  /**
   * Requests the server answered over the whole run, including those answered after the load's
   * window (the denominator of CPU a request: the server's CPU counts them too).
   */
  served: number;
  /** How long the generator sent load (s): the denominator of the busy share, not the child's whole life. */
  seconds: number;
}

interface LoadJson { responses: number; duration_us: number; p50_us: number; p99_us: number; max_us: number; accepted: number; rejected: number; non200: number; errors: number; sent: number; bodies: number; served?: number }

function toLoad(j: LoadJson): Load {
  return {
    rps: j.responses / (j.duration_us / 1e6), p50: j.p50_us / 1000, p99: j.p99_us / 1000, max: j.max_us / 1000,
    accepted: j.accepted, rejected: j.rejected, errors: j.non200 + j.errors, unanswered: Math.max(0, j.sent - j.responses),
    exhausted: j.bodies > 0 && j.sent > j.bodies,
    // wrk stops reading at its end: what it had in flight is still answered by the server
    served: j.served ?? Math.max(j.responses, j.sent), seconds: j.duration_us / 1e6,
  };
}

async function wrk(url: string, bodies: string | undefined, seconds: number, connections = CONNECTIONS, path = '/validate/check'): Promise<Load> {
  const out = await runToEnd(LOAD_CORE, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', join(HERE, 'bodies.lua'), url],
    { BENCH_PATH: path, ...(bodies ? { BENCH_BODIES: bodies } : {}) });
  const line = out.split('\n').find((l) => l.startsWith('BENCHJSON '));
  if (!line) throw new Error(`wrk printed no figures: ${out}`);
  return toLoad(JSON.parse(line.slice('BENCHJSON '.length)) as LoadJson);
}

async function paced(url: string, bodies: string, rate: number, seconds: number, connections = CONNECTIONS): Promise<Load> {
  const out = await runToEnd(LOAD_CORE, process.execPath, [...tsNode('paced.ts'), `${url}/validate/check`, bodies, String(Math.max(1, Math.round(rate))), String(seconds), String(connections)]);
  return toLoad(JSON.parse(out.trim().split('\n').at(-1)!) as LoadJson);
}

interface RadiusJson { sent: number; accept: number; reject: number; challenge: number; other: number; timeouts: number; late: number; outstanding: number; answered: number; seconds: number; rps: number; p50_ms: number; p99_ms: number; max_ms: number; noIdentifier: number }

async function radiusLoad(file: string, seconds: number, opts: { concurrency?: number; rate?: number; timeoutMs?: number }): Promise<RadiusJson> {
  const out = await runToEnd(LOAD_CORE, process.execPath, [...tsNode('radius-load.ts'), String(RADIUS_PORT), RADIUS_SECRET, file, String(seconds),
    String(opts.concurrency ?? CONNECTIONS), String(Math.round(opts.rate ?? 0)), String(opts.timeoutMs ?? 5000)]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as RadiusJson;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- bodies

let bodyFiles = 0;
function bodyFile(lines: string[]): string {
  const path = join(work, `bodies-${bodyFiles++}.txt`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function counters(db: Db, serials: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let k = 0; k < serials.length; k += 500) {
    const rows = await db.kysely.selectFrom('tokens').select(['serial', 'counter']).where('serial', 'in', serials.slice(k, k + 500)).execute();
    for (const r of rows) out.set(r.serial, Number(r.counter));
  }
  return out;
}

/** PIN+OTP for the next `rounds` counters of each HOTP user, round robin (user after user). */
async function hotpLines(db: Db, r: Range, ids: number[], rounds: number, line: (user: string, pass: string) => string): Promise<string[]> {
  const serials = ids.map((i) => serialOf(r, i));
  const current = await counters(db, serials);
  const seeds = serials.map((s) => seedOf(s));
  const out: string[] = [];
  for (let k = 0; k < rounds; k++) {
    ids.forEach((i, n) => out.push(line(login(r, i), `${PIN}${hotp(seeds[n], current.get(serials[n])! + k)}`)));
  }
  return out;
}

const form = (realm: string) => (user: string, pass: string) => `user=${user}&realm=${realm}&pass=${pass}`;
const roundsFor = (users: number, rps: number, seconds: number) => Math.max(2, Math.ceil((rps * seconds * 1.3) / users));

/** A wrong OTP for each user: 000000, or 000001 where 000000 happens to be in the token's window. */
async function wrongLines(db: Db, r: Range, ids: number[]): Promise<string[]> {
  const serials = ids.map((i) => serialOf(r, i));
  const current = await counters(db, serials);
  return ids.map((i, n) => {
    const seed = seedOf(serials[n]);
    const window = new Set(Array.from({ length: 12 }, (_, k) => hotp(seed, current.get(serials[n])! + k)));
    return form('bench')(login(r, i), `${PIN}${window.has('000000') ? '000001' : '000000'}`);
  });
}

// ---------------------------------------------------------------- cases

interface Case {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  rssMb: number;
  /** server CPU time per answered request: comparable across runs on a loaded machine */
  cpuMsPerRequest: number;
  /** share of the run the server's core was busy (1 = saturated) */
  cpuBusy: number;
  loopP99?: number;
  ratioH?: number;
  note?: string;
}

const cases: Case[] = [];
const figures: Record<string, number | boolean | string> = {};
let H = 0;

async function measure(servers: Server[], name: string, run: () => Promise<Load>, note = ''): Promise<Load> {
  for (const s of servers) await s.reset();
  const cpuBefore = servers.map((s) => s.cpuSeconds());
  const load = await run();
  const cpu = servers.reduce((sum, s, k) => sum + s.cpuSeconds() - cpuBefore[k], 0);
  const delays = (await Promise.all(servers.map((s) => s.loopDelayP99()))).filter((d): d is number => d !== undefined);
  const rssMb = Math.max(...servers.map((s) => s.peakRssMb()));
  for (const s of servers) await s.idle();
  const notes = [note];
  // a wrong OTP, a locked token or a trigger stays what it is when its body comes round again
  if (load.exhausted && /success|ldap|two nodes/.test(name)) notes.push('bodies ran out: replays at the end');
  if (load.rejected && /success|ldap|two nodes/.test(name)) notes.push(`${load.rejected} rejected`);
  cases.push({
    name, rps: load.rps, p50: load.p50, p99: load.p99, max: load.max, errors: load.errors, rssMb,
    cpuMsPerRequest: (1000 * cpu) / Math.max(1, load.served), cpuBusy: cpu / load.seconds / servers.length,
    loopP99: delays.length ? Math.max(...delays) : undefined, ratioH: H ? load.rps / H : undefined, note: notes.filter(Boolean).join('; '),
  });
  console.error(`  ${name}: ${load.rps.toFixed(0)} req/s, p99 ${load.p99.toFixed(1)} ms`);
  return load;
}

/** What the clients saw accepted on one database, against its HOTP counters (durability check). */
class Ledger {
  accepted = 0;
  unanswered = 0;
  add(l: { accepted: number; unanswered: number }): void {
    this.accepted += l.accepted;
    this.unanswered += l.unanswered;
  }

  async check(db: Db, label: string): Promise<boolean> {
    const row = await db.kysely.selectFrom('tokens').select((eb) => eb.fn.sum<number>('counter').as('n')).where('type', '=', 'hmac').executeTakeFirstOrThrow();
    const advances = Number(row.n ?? 0);
    const ok = this.accepted <= advances && advances <= this.accepted + this.unanswered;
    console.error(`  durability (${label}): ${this.accepted} OTPs accepted by clients, ${advances} counter advances in the database, ${this.unanswered} requests unanswered at the end of runs: ${ok ? 'ok' : 'MISMATCH'}`);
    figures[`${label}_accepted_otps`] = this.accepted;
    figures[`${label}_counter_advances`] = advances;
    figures[`${label}_durable`] = ok;
    return ok;
  }
}

const radiusAsLoad = (r: RadiusJson, accepted = r.accept): Load => ({
  rps: r.rps, p50: r.p50_ms, p99: r.p99_ms, max: r.max_ms, accepted, rejected: r.reject,
  errors: r.timeouts + r.other + r.noIdentifier, unanswered: r.timeouts + r.outstanding, exhausted: false,
  served: r.answered, seconds: r.seconds,
});

// ---------------------------------------------------------------- sinks

// ---------------------------------------------------------------- otpd on a database

async function seed(dir: string, plan: SeedPlan, databaseUrl?: string): Promise<void> {
  const out = await runToEnd(LOAD_CORE, process.execPath, tsNode('seed.ts'), { BENCH_DIR: dir, BENCH_PLAN: JSON.stringify(plan), ...(databaseUrl ? { OTPD_DATABASE_URL: databaseUrl } : {}) });
  const res = JSON.parse(out.trim().split('\n').at(-1)!) as { tokens: number; seconds: number };
  console.error(`  seeded ${res.tokens} tokens in ${res.seconds.toFixed(1)} s`);
}

function nodeEnv(dir: string, databaseUrl?: string, name = 'bench-1'): Record<string, string> {
  return { BENCH_DIR: dir, OTPD_DATA_DIR: dir, OTPD_PORT: '0', OTPD_LOG_LEVEL: 'warn', OTPD_NODE_NAME: name, OTPD_CONFIG: join(dir, 'otpd.json'), ...(databaseUrl ? { OTPD_DATABASE_URL: databaseUrl } : {}) };
}

async function sqliteCases(): Promise<void> {
  const dir = join(work, 'sqlite');
  const [gateway, smtp] = await Promise.all([startGateway(), startSmtpSink()]);
  const slapd = want('ldap') ? await startBenchSlapd(SLAPD_PORT) : undefined;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'otpd.json'), JSON.stringify({ radius: { port: RADIUS_PORT, clients: [{ name: 'bench', address: '127.0.0.1', secret: RADIUS_SECRET }] } }));
  console.error('otpd on SQLite: seeding 10,000 users');
  await seed(dir, { hotp: HOTP_OK.to, full: true, smsUrl: gateway.url, smtpPort: smtp.port, ldapUrl: slapd?.url });
  const node = await Server.start('otpd', 'otpd-node.mjs', nodeEnv(dir), profileArg ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  const db = await openDatabase(`sqlite:${join(dir, 'otpd.sqlite')}`);
  const ledger = new Ledger();
  const okIds = indices(HOTP_OK);
  const successBodies = async (rps: number, seconds: number) => bodyFile(await hotpLines(db, HOTP_OK, okIds, roundsFor(okIds.length, rps, seconds), form('bench')));
  try {
    // warm-up: JIT, statement cache, user cache
    ledger.add(await wrk(node.url, await successBodies(6000, WARM), WARM));
    await node.idle();
    if (want('success')) {
      const max = await measure([node], '(1) HOTP PIN+OTP success', async () => wrk(node.url, await successBodies(8000, SECONDS), SECONDS));
      ledger.add(max);
      figures.success_rps = max.rps;
      figures.success_ratio_H = max.rps / H;
      figures.success_p99_ms = max.p99;
      const half = await measure([node], '(1) HOTP success at half rate', async () => paced(node.url, await successBodies(max.rps / 2, SECONDS), max.rps / 2, SECONDS));
      ledger.add(half);
      figures.success_half_rps = half.rps;
      figures.success_half_p99_ms = half.p99;
    }
    if (want('totp')) {
      const seconds = Math.min(SECONDS, 4);
      const s = totpStep(Date.now());
      const ids = indices(TOTP);
      // warm-up: every TOTP user's first login (account row, user lookup) with the code of step
      // s-2 (inside the ±2 window), as the HOTP users had theirs; the measured run then starts at s-1
      const warm = ids.map((i) => form('bench')(login(TOTP, i), `${PIN}${hotp(seedOf(serialOf(TOTP, i)), s - 2)}`));
      await wrk(node.url, bodyFile(warm), Math.max(WARM, Math.ceil(ids.length / 1000)));
      await node.idle();
      const lines: string[] = [];
      for (let step = s - 1; step <= s + 2; step++) for (const i of ids) lines.push(form('bench')(login(TOTP, i), `${PIN}${hotp(seedOf(serialOf(TOTP, i)), step)}`));
      const t = await measure([node], '(1) TOTP PIN+OTP success', async () => wrk(node.url, bodyFile(lines), seconds));
      figures.totp_rps = t.rps;
      figures.totp_ratio_H = t.rps / H;
      figures.totp_p99_ms = t.p99;
    }
    if (want('fail')) {
      const wrong = bodyFile(await wrongLines(db, HOTP_OK, okIds));
      const f = await measure([node], '(2) wrong OTP', () => wrk(node.url, wrong, SECONDS));
      figures.fail_rps = f.rps;
      figures.fail_ratio_H = f.rps / H;
      figures.fail_p99_ms = f.p99;
      const half = await measure([node], '(2) wrong OTP at half rate', () => paced(node.url, wrong, f.rps / 2, SECONDS));
      figures.fail_half_p99_ms = half.p99;
    }
    if (want('locked')) {
      const lines = [
        ...indices(HOTP_LOCKED).map((i) => form('bench')(login(HOTP_LOCKED, i), `${PIN}000000`)),
        ...indices(ACCOUNT_LOCKED).map((i) => form('bench')(login(ACCOUNT_LOCKED, i), `${PIN}000000`)),
      ];
      const l = await measure([node], '(3) locked token / over-limit user', () => wrk(node.url, bodyFile(lines), SECONDS), 'answers held to the failure floor');
      figures.locked_rps = l.rps;
      figures.locked_ratio_H = l.rps / H;
      figures.locked_p99_ms = l.p99;
    }
    if (want('trigger')) {
      const lines: string[] = [];
      for (let k = 0; k < 1000; k++) {
        lines.push(form('bench')(login(SMS, SMS.from + k), PIN));
        lines.push(form('bench')(login(EMAIL, EMAIL.from + k), PIN));
      }
      const bodies = bodyFile(lines);
      const sentBefore = gateway.count() + smtp.count();
      const t = await measure([node], '(4) SMS/e-mail challenge trigger', () => wrk(node.url, bodies, SECONDS));
      figures.trigger_rps = t.rps;
      figures.trigger_p99_ms = t.p99;
      const rate = Number(figures.success_half_rps ?? t.rps / 2);
      const half = await measure([node], '(4) trigger at (1)\'s half rate', () => paced(node.url, bodies, Math.min(rate, t.rps * 0.8), SECONDS));
      figures.trigger_half_p99_ms = half.p99;
      if (figures.success_half_p99_ms !== undefined) figures.trigger_added_p99_ms = half.p99 - Number(figures.success_half_p99_ms);
      await sleep(1000);
      figures.trigger_messages_sent = gateway.count() + smtp.count() - sentBefore;
    }
    if (want('ldap') && slapd) {
      const ids = indices(LDAP);
      const ldapBodies = async (rps: number, seconds: number) => bodyFile(await hotpLines(db, LDAP, ids, roundsFor(ids.length, rps, seconds), form('ldap')));
      ledger.add(await wrk(node.url, await ldapBodies(6000, WARM), WARM));
      await node.idle();
      const l = await measure([node], '(7) LDAP user success (cache warm)', async () => wrk(node.url, await ldapBodies(8000, SECONDS), SECONDS));
      ledger.add(l);
      figures.ldap_rps = l.rps;
      if (figures.success_rps !== undefined) figures.ldap_ratio_local = l.rps / Number(figures.success_rps);
      figures.ldap_p99_ms = l.p99;
    }
    if (want('radius')) {
      const radiusLines = async (rps: number, seconds: number) =>
        bodyFile(await hotpLines(db, HOTP_OK, okIds, roundsFor(okIds.length, rps, seconds), (u, p) => `${u}\t${p}`));
      const warm = await radiusLoad(await radiusLines(6000, WARM), WARM, {});
      ledger.add(radiusAsLoad(warm));
      const r = await measure([node], '(5) RADIUS Access-Request success', async () => radiusAsLoad(await radiusLoad(await radiusLines(8000, SECONDS), SECONDS, {})));
      ledger.add(r);
      figures.radius_rps = r.rps;
      if (figures.success_rps !== undefined) figures.radius_ratio_http = r.rps / Number(figures.success_rps);
      figures.radius_p99_ms = r.p99;
      const half = await measure([node], '(5) RADIUS success at half rate', async () => radiusAsLoad(await radiusLoad(await radiusLines(r.rps / 2, SECONDS), SECONDS, { rate: r.rps / 2 })));
      ledger.add(half);
      figures.radius_half_p99_ms = half.p99;
      const chal = bodyFile(indices(CHAL).map((i) => `${login(CHAL, i)}@chal\t${PIN}`));
      const c = await measure([node], '(5) RADIUS Access-Challenge', async () => {
        const res = await radiusLoad(chal, SECONDS, {});
        return { ...radiusAsLoad(res, res.challenge), accepted: 0 };
      });
      figures.radius_challenge_rps = c.rps;
      figures.radius_challenge_p99_ms = c.p99;
      let overload: RadiusJson | undefined;
      await measure([node], '(5) RADIUS at 2x overload (client timeout 1 s)', async () => {
        overload = await radiusLoad(await radiusLines(r.rps * 2, SECONDS), SECONDS, { rate: r.rps * 2, timeoutMs: 1000 });
        return radiusAsLoad(overload);
      }, 'see late/dropped');
      ledger.add(radiusAsLoad(overload!));
      figures.radius_overload_sent = overload!.sent;
      figures.radius_overload_answered_in_time = overload!.answered;
      figures.radius_overload_late = overload!.late;
      figures.radius_overload_dropped = overload!.timeouts - overload!.late;
      cases.at(-1)!.note = `${overload!.sent} sent, ${overload!.answered} answered in time, ${overload!.late} answered after the client gave up, ${overload!.timeouts - overload!.late} never answered`;
      await sleep(2000);
    }
  } finally {
    await node.stop();
    await ledger.check(db, 'sqlite');
    await db.close();
    gateway.close();
    smtp.close();
    await slapd?.stop();
  }
}

async function serverDbCases(kind: 'pg' | 'mariadb'): Promise<void> {
  const name = `otpd_bench_${randomBytes(4).toString('hex')}`;
  let url: string;
  let drop: () => Promise<void>;
  if (kind === 'pg') {
    const c = new pg.Client({ connectionString: PG_ADMIN });
    await c.connect();
    await c.query(`create database ${name}`);
    await c.end();
    url = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
    drop = async () => {
      const d = new pg.Client({ connectionString: PG_ADMIN });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    };
  } else {
    const c = await mysql.createConnection(MYSQL_ADMIN);
    await c.query(`create database ${name} character set utf8mb4 collate utf8mb4_bin`);
    await c.end();
    url = `${MYSQL_ADMIN.replace(/\/$/, '')}/${name}`;
    drop = async () => {
      const d = await mysql.createConnection(MYSQL_ADMIN);
      await d.query(`drop database if exists ${name}`);
      await d.end();
    };
  }
  const label = kind === 'pg' ? 'PostgreSQL' : 'MariaDB';
  const users = 1000;
  const dir = join(work, kind);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'otpd.json'), '{}');
  try {
    console.error(`otpd on ${label}`);
    await seed(dir, { hotp: users, full: false }, url);
    const db = await openDatabase(url);
    const ledger = new Ledger();
    const ids = indices(HOTP_OK, users);
    const bodies = async (of: number[], rps: number, seconds: number) => bodyFile(await hotpLines(db, HOTP_OK, of, roundsFor(of.length, rps, seconds), form('bench')));
    const node = await Server.start('otpd', 'otpd-node.mjs', nodeEnv(dir, url), profileArg ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
    let second: Server | undefined;
    try {
      ledger.add(await wrk(node.url, await bodies(ids, 3000, WARM), WARM, DB_CONNECTIONS));
      await node.idle();
      const one = await measure([node], `(6) success on ${label}, ${DB_CONNECTIONS} clients`, async () => wrk(node.url, await bodies(ids, 4000, SECONDS), SECONDS, DB_CONNECTIONS));
      ledger.add(one);
      figures[`${kind}_rps`] = one.rps;
      figures[`${kind}_ratio_H`] = one.rps / H;
      figures[`${kind}_p99_ms`] = one.p99;
      if (kind === 'pg' && want('twonode')) {
        second = await Server.start('otpd', 'otpd-node.mjs', nodeEnv(dir, url, 'bench-2'));
        const a = ids.filter((i) => i % 2 === 0);
        const b = ids.filter((i) => i % 2 === 1);
        ledger.add(await wrk(second.url, await bodies(b, 3000, WARM), WARM, DB_CONNECTIONS));
        await second.idle();
        const [fa, fb] = [await bodies(a, 4000, SECONDS), await bodies(b, 4000, SECONDS)];
        let both: Load[] = [];
        const two = await measure([node, second], `(8) two nodes on PostgreSQL, ${DB_CONNECTIONS} clients each`, async () => {
          both = await Promise.all([wrk(node.url, fa, SECONDS, DB_CONNECTIONS), wrk(second!.url, fb, SECONDS, DB_CONNECTIONS)]);
          return {
            ...both[0], rps: both[0].rps + both[1].rps, p50: Math.max(both[0].p50, both[1].p50), p99: Math.max(both[0].p99, both[1].p99),
            max: Math.max(both[0].max, both[1].max), accepted: both[0].accepted + both[1].accepted, rejected: both[0].rejected + both[1].rejected,
            errors: both[0].errors + both[1].errors, unanswered: both[0].unanswered + both[1].unanswered, exhausted: both[0].exhausted || both[1].exhausted,
            served: both[0].served + both[1].served, seconds: Math.max(both[0].seconds, both[1].seconds),
          };
        }, 'both nodes on the server core');
        ledger.add(two);
        figures.pg_two_nodes_rps = two.rps;
        figures.pg_two_nodes_ratio = two.rps / one.rps;
      }
    } finally {
      await node.stop();
      await second?.stop();
      await ledger.check(db, kind);
      await db.close();
    }
  } finally {
    await drop();
  }
}

// ---------------------------------------------------------------- main

function table(): string {
  const head = ['case', 'req/s', 'xH', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'RSS MB', 'loop p99 ms', 'CPU ms/req', 'busy', 'note'];
  const rows = cases.map((c) => [c.name, c.rps.toFixed(0), c.ratioH?.toFixed(3) ?? '', c.p50.toFixed(1), c.p99.toFixed(1), c.max.toFixed(1),
    String(c.errors), c.rssMb ? c.rssMb.toFixed(0) : '', c.loopP99?.toFixed(1) ?? '', c.cpuMsPerRequest.toFixed(3), c.cpuBusy.toFixed(2), c.note ?? '']);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const fmt = (r: string[]) => `| ${r.map((v, k) => (k === 0 || k === r.length - 1 ? v.padEnd(widths[k]) : v.padStart(widths[k]))).join(' | ')} |`;
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(fmt)].join('\n');
}

const started = Date.now();
console.error(`bench: ${quick ? 'quick, ' : ''}${SECONDS} s a case, ${CONNECTIONS} connections (${DB_CONNECTIONS} on PostgreSQL/MariaDB); ${pinned ? `servers on core ${SERVER_CORE}, load on core ${LOAD_CORE}` : 'one core: not pinned'}; ${cpus()[0]?.model ?? ''} x${availableParallelism()}, node ${process.version}`);

const fOut = await runToEnd(SERVER_CORE, process.execPath, [...tsNode('fsync.ts'), work, quick ? '1' : '2']);
const f = JSON.parse(fOut.trim()) as { single_commits_per_s: number; rows_per_s_at_50: number };
figures.F = f.single_commits_per_s;
figures.F_rows_per_s_at_50 = f.rows_per_s_at_50;
console.error(`  F: ${f.single_commits_per_s} durable single-row commits/s, ${f.rows_per_s_at_50} rows/s at 50 rows a commit`);

const hello = await Server.start('hello', 'hello.ts', {});
await wrk(hello.url, undefined, WARM, CONNECTIONS, '/');
const h = await measure([hello], 'H: Fastify hello-world', () => wrk(hello.url, undefined, SECONDS, CONNECTIONS, '/'));
await hello.stop();
H = h.rps;
figures.H = H;
cases[0].ratioH = 1;

let durable = true;
const sqliteWanted = ['success', 'totp', 'fail', 'locked', 'trigger', 'ldap', 'radius'].some(want);
/** A group of cases that fails (a database down) is reported, and the others still run. */
async function group(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    console.error(`  ${name} failed: ${(e as Error).message.split('\n')[0]}`);
    figures[`${name}_error`] = (e as Error).message.split('\n')[0];
    durable = false;
  }
}
if (sqliteWanted) await group('sqlite', sqliteCases);
if (want('pg') || want('twonode')) await group('pg', () => serverDbCases('pg'));
if (want('mariadb')) await group('mariadb', () => serverDbCases('mariadb'));
for (const [k, v] of Object.entries(figures)) if (k.endsWith('_durable') && v === false) durable = false;
figures.durable = durable;
figures.rss_mb = Math.max(...cases.filter((c) => !c.name.startsWith('H')).map((c) => c.rssMb), 0);
figures.seconds_per_case = SECONDS;
figures.total_seconds = (Date.now() - started) / 1000;

console.log(table());
const round = (v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v);
const rounded = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v)]));
const perCase = cases.map((c) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, round(v)])));
console.log(JSON.stringify({ ...rounded, cases: perCase }));
if (!durable) process.exitCode = 1;
