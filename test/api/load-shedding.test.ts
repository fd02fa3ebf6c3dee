// Invariant: at most maxInFlight requests are served at once; the next ones wait (oldest
// first) up to maxQueueMs and are then answered 503 with Retry-After and ERR2009 in the
// envelope, instead of queueing without bound; a freed slot admits the oldest waiter; /healthz
// is never held.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { DrainRate, registerLoadShedding } from '../../src/api/load-shedding.ts';
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

test('the drain rate: freed slots a ms while requests wait, from windows of 100 ms or more; unknown when idle or stale', () => {
  const rate = new DrainRate();
  assert.equal(rate.waitMs(10, 0), 0, 'nothing measured yet: no estimate');
  // a slot every 10 ms while requests wait: the first starts the window
  for (let t = 0; t <= 100; t += 10) rate.freedWhileWaiting(t);
  assert.equal(rate.waitMs(10, 100), 100, 'ten ahead at one per 10 ms');
  // the queue emptied: the idle stretch that follows does not count
  rate.emptied();
  for (let t = 5000; t <= 5100; t += 20) rate.freedWhileWaiting(t);
  assert.equal(rate.waitMs(10, 5100), 0, 'five freed in 100 ms are too few to measure, and the old measurement is stale');
  rate.emptied();
  for (let t = 5200; t <= 5300; t += 12.5) rate.freedWhileWaiting(t);
  assert.equal(rate.waitMs(10, 5300), 125, 'the new measurement alone: eight in 100 ms');
  for (let t = 5310; t <= 5400; t += 10) rate.freedWhileWaiting(t);
  assert.ok(Math.abs(rate.waitMs(9, 5400) - 9 / 0.09) < 1e-9, 'the next window averaged with the last');
  assert.equal(rate.waitMs(10, 5400 + 2001), 0, 'stale after 2 s');
});

test('a request that would wait past its budget at the rate slots free up is shed at once, not after maxQueueMs', async () => {
  const app = Fastify();
  const shedding = registerLoadShedding(app, { maxInFlight: 1, maxQueueMs: 2000 });
  // one request at a time, 50 ms each: 40 waiting fill the 2 s budget
  app.get('/work', () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 50)));
  await app.ready();
  // a first burst the node serves within the budget: the drain rate is measured on it
  const first = Array.from({ length: 12 }, () => app.inject('/work'));
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(shedding.stats().queued > 0, 'still saturated');
  const t0 = performance.now();
  const burst = await Promise.all(Array.from({ length: 100 }, async () => {
    const res = await app.inject('/work');
    return { status: res.statusCode, ms: performance.now() - t0, code: res.statusCode === 503 ? JSON.parse(res.body).result.error.code : undefined };
  }));
  assert.ok((await Promise.all(first)).every((r) => r.statusCode === 200), 'the first burst served');
  const shed = burst.filter((r) => r.status === 503);
  const served = burst.filter((r) => r.status === 200);
  assert.equal(shed.length + served.length, 100);
  assert.ok(shed.length >= 40 && served.length >= 20, `about 40 served, the rest shed: ${served.length} served, ${shed.length} shed`);
  assert.ok(shed.every((r) => r.code === Errors.overloaded.code));
  // shed at once: long before the 2 s a waiter would have waited for the same 503
  const slowestShed = Math.max(...shed.map((r) => r.ms));
  assert.ok(slowestShed < 1000, `the excess was shed at once (slowest 503 after ${Math.round(slowestShed)} ms)`);
  await app.close();
});
