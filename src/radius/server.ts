import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import type { RevisionWatcher } from '../store/revisions.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { cidrContains, formatIp, ipFromBytes, isSingleAddress, parseIp, type IpAddress } from '../util/net.ts';
import { RADIUS_REVISION, RadiusClientService, type RadiusClientRecord } from './clients.ts';
import {
  Attr,
  Code,
  countAttribute,
  decodeWithDictionary,
  decryptUserPassword,
  encodeAttribute,
  encodeNamedAttributes,
  encodeReply,
  encodeText,
  findAttribute,
  loadDictionaries,
  parseFrame,
  verifyRequestMessageAuthenticator,
  type Frame,
} from './codec.ts';
import { DuplicateCache } from './dedupe.ts';
import { RadiusStateStore } from './states.ts';
import { randomUUID } from 'node:crypto';
import { requestContext } from '../util/request-context.ts';
import { loopLag, type LoopLag } from '../util/loop-lag.ts';

/** One PAP Access-Request, as the validation service sees it. */
export interface RadiusAuthRequest {
  user: string;
  password: string;
  /** transaction id of the challenge this answers, resolved from our State */
  transactionId?: string;
  /** NAS-IP-Address / NAS-IPv6-Address, else the packet's source address */
  client: string;
  /** the RADIUS client's default realm */
  realm?: string;
  /** name of the RADIUS client (NAS) the request came through */
  clientName: string;
}

export type RadiusAuthResult =
  | { kind: 'accept'; message?: string; attributes?: Record<string, string> }
  | { kind: 'reject'; message?: string }
  | { kind: 'challenge'; transactionId: string; message: string; expiresAt: number };

export interface RadiusStats {
  /** Requests answered with nothing, by reason (unknown_client, bad_message_authenticator, …). */
  dropped: Record<string, number>;
  accepted: number;
  rejected: number;
  challenged: number;
  /** Retransmissions answered from the duplicate cache. */
  duplicates: number;
}

export interface RadiusServerDeps {
  db: Db;
  keyring: KeyRing;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** The validation service's entry point; the server never decides itself. */
  authenticate: (r: RadiusAuthRequest) => Promise<RadiusAuthResult>;
  /** When given, the client list is re-read whenever the `radius` revision moves. */
  watcher?: RevisionWatcher;
  /** How long replies are kept for retransmissions. @default 30000 */
  duplicateTtlMs?: number;
  /**
   * Access-Requests handled at once; a packet beyond it is dropped (reason `overload`) instead
   * of waiting in a queue that only grows: the NAS retries or fails over. @default 64
   */
  maxInFlight?: number;
  /**
   * A packet that would be answered later than this is dropped too (reason `overload`): the
   * time it waited before otpd could read it (the event loop running late under overload,
   * `lag`) plus the time recent Access-Requests took to handle. Its NAS would have given up or
   * resent it by then, and the work only delays the packets still wanted. `serve` passes the
   * HTTP setting `maxQueueMs`. @default none (only `maxInFlight` drops)
   */
  maxQueueMs?: number;
  /** @default loopLag() */
  lag?: LoopLag;
  /**
   * The UDP socket's receive buffer (SO_RCVBUF; Linux doubles it). Node reads at most 32
   * datagrams a turn of the event loop, so under overload packets wait in this buffer, unseen
   * by `lag` and `maxInFlight`, for as many turns as it holds 32 packets: a small buffer lets the
   * kernel drop the excess instead of otpd answering it after the NAS gave up. `serve` sizes it
   * from `radius.maxInFlight` (1 KiB each, so about three times that many small packets).
   * @default the system's (net.core.rmem_default)
   */
  receiveBufferBytes?: number;
  /**
   * Asked before a Status-Server is answered: a node whose database is unreachable (or not
   * migrated) stays silent, so a UDP load balancer's health check takes it out. @default always ready
   */
  ready?: () => Promise<boolean>;
}

/** Longest text sent back in Reply-Message attributes. */
const MAX_REPLY_MESSAGE_BYTES = 1000;

