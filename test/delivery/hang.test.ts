// Invariant (security item 20): with a provider that hangs for 30 s, the caller's answer still
// comes within the wait bound, other messages are not held up, and the slow message is still
// delivered (its outcome recorded) when the provider finally answers. The hang is a real 30 s.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { httpProvider, serviceFixture, sms, type ServiceFixture } from './helpers.ts';

const HANG_MS = 30_000;
let f: ServiceFixture;
let hanging: HttpGateway;
let live: HttpGateway;

before(async () => {
  hanging = await new HttpGateway({ respond: () => ({ delayMs: HANG_MS, body: 'OK' }) }).start();
  live = await new HttpGateway().start();
  f = await serviceFixture('sqlite');
  await f.svc.setProvider(httpProvider('hanging', `${hanging.url}/send`, { RETURN_SUCCESS: 'OK' }, '40'));
  await f.svc.setProvider(httpProvider('live', `${live.url}/send`, { RETURN_SUCCESS: 'OK' }));
});
after(async () => {
  await f.close();
  await hanging.stop();
  await live.stop();
});

test('a provider hanging for 30 s: answer within the default bound (DeliveryWaitMs 3000), delivery recorded later', { timeout: 60_000 }, async () => {
  const id = await f.enqueue(sms('+4915112345678', 'Your code 555123'), { providers: ['hanging'], expiresInMs: 300_000 });
  const t0 = Date.now();
  const r = await f.svc.dispatchAndWait(id);
  const waited = Date.now() - t0;
  assert.deepEqual(r, { status: 'pending' });
  assert.ok(waited >= 2900 && waited < 3500, `answered after ${waited} ms`);
  assert.equal((await f.outbox.getOutbox(id))!.status, 'sending');

  // Meanwhile another message to a healthy provider goes out at once.
  const other = await f.enqueue(sms('+4915112345679', 'Your code 555124'), { providers: ['live'] });
  const t1 = Date.now();
  assert.deepEqual(await f.svc.dispatchAndWait(other, 3000), { status: 'accepted', provider: 'live' });
  assert.ok(Date.now() - t1 < 1000);

  await f.svc.idle();
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= HANG_MS - 100, `finished after ${elapsed} ms`);
  const row = await f.outbox.getOutbox(id);
  assert.equal(row!.status, 'accepted');
  assert.equal(row!.provider, 'hanging');
  assert.equal(row!.payload_enc, '');
  assert.equal(hanging.requests.length, 1);
});
