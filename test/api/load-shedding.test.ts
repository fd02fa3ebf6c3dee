// Invariant: at most maxInFlight requests are served at once; the next ones wait (oldest
// first) up to maxQueueMs and are then answered 503 with Retry-After and ERR2009 in the
// envelope, instead of queueing without bound; a freed slot admits the oldest waiter; /healthz
// is never held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerLoadShedding } from '../../src/api/load-shedding.ts';
import { Errors } from '../../src/errors.ts';

test('in-flight limit, queue-time cutoff, 503 with Retry-After, oldest waiter admitted, /healthz exempt', async () => {
  const app = Fastify();
  const shedding = registerLoadShedding(app, { maxInFlight: 2, maxQueueMs: 150 });
  const gates: (() => void)[] = [];
  app.get('/slow', () => new Promise((resolve) => gates.push(() => resolve({ ok: true }))));
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.ready();
  const first = app.inject('/slow');
  const second = app.inject('/slow');
  while (gates.length < 2) await new Promise((r) => setImmediate(r));
  const shedOne = await app.inject('/slow'); // waits 150 ms for a slot, then shed
  assert.equal(shedOne.statusCode, 503);
  assert.equal(shedOne.headers['retry-after'], '1');
  const body = JSON.parse(shedOne.body);
  assert.equal(body.result.status, false);
  assert.equal(body.result.error.code, Errors.overloaded.code);
  assert.equal((await app.inject('/healthz')).statusCode, 200, 'health check not held');
  const waiting = app.inject('/slow');
  while (shedding.stats().queued < 1) await new Promise((r) => setImmediate(r));
  gates[0]!();
  assert.equal((await first).statusCode, 200);
  while (gates.length < 3) await new Promise((r) => setImmediate(r));
  assert.deepEqual(shedding.stats(), { inFlight: 2, queued: 0, shed: 1 }, 'the waiter took the freed slot');
  gates[1]!();
  gates[2]!();
  assert.equal((await second).statusCode, 200);
  assert.equal((await waiting).statusCode, 200);
  assert.deepEqual(shedding.stats(), { inFlight: 0, queued: 0, shed: 1 });
  await app.close();
});

test('the time a request waited before otpd saw it (the event loop\'s lag) counts against its queue budget', async () => {
  let lagMs = 0;
  const app = Fastify();
  registerLoadShedding(app, { maxInFlight: 1, maxQueueMs: 1000, lag: { ms: () => lagMs } });
  const gates: (() => void)[] = [];
  app.get('/slow', () => new Promise((resolve) => gates.push(() => resolve({ ok: true }))));
  await app.ready();
  const holder = app.inject('/slow');
  while (gates.length < 1) await new Promise((r) => setImmediate(r));
  // the loop ran 1.2 s late: this one has waited longer than maxQueueMs already, shed at once
  lagMs = 1200;
  let t0 = performance.now();
  const late = await app.inject('/slow');
  assert.equal(late.statusCode, 503);
  assert.equal(JSON.parse(late.body).result.error.code, Errors.overloaded.code);
  assert.ok(performance.now() - t0 < 500, `shed at once, not after maxQueueMs (${performance.now() - t0} ms)`);
  // 900 ms late: 100 ms of its budget left
  lagMs = 900;
  t0 = performance.now();
  const rest = await app.inject('/slow');
  assert.equal(rest.statusCode, 503);
  const waited = performance.now() - t0;
  assert.ok(waited >= 90 && waited < 700, `shed after the rest of its budget (${waited} ms)`);
  gates[0]!();
  assert.equal((await holder).statusCode, 200);
  await app.close();
});
