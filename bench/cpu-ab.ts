/**
 * CPU time per request of two builds of otpd, interleaved, for before/after figures of one
 * change on a machine that other work loads (where req/s moves with the neighbours):
 *
 *   npm run build && node --import tsx bench/cpu-ab.ts BASE_ROOT [ROUNDS] [REQUESTS] [CASES]
 *
 * BASE_ROOT holds the other build's dist/ (e.g. a copy of dist/ made before the change, with
 * web/, docs/, node_modules and package.json beside it or linked). Both nodes get a copy of one
 * seeded data directory (bench/seed.ts, 10,000 users) and run pinned to core 0, the load (this
 * process, 50 keep-alive clients) on core 1. Each round sends REQUESTS requests of each case
 * (success: HOTP PIN+OTP; fail: wrong OTP; locked: locked token / over-limit user; trigger: a PIN
 * alone, an SMS or e-mail code sent through the gateway and relay of bench/providers.ts) to A, then
 * to B (the order alternates between rounds), and reads each node's CPU time over the slice
 * from /proc/PID/task/* /schedstat (nanoseconds, every thread). Prints each round and the
 * median ms per request of each build with B/A. AB_PROFILE=DIR runs B under `node --cpu-prof`
 * (its CPU figures then include the profiler's cost). AB_NODE_ARGS_A / AB_NODE_ARGS_B add node or V8
 * flags to one side (the same build on both sides then compares the flags). AB_SEED_DIR keeps the seeded directory between
 * runs. Figures, not a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { hotp } from '../src/otp/hotp.ts';
import { ACCOUNT_LOCKED, EMAIL, HOTP_LOCKED, HOTP_OK, PIN, SMS, indices, login, seedOf, serialOf } from './layout.ts';
import { startGateway, startSmtpSink } from './providers.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const [baseArg, roundsArg, requestsArg, casesArg] = process.argv.slice(2);
if (!baseArg) throw new Error('usage: cpu-ab.ts BASE_ROOT [ROUNDS] [REQUESTS] [CASES]');
const BASE = resolve(baseArg);
const ROUNDS = Number(roundsArg ?? 6);
const REQUESTS = Number(requestsArg ?? 1500);
const CASES = (casesArg ?? 'success,fail,locked').split(',');
const CONNECTIONS = 50;
const pinned = availableParallelism() >= 2;

const work = mkdtempSync(join(tmpdir(), 'otpd-ab-'));
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function run(cmd: string, argv: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  return new Promise((res, rej) => child.once('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}`)))));
}

class Node {
  db!: Database.Database;
  private constructor(readonly name: string, readonly child: ChildProcess, readonly url: string, readonly dir: string) {}

  static async start(name: string, root: string, dir: string): Promise<Node> {
    const profile = name === 'B' && process.env.AB_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.AB_PROFILE}`] : [];
    // AB_NODE_ARGS_A / AB_NODE_ARGS_B: node or V8 flags for one side (e.g. a GC setting against the default)
    const flags = (process.env[`AB_NODE_ARGS_${name}`] ?? '').split(' ').filter(Boolean);
    const argv = [...flags, ...profile, join(HERE, 'otpd-node.mjs')];
    const env = {
      ...process.env, BENCH_DIST: join(root, 'dist'), BENCH_DIR: dir, OTPD_DATA_DIR: dir, OTPD_PORT: '0', OTPD_LOG_LEVEL: 'warn',
      OTPD_NODE_NAME: name, OTPD_CONFIG: join(dir, 'otpd.json'),
    };
    const child = pinned
      ? spawn('taskset', ['-c', '0', process.execPath, ...argv], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      : spawn(process.execPath, argv, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    const url = await new Promise<string>((res, rej) => {
      child.once('exit', (code) => rej(new Error(`${name} exited ${code}`)));
      child.on('message', (m: { kind: string; url?: string }) => m.kind === 'ready' && res(m.url!));
    });
    const node = new Node(name, child, url, dir);
    node.db = new Database(join(dir, 'otpd.sqlite'), { readonly: true });
    return node;
  }

  /** CPU nanoseconds of every thread of the process so far. */
  cpuNs(): number {
    let ns = 0;
    for (const t of readdirSync(`/proc/${this.child.pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${this.child.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return ns;
  }

  idle(): Promise<void> {
    return new Promise((res) => {
      const on = (m: { kind: string }) => {
        if (m.kind !== 'idle') return;
        this.child.off('message', on);
        res();
      };
      this.child.on('message', on);
      this.child.send({ kind: 'idle' });
    });
  }

  counter(serial: string): number {
    return (this.db.prepare('select counter from tokens where serial = ?').get(serial) as { counter: number }).counter;
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });

function post(url: string, body: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = http.request(`${url}/validate/check`, {
      method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (text += d));
      r.on('end', () => res(text));
    });
    req.once('error', rej);
    req.end(body);
  });
}

/** Sends the bodies with CONNECTIONS requests in flight; returns how many were answered value true. */
async function load(url: string, bodies: string[]): Promise<number> {
  let next = 0;
  let accepted = 0;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (next < bodies.length) {
      const text = await post(url, bodies[next++]);
      if (text.includes('"value": true')) accepted++;
    }
  }));
  return accepted;
}

const form = (user: string, pass: string) => `user=${user}&realm=bench&pass=${pass}`;
const okIds = indices(HOTP_OK);
let successAt = 0;
let failAt = 0;
let triggerAt = 0;

function bodiesFor(kind: string, node: Node, offset: number, count = REQUESTS): string[] {
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    if (kind === 'success') {
      const i = okIds[(offset + k) % okIds.length];
      const serial = serialOf(HOTP_OK, i);
      out.push(form(login(HOTP_OK, i), `${PIN}${hotp(seedOf(serial), node.counter(serial))}`));
    } else if (kind === 'fail') {
      const i = okIds[(offset + k) % okIds.length];
      const serial = serialOf(HOTP_OK, i);
      const c = node.counter(serial);
      const window = new Set(Array.from({ length: 12 }, (_, n) => hotp(seedOf(serial), c + n)));
      out.push(form(login(HOTP_OK, i), `${PIN}${window.has('000000') ? '000001' : '000000'}`));
    } else if (kind === 'trigger') {
      const r = k % 2 ? EMAIL : SMS;
      out.push(form(login(r, r.from + ((offset + k) >> 1) % (r.to - r.from)), PIN));
    } else {
      const r = k % 2 ? HOTP_LOCKED : ACCOUNT_LOCKED;
      out.push(form(login(r, r.from + ((k >> 1) % (r.to - r.from))), `${PIN}000000`));
    }
  }
  return out;
}

console.error(`cpu-ab: A = ${BASE}, B = ${ROOT}; ${ROUNDS} rounds of ${REQUESTS} requests a case (${CASES.join(', ')}), ${CONNECTIONS} clients`);
// AB_SEED_DIR: a seeded directory kept between runs (seeding takes 15-30 s); made when missing
const seedDir = process.env.AB_SEED_DIR ?? join(work, 'seed');
// the providers of the trigger case, on fixed ports so that a kept seed directory finds them again
const [gateway, relay] = await Promise.all([startGateway(19111), startSmtpSink(19112)]);
if (!existsSync(join(seedDir, 'otpd.sqlite'))) await run(process.execPath, ['--import', 'tsx', join(HERE, 'seed.ts')], {
  BENCH_DIR: seedDir, BENCH_PLAN: JSON.stringify({ hotp: HOTP_OK.to, full: true, smsUrl: gateway.url, smtpPort: relay.port }),
});
for (const n of ['a', 'b']) {
  cpSync(seedDir, join(work, n), { recursive: true });
  writeFileSync(join(work, n, 'otpd.json'), '{}');
}
const a = await Node.start('A', BASE, join(work, 'a'));
const b = await Node.start('B', ROOT, join(work, 'b'));
// warm-up: JIT, statement cache, and every user once (user cache, account rows)
for (const node of [a, b]) for (const kind of CASES) await load(node.url, bodiesFor(kind, node, 0, kind === 'locked' || kind === 'trigger' ? REQUESTS : okIds.length));

const per: Record<string, { A: number[]; B: number[] }> = Object.fromEntries(CASES.map((c) => [c, { A: [], B: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  const line: string[] = [];
  for (const kind of CASES) {
    const offset = kind === 'success' ? successAt : kind === 'trigger' ? triggerAt : failAt;
    for (const node of r % 2 ? [b, a] : [a, b]) {
      const bodies = bodiesFor(kind, node, offset);
      await node.idle();
      const before = node.cpuNs();
      const accepted = await load(node.url, bodies);
      await node.idle();
      const ms = (node.cpuNs() - before) / 1e6 / REQUESTS;
      if (kind === 'success' && accepted !== REQUESTS) console.error(`  ${node.name}: ${REQUESTS - accepted} successes refused`);
      per[kind][node.name as 'A' | 'B'].push(ms);
    }
    if (kind === 'success') successAt += REQUESTS;
    if (kind === 'fail') failAt += REQUESTS;
    if (kind === 'trigger') triggerAt += REQUESTS;
    line.push(`${kind} A ${per[kind].A.at(-1)!.toFixed(3)} B ${per[kind].B.at(-1)!.toFixed(3)}`);
  }
  console.error(`  round ${r + 1}: ${line.join(' | ')} (ms CPU a request)`);
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];
const summary = Object.fromEntries(CASES.map((c) => {
  const A = median(per[c].A);
  const B = median(per[c].B);
  return [c, { A_ms: Math.round(A * 1000) / 1000, B_ms: Math.round(B * 1000) / 1000, B_over_A: Math.round((B / A) * 1000) / 1000 }];
}));
for (const [c, s] of Object.entries(summary)) console.error(`${c}: A ${s.A_ms} ms, B ${s.B_ms} ms, B/A ${s.B_over_A}`);
console.log(JSON.stringify(summary));
// a clean stop, so that --cpu-prof writes its file (at most 20 s)
await Promise.race([
  Promise.all([a, b].map((node) => new Promise((r) => {
    node.child.once('exit', r);
    node.child.send({ kind: 'stop' });
  }))),
  new Promise((r) => setTimeout(r, 20_000)),
]);
gateway.close();
relay.close();
process.exit(0);
