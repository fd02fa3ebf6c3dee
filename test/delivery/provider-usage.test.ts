// Invariant: a provider that a policy names (sms_provider / email_provider, active or not) is
// never deleted, also when the policy was stored on another node a moment ago; and when that
// cannot be told (the policies cannot be read, or a stored policy that mentions the action
// does not parse), delProvider fails closed: error providerUsageUnknown, the provider stays.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Errors, type OtpdError } from '../../src/errors.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { httpProvider, serviceFixture, silentLogger, type FixtureOptions, type ServiceFixture } from './helpers.ts';

describe('delProvider asks the policy service and fails closed (SQLite)', () => {
  let f: ServiceFixture | undefined;
  afterEach(() => f?.close());

  const withProviders = async (opts: FixtureOptions = {}) => {
    f = await serviceFixture('sqlite', {}, opts);
    await f.svc.setProvider({ ...httpProvider('first', 'http://127.0.0.1:9/send'), isDefault: true });
    await f.svc.setProvider(httpProvider('second', 'http://127.0.0.1:9/send'));
    return f;
  };
  const names = async (fx: ServiceFixture) => (await fx.svc.listProviders('sms')).map((p) => p.name);
  const storeRaw = (fx: ServiceFixture, name: string, action: string, active = 1) =>
    fx.t.db.kysely.insertInto('policies').values({ name, scope: 'authentication', action, realm: '*', user: '*', client: '*', time: '', active }).execute();
  const refusedWith = (code: number) => (e: unknown) => (e as OtpdError).code === code;

  test('a policy stored on another node blocks the deletion at once; an inactive one too', async () => {
    const fx = await withProviders();
    const otherNode = new PolicyService({ db: fx.t.db, logger: silentLogger, clock: fx.clock });
    await otherNode.load();
    await otherNode.set({ name: 'route', scope: 'authentication', action: "sms_provider='first second'", realm: '*', user: '*', client: '*' });
    await otherNode.set({ name: 'dormant', scope: 'authentication', action: 'sms_provider=second', realm: '*', user: '*', client: '*', active: 'False' });
    assert.deepEqual(await fx.svc.deleteProvider('sms', 'second'), { ok: false, message: 'Unable to delete - provider used in policies!\n[dormant, route]' });
    await otherNode.delete(['route', 'dormant']);
    assert.deepEqual(await fx.svc.deleteProvider('sms', 'second'), { ok: true });
    assert.deepEqual(await names(fx), ['first']);
  });

  test('a name that only contains the provider name, or another action, does not count', async () => {
    const fx = await withProviders();
    await fx.policies.set({ name: 'lookalike', scope: 'authentication', action: 'sms_provider=secondary, email_provider=second', realm: '*', user: '*', client: '*' });
    assert.deepEqual(await fx.svc.deleteProvider('sms', 'second'), { ok: true });
  });

  test('a stored policy that does not parse and mentions sms_provider: refused, the provider stays', async () => {
    const fx = await withProviders();
    await storeRaw(fx, 'broken', 'sms_provider=second, nosuchaction');
    await storeRaw(fx, 'unrelated', 'nosuchaction');
    await assert.rejects(fx.svc.deleteProvider('sms', 'second'), refusedWith(Errors.providerUsageUnknown.code));
    assert.deepEqual(await names(fx), ['first', 'second']);
    // A stored policy that does not parse but cannot be about sms providers does not block.
    await fx.t.db.kysely.deleteFrom('policies').where('name', '=', 'broken').execute();
    assert.deepEqual(await fx.svc.deleteProvider('sms', 'second'), { ok: true });
  });

  test('fault injection: the policies cannot be read → refused, nothing deleted, also under a burst', async () => {
    let asked = 0;
    const fx = await withProviders({
      policiesNaming: async () => {
        asked++;
        throw new Error('connection reset');
      },
    });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => fx.svc.deleteProvider('sms', 'second')));
    assert.equal(asked, 8);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r.reason as OtpdError).code, Errors.providerUsageUnknown.code);
    }
    assert.deepEqual(await names(fx), ['first', 'second']);
  });

  test('the real policy service failing (no policies table) fails closed too', async () => {
    const fx = await withProviders();
    await fx.t.db.kysely.schema.dropTable('policies').execute();
    await assert.rejects(fx.svc.deleteProvider('sms', 'second'), refusedWith(Errors.providerUsageUnknown.code));
    assert.deepEqual(await names(fx), ['first', 'second']);
  });
});
