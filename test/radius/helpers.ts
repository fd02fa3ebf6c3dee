import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { RadiusClientService, type RadiusClientInput } from '../../src/radius/clients.ts';
import { RadiusServer, type RadiusAuthRequest, type RadiusAuthResult, type RadiusServerDeps } from '../../src/radius/server.ts';
import { RevisionWatcher } from '../../src/store/revisions.ts';
import { FakeClock, type Clock } from '../../src/util/clock.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { waitFor } from '../helpers/wait.ts';

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
  ready?: () => Promise<boolean>;
  /** More of the server's settings (maxInFlight, maxQueueMs, lag, …). */
  deps?: Partial<RadiusServerDeps>;
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
    ready: opts.ready,
    ...opts.deps,
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

/** Datagrams the server dropped without an answer so far, whatever the reason. */
export function droppedTotal(h: { server: RadiusServer }): number {
  return Object.values(h.server.stats().dropped).reduce((a, b) => a + b, 0);
}

/**
 * Sends datagrams from one UDP socket (so the source port is the same) and collects the
 * replies, waiting on outcomes, never for a fixed time:
 * - `expect`: returns once that many replies came (or after `waitMs`, with fewer: the test's
 *   count assertion then fails);
 * - `handled`: for packets that get no answer, a condition on the server's counters that holds
 *   once it has dealt with them (`stats().dropped`); returns then with the replies so far;
 * - `afterReplies(i)`: packet `i` is sent only once that many replies came (a retransmission
 *   after the answer, not while the first copy is processed).
 * One of `expect` and `handled` is required.
 */
export async function udpExchange(
  packets: Buffer[],
  port: number,
  opts: { host?: string; waitMs?: number; afterReplies?: (index: number) => number; expect?: number; handled?: () => boolean } = {},
): Promise<Buffer[]> {
  if (opts.expect === undefined && !opts.handled) throw new Error('udpExchange: say what ends the exchange (expect or handled)');
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.waitMs ?? 3000;
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((res) => socket.bind(0, host, () => res()));
  try {
    for (const [i, p] of packets.entries()) {
      const need = opts.afterReplies?.(i) ?? 0;
      if (need > 0) await waitFor(() => replies.length >= need, { what: `${need} replies before packet ${i}`, timeoutMs });
      await new Promise<void>((res, rej) => socket.send(p, port, host, (e) => (e ? rej(e) : res())));
    }
    const done = () => (opts.expect !== undefined && replies.length >= opts.expect) || (opts.handled?.() ?? false);
    if (opts.handled) await waitFor(done, { what: 'the server to handle the packets', timeoutMs });
    else await waitFor(done, { what: `${opts.expect} replies`, timeoutMs }).catch(() => undefined);
  } finally {
    socket.close();
  }
  return replies;
}
