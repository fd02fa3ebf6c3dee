// Invariant (security item 19): send limits per user, destination, prefix, country per day,
// client IP and a global budget trip at exactly their values, on every database, also under a
// concurrent burst; only allow-listed countries, no premium/unassigned ranges; an over-limit
// refusal sends nothing, is logged and audited, and the reason never carries the code.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { SendCounterRepository, type CounterBucket } from '../../src/delivery/counter-repository.ts';
import { limitProblem, parseLimit } from '../../src/delivery/settings.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';
import { serviceFixture, sms, type ServiceFixture } from './helpers.ts';

const OFF = {
  DeliveryLimitPerUser: 'off',
  DeliveryLimitPerDestination: 'off',
  DeliveryLimitPerPrefix: 'off',
  DeliveryLimitPerCountry: 'off',
  DeliveryLimitPerClient: 'off',
  DeliveryLimitGlobal: 'off',
  DeliveryAllowedCountryCodes: '*',
};

const bucket = (scope: string, name: string, max: number, windowStart = 0): CounterBucket => ({ scope, bucket: name, windowStart, max, expiresAt: windowStart + 3_600_000 });

for (const { dialect, skip } of await availableDialects()) {
  describe(`send-limit counters on ${dialect}`, { skip }, () => {
    let t: TestDb;
    let repo: SendCounterRepository;
    beforeEach(async () => {
      t = await createTestDb(dialect);
      repo = new SendCounterRepository(t.db);
    });
    afterEach(() => t.drop());

    test('a limit of 3 allows exactly 3; all buckets or none are counted', async () => {
      const results = [];
      for (let i = 0; i < 4; i++) results.push((await repo.consume([bucket('user', 'alice', 3)])).ok);
      assert.deepEqual(results, [true, true, true, false]);
      assert.equal(await repo.counterValue('user', 'alice', 0), 3);
      // Another window and another bucket start from zero.
      assert.equal((await repo.consume([bucket('user', 'alice', 3, 3_600_000)])).ok, true);
      assert.equal((await repo.consume([bucket('user', 'bob', 3)])).ok, true);
      // B is full: A must not be counted either.
      const r1 = await repo.consume([bucket('global', 'sms', 5), bucket('destination', 'd1', 1)]);
      const r2 = await repo.consume([bucket('global', 'sms', 5), bucket('destination', 'd1', 1)]);
      assert.equal(r1.ok, true);
      assert.deepEqual(r2, { ok: false, bucket: bucket('destination', 'd1', 1) });
      assert.equal(await repo.counterValue('global', 'sms', 0), 1);
    });

    test('a concurrent burst of 25 against a limit of 7 lets exactly 7 through', async () => {
      const results = await Promise.all(Array.from({ length: 25 }, () => repo.consume([bucket('global', 'sms', 100), bucket('prefix', 'p', 7)])));
      assert.equal(results.filter((r) => r.ok).length, 7);
      assert.equal(await repo.counterValue('prefix', 'p', 0), 7);
      assert.equal(await repo.counterValue('global', 'sms', 0), 7);
    });

    test('expired windows are pruned', async () => {
      await repo.consume([bucket('user', 'old', 3, 0)]);
      await repo.consume([bucket('user', 'new', 3, 7_200_000)]);
      await repo.pruneCounters(3_600_001);
      assert.equal(await repo.counterValue('user', 'old', 0), 0);
      assert.equal(await repo.counterValue('user', 'new', 7_200_000), 1);
    });
  });
}

