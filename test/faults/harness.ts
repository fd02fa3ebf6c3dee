/**
 * The fault suite's harness: a real `otpd serve` child process (HTTP and the built-in RADIUS
 * server on loopback) set up in-process first (admin API key, a passwd user store, HOTP tokens,
 * e-mail tokens for triggers, an SMTP provider), and a small load generator that sends mixed
 * traffic (valid OTPs, wrong OTPs, challenge triggers, RADIUS) and records every answer, so a
 * test can break something mid-run and then check the answers and the database.
 *
 *   const node = await OtpdNode.create({ dir, databaseUrl, smtpPort });
 *   await node.start();
 *   const load = new Load(node);
 *   const report = await load.run({ durationMs: 20_000, concurrency: 6, at: { 5000: fault } });
 *   assertCleanAnswers(report, { maxMs: 6000 });
 *   await assertNoAcknowledgedSuccessLost(node, report);
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import radius from 'radius';
import { buildApp } from '../../src/api/app.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { createServices } from '../../src/services.ts';
import { openDatabase, type Db } from '../../src/store/db.ts';
import { waitFor } from '../helpers/wait.ts';

const BIN = join(import.meta.dirname, '../../bin/otpd.mjs');
export const RADIUS_SECRET = 'faults-radius-secret';
export const PIN = 'pw';
export const TRIGGER_PIN = '4711';

/** A free TCP port on 127.0.0.1 (also used for UDP: the suite binds both on loopback only). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const seedOf = (i: number) => Buffer.from(`faults-seed-${String(i).padStart(8, '0')}`);

export interface NodeOptions {
  /** The folder for otpd.json, users.passwd and (SQLite) data/. */
  dir: string;
  /** @default sqlite:<dir>/data/otpd.sqlite */
  databaseUrl?: string;
  /** The SMTP server the e-mail provider sends to; no e-mail tokens without it. */
  smtpPort?: number;
  /** HOTP tokens for valid OTPs (serial OK<i>, PIN `pw`). @default 8 */
  tokens?: number;
  /** Users with an e-mail token (PIN 4711) for triggers. @default 4 */
  triggerUsers?: number;
  /** Extra OTPD_* environment of the serve process. */
  env?: Record<string, string>;
  /** Runtime config (/system/setConfig) written at set-up. */
  config?: Record<string, string>;
  /** The LDAP resolver to use instead of the passwd file (its setResolver form). */
  ldapResolver?: Record<string, string>;
  /** With `ldapResolver`: token OK<i> belongs to owners[i % n] (else the LDAP store's tokens have no owner). */
  owners?: string[];
}

/** One otpd node: set up once, then started (and killed, restarted) as a child process. */
export class OtpdNode {
  port = 0;
  radiusPort = 0;
  apiKey = '';
  child: ChildProcess | undefined;
  /** Everything the process wrote to stdout/stderr, over all its starts. */
  log = '';
  readonly tokenCount: number;
  readonly triggerUsers: number;

