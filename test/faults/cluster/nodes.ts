/**
 * Several otpd nodes as real processes (`bin/otpd.mjs serve`), the way an operator runs them
 * behind a load balancer: one database URL, one key file, each node with its own data
 * directory, HTTP port, RADIUS port and node name, all on 127.0.0.1.
 *
 *   const cluster = await startCluster({ databaseUrl, count: 3 });
 *   await cluster.nodes[1]!.post('/validate/check', { serial, pass });
 *   await cluster.nodes[2]!.kill();          // kill -9
 *   await cluster.nodes[2]!.start();         // same ports, same data directory
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { KeyRing } from '../../../src/crypto/keyring.ts';
import { freePort } from '../../fixtures/slapd.ts';
import { MYSQL_ADMIN_URL, PG_ADMIN_URL } from '../../helpers/db.ts';
import { testTmpDir } from '../../helpers/tmp.ts';
import { waitFor } from '../../helpers/wait.ts';

export const BIN = join(import.meta.dirname, '../../../bin/otpd.mjs');
export const ADMIN = { user: 'admin', password: 'admin-password-1' };
export const RADIUS_SECRET = 'cluster-radius-secret';

export type Answer = { status: number; json: any; body: string; ms: number };

/** A free UDP port on 127.0.0.1 (freePort checks TCP). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export class OtpdNode {
  child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    /** This node's folder: otpd.json (RADIUS listener and client) and data/. */
    readonly dir: string,
    readonly port: number,
    readonly radiusPort: number,
    private readonly env: Record<string, string>,
    private apiKey = '',
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process wrote to stdout and stderr, over all its starts. */
  log(): string {
    return this.output;
  }

  setApiKey(key: string): void {
    this.apiKey = key;
  }

  /** Environment of this node, for the CLI (`otpd audit verify`, `otpd admin apikey`). */
  cliEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.env };
  }

  /** Spawns `otpd serve` and resolves once /readyz answers 200 (database reachable, migrations current). */
  async start(timeoutMs = 60_000): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: this.dir, env: this.cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.once('exit', () => r()));
    let exitedEarly = false;
    const ready = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return (exitedEarly = true);
      const res = await fetch(`${this.url}/readyz`).catch(() => undefined);
      return res?.status === 200;
    };
    try {
      await waitFor(ready, { what: `${this.name} to answer /readyz`, timeoutMs, intervalMs: 100 });
    } catch (e) {
      throw new Error(`${(e as Error).message}; its output:\n${this.output.slice(-4000)}`);
    }
    if (exitedEarly) throw new Error(`${this.name} exited during start (code ${child.exitCode}); its output:\n${this.output.slice(-4000)}`);
  }

  /** kill -9: no shutdown, no flushing, whatever was in flight is cut off. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for the exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** POST a form; `admin` adds the API key. Never throws for an HTTP status; throws when the node does not answer. */
  async post(path: string, form: Record<string, string>, opts: { admin?: boolean; timeoutMs?: number } = {}): Promise<Answer> {
    const started = performance.now();
    const res = await fetch(`${this.url}${path}`, {
      method: 'POST',
      body: new URLSearchParams(form),
      headers: opts.admin ? { authorization: `Bearer ${this.apiKey}` } : {},
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
    const body = await res.text();
    let json: any;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, body, ms: performance.now() - started };
  }

  /** An admin call that must succeed (result.status true, value not false). */
  async admin(path: string, form: Record<string, string>): Promise<any> {
    const r = await this.post(path, form, { admin: true });
    if (r.json?.result?.status !== true || r.json.result.value === false) throw new Error(`${this.name} ${path}: ${r.body}`);
    return r.json;
  }
}

export interface Cluster {
  nodes: OtpdNode[];
  /** The one key file every node reads. */
  keyFile: string;
  /** Folder of the whole cluster (key file, shared files such as a passwd user store). */
  dir: string;
  /** The node answering the n-th request of a round robin (a load balancer without affinity). */
  next(): OtpdNode;
  /** Runs the otpd CLI with the environment of node `i`. */
  cli(args: string[], i?: number, input?: string): { status: number | null; stdout: string; stderr: string };
  close(): Promise<void>;
}

export interface ClusterOptions {
  databaseUrl: string;
  /** @default 3 */
  count?: number;
  /** Extra OTPD_* settings for every node. @default {} */
  env?: Record<string, string>;
}

/**
 * Starts `count` nodes at the same moment on one database (which may be empty: the nodes
 * race for the migrations and for the admin of OTPD_ADMIN_USER, as a fleet started together
 * does), with one key file made beforehand, and gives each node an API key of `admin`.
 */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const dir = testTmpDir('otpd-cluster-');
  const keyFile = join(dir, 'otpd.key');
  KeyRing.loadOrCreate(keyFile);
  const nodes: OtpdNode[] = [];
  for (let i = 0; i < (opts.count ?? 3); i++) {
    const name = `node${i + 1}`;
    const nodeDir = join(dir, name);
    mkdirSync(nodeDir);
    const port = await freePort();
    const radiusPort = await freeUdpPort();
    writeFileSync(join(nodeDir, 'otpd.json'), JSON.stringify({
      radius: { port: radiusPort, clients: [{ name: 'lb', address: '127.0.0.1', secret: RADIUS_SECRET, realm: 'staff', require_message_authenticator: true }] },
    }));
    nodes.push(new OtpdNode(name, nodeDir, port, radiusPort, {
      OTPD_DATABASE_URL: opts.databaseUrl,
      OTPD_KEY_FILE: keyFile,
      OTPD_DATA_DIR: join(nodeDir, 'data'),
      OTPD_PORT: String(port),
      OTPD_NODE_NAME: name,
      OTPD_LOG_LEVEL: 'warn',
      OTPD_LOG_FORMAT: 'json',
      OTPD_ADMIN_USER: ADMIN.user,
      OTPD_ADMIN_PASSWORD: ADMIN.password,
      ...opts.env,
    }));
  }
  let turn = 0;
  const cluster: Cluster = {
    nodes, keyFile, dir,
    next: () => {
      const alive = nodes.filter((n) => n.running);
      return alive[turn++ % alive.length]!;
    },
    cli: (args, i = 0, input) => {
      const r = spawnSync(process.execPath, [BIN, ...args], { cwd: nodes[i]!.dir, env: nodes[i]!.cliEnv(), input, encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    close: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const key = cluster.cli(['admin', 'apikey', ADMIN.user]);
    if (key.status !== 0) throw new Error(`otpd admin apikey: ${key.stderr}`);
    for (const n of nodes) n.setApiKey(key.stdout.trim());
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

/** A new empty database (no tables) on the machine's shared PostgreSQL or MariaDB; drop() removes it. */
export async function emptyDatabase(dialect: 'postgres' | 'mysql'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `otpd_cluster_${randomBytes(4).toString('hex')}`;
  if (dialect === 'postgres') {
    const run = async (q: string) => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(q);
      } finally {
        await c.end();
      }
    };
    await run(`create database ${name}`);
    return { url: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`), drop: () => run(`drop database if exists ${name} with (force)`) };
  }
  const run = async (q: string) => {
    const c = await mysql.createConnection(MYSQL_ADMIN_URL);
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await run(`create database ${name} character set utf8mb4 collate utf8mb4_bin`);
  return { url: `${MYSQL_ADMIN_URL.replace(/\/$/, '')}/${name}`, drop: () => run(`drop database if exists ${name}`) };
}
