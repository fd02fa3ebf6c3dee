// Invariant: the RADIUS server drops what it cannot answer in time instead of answering it late:
// beyond maxInFlight Access-Requests at once, and (with maxQueueMs) when the time a packet
// waited unseen (the event loop's lag) plus the time recent requests took to handle reaches
// maxQueueMs; with nothing in flight a packet is always admitted, so the estimate recovers.
// Every such drop is counted as `overload`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import radius from 'radius';
import type { RadiusAuthResult } from '../../src/radius/server.ts';
import { SECRET, startHarness, type Harness } from './helpers.ts';

let h: Harness;
let lagMs = 0;
let handlingMs = 0;
const gates: (() => void)[] = [];
let holding = false;
before(async () => {
  h = await startHarness({
    authenticate: async (): Promise<RadiusAuthResult> => {
      if (holding) await new Promise<void>((r) => gates.push(r));
      else if (handlingMs) await new Promise((r) => setTimeout(r, handlingMs));
      return { kind: 'reject' };
    },
    deps: { maxInFlight: 2, maxQueueMs: 500, lag: { ms: () => lagMs } },
  });
});
after(async () => h?.close());

let id = 0;
const request = () => {
  const packet = radius.encode({ code: 'Access-Request', secret: SECRET, identifier: id++ % 256, attributes: [['User-Name', 'alice'], ['User-Password', 'x']], add_message_authenticator: true });
  return h.server.handle(packet, { address: '127.0.0.1', port: 40000 + id });
};
const overloadDrops = () => h.server.stats().dropped.overload ?? 0;

test('beyond maxInFlight: dropped, counted as overload; a freed slot admits again', async () => {
  holding = true;
  const a = request();
  const b = request();
  while (gates.length < 2) await new Promise((r) => setImmediate(r));
  const before = overloadDrops();
  assert.equal(await request(), null, 'a third one is dropped');
  assert.equal(overloadDrops(), before + 1);
  holding = false;
  for (const g of gates.splice(0)) g();
  assert.ok(await a);
  assert.ok(await b);
  assert.ok(await request(), 'answered again');
});

test('lag plus recent handling time at maxQueueMs: dropped while something is in flight, admitted when nothing is', async () => {
  // recent requests took ~300 ms each: the moving average climbs towards it
  handlingMs = 300;
  await Promise.all(Array.from({ length: 2 }, () => request()));
  for (let k = 0; k < 12; k++) await request();
  handlingMs = 0;
  holding = true;
  const inFlight = request();
  while (gates.length < 1) await new Promise((r) => setImmediate(r));
  lagMs = 0;
  const before = overloadDrops();
  // average ~215 ms + lag 0 < 500: admitted
  const admitted = request();
  while (gates.length < 2) await new Promise((r) => setImmediate(r));
  holding = false;
  for (const g of gates.splice(0)) g();
  assert.ok(await inFlight);
  assert.ok(await admitted);
  holding = true;
  const another = request();
  while (gates.length < 1) await new Promise((r) => setImmediate(r));
  lagMs = 400; // the loop runs 400 ms late: 400 + ~200 ≥ 500
  assert.equal(await request(), null, 'dropped: it would be answered after maxQueueMs');
  assert.equal(overloadDrops(), before + 1);
  holding = false;
  for (const g of gates.splice(0)) g();
  assert.ok(await another);
  // nothing in flight: admitted whatever the estimate says, and its quick handling brings the average down
  lagMs = 2000;
  assert.ok(await request(), 'nothing in flight: admitted');
  lagMs = 0;
});