  private constructor(readonly opts: NodeOptions, readonly env: Record<string, string>) {
    this.tokenCount = opts.tokens ?? 8;
    this.triggerUsers = opts.smtpPort ? opts.triggerUsers ?? 4 : 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async create(opts: NodeOptions): Promise<OtpdNode> {
    const dir = opts.dir;
    const env: Record<string, string> = {
      OTPD_CONFIG: join(dir, 'otpd.json'),
      OTPD_DATA_DIR: join(dir, 'data'),
      OTPD_LOG_LEVEL: 'warn',
      OTPD_LOG_FORMAT: 'json',
      OTPD_DEMO: '0',
      ...(opts.databaseUrl ? { OTPD_DATABASE_URL: opts.databaseUrl } : {}),
      ...opts.env,
    };
    const node = new OtpdNode(opts, env);
    node.port = await freePort();
    node.radiusPort = await freePort();
    writeFileSync(join(dir, 'otpd.json'), JSON.stringify({
      radius: { port: node.radiusPort, clients: [{ name: 'faults', address: '127.0.0.1', secret: RADIUS_SECRET, realm: 'faults' }] },
    }));
    // u<i> owns OK<i> (valid OTPs), w<i> owns BAD<i> (wrong OTPs), m<i> owns MAIL<i> (triggers)
    const users = ['u', 'w', 'm'].flatMap((p, k) => Array.from({ length: Math.max(node.tokenCount, node.triggerUsers) }, (_, i) =>
      `${p}${i}:x:${2000 + 1000 * k + i}:${2000 + i}:User ${p}${i},,,,${p}${i}@example.org:/:/bin/sh`));
    writeFileSync(join(dir, 'users.passwd'), users.join('\n') + '\n');
    await node.setUp();
    return node;
  }

  /** Admin, API key, user store, realm, provider, tokens: in-process, before the first start. */
  private async setUp(): Promise<void> {
    const settings = loadSettings({ ...this.env, OTPD_LOG_LEVEL: 'silent' }, this.opts.dir);
    const services = await createServices({ settings });
    const app = await buildApp(services);
    try {
      await services.admins.add('admin', 'admin-password-1');
      this.apiKey = await services.admins.createApiKey('admin', 'faults');
      const call = async (path: string, form: Record<string, string>) => {
        const res = await app.inject({ method: 'POST', url: path, payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${this.apiKey}` } });
        const json = JSON.parse(res.body);
        if (json.result?.status !== true) throw new Error(`${path}: ${res.body}`);
        return json;
      };
      for (const [k, v] of Object.entries({ DeliveryAllowedCountryCodes: '*', EmailBlockingTimeout: '0', DefaultMaxFailCount: '100',
        // triggers are part of every load run: the send limits would refuse most of them
        DeliveryLimitPerUser: '100000/3600', DeliveryLimitPerDestination: '100000/3600', DeliveryLimitPerClient: '100000/3600', ...this.opts.config })) {
        await services.config.set(k, v);
      }
      if (this.opts.ldapResolver) {
        await call('/system/setResolver', this.opts.ldapResolver);
        await call('/system/setRealm', { realm: 'faults', resolvers: `useridresolver.LDAPIdResolver.IdResolver.${this.opts.ldapResolver.name}` });
      } else {
        await call('/system/setResolver', { name: 'files', type: 'passwdresolver', fileName: join(this.opts.dir, 'users.passwd') });
        await call('/system/setRealm', { realm: 'faults', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.files' });
      }
      await call('/system/setDefaultRealm', { realm: 'faults' });
      if (this.opts.smtpPort) {
        await services.delivery.setProvider({
          type: 'email', name: 'mail', className: 'SMTPEmailProvider', timeout: '3', isDefault: true,
          config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: this.opts.smtpPort, EMAIL_FROM: 'otpd@example.org', EMAIL_SUBJECT: 'Your OTP' }),
        });
      }
      for (let i = 0; i < this.tokenCount; i++) {
        const owner = this.opts.owners ? { user: this.opts.owners[i % this.opts.owners.length]! } : this.owner(`u${i}`);
        await call('/admin/init', { type: 'hmac', serial: `OK${i}`, otpkey: seedOf(i).toString('hex'), pin: PIN, ...owner });
        await call('/admin/init', { type: 'hmac', serial: `BAD${i}`, otpkey: seedOf(1000 + i).toString('hex'), pin: PIN, ...this.owner(`w${i}`) });
      }
      for (let i = 0; i < this.triggerUsers; i++) {
        await call('/admin/init', { type: 'email', serial: `MAIL${i}`, user: `m${i}`, email_address: `m${i}@example.org`, pin: TRIGGER_PIN });
      }
    } finally {
      await app.close();
      await services.close();
    }
  }

  /** The owner of a token: the passwd users, or the LDAP fixture's users when the store is LDAP (no owner then). */
  private owner(login: string): Record<string, string> {
    return this.opts.ldapResolver ? {} : { user: login };
  }

  /** Starts `otpd serve` and waits until /healthz answers. */
  async start(extraEnv: Record<string, string> = {}, opts: { cpu?: number; nodeArgs?: string[] } = {}): Promise<void> {
    // `cpu`: pinned to that core (taskset), so a load generator on the other core does not compete with it;
    // `nodeArgs`: before the script (the heap probe of test/faults/heap.ts)
    const node = [process.execPath, ...(opts.nodeArgs ?? []), BIN, 'serve'];
    const [cmd, args] = opts.cpu === undefined ? [node[0]!, node.slice(1)] : ['taskset', ['-c', String(opts.cpu), ...node]];
    const child = spawn(cmd, args, {
      cwd: this.opts.dir,
      env: { ...process.env, ...this.env, OTPD_PORT: String(this.port), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    const up = await waitFor(async () => {
      if (child.exitCode !== null) return 'exited';
      return (await fetch(`${this.url}/healthz`).catch(() => undefined))?.ok ? 'up' : false;
    }, { what: 'otpd to answer /healthz', timeoutMs: 60_000, intervalMs: 50 }).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.log.slice(-3000)}`);
    });
    if (up === 'exited') throw new Error(`otpd exited with ${child.exitCode}:\n${this.log.slice(-3000)}`);
    // RADIUS listens after HTTP: wait for its answer to a Status-Server (RFC 5997)
    const socket = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
      let answered = false;
      socket.on('message', () => (answered = true));
      await waitFor(() => {
        socket.send(radius.encode({ code: 'Status-Server', secret: RADIUS_SECRET, identifier: 1, attributes: [], add_message_authenticator: true }), this.radiusPort, '127.0.0.1');
        return answered;
      }, { what: 'otpd\'s RADIUS server to answer', timeoutMs: 20_000, intervalMs: 100 });
    } finally {
      socket.close();
    }
  }

  /** kill -9, and waits for the exit. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** POST a form as the admin; the parsed envelope. */
  async admin(path: string, form: Record<string, string> = {}): Promise<any> {
    const res = await fetch(`${this.url}${path}`, { method: 'POST', body: new URLSearchParams(form), headers: { authorization: `Bearer ${this.apiKey}` } });
    return res.json();
  }

  /** A separate connection to the node's database, for the consistency checks. */
  async openDb(): Promise<Db> {
    return openDatabase(this.opts.databaseUrl ?? `sqlite:${join(this.opts.dir, 'data', 'otpd.sqlite')}`);
  }
}

export type OpKind = 'success' | 'wrong' | 'trigger' | 'radius-success' | 'radius-wrong';

export interface Answer {
  kind: OpKind;
  /** ms since the run started */
  at: number;
  ms: number;
  /** HTTP status; 0 = no answer (connection refused/reset, RADIUS silence) */
  status: number;
  /** `result.value` of the envelope, or the RADIUS code */
  value?: unknown;
  /** `result.error.code` */
  code?: number;
  body?: string;
  error?: string;
  serial?: string;
  counter?: number;
  retryAfter?: string | null;
}

export interface LoadReport {
  answers: Answer[];
  /** valid OTPs answered with success: serial and HOTP counter */
  accepted: { serial: string; counter: number; otp: string }[];
  durationMs: number;
}

export interface RunOptions {
  /** How long the workers send, from the start; read before every request, so a fault may change it. */
  durationMs: number;
  /** Requests in flight at once. @default 6 */
  concurrency?: number;
  /** The mix, as weights. @default success 4, wrong 3, trigger 1 (if e-mail tokens), radius 1 + 1 */
  mix?: Partial<Record<OpKind, number>>;
  /** Faults to inject, by ms since the start; the run continues while they run. */
  at?: Record<number, () => Promise<void>>;
  /** Client-side timeout of one request. @default 35000 */
  requestTimeoutMs?: number;
  /** Requests per second at most (open loop) instead of a closed loop. @default none */
  ratePerSecond?: number;
  /**
   * Workers that send only the mix's RADIUS kinds, besides the `concurrency` workers, which then
   * send only its HTTP kinds. A RADIUS request left unanswered (an outage) holds its worker for
   * `radiusTimeoutMs`: sharing workers, the whole mix then ends up waiting on RADIUS silence and
   * hardly any HTTP request is sent while the fault lasts. @default 0 (every worker sends the whole mix)
   */
  radiusWorkers?: number;
}

/**
 * The load generator. Each valid-OTP request takes the next HOTP counter of one token (tokens
 * are used round robin by one worker at a time, so counters stay in order); after an error
 * answer the same OTP is sent again, after no answer the next one.
 */
export class Load {
  private readonly next = new Map<string, number>();
  private readonly busy = new Set<string>();
  private radiusId = 0;
  /** The RADIUS socket of the current run, created by its first RADIUS request (one for all workers). */
  private socket: Promise<dgram.Socket> | undefined;
  private readonly pending = new Map<number, (msg: Buffer) => void>();