/**
 * The built-in RADIUS authentication server (RFC 2865 over UDP, PAP).
 * Requests from unknown addresses, with a wrong Message-Authenticator, without one when
 * the client requires it (default), or malformed are dropped silently and counted.
 * Every reply carries Message-Authenticator as its first attribute (CVE-2024-3596).
 */
export class RadiusServer {
  private readonly clock: Clock;
  private readonly clientsService: RadiusClientService;
  private readonly states: RadiusStateStore;
  private readonly duplicates: DuplicateCache;
  private readonly sockets: dgram.Socket[] = [];
  private clients: RadiusClientRecord[] = [];
  private exact = new Map<string, RadiusClientRecord>();
  private loaded = false;
  private closed = false;
  private reloading: Promise<void> | undefined;
  private readonly counters: RadiusStats = { dropped: {}, accepted: 0, rejected: 0, challenged: 0, duplicates: 0 };
  private inFlight = 0;
  private readonly lag: LoopLag | undefined;
  /** Moving average of how long an admitted Access-Request took to handle (ms). */
  private handlingMs = 0;

  constructor(private readonly deps: RadiusServerDeps) {
    this.clock = deps.clock ?? systemClock;
    this.lag = deps.maxQueueMs === undefined ? undefined : deps.lag ?? loopLag();
    this.clientsService = new RadiusClientService({ db: deps.db, keyring: deps.keyring, clock: this.clock });
    this.states = new RadiusStateStore(deps.db, deps.keyring, this.clock);
    this.duplicates = new DuplicateCache(this.clock, deps.duplicateTtlMs);
    loadDictionaries();
    // a failed reload is logged and counted by the watcher; the clients loaded before stay
    deps.watcher?.on(RADIUS_REVISION, () => (this.closed ? undefined : this.reload()));
  }

  /** Re-reads the clients from the database; logs a warning for each client that does not require Message-Authenticator. */
  async reload(): Promise<void> {
    const run = async () => {
      const records = await this.clientsService.loadAll((name, reason) =>
        this.deps.logger.error({ client: name, reason }, 'RADIUS client not loaded'),
      );
      this.clients = records.sort((a, b) => b.range.prefix - a.range.prefix);
      this.exact = new Map(records.filter((r) => isSingleAddress(r.range)).map((r) => [formatIp(r.range.address), r]));
      this.loaded = true;
      for (const c of records) {
        if (!c.requireMessageAuthenticator) {
          this.deps.logger.warn(
            { client: c.name, address: c.address },
            `RADIUS client ${c.name} does not require Message-Authenticator: its requests are open to BlastRADIUS (CVE-2024-3596) forgery`,
          );
        }
      }
      this.deps.logger.info({ clients: records.length }, 'RADIUS clients loaded');
    };
    // serialise reloads so an older read never overwrites a newer one
    const previous = this.reloading ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.reloading = next;
    return next;
  }

