// Invariant: a request's load-shedding slot is given back however its connection ends, also
// when the client sent the whole request and closed the connection before the answer (a load
// generator stopping, a proxy timing out): a slot kept by such a request is lost for good, and
// once all are lost every request waits maxQueueMs and is shed with 503.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import Fastify from 'fastify';
import { registerLoadShedding } from '../../src/api/load-shedding.ts';

test('a client that closes its connection after sending the whole request frees its slot', async () => {
  const app = Fastify();
  const shedding = registerLoadShedding(app, { maxInFlight: 2, maxQueueMs: 200 });
  const gates: (() => void)[] = [];
  app.post('/slow', () => new Promise((resolve) => gates.push(() => resolve({ ok: true }))));
  const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
  try {
    const sockets = [0, 1].map(() => {
      const s = net.connect(Number(url.port), '127.0.0.1');
      s.on('error', () => {});
      s.write('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
      return s;
    });
    while (gates.length < 2) await new Promise((r) => setTimeout(r, 5));
    assert.equal(shedding.stats().inFlight, 2);
    // the clients go away with their requests complete and unanswered
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    for (const g of gates) g();
    for (let k = 0; k < 100 && shedding.stats().inFlight > 0; k++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(shedding.stats().inFlight, 0, 'both slots free again');
    // and a new request is served, not shed after maxQueueMs
    const next = fetch(new URL('/slow', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    while (gates.length < 3) await new Promise((r) => setTimeout(r, 5));
    gates[2]!();
    assert.equal((await next).status, 200);
    assert.deepEqual(shedding.stats(), { inFlight: 0, queued: 0, shed: 0 });
  } finally {
    await app.close();
  }
});