  /** How long a RADIUS request waits for its answer (a NAS's timeout). @default 2000 */
  radiusTimeoutMs = 2000;

  constructor(readonly node: OtpdNode) {}

  /** The next counter of token OK<i> (after a run: the counters the generator used). */
  counter(serial: string): number {
    return this.next.get(serial) ?? 0;
  }

  async run(opts: RunOptions): Promise<LoadReport> {
    const start = Date.now();
    const answers: Answer[] = [];
    const accepted: LoadReport['accepted'] = [];
    const mix = { success: 4, wrong: 3, trigger: this.node.triggerUsers ? 1 : 0, 'radius-success': 1, 'radius-wrong': 1, ...opts.mix };
    const all = Object.entries(mix).flatMap(([k, w]) => Array.from({ length: w ?? 0 }, () => k as OpKind));
    const radiusWorkers = opts.radiusWorkers ?? 0;
    const httpKinds = radiusWorkers ? all.filter((k) => !k.startsWith('radius')) : all;
    const radiusKinds = all.filter((k) => k.startsWith('radius'));
    const faults = Object.entries(opts.at ?? {}).map(([ms, fn]) => new Promise<void>((resolve, reject) => {
      setTimeout(() => fn().then(resolve, reject), Number(ms));
    }));
    let n = 0;
    const perWorkerGap = opts.ratePerSecond ? (1000 * (opts.concurrency ?? 6)) / opts.ratePerSecond : 0;
    const worker = async (w: number, kinds: OpKind[]) => {
      while (Date.now() - start < opts.durationMs) {
        const began = Date.now();
        const kind = kinds[(n++ + w) % kinds.length]!;
        const a = await this.one(kind, opts.requestTimeoutMs ?? 35_000);
        a.at = began - start;
        answers.push(a);
        if ((kind === 'success' || kind === 'radius-success') && a.serial && isAccept(a)) accepted.push({ serial: a.serial, counter: a.counter!, otp: (a as Answer & { otp?: string }).otp! });
        if (perWorkerGap) {
          const wait = perWorkerGap - (Date.now() - began);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: opts.concurrency ?? 6 }, (_, w) => worker(w, httpKinds)),
      ...(radiusKinds.length ? Array.from({ length: radiusWorkers }, (_, w) => worker(w, radiusKinds)) : []),
      ...faults,
    ]);
    const socket = this.socket;
    this.socket = undefined;
    (await socket)?.close();
    return { answers, accepted, durationMs: Date.now() - start };
  }