describe('checkLimits: every limit trips at exactly its value (SQLite)', () => {
  let f: ServiceFixture;
  const fresh = async (settings: Record<string, string>) => {
    await f?.close();
    f = await serviceFixture('sqlite', { ...OFF, ...settings });
  };
  after(() => f?.close());

  const allowed = async (n: number, make: (i: number) => Parameters<ServiceFixture['svc']['checkLimits']>[0]) => {
    const out: boolean[] = [];
    for (let i = 0; i < n; i++) out.push((await f.svc.checkLimits(make(i))).ok);
    return out;
  };

  test('per user', async () => {
    await fresh({ DeliveryLimitPerUser: '3/3600' });
    const r = await allowed(4, (i) => sms(`+491511234567${i}`, 'x', { user: 'alice', realm: 'r1' }));
    assert.deepEqual(r, [true, true, true, false]);
    assert.deepEqual(await f.svc.checkLimits(sms('+4915112345670', 'x', { user: 'alice', realm: 'r1' })), { ok: false, reason: 'send limit per user reached (3 per 3600 s)' });
    assert.equal((await f.svc.checkLimits(sms('+4915112345670', 'x', { user: 'bob', realm: 'r1' }))).ok, true);
    f.clock.advance(3_600_000);
    assert.equal((await f.svc.checkLimits(sms('+4915112345670', 'x', { user: 'alice', realm: 'r1' }))).ok, true);
  });

  test('per destination (whatever the spelling of the number)', async () => {
    await fresh({ DeliveryLimitPerDestination: '2/600', DeliveryDefaultCountry: 'DE' });
    const spellings = ['+4915112345678', '0151 12345678', '0049-151-12345678'];
    const r = await allowed(3, (i) => sms(spellings[i]!, 'x', { user: `u${i}` }));
    assert.deepEqual(r, [true, true, false]);
    assert.equal((await f.svc.checkLimits(sms('+4915112345679', 'x'))).ok, true);
  });

  test('per prefix (the number without its last 4 digits)', async () => {
    await fresh({ DeliveryLimitPerPrefix: '5' });
    const r = await allowed(6, (i) => sms(`+491511234${String(1000 + i * 37)}`, 'x'));
    assert.deepEqual(r, [true, true, true, true, true, false]);
    assert.equal((await f.svc.checkLimits(sms('+4915112445678', 'x'))).ok, true);
  });

  test('per country per day', async () => {
    await fresh({ DeliveryLimitPerCountry: '2/86400' });
    const r = await allowed(3, (i) => sms(`+4915112345${600 + i}`, 'x'));
    assert.deepEqual(r, [true, true, false]);
    assert.equal((await f.svc.checkLimits(sms('+33612345678', 'x'))).ok, true);
  });

  test('per client IP', async () => {
    await fresh({ DeliveryLimitPerClient: '2/60' });
    const r = await allowed(3, (i) => sms(`+4915112345${600 + i}`, 'x', { client: '192.0.2.7' }));
    assert.deepEqual(r, [true, true, false]);
    assert.equal((await f.svc.checkLimits(sms('+4915112345699', 'x', { client: '192.0.2.8' }))).ok, true);
  });

  test('global budget, per channel', async () => {
    await fresh({ DeliveryLimitGlobal: '4/86400' });
    const r = await allowed(5, (i) => sms(`+4915112345${600 + i}`, 'x'));
    assert.deepEqual(r, [true, true, true, true, false]);
    assert.equal((await f.svc.checkLimits({ channel: 'email', to: 'a@example.org', text: 'x' })).ok, true);
  });

  test('a concurrent burst against the per-destination limit', async () => {
    await fresh({ DeliveryLimitPerDestination: '5/3600' });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => f.svc.checkLimits(sms('+4915112345678', 'x', { user: `u${i}` }))));
    assert.equal(results.filter((r) => r.ok).length, 5);
  });

  test('refusals are logged (masked) and audited, counted in metrics, never with the code', async () => {
    await fresh({ DeliveryLimitPerUser: '1/3600' });
    await f.svc.checkLimits(sms('+4915112345678', 'Your code 121212', { user: 'eve', realm: 'r', client: '198.51.100.9' }));
    const r = await f.svc.checkLimits(sms('+4915112345678', 'Your code 343434', { user: 'eve', realm: 'r', client: '198.51.100.9' }));
    assert.equal(r.ok, false);
    const log = await f.svc.deliveryLog({ status: 'refused' });
    assert.equal(log.total, 1);
    assert.deepEqual(
      { to: log.entries[0]!.to, status: log.entries[0]!.status, error: log.entries[0]!.error, user: log.entries[0]!.user, client: log.entries[0]!.client },
      { to: '+4915*******78', status: 'refused', error: 'send limit per user reached (1 per 3600 s)', user: 'eve', client: '198.51.100.9' },
    );
    assert.deepEqual(f.audit.map((a) => [a.action, a.success, a.info]), [['delivery/refused', false, 'sms to +4915*******78: send limit per user reached (1 per 3600 s)']]);
    assert.deepEqual(f.svc.metrics().refusedByLimit, { 'limit:user': 1 });
    const everything = JSON.stringify(await f.t.db.kysely.selectFrom('delivery_outbox').selectAll().execute()) + JSON.stringify(await f.t.db.kysely.selectFrom('delivery_counters').selectAll().execute());
    assert.ok(!everything.includes('343434') && !everything.includes('121212'));
    assert.ok(!everything.includes('+4915112345678'));
  });

  test('country allow-list, default country per realm, premium and unassigned ranges', async () => {
    await fresh({ DeliveryAllowedCountryCodes: '49,33' });
    assert.deepEqual(await f.svc.checkLimits(sms('+12025550123', 'x')), { ok: false, reason: 'country calling code +1 is not allowed' });
    assert.deepEqual(await f.svc.checkLimits(sms('+33612345678', 'x')), { ok: true, normalizedTo: '+33612345678' });
    assert.deepEqual(await f.svc.checkLimits(sms('0612345678', 'x')), { ok: false, reason: 'unusable phone number (not international and no default country)' });
    await f.config.set('DeliveryDefaultCountry.paris', 'FR');
    assert.deepEqual(await f.svc.checkLimits(sms('06 12 34 56 78', 'x', { realm: 'paris' })), { ok: true, normalizedTo: '+33612345678' });

    // Empty allow-list = the default countries' codes only.
    await fresh({ DeliveryAllowedCountryCodes: '', DeliveryDefaultCountry: 'DE' });
    assert.equal((await f.svc.checkLimits(sms('015112345678', 'x'))).ok, true);
    assert.deepEqual(await f.svc.checkLimits(sms('+33612345678', 'x')), { ok: false, reason: 'country calling code +33 is not allowed' });

    await fresh({ DeliveryBlockedPrefixes: '+4915199' });
    assert.deepEqual(await f.svc.checkLimits(sms('+19005551234', 'x')), { ok: false, reason: 'premium-rate numbers are refused' });
    assert.deepEqual(await f.svc.checkLimits(sms('+12011234567', 'x')), { ok: false, reason: 'phone number not in an assigned range' });
    assert.deepEqual(await f.svc.checkLimits(sms('+4915199123456', 'x')), { ok: false, reason: 'phone number in a blocked range' });
    assert.deepEqual(await f.svc.checkLimits(sms('not a number', 'x')), { ok: false, reason: 'unusable phone number (not international and no default country)' });
    await f.config.set('DeliveryPhoneValidation', 'possible');
    assert.deepEqual(await f.svc.checkLimits(sms('+12011234567', 'x')), { ok: true, normalizedTo: '+12011234567' });
    assert.deepEqual(await f.svc.checkLimits({ channel: 'email', to: 'Alice <a@example.org>', text: 'x' }), { ok: false, reason: 'unusable e-mail address' });
    assert.deepEqual(await f.svc.checkLimits({ channel: 'email', to: 'Bob@Example.ORG', text: 'x' }), { ok: true, normalizedTo: 'Bob@example.org' });
  });

  test('the shipped defaults are on', async () => {
    await f?.close();
    f = await serviceFixture('sqlite', { DeliveryAllowedCountryCodes: '*' });
    const r = await allowed(11, () => sms('+4915112345678', 'x', { user: 'zed' }));
    assert.deepEqual(r, [...Array(10).fill(true), false]);
  });
});

test('limit syntax', () => {
  assert.deepEqual(parseLimit('10/3600'), { max: 10, windowMs: 3_600_000 });
  assert.deepEqual(parseLimit('5'), { max: 5, windowMs: 3_600_000 });
  assert.deepEqual(parseLimit('100/1d'), { max: 100, windowMs: 86_400_000 });
  assert.equal(parseLimit('off'), undefined);
  assert.equal(parseLimit('0'), undefined);
  assert.equal(limitProblem('ten'), 'use "count/seconds" (e.g. 10/3600), "count" (per hour) or "off"');
  assert.equal(limitProblem('3/60'), null);
});
