// Invariants: a message is sent at most once per provider attempt, even when dispatchers
// race (same node or two nodes); the chain fails over at once on a dead or refusing
// provider; only transient failures are retried, and never after the code expired;
// the stored text (which holds the code) is encrypted and wiped once the message is final.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { DeliveryOutcome } from '../../src/delivery/service.ts';
import { createDelivery } from '../../src/services.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { Smsc } from '../fixtures/smsc.ts';
import { httpProvider, serviceFixture, silentLogger, sms, type ServiceFixture } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

const OTP_TEXT = 'Your code 864209';

describe('dispatcher: failover, retries, idempotency (SQLite)', () => {
  let f: ServiceFixture;
  let live: HttpGateway;
  let deadUrl: string;
  let behaviour: 'ok' | 'fail' | '503' = 'ok';

  before(async () => {
    live = await new HttpGateway({
      respond: () => (behaviour === 'ok' ? { body: 'OK' } : behaviour === 'fail' ? { body: 'ERROR no credit' } : { status: 503, body: 'busy' }),
    }).start();
    deadUrl = `http://127.0.0.1:${await closedPort()}/send`;
  });
  after(() => live.stop());
  beforeEach(async () => {
    await f?.close();
    behaviour = 'ok';
    live.requests.length = 0;
    f = await serviceFixture('sqlite', { DeliveryBackoffMs: '60000', DeliveryRetryMs: '5000' });
    await f.svc.setProvider(httpProvider('dead', deadUrl, { RETURN_SUCCESS: 'OK' }));
    await f.svc.setProvider(httpProvider('live', `${live.url}/send`, { RETURN_SUCCESS: 'OK' }));
  });
  after(() => f?.close());

  test('a dead provider is skipped for the live one at once, and marked unhealthy', async () => {
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT, { serial: 'LSSM1', user: 'alice', realm: 'r' }), { providers: ['dead', 'live'] });
    const r = await f.svc.dispatchAndWait(id, 3000);
    assert.deepEqual(r, { status: 'accepted', provider: 'live' });
    assert.equal(live.requests.length, 1);
    assert.equal(live.requests[0]!.body.sms, OTP_TEXT);
    const log = await f.svc.deliveryLog({});
    const e = log.entries[0]!;
    assert.equal(e.status, 'accepted');
    assert.equal(e.to, '+4915*******78');
    assert.deepEqual(e.attempts.map((a) => [a.provider, a.status]), [['dead', 'transient'], ['live', 'accepted']]);
    assert.match(e.attempts[0]!.error, /ECONNREFUSED/);
    const [dead] = await f.svc.listProviders('sms', 'dead');
    assert.equal(dead!.health.failures, 1);
    assert.equal(dead!.health.downUntil, f.clock.now() + 60_000);

    // While it backs off, the next message goes straight to the live provider.
    const id2 = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['dead', 'live'] });
    assert.equal((await f.svc.dispatchAndWait(id2, 3000)).status, 'accepted');
    const e2 = (await f.svc.deliveryLog({})).entries[0]!;
    assert.deepEqual(e2.attempts.map((a) => a.provider), ['live']);
    // The audit has a row per final outcome, without the code.
    assert.ok(f.audit.some((a) => a.action === 'delivery/accepted' && a.info === 'sms to +4915*******78 via live'));
    assert.ok(!JSON.stringify(f.audit).includes('864209'));
  });

  test('an explicit refusal (RETURN_SUCCESS not matched) moves on at once and is not retried', async () => {
    const refusing = await new HttpGateway({ respond: () => ({ body: 'ERROR invalid number' }) }).start();
    try {
      await f.svc.setProvider(httpProvider('refusing', `${refusing.url}/x`, { RETURN_SUCCESS: 'OK' }));
      const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['refusing', 'live'] });
      assert.deepEqual(await f.svc.dispatchAndWait(id, 3000), { status: 'accepted', provider: 'live' });
      const e = (await f.svc.deliveryLog({})).entries[0]!;
      assert.deepEqual(e.attempts.map((a) => [a.provider, a.status, a.error]), [
        ['refusing', 'permanent', 'answer does not start with RETURN_SUCCESS'],
        ['live', 'accepted', ''],
      ]);
      assert.equal(refusing.requests.length, 1);
    } finally {
      await refusing.stop();
    }
  });

  test('when every provider refuses, the caller gets a clear failure within the bound and nothing is retried', async () => {
    behaviour = 'fail';
    const outcomes: DeliveryOutcome[] = [];
    f.svc.onOutcome((o) => outcomes.push(o));
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT, { serial: 'LSSM9' }), { providers: ['live'] });
    const t0 = Date.now();
    const r = await f.svc.dispatchAndWait(id, 3000);
    assert.ok(Date.now() - t0 < 3000);
    assert.deepEqual(r, { status: 'failed', error: 'live: answer does not start with RETURN_SUCCESS' });
    assert.deepEqual(outcomes.map((o) => [o.id, o.status, o.serial]), [[id, 'failed', 'LSSM9']]);
    const row = await f.outbox.getOutbox(id);
    assert.equal(row!.status, 'failed');
    assert.equal(row!.payload_enc, '');
    behaviour = 'ok';
    f.clock.advance(60_000);
    await f.svc.tick();
    assert.equal(live.requests.length, 1);
  });

  test('transient failures are retried in the background until accepted', async () => {
    behaviour = '503';
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['live'] });
    assert.equal((await f.svc.dispatchAndWait(id, 200)).status, 'pending');
    await f.svc.idle();
    let row = await f.outbox.getOutbox(id);
    assert.equal(row!.status, 'retry');
    assert.equal(row!.next_attempt_at, f.clock.now() + 5000);
    assert.equal(row!.error, 'live: gateway answered HTTP 503');
    // Not yet due: nothing happens.
    await f.svc.tick();
    await f.svc.idle();
    assert.equal(live.requests.length, 1);
    behaviour = 'ok';
    f.clock.advance(5000);
    await f.svc.tick();
    await f.svc.idle();
    row = await f.outbox.getOutbox(id);
    assert.equal(row!.status, 'accepted');
    assert.equal(row!.payload_enc, '');
    assert.equal(live.requests.length, 2);
  });

  test('retries stop when the code expires', async () => {
    behaviour = '503';
    const outcomes: DeliveryOutcome[] = [];
    f.svc.onOutcome((o) => outcomes.push(o));
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['live'], expiresInMs: 8000 });
    assert.equal((await f.svc.dispatchAndWait(id, 200)).status, 'pending');
    await f.svc.idle();
    f.clock.advance(8000);
    await f.svc.tick();
    const row = await f.outbox.getOutbox(id);
    assert.equal(row!.status, 'expired');
    assert.equal(row!.payload_enc, '');
    assert.equal(live.requests.length, 1);
    assert.deepEqual(outcomes.map((o) => o.status), ['expired']);
    // A retry that would land after the expiry ends the message at once.
    const id2 = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['live'], expiresInMs: 3000 });
    assert.deepEqual(await f.svc.dispatchAndWait(id2, 2000), { status: 'failed', error: 'live: gateway answered HTTP 503' });
    assert.equal((await f.outbox.getOutbox(id2))!.status, 'expired');
  });

  test('idempotency: the same key enqueues once; racing dispatchers on one or two nodes send once', async () => {
    const msg = sms('+4915112345678', OTP_TEXT);
    const a = await f.enqueue(msg, { idempotencyKey: 'challenge-123', providers: ['live'] });
    const b = await f.enqueue(msg, { idempotencyKey: 'challenge-123', providers: ['live'] });
    assert.equal(a, b);
    const other = createDelivery({ db: f.t.db, keyring: f.keyring, config: f.config, logger: silentLogger, clock: f.clock, policiesNaming: (action, name) => f.policies.policiesNaming(action, name) });
    await other.load();
    try {
      const results = await Promise.all([
        f.svc.dispatchAndWait(a, 3000),
        f.svc.dispatchAndWait(a, 3000),
        other.dispatchAndWait(a, 3000),
        other.dispatchAndWait(a, 3000),
        f.svc.tick(),
        other.tick(),
      ]);
      for (const r of results.slice(0, 4)) assert.deepEqual(r, { status: 'accepted', provider: 'live' });
      assert.equal(live.requests.length, 1);
      const rows = await f.t.db.kysely.selectFrom('delivery_outbox').select('id').where('idempotency_key', '=', 'challenge-123').execute();
      assert.equal(rows.length, 1);
      const attempts = await f.t.db.kysely.selectFrom('delivery_attempts').selectAll().where('outbox_id', '=', a).execute();
      assert.equal(attempts.length, 1);
    } finally {
      await other.stop();
    }
  });

  test('the stored text is encrypted and wiped when final; the log never shows the code', async () => {
    const slow = await new HttpGateway({ respond: () => ({ delayMs: 400 }) }).start();
    try {
      await f.svc.setProvider(httpProvider('slow', slow.url));
      const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['slow'] });
      const raw = await f.outbox.getOutbox(id);
      assert.match(raw!.payload_enc, /^g1:/);
      assert.ok(!JSON.stringify(raw).includes('864209'));
      assert.ok(!JSON.stringify(raw).includes('+4915112345678'));
      assert.equal((await f.svc.dispatchAndWait(id, 3000)).status, 'accepted');
      assert.equal((await f.outbox.getOutbox(id))!.payload_enc, '');
      const all = JSON.stringify(await f.t.db.kysely.selectFrom('delivery_outbox').selectAll().execute()) + JSON.stringify(await f.t.db.kysely.selectFrom('delivery_attempts').selectAll().execute());
      assert.ok(!all.includes('864209'));
    } finally {
      await slow.stop();
    }
  });

  test('a provider slower than the bound: pending within the bound, accepted recorded later', async () => {
    const slow = await new HttpGateway({ respond: () => ({ delayMs: 1500 }) }).start();
    try {
      await f.svc.setProvider(httpProvider('slow', slow.url, {}, '10'));
      const outcomes: DeliveryOutcome[] = [];
      f.svc.onOutcome((o) => outcomes.push(o));
      const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['slow'] });
      const t0 = Date.now();
      assert.deepEqual(await f.svc.dispatchAndWait(id, 300), { status: 'pending' });
      const waited = Date.now() - t0;
      assert.ok(waited >= 290 && waited < 800, `waited ${waited} ms`);
      await f.svc.idle();
      assert.equal((await f.outbox.getOutbox(id))!.status, 'accepted');
      assert.deepEqual(outcomes.map((o) => [o.id, o.status, o.provider]), [[id, 'accepted', 'slow']]);
      // A late caller sees the final state at once.
      assert.deepEqual(await f.svc.dispatchAndWait(id, 1000), { status: 'accepted', provider: 'slow' });
    } finally {
      await slow.stop();
    }
  });

  test('an empty chain uses the default provider; no provider at all is a clear failure', async () => {
    assert.equal(await f.svc.setDefaultProvider('sms', 'live'), true);
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT));
    assert.deepEqual(await f.svc.dispatchAndWait(id, 3000), { status: 'accepted', provider: 'live' });
    const id2 = await f.enqueue({ channel: 'email', to: 'a@example.org', text: 'x' });
    assert.deepEqual(await f.svc.dispatchAndWait(id2, 3000), { status: 'failed', error: 'no email provider configured' });
    const id3 = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['nosuch', 'live'] });
    assert.deepEqual(await f.svc.dispatchAndWait(id3, 3000), { status: 'accepted', provider: 'live' });
  });

  test('health probes bring a provider back once its back-off ended', async () => {
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['dead', 'live'] });
    await f.svc.dispatchAndWait(id, 3000);
    assert.equal((await f.svc.listProviders('sms', 'dead'))[0]!.health.failures, 1);
    // Still dead when probed: back-off doubles.
    f.clock.advance(60_000);
    await f.svc.tick();
    let h = (await f.svc.listProviders('sms', 'dead'))[0]!.health;
    assert.equal(h.failures, 2);
    assert.equal(h.downUntil, f.clock.now() + 120_000);
    assert.match(h.lastError, /^probe: /);
    // Point "dead" at the live gateway: the next probe finds it reachable, and it is used again;
    // the failures in a row end with the first message that goes through.
    await f.svc.setProvider(httpProvider('dead', `${live.url}/send`));
    f.clock.advance(120_000);
    await f.svc.tick();
    h = (await f.svc.listProviders('sms', 'dead'))[0]!.health;
    assert.deepEqual(h, { failures: 2, downUntil: 0, lastError: h.lastError });
    const id2 = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['dead', 'live'] });
    assert.deepEqual(await f.svc.dispatchAndWait(id2, 3000), { status: 'accepted', provider: 'dead' });
    h = (await f.svc.listProviders('sms', 'dead'))[0]!.health;
    assert.deepEqual(h, { failures: 0, downUntil: 0, lastError: h.lastError });
  });

  test('a provider that answers its probe but fails every send backs off twice as long each time', async () => {
    // the TCP probe of an HTTP gateway succeeds; its sends answer 503 (as a hanging or misconfigured one fails them)
    behaviour = '503';
    await f.svc.setProvider(httpProvider('flaky', `${live.url}/send`, { RETURN_SUCCESS: 'OK' }));
    const backoffs: number[] = [];
    for (let i = 0; i < 3; i++) {
      // expiring before its first retry, so the later passes send nothing more
      const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['flaky'], expiresInMs: 1000 });
      await f.svc.dispatchAndWait(id, 3000);
      await f.svc.idle();
      const h = (await f.svc.listProviders('sms', 'flaky'))[0]!.health;
      assert.equal(h.failures, i + 1);
      assert.equal(h.lastError, 'gateway answered HTTP 503');
      backoffs.push(h.downUntil - f.clock.now());
      // the back-off ends, the probe answers: usable again, the failures stay
      f.clock.advance(h.downUntil - f.clock.now() + 1);
      await f.svc.tick();
      assert.deepEqual((await f.svc.listProviders('sms', 'flaky'))[0]!.health, { failures: i + 1, downUntil: 0, lastError: 'gateway answered HTTP 503' });
    }
    assert.deepEqual(backoffs, [60_000, 120_000, 240_000]);
  });
});