  private takeToken(): string | undefined {
    for (let i = 0; i < this.node.tokenCount; i++) {
      const serial = `OK${(this.radiusId + i) % this.node.tokenCount}`;
      if (!this.busy.has(serial)) return serial;
    }
    return undefined;
  }

  async one(kind: OpKind, timeoutMs: number): Promise<Answer> {
    this.radiusId++;
    if (kind === 'trigger') {
      const user = `m${this.radiusId % this.node.triggerUsers}`;
      return this.http(kind, { user, pass: TRIGGER_PIN }, timeoutMs);
    }
    if (kind === 'wrong' || kind === 'radius-wrong') {
      const i = this.radiusId % this.node.tokenCount;
      const pass = `${PIN}${String(100000 + (this.radiusId % 900000)).padStart(6, '0')}`;
      return kind === 'wrong' ? this.http(kind, { serial: `BAD${i}`, pass }, timeoutMs) : this.rad(kind, `w${i}`, pass, timeoutMs);
    }
    const serial = this.takeToken();
    if (!serial) return { kind, at: 0, ms: 0, status: -1, error: 'no free token' };
    this.busy.add(serial);
    const counter = this.counter(serial);
    const i = Number(serial.slice(2));
    const otp = hotp(seedOf(i), counter);
    try {
      const a = kind === 'success' ? await this.http(kind, { serial, pass: `${PIN}${otp}` }, timeoutMs) : await this.rad(kind, `u${i}`, `${PIN}${otp}`, timeoutMs);
      // An error answer (ERR2008 and the like) means the OTP was not used: the next request sends
      // it again, and a refusal then shows an error that consumed it. Without an answer the
      // outcome is unknown: the counter moves on (HOTP's look-ahead window covers the gap).
      if (a.code === undefined) this.next.set(serial, counter + 1);
      return Object.assign(a, { serial, counter, otp });
    } finally {
      this.busy.delete(serial);
    }
  }

