// Invariants on every database: the outbox row lives and dies with the caller's transaction;
// one idempotency key is one row; exactly one dispatcher holds a message's lease; an attempt
// number is used once; a final message has no stored text left.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { OutboxRepository } from '../../src/delivery/outbox-repository.ts';
import type { OutboxRow } from '../../src/delivery/repository.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { httpProvider, serviceFixture, sms, type ServiceFixture } from './helpers.ts';

const row = (key: string, now = 1_000): Omit<OutboxRow, 'id'> => ({
  idempotency_key: key,
  channel: 'sms',
  destination_masked: '+4915*******78',
  destination_hash: 'h',
  payload_enc: 'g1:sealed',
  providers: '["a"]',
  refused: '[]',
  status: 'queued',
  attempts: 0,
  next_attempt_at: now,
  lease_owner: '',
  lease_until: 0,
  provider: '',
  provider_message_id: '',
  error: '',
  user_name: 'alice',
  realm: 'r',
  serial: 'LSSM1',
  client: '',
  created_at: now,
  updated_at: now,
  expires_at: now + 60_000,
  finished_at: null,
});

for (const { dialect, skip } of await availableDialects()) {
  describe(`outbox repository on ${dialect}`, { skip }, () => {
    let t: TestDb;
    let repo: OutboxRepository;
    beforeEach(async () => {
      t = await createTestDb(dialect);
      repo = new OutboxRepository(t.db);
    });
    afterEach(() => t.drop());

    test('the row commits and rolls back with the caller transaction', async () => {
      await assert.rejects(
        t.db.kysely.transaction().execute(async (trx) => {
          await repo.enqueue(trx, row('rolled-back'));
          throw new Error('challenge failed');
        }),
        /challenge failed/,
      );
      const id = await t.db.kysely.transaction().execute((trx) => repo.enqueue(trx, row('kept')));
      const all = await t.db.kysely.selectFrom('delivery_outbox').select(['id', 'idempotency_key']).execute();
      assert.deepEqual(all.map((r) => [Number(r.id), r.idempotency_key]), [[id, 'kept']]);
    });

    test('one idempotency key is one row, also for concurrent enqueues', async () => {
      const ids = await Promise.all(Array.from({ length: 6 }, () => t.db.kysely.transaction().execute((trx) => repo.enqueue(trx, row('same')))));
      assert.equal(new Set(ids).size, 1);
      const count = await t.db.kysely.selectFrom('delivery_outbox').select((eb) => eb.fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
      assert.equal(Number(count.c), 1);
    });

    test('exactly one of many concurrent claims wins; attempts are numbered once', async () => {
      const id = await repo.enqueue(t.db.kysely, row('claim'));
      const claims = await Promise.all(['n1', 'n2', 'n3', 'n4'].map((owner) => repo.claim(id, owner, 2_000, 30_000)));
      const winners = claims.filter(Boolean);
      assert.equal(winners.length, 1);
      const owner = winners[0]!.lease_owner;
      // Not due again while the lease holds.
      assert.deepEqual(await repo.dueIds(2_000, 10), []);
      assert.equal(await repo.claim(id, 'late', 2_500, 30_000), undefined);
      const a1 = await repo.beginAttempt(id, owner, 0, 'a', 2_000, 30_000);
      assert.deepEqual(a1, { attemptNo: 1, attemptKey: `${id}:1` });
      // A stale view of the attempt count, or another owner, gets nothing.
      assert.equal(await repo.beginAttempt(id, owner, 0, 'a', 2_000, 30_000), undefined);
      assert.equal(await repo.beginAttempt(id, 'other', 1, 'a', 2_000, 30_000), undefined);
      await repo.finishAttempt(a1!.attemptKey, 'accepted', 'mid-1', '', 2_100);
      assert.equal(await repo.finalize(id, 'other', 'accepted', {}, 2_100), false);
      assert.equal(await repo.finalize(id, owner, 'accepted', { provider: 'a', providerMessageId: 'mid-1' }, 2_100), true);
      const done = await repo.getOutbox(id);
      assert.deepEqual([done!.status, done!.payload_enc, done!.lease_owner, done!.provider_message_id, Number(done!.finished_at)], ['accepted', '', '', 'mid-1', 2_100]);
      // A receipt moves it on; a second identical one changes nothing.
      assert.equal((await repo.applyReceipt('sms', 'a', 'mid-1', 'delivered', 'DELIVRD', 3_000)).length, 1);
      assert.equal((await repo.applyReceipt('sms', 'a', 'mid-1', 'delivered', 'DELIVRD', 3_000)).length, 0);
      assert.deepEqual((await repo.attemptsOf([id])).map((a) => [a.attempt_no, a.status, a.provider_message_id]), [[1, 'delivered', 'mid-1']]);
    });

    test('a dead dispatcher’s lease expires; overdue messages expire with their text wiped', async () => {
      const id = await repo.enqueue(t.db.kysely, row('crash'));
      assert.ok(await repo.claim(id, 'crashed', 2_000, 5_000));
      assert.deepEqual(await repo.dueIds(6_000, 10), []);
      assert.deepEqual(await repo.dueIds(7_001, 10), [id]);
      assert.ok(await repo.claim(id, 'rescuer', 7_001, 5_000));
      assert.equal(await repo.scheduleRetry(id, 'rescuer', 9_000, 'a: 503', 7_100), true);
      const expired = await repo.expireOverdue(61_000);
      assert.deepEqual(expired.map((r) => [r.id, r.status]), [[id, 'expired']]);
      const r = await repo.getOutbox(id);
      assert.deepEqual([r!.status, r!.payload_enc, r!.error], ['expired', '', 'a: 503']);
      await repo.pruneLog(1_001);
      assert.equal(await repo.getOutbox(id), undefined);
    });
  });

  describe(`DeliveryService end to end on ${dialect}`, { skip }, () => {
    let f: ServiceFixture;
    let gw: HttpGateway;
    before(async () => {
      gw = await new HttpGateway({ respond: () => ({ body: 'OK', headers: { 'x-message-id': 'gw-1' } }) }).start();
      f = await serviceFixture(dialect, { DeliveryAllowedCountryCodes: '*' });
      await f.svc.setProvider(httpProvider('gw', gw.url, { RETURN_SUCCESS: 'OK' }));
    });
    after(async () => {
      await f.close();
      await gw.stop();
    });

    test('limits, enqueue, dispatch, log', async () => {
      const msg = sms('+4915112345678', 'Your code 246810', { user: 'alice', realm: 'r', serial: 'LSSM7', client: '192.0.2.1' });
      const check = await f.svc.checkLimits(msg);
      assert.deepEqual(check, { ok: true, normalizedTo: '+4915112345678' });
      const id = await f.enqueue({ ...msg, to: check.ok ? check.normalizedTo : msg.to }, { idempotencyKey: 'tx-1' });
      assert.deepEqual(await f.svc.dispatchAndWait(id, 3000), { status: 'accepted', provider: 'gw' });
      const log = await f.svc.deliveryLog({ user: 'alice' });
      assert.equal(log.total, 1);
      assert.deepEqual(
        { status: log.entries[0]!.status, provider: log.entries[0]!.provider, id: log.entries[0]!.providerMessageId, serial: log.entries[0]!.serial, n: log.entries[0]!.attempts.length },
        { status: 'accepted', provider: 'gw', id: 'gw-1', serial: 'LSSM7', n: 1 },
      );
      assert.equal(gw.requests.length, 1);
    });
  });
}
