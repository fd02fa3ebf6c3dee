import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { Errors, OtpdError } from '../../src/errors.ts';
import { CENSORED, RadiusClientService, syncConfiguredClients } from '../../src/radius/clients.ts';
import { RadiusStateStore, STATE_BYTES } from '../../src/radius/states.ts';
import { readRevisions } from '../../src/store/revisions.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';

const rejects = (p: Promise<unknown>, pattern: RegExp, code: number = Errors.invalidRadiusClient.code) =>
  assert.rejects(p, (e: unknown) => e instanceof OtpdError && e.code === code && pattern.test(e.message));

for (const { dialect, skip } of await availableDialects()) {
  describe(`RADIUS clients and states on ${dialect}`, { skip }, () => {
    let t: TestDb;
    const keyring = KeyRing.fromBytes();
    let service: RadiusClientService;
    before(async () => {
      t = await createTestDb(dialect);
      service = new RadiusClientService({ db: t.db, keyring });
    });
    after(async () => t?.drop());

    it('stores the secret sealed, lists it censored, and keeps it when __CENSORED__ comes back', async () => {
      const revBefore = (await readRevisions(t.db)).get('radius') ?? 0;
      await service.add({ name: 'vpn', address: '192.0.2.7', secret: 'vpn-secret', realm: 'corp' });
      const row = await t.db.kysely.selectFrom('radius_clients').selectAll().where('name', '=', 'vpn').executeTakeFirstOrThrow();
      assert.ok(!row.secret_enc.includes('vpn-secret'));
      assert.equal(keyring.decryptString('config', row.secret_enc), 'vpn-secret');
      assert.equal(Number(row.require_message_authenticator), 1);
      assert.deepEqual(await service.list(), [
        { name: 'vpn', address: '192.0.2.7', secret: CENSORED, realm: 'corp', require_message_authenticator: true, source: 'api' },
      ]);
      assert.equal((await readRevisions(t.db)).get('radius'), revBefore + 1);

      assert.deepEqual(await service.set({ name: 'vpn', address: '192.0.2.0/24', secret: CENSORED, realm: 'corp', require_message_authenticator: false }), { created: false });
      const [loaded] = await service.loadAll();
      assert.equal(loaded.secret.toString(), 'vpn-secret');
      assert.equal(loaded.address, '192.0.2.0/24');
      assert.equal(loaded.requireMessageAuthenticator, false);
      await service.set({ name: 'vpn', address: '192.0.2.0/24', secret: 'new-secret', realm: 'corp', require_message_authenticator: false });
      assert.equal((await service.loadAll())[0].secret.toString(), 'new-secret');
    });

    it('refuses bad names, addresses, secrets, duplicates and a censored secret for a new client', async () => {
      await rejects(service.add({ name: 'bad name', address: '10.0.0.1', secret: 'x' }), /name/);
      await rejects(service.add({ name: 'n1', address: '10.1.2.3/8', secret: 'x' }), /address: host bits set/);
      await rejects(service.add({ name: 'n1', address: 'nas.example.org', secret: 'x' }), /address/);
      await rejects(service.add({ name: 'n1', address: '10.0.0.1', secret: '' }), /secret: required/);
      await rejects(service.add({ name: 'n1', address: '10.0.0.1', secret: 'a\nb' }), /control characters/);
      await rejects(service.add({ name: 'n1', address: '10.0.0.1', secret: 'x'.repeat(129) }), /at most 128/);
      await rejects(service.set({ name: 'n1', address: '10.0.0.1', secret: CENSORED }), /required for a new client/);
      await rejects(service.add({ name: 'vpn', address: '10.0.0.9', secret: 'x' }), /vpn/, Errors.radiusClientExists.code);
      await rejects(service.add({ name: 'other', address: '192.0.2.0/24', secret: 'x' }), /already used by client vpn/);
      await service.add({ name: 'v6', address: '2001:DB8:0::/48', secret: 'x' });
      await rejects(service.add({ name: 'v6b', address: '2001:db8::/48', secret: 'x' }), /already used by client v6/);
      assert.equal((await service.list()).find((c) => c.name === 'v6')?.address, '2001:db8::/48');
      assert.equal(await service.remove('v6'), true);
      assert.equal(await service.remove('v6'), false);
    });

    it('syncs config-file clients: adds, updates, removes its own, leaves API clients alone, no revision bump when unchanged', async () => {
      const first = await syncConfiguredClients(
        [
          { name: 'fw', address: '198.51.100.1', secret: 'fw-secret' },
          { name: 'wifi', address: '198.51.100.0/28', secret: 'wifi-secret', realm: 'guests', require_message_authenticator: true },
        ],
        { db: t.db, keyring },
      );
      assert.deepEqual(first, { added: ['fw', 'wifi'], updated: [], removed: [] });
      const rev = (await readRevisions(t.db)).get('radius');
      const again = await syncConfiguredClients(
        [
          { name: 'fw', address: '198.51.100.1', secret: 'fw-secret' },
          { name: 'wifi', address: '198.51.100.0/28', secret: 'wifi-secret', realm: 'guests' },
        ],
        { db: t.db, keyring },
      );
      assert.deepEqual(again, { added: [], updated: [], removed: [] });
      assert.equal((await readRevisions(t.db)).get('radius'), rev);
      const third = await syncConfiguredClients([{ name: 'fw', address: '198.51.100.1', secret: 'rotated' }], { db: t.db, keyring });
      assert.deepEqual(third, { added: [], updated: ['fw'], removed: ['wifi'] });
      const names = (await service.list()).map((c) => `${c.name}:${c.source}`);
      assert.deepEqual(names, ['fw:config', 'vpn:api']);
      assert.equal((await service.loadAll()).find((c) => c.name === 'fw')?.secret.toString(), 'rotated');
      await assert.rejects(syncConfiguredClients([{ name: 'x', address: 'nope', secret: 's' }], { db: t.db, keyring }), /radius\.clients\[0\]: address/);
    });

    it('State: 128 random bits, only a keyed hash stored, bound to user and client, single use under a concurrent burst, expires', async () => {
      const clock = new FakeClock();
      const states = new RadiusStateStore(t.db, keyring, clock);
      const state = await states.issue({ transactionId: 'tx-1', user: 'alice', clientName: 'vpn', expiresAt: clock.now() + 60_000 });
      assert.equal(state.length, STATE_BYTES);
      assert.ok(STATE_BYTES * 8 >= 128);
      const rows = await t.db.kysely.selectFrom('radius_states').selectAll().execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0].state_hash, keyring.hash('radius-state', state));
      assert.ok(!rows[0].state_hash.includes(state.toString('hex')));

      assert.deepEqual(await states.consume(state, 'bob', 'vpn'), { ok: false, reason: 'mismatch' });
      assert.deepEqual(await states.consume(state, 'alice', 'other-nas'), { ok: false, reason: 'mismatch' });
      const burst = await Promise.all(Array.from({ length: 10 }, () => states.consume(state, 'alice', 'vpn')));
      assert.equal(burst.filter((r) => r.ok).length, 1);
      assert.deepEqual(burst.find((r) => r.ok), { ok: true, transactionId: 'tx-1' });
      assert.deepEqual(await states.consume(state, 'alice', 'vpn'), { ok: false, reason: 'unknown' });

      const late = await states.issue({ transactionId: 'tx-2', user: 'alice', clientName: 'vpn', expiresAt: clock.now() + 1000 });
      clock.advance(1000);
      assert.deepEqual(await states.consume(late, 'alice', 'vpn'), { ok: false, reason: 'expired' });
      assert.equal((await t.db.kysely.selectFrom('radius_states').selectAll().execute()).length, 0);
      assert.deepEqual(await states.consume(Buffer.alloc(5), 'alice', 'vpn'), { ok: false, reason: 'unknown' });
    });
  });
}