  private async http(kind: OpKind, form: Record<string, string>, timeoutMs: number): Promise<Answer> {
    const t0 = Date.now();
    try {
      const res = await fetch(`${this.node.url}/validate/check`, { method: 'POST', body: new URLSearchParams(form), signal: AbortSignal.timeout(timeoutMs) });
      const body = await res.text();
      const a: Answer = { kind, at: 0, ms: Date.now() - t0, status: res.status, body, retryAfter: res.headers.get('retry-after') };
      try {
        const json = JSON.parse(body);
        a.value = json.result?.value;
        a.code = json.result?.error?.code;
      } catch {
        /* not JSON: assertCleanAnswers reports it */
      }
      return a;
    } catch (e) {
      return { kind, at: 0, ms: Date.now() - t0, status: 0, error: String((e as Error).cause ?? (e as Error).message) };
    }
  }

  /** RADIUS by user name; the request names the user's realm through the client's default. */
  private rad(kind: OpKind, user: string, password: string, timeoutMs: number): Promise<Answer> {
    return this.udp(kind, [['User-Name', user], ['User-Password', password]], Math.min(timeoutMs, this.radiusTimeoutMs));
  }

  private async udp(kind: OpKind, attributes: [string, string][], timeoutMs: number): Promise<Answer> {
    // one socket however many workers start at once: a second one, overwritten, stayed open and
    // kept the test process alive after its last test (the file never ended)
    this.socket ??= new Promise<dgram.Socket>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.on('message', (msg) => {
        const cb = this.pending.get(msg[1]!);
        if (cb) cb(msg);
      });
      s.bind(0, '127.0.0.1', () => resolve(s));
    });
    const socket = await this.socket;
    let id = this.radiusId % 256;
    for (let k = 0; k < 256 && this.pending.has(id); k++) id = (id + 1) % 256;
    const packet = radius.encode({ code: 'Access-Request', secret: RADIUS_SECRET, identifier: id, attributes, add_message_authenticator: true });
    const t0 = Date.now();
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (msg) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(msg);
      });
      socket.send(packet, this.node.radiusPort, '127.0.0.1');
    });
    if (!reply) return { kind, at: 0, ms: Date.now() - t0, status: 0, error: 'no RADIUS answer' };
    const decoded = radius.decode({ packet: reply, secret: RADIUS_SECRET });
    return { kind, at: 0, ms: Date.now() - t0, status: 1, value: decoded.code };
  }
}

export function isAccept(a: Answer): boolean {
  return a.value === true || a.value === 'Access-Accept';
}