  /** Binds a UDP socket (IPv4 or IPv6 host); may be called once per address. */
  async listen(opts: { host: string; port: number }): Promise<{ port: number }> {
    if (!this.loaded) await this.reload();
    const type = isIP(opts.host) === 6 ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type, reuseAddr: false });
    socket.on('message', (msg, rinfo) => {
      // one id per datagram, like an HTTP request's: in every log line of its handling and in its audit row
      requestContext.run({ reqId: `radius-${randomUUID()}` }, () => this.handle(msg, rinfo)).then(
        (reply) => {
          if (reply) socket.send(reply, rinfo.port, rinfo.address, (err) => err && this.deps.logger.debug({ err }, 'RADIUS reply not sent'));
        },
        (e: unknown) => this.deps.logger.error({ err: e }, 'RADIUS request failed'),
      );
    });
    socket.on('error', (err) => this.deps.logger.error({ err }, 'RADIUS socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.port, opts.host, () => {
        socket.off('error', reject);
        if (this.deps.receiveBufferBytes !== undefined) socket.setRecvBufferSize(this.deps.receiveBufferBytes);
        resolve();
      });
    });
    this.sockets.push(socket);
    const port = socket.address().port;
    this.deps.logger.info({ host: opts.host, port }, 'RADIUS server listening');
    return { port };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  stats(): RadiusStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /**
   * Handles one datagram; resolves to the reply to send, or null to stay silent.
   * Never throws for bad input (the socket path and the fuzz test rely on it).
   */
  async handle(msg: Buffer, source: { address: string; port: number }): Promise<Buffer | null> {
    const parsed = parseFrame(msg);
    if ('error' in parsed) return this.drop('malformed', parsed.error);
    const frame = parsed.frame;
    if (frame.code !== Code.AccessRequest && frame.code !== Code.StatusServer) return this.drop('unsupported_code', `code ${frame.code}`);

    const sourceIp = parseIp(source.address, { zone: 'strip' });
    const client = sourceIp && this.findClient(sourceIp);
    if (!sourceIp || !client) return this.drop('unknown_client', source.address);

    if (findAttribute(frame, Attr.MessageAuthenticator)) {
      if (!verifyRequestMessageAuthenticator(frame, client.secret)) return this.drop('bad_message_authenticator', client.name);
    } else if (client.requireMessageAuthenticator || frame.code === Code.StatusServer) {
      return this.drop('missing_message_authenticator', client.name);
    }

    const key = DuplicateCache.key(formatIp(sourceIp), source.port, frame.identifier, frame.authenticator);
    const seen = this.duplicates.begin(key);
    if (seen === 'pending') return this.drop('duplicate_in_progress', client.name);
    if (seen !== 'new') {
      this.counters.duplicates++;
      return seen;
    }
    if (this.inFlight >= (this.deps.maxInFlight ?? 64) || this.tooLate()) {
      this.duplicates.abandon(key);
      return this.drop('overload', client.name);
    }
    let reply: Buffer | null = null;
    this.inFlight++;
    const admitted = performance.now();
    try {
      reply = await this.process(frame, client, formatIp(sourceIp));
    } catch (e) {
      this.deps.logger.error({ client: client.name, err: e }, 'RADIUS request failed; not answered so the NAS can retry or fail over');
      reply = this.drop('internal_error');
    } finally {
      this.inFlight--;
      this.handlingMs += (performance.now() - admitted - this.handlingMs) * 0.1;
      if (reply) this.duplicates.complete(key, reply);
      else this.duplicates.abandon(key);
    }
    return reply;
  }

  /**
   * With `maxQueueMs`: the packet would be answered after it, counting the time it waited
   * unseen (the loop's lag) and the time recent packets took to handle (a moving average).
   * Nothing in flight admits it whatever the average says, so the estimate recovers.
   */
  private tooLate(): boolean {
    if (this.lag === undefined || this.inFlight === 0) return false;
    return this.lag.ms() + this.handlingMs >= this.deps.maxQueueMs!;
  }

  private async process(frame: Frame, client: RadiusClientRecord, sourceAddress: string): Promise<Buffer | null> {
    const proxyStates = frame.attributes.filter((a) => a.type === Attr.ProxyState).map((a) => encodeAttribute(Attr.ProxyState, a.value));
    const reply = (code: number, attributes: Buffer[]) =>
      encodeReply({ code, identifier: frame.identifier, requestAuthenticator: frame.authenticator, secret: client.secret, attributes: [...attributes, ...proxyStates] });
    const reject = (message?: string) => {
      this.counters.rejected++;
      return reply(Code.AccessReject, message ? this.replyMessage(message) : []);
    };

    if (frame.code === Code.StatusServer) {
      // RFC 5997; silent while this node cannot serve Access-Requests
      return !this.deps.ready || (await this.deps.ready()) ? reply(Code.AccessAccept, []) : this.drop('not_ready', client.name);
    }

    try {
      decodeWithDictionary(frame);
    } catch (e) {
      return this.drop('malformed', (e as Error).message);
    }
    for (const single of [Attr.UserName, Attr.UserPassword, Attr.State, Attr.NasIpAddress, Attr.NasIpv6Address]) {
      if (countAttribute(frame, single) > 1) return this.drop('malformed', `attribute ${single} repeated`);
    }
    const userName = findAttribute(frame, Attr.UserName);
    const hidden = findAttribute(frame, Attr.UserPassword);
    // An answer to a challenge may come without User-Password: that is an empty answer (resend).
    const emptyAnswer = !hidden && findAttribute(frame, Attr.State) !== undefined;
    if (!userName || (!hidden && !emptyAnswer)) return reject(hidden || emptyAnswer ? undefined : 'only PAP (User-Password) is supported');
    const password = hidden ? decryptUserPassword(hidden.value, client.secret, frame.authenticator) : Buffer.alloc(0);
    if (!password) return this.drop('malformed', 'User-Password length');
    const user = utf8(userName.value);
    const passwordText = utf8(password);
    if (user === null || passwordText === null || user.length === 0) return reject();
    const nasClient = nasAddress(frame) ?? sourceAddress;

    let transactionId: string | undefined;
    const state = findAttribute(frame, Attr.State);
    if (state) {
      const lookup = await this.states.consume(state.value, user, client.name);
      if (!lookup.ok) {
        this.deps.logger.info({ client: client.name, user, reason: lookup.reason }, 'RADIUS State refused');
        return reject();
      }
      transactionId = lookup.transactionId;
    }

    const result = await this.deps.authenticate({
      user,
      password: passwordText,
      transactionId,
      client: nasClient,
      realm: client.realm || undefined,
      clientName: client.name,
    });

    switch (result.kind) {
      case 'accept': {
        let extra: Buffer[] = [];
        try {
          if (result.attributes && Object.keys(result.attributes).length > 0) extra = [encodeNamedAttributes(result.attributes)];
          const packet = reply(Code.AccessAccept, [...(result.message ? this.replyMessage(result.message) : []), ...extra]);
          this.counters.accepted++;
          return packet;
        } catch (e) {
          // fail closed: an Accept without its authorisation attributes could grant too much
          this.deps.logger.error({ client: client.name, user, err: e }, 'RADIUS reply attributes invalid; rejecting');
          return reject();
        }
      }
      case 'challenge': {
        const stateValue = await this.states.issue({ transactionId: result.transactionId, user, clientName: client.name, expiresAt: result.expiresAt });
        const packet = reply(Code.AccessChallenge, [encodeAttribute(Attr.State, stateValue), ...this.replyMessage(result.message)]);
        this.counters.challenged++;
        return packet;
      }
      default:
        return reject(result.message);
    }
  }

  private replyMessage(message: string): Buffer[] {
    let text = message;
    while (Buffer.byteLength(text) > MAX_REPLY_MESSAGE_BYTES) text = text.slice(0, -1);
    return encodeText(Attr.ReplyMessage, text);
  }

  private findClient(ip: IpAddress): RadiusClientRecord | undefined {
    const exact = this.exact.get(formatIp(ip));
    if (exact) return exact;
    return this.clients.find((c) => cidrContains(c.range, ip)); // sorted by prefix length, longest first
  }

  private drop(reason: string, detail?: string): null {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    if (this.deps.logger.isLevelEnabled('debug')) this.deps.logger.debug({ reason, detail }, 'RADIUS packet dropped');
    return null;
  }
}

function nasAddress(frame: Frame): string | undefined {
  const v4 = findAttribute(frame, Attr.NasIpAddress);
  if (v4 && v4.value.length === 4) return formatIp(ipFromBytes(v4.value)!);
  const v6 = findAttribute(frame, Attr.NasIpv6Address);
  if (v6 && v6.value.length === 16) return formatIp(ipFromBytes(v6.value)!);
  return undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 without NUL, else null. */
function utf8(bytes: Buffer): string | null {
  try {
    const s = decoder.decode(bytes);
    return s.includes('\0') ? null : s;
  } catch {
    return null;
  }
}