describe('SMPP delivery receipts update the delivery log', () => {
  let f: ServiceFixture;
  let smsc: Smsc;
  before(async () => {
    smsc = await new Smsc({ receipt: { afterMs: 100, stat: 'DELIVRD' } }).start();
    f = await serviceFixture('sqlite');
    await f.svc.setProvider({
      type: 'sms',
      name: 'smsc',
      className: 'smsprovider.SMPPSMSProvider.SMPPSMSProvider',
      config: JSON.stringify({ server: '127.0.0.1', port: smsc.port, system_id: 'otpd', password: 'secret', source_addr: 'OTPD' }),
      timeout: '3',
    });
  });
  after(async () => {
    await f.close();
    await smsc.stop();
  });

  test('accepted → delivered with the SMSC message id', async () => {
    const outcomes: DeliveryOutcome[] = [];
    f.svc.onOutcome((o) => outcomes.push(o));
    const id = await f.enqueue(sms('+4915112345678', OTP_TEXT), { providers: ['smsc'] });
    const r = await f.svc.dispatchAndWait(id, 3000);
    assert.deepEqual(r, { status: 'accepted', provider: 'smsc' });
    // the outcome event follows the durable write (SQLite group commit: a read on the same
    // connection may see the row a moment before its commit has finished)
    await waitFor(async () => (await f.outbox.getOutbox(id))!.status === 'delivered' && outcomes.length >= 2, { what: 'the delivery receipt to be recorded', timeoutMs: 3000 });
    const e = (await f.svc.deliveryLog({})).entries[0]!;
    assert.equal(e.status, 'delivered');
    assert.equal(e.providerMessageId, smsc.submitted[0]!.messageId);
    assert.deepEqual(e.attempts.map((a) => [a.status, a.providerMessageId]), [['delivered', smsc.submitted[0]!.messageId]]);
    assert.deepEqual(outcomes.map((o) => o.status), ['accepted', 'delivered']);
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