/** Counts of answers by kind and outcome, for failure messages and the test's log. */
export function summary(report: LoadReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of report.answers) {
    const key = `${a.kind} ${a.status === 0 ? 'none' : a.code !== undefined ? `ERR${a.code}` : String(a.value)}${a.status > 1 && a.status !== 200 ? ` http${a.status}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const STACK = /\bat [\w.<>]+ \(|node:internal|\.ts:\d+|Error: |stack/;

/**
 * What every answer of a fault run must be: an envelope (never a 500, never a body that is not
 * JSON, never a stack trace), within `maxMs`; allowed error codes when given.
 */
export function assertCleanAnswers(report: LoadReport, opts: { maxMs: number; codes?: number[]; allowNoAnswer?: boolean; statuses?: number[] }): void {
  const statuses = opts.statuses ?? [200];
  for (const a of report.answers) {
    const where = `${a.kind} at ${a.at} ms: ${a.status} ${a.error ?? a.body?.slice(0, 300)}`;
    assert.ok(a.ms <= opts.maxMs, `answered after ${a.ms} ms > ${opts.maxMs} ms: ${where}`);
    if (a.kind.startsWith('radius')) continue;
    if (a.status === 0) {
      assert.ok(opts.allowNoAnswer, `no HTTP answer: ${where}`);
      continue;
    }
    assert.notEqual(a.status, 500, where);
    assert.ok(statuses.includes(a.status), `HTTP ${a.status}: ${where}`);
    assert.doesNotMatch(a.body ?? '', STACK, `stack trace in an answer: ${where}`);
    assert.ok(a.value !== undefined || a.code !== undefined, `not an envelope: ${where}`);
    if (a.code !== undefined && opts.codes) assert.ok(opts.codes.includes(a.code), `unexpected ERR${a.code}: ${where}`);
  }
}

/**
 * No acknowledged success lost: every valid OTP answered with success left its token's counter
 * past it, and is refused when sent again.
 */
export async function assertNoAcknowledgedSuccessLost(node: OtpdNode, report: LoadReport): Promise<void> {
  const db = await node.openDb();
  try {
    const rows = await db.kysely.selectFrom('tokens').select(['serial', 'counter']).where('serial', 'like', 'OK%').execute();
    const counters = new Map(rows.map((r) => [r.serial, Number(r.counter)]));
    for (const a of report.accepted) {
      assert.ok((counters.get(a.serial) ?? -1) > a.counter, `${a.serial}: accepted counter ${a.counter}, stored counter ${counters.get(a.serial)}`);
    }
  } finally {
    await db.close();
  }
  const sample = report.accepted.slice(-5);
  for (const a of sample) {
    const replay = await fetch(`${node.url}/validate/check`, { method: 'POST', body: new URLSearchParams({ serial: a.serial, pass: `${PIN}${a.otp}` }) });
    assert.equal(((await replay.json()) as any).result.value, false, `replay of ${a.serial} counter ${a.counter} refused`);
  }
}

/**
 * No half-written challenge or outbox row: every challenge of an e-mail token has its outbox
 * row (`challenge:<transaction id>`), and every challenge's outbox row has its challenge.
 */
export async function assertNoHalfWrittenRows(node: OtpdNode): Promise<void> {
  const db = await node.openDb();
  try {
    const challenges = await db.kysely.selectFrom('challenges').select(['transaction_id', 'serial']).where('serial', 'like', 'MAIL%').execute();
    const outbox = await db.kysely.selectFrom('delivery_outbox').select(['idempotency_key', 'status', 'error', 'attempts', 'serial']).where('idempotency_key', 'like', 'challenge:%').execute();
    const keys = new Set(outbox.map((o) => o.idempotency_key));
    const tids = new Set(challenges.map((c) => `challenge:${c.transaction_id}`));
    assert.deepEqual(challenges.filter((c) => !keys.has(`challenge:${c.transaction_id}`)).map((c) => c.transaction_id), [], 'challenges without an outbox row');
    const orphans = outbox.filter((o) => !tids.has(o.idempotency_key));
    assert.deepEqual(orphans.map((o) => o.idempotency_key), [], `outbox rows without a challenge: ${JSON.stringify(orphans)}; log: ${node.log.split('\n').filter((l) => /challenge removed|provider|failed|expired/.test(l)).slice(-10).join('\n')}`);
  } finally {
    await db.close();
  }
}

/** Waits until valid OTPs are accepted again (recovery without a restart); returns how long it took. */
export async function waitForRecovery(load: Load, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(async () => isAccept(await load.one('success', 5000)), { what: 'a valid OTP to be accepted again', timeoutMs, intervalMs: 200 });
  return Date.now() - t0;
}
