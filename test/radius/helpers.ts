import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { RadiusClientService, type RadiusClientInput } from '../../src/radius/clients.ts';
import { RadiusServer, type RadiusAuthRequest, type RadiusAuthResult } from '../../src/radius/server.ts';
import { RevisionWatcher } from '../../src/store/revisions.ts';
import { FakeClock, type Clock } from '../../src/util/clock.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

export const SECRET = 's3cr3t-for-tests';

/** A pino logger whose lines the test can read. */
export function captureLogger(level = 'info'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level }, stream);
  return { logger, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/**
 * A tiny deterministic stand-in for the validation service: users with a password and an
 * HOTP token (seed = `seed-<user>`). Password alone → challenge; password+OTP → accept;
 * answer to a challenge with the OTP → accept. OTPs are single use (the counter moves).
 */
export class DemoValidator {
  readonly calls: RadiusAuthRequest[] = [];
  private readonly passwords = new Map([
    ['alice', 'alicepw'],
    ['bob', 'bobpw'],
  ]);
  private readonly counters = new Map<string, number>();
  private readonly pending = new Map<string, { user: string }>();
  private nextTx = 1;
  /** Extra delay before answering, to test concurrent duplicates. */
  delayMs = 0;
  acceptAttributes: Record<string, string> | undefined = { Class: 'vpn-users', 'Filter-Id': 'staff' };

  constructor(private readonly clock: Clock) {}

  otp(user: string): string {
    return hotp(Buffer.from(`seed-${user}`), this.counters.get(user) ?? 0);
  }

  private checkOtp(user: string, otp: string): boolean {
    if (otp !== this.otp(user)) return false;
    this.counters.set(user, (this.counters.get(user) ?? 0) + 1);
    return true;
  }

  readonly authenticate = async (r: RadiusAuthRequest): Promise<RadiusAuthResult> => {
    this.calls.push(r);
    if (this.delayMs) await new Promise((res) => setTimeout(res, this.delayMs));
    const password = this.passwords.get(r.user);
    if (password === undefined) return { kind: 'reject' };
    if (r.transactionId !== undefined) {
      const open = this.pending.get(r.transactionId);
      if (!open || open.user !== r.user) return { kind: 'reject' };
      if (!this.checkOtp(r.user, r.password)) return { kind: 'reject', message: 'wrong OTP' };
      this.pending.delete(r.transactionId);
      return { kind: 'accept', message: 'Welcome', attributes: this.acceptAttributes };
    }
    if (r.password === password) {
      const transactionId = `tx-${this.nextTx++}`;
      this.pending.set(transactionId, { user: r.user });
      return { kind: 'challenge', transactionId, message: 'Enter the OTP sent to your phone', expiresAt: this.clock.now() + 120_000 };
    }
    if (r.password.startsWith(password) && this.checkOtp(r.user, r.password.slice(password.length))) {
      return { kind: 'accept', message: 'Welcome', attributes: this.acceptAttributes };
    }
    return { kind: 'reject' };
  };
}

export interface Harness {
  testDb: TestDb;
  keyring: KeyRing;
  clients: RadiusClientService;
  server: RadiusServer;
  validator: DemoValidator;
  clock: Clock;
  watcher: RevisionWatcher;
  log: ReturnType<typeof captureLogger>;
  port: number;
  close(): Promise<void>;
}

/** A RADIUS server on 127.0.0.1 (and ::1 when asked), port 0, over a fresh SQLite database. */
export async function startHarness(opts: {
  clients?: RadiusClientInput[];
  clock?: Clock;
  ipv6?: boolean;
  authenticate?: (r: RadiusAuthRequest) => Promise<RadiusAuthResult>;
} = {}): Promise<Harness & { port6?: number }> {
  const testDb = await createTestDb('sqlite');
  const keyring = KeyRing.fromBytes();
  const clock = opts.clock ?? { now: () => Date.now() };
  const clients = new RadiusClientService({ db: testDb.db, keyring });
  for (const c of opts.clients ?? [{ name: 'loopback', address: '127.0.0.1', secret: SECRET }]) await clients.add(c);
  const validator = new DemoValidator(clock);
  const log = captureLogger();
  const watcher = new RevisionWatcher(testDb.db, 60_000);
  await watcher.start();
  const server = new RadiusServer({
    db: testDb.db,
    keyring,
    logger: log.logger,
    clock,
    authenticate: opts.authenticate ?? validator.authenticate,
    watcher,
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const port6 = opts.ipv6 ? (await server.listen({ host: '::1', port: 0 })).port : undefined;
  return {
    testDb, keyring, clients, server, validator, clock, watcher, log, port, port6,
    close: async () => {
      watcher.stop();
      await server.close();
      await testDb.drop();
    },
  };
}

export { FakeClock };

export interface RadclientResult {
  exitCode: number;
  /** 'Access-Accept' | 'Access-Reject' | 'Access-Challenge' | undefined (no answer) */
  reply?: string;
  /** Reply attributes as radclient prints them (values unquoted); repeated ones joined by '\n'. */
  attributes: Record<string, string>;
  output: string;
}

/** Runs Debian's radclient once (`-x`) and parses the reply it prints. */
export function radclient(args: { target: string; secret: string; input: string; timeoutSeconds?: number; retries?: number; command?: 'auth' | 'status' }): Promise<RadclientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('radclient', ['-x', '-r', String(args.retries ?? 1), '-t', String(args.timeoutSeconds ?? 2), args.target, args.command ?? 'auth', args.secret], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    child.on('error', reject);
    child.on('close', (code) => {
      const received = output.indexOf('Received ');
      const attributes: Record<string, string> = {};
      let reply: string | undefined;
      if (received >= 0) {
        const lines = output.slice(received).split('\n');
        reply = /^Received (\S+)/.exec(lines[0])?.[1];
        for (const line of lines.slice(1)) {
          const m = /^\t(\S+) = (.*)$/.exec(line);
          if (!m) break;
          const value = m[2].replace(/^"(.*)"$/, '$1');
          attributes[m[1]] = attributes[m[1]] === undefined ? value : `${attributes[m[1]]}\n${value}`;
        }
      }
      resolve({ exitCode: code ?? -1, reply, attributes, output });
    });
    child.stdin.end(`${args.input}\n`);
  });
}

/**
 * Sends datagrams from one UDP socket (so the source port is the same) and collects the
 * replies that arrive within `waitMs` after the last send (or until `expect` replies came).
 * `gapMs` is the pause after each send (a number, or per packet index).
 */
export async function udpExchange(
  packets: Buffer[],
  port: number,
  opts: { host?: string; waitMs?: number; gapMs?: number | ((index: number) => number); expect?: number } = {},
): Promise<Buffer[]> {
  const host = opts.host ?? '127.0.0.1';
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const replies: Buffer[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (m) => {
    replies.push(m);
    if (opts.expect !== undefined && replies.length >= opts.expect) wake?.();
  });
  await new Promise<void>((res) => socket.bind(0, host, () => res()));
  for (const [i, p] of packets.entries()) {
    await new Promise<void>((res, rej) => socket.send(p, port, host, (e) => (e ? rej(e) : res())));
    const gap = typeof opts.gapMs === 'function' ? opts.gapMs(i) : opts.gapMs;
    if (gap) await new Promise((res) => setTimeout(res, gap));
  }
  if (opts.expect === undefined || replies.length < opts.expect) {
    await new Promise<void>((res) => {
      const timer = setTimeout(res, opts.waitMs ?? 300);
      wake = () => {
        clearTimeout(timer);
        res();
      };
    });
  }
  socket.close();
  return replies;
}

/** Waits until `predicate` holds (polling), or fails after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached');
    await new Promise((res) => setTimeout(res, 10));
  }
}
