import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';
import { loopLag, type LoopLag } from '../util/loop-lag.ts';
import { errorEnvelope, serialise } from './envelope.ts';

export interface LoadSheddingOptions {
  /** Requests served at once. */
  maxInFlight: number;
  /** Longest a request waits for a slot (ms) before it is answered 503. */
  maxQueueMs: number;
  /** How late the event loop runs: the time a request waited before otpd saw it. @default loopLag() */
  lag?: LoopLag;
  /** How fast slots free up while requests wait. @default a new DrainRate */
  drain?: Pick<DrainRate, 'freedWhileWaiting' | 'emptied' | 'waitMs'>;
}

/** Paths that are never held or shed: a load balancer's liveness probe must see the process. */
const EXEMPT = new Set(['/healthz']);

/** The shortest stretch of waiting requests one measurement of the drain rate covers (ms). */
const DRAIN_WINDOW_MS = 100;
/** ... and the fewest freed slots in it, unless it lasted this long (ms). */
const DRAIN_MIN_FREED = 8;
const DRAIN_LONGEST_WINDOW_MS = 1000;
/** A drain rate measured longer ago than this says nothing about the node now (ms). */
const DRAIN_STALE_MS = 2000;

/**
 * How fast slots free up while requests wait for one: the node's service rate under load,
 * measured only while the queue is not empty (so an idle stretch does not lower it), over
 * windows of at least 100 ms (answers come in bursts, one per group commit), the latest
 * windows weighted most.
 */
export class DrainRate {
  private perMs = 0;
  private measuredAt = -Infinity;
  private windowStart = -1;
  private freed = 0;

  /** A slot freed while requests were waiting. */
  freedWhileWaiting(now: number): void {
    if (this.windowStart < 0) {
      this.windowStart = now;
      this.freed = 0;
      return;
    }
    this.freed++;
    const span = now - this.windowStart;
    if (span < DRAIN_WINDOW_MS || (this.freed < DRAIN_MIN_FREED && span < DRAIN_LONGEST_WINDOW_MS)) return;
    const sample = this.freed / span;
    this.perMs = now - this.measuredAt > DRAIN_STALE_MS ? sample : (this.perMs + sample) / 2;
    this.measuredAt = now;
    this.windowStart = now;
    this.freed = 0;
  }

  /** Nobody waits any more: the window so far measured no drain. */
  emptied(): void {
    this.windowStart = -1;
  }

  /** How long the request at `position` in the queue (1 = next) will wait for a slot (ms); 0 when unknown. */
  waitMs(position: number, now: number): number {
    if (this.perMs === 0 || now - this.measuredAt > DRAIN_STALE_MS) return 0;
    return position / this.perMs;
  }
}

/**
 * A bounded number of requests in flight, with a queue-time cutoff: a request beyond
 * `maxInFlight` waits for a slot (oldest first); one that waited `maxQueueMs` is answered
 * 503 with `Retry-After` and ERR2009 in the envelope. So under overload the answered requests
 * keep a bounded latency and the excess is refused at once instead of piling up in memory.
 * A slot is freed when the response is finished or the client goes away (before or after it
 * sent the whole request).
 *
 * The wait counts from when the request reached the socket, not from when otpd parsed it:
 * under overload the event loop runs late and a request sits in the socket's buffer for
 * about as long as the loop's last turn took (`lag`). That time is taken off its queue
 * budget, and one that has already waited `maxQueueMs` unseen is shed at once.
 *
 * A request that would wait longer than its budget at the rate slots free up now
 * (`DrainRate`) is shed at once as well, instead of holding its connection for `maxQueueMs`
 * to get the same 503: under a sustained overload half the load would otherwise sit in the
 * queue only to be refused, and the clients' connections pile up with it (beyond their
 * pools, into the kernel's accept queue and SYN retries, where no shedding reaches).
 */
export function registerLoadShedding(app: FastifyInstance, opts: LoadSheddingOptions): { stats(): { inFlight: number; queued: number; shed: number } } {
  const lag = opts.lag ?? loopLag();
  const drain = opts.drain ?? new DrainRate();
  let inFlight = 0;
  let shed = 0;
  const queue: { admit: () => void; timer: NodeJS.Timeout }[] = [];
  // the requests holding a slot: each gives it back once, when its response is done or its client left
  const holding = new WeakSet<object>();
  const release = (request: object) => {
    if (!holding.delete(request)) return;
    inFlight--;
    const next = queue.shift();
    if (next) {
      drain.freedWhileWaiting(performance.now());
      clearTimeout(next.timer);
      next.admit();
    } else drain.emptied();
  };
  const retryAfter = Math.max(1, Math.ceil(opts.maxQueueMs / 1000));
  const shedNow = (request: FastifyRequest, reply: FastifyReply) => {
    shed++;
    const answer = Errors.overloaded({ seconds: retryAfter });
    reply.code(503).header('Retry-After', String(retryAfter)).type('application/json')
      .send(serialise(errorEnvelope(answer, request.url.startsWith('/validate/') ? 0 : 1)));
  };
  app.addHook('onRequest', (request, reply, done) => {
    if (EXEMPT.has(request.url.split('?')[0]!)) return done();
    const admit = () => {
      inFlight++;
      holding.add(request);
      // the response's 'close' comes however it ends: sent, failed, or the client gone after
      // sending the whole request (neither onResponse nor onRequestAbort runs then)
      reply.raw.once('close', () => release(request));
      done();
    };
    if (inFlight < opts.maxInFlight && queue.length === 0) return admit();
    // the time it waited before otpd could read it counts against its budget
    const budgetMs = opts.maxQueueMs - lag.ms();
    // and so does the wait ahead of it, at the rate slots free up now
    if (budgetMs <= 0 || drain.waitMs(queue.length + 1, performance.now()) > budgetMs) return shedNow(request, reply);
    const entry = {
      admit,
      timer: setTimeout(() => {
        queue.splice(queue.indexOf(entry), 1);
        shedNow(request, reply);
      }, budgetMs),
    };
    queue.push(entry);
    // a client that gave up while waiting needs no slot
    request.raw.once('close', () => {
      const i = queue.indexOf(entry);
      if (i >= 0 && request.raw.destroyed) {
        queue.splice(i, 1);
        clearTimeout(entry.timer);
      }
    });
  });
  app.addHook('onResponse', (request, _reply, done) => {
    release(request);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    release(request);
    done();
  });
  return { stats: () => ({ inFlight, queued: queue.length, shed }) };
}

