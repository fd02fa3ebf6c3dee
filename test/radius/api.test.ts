import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import radius from 'radius';
import { Errors } from '../../src/errors.ts';
import { RadiusClientService } from '../../src/radius/clients.ts';
import { Code, loadDictionaries } from '../../src/radius/codec.ts';
import { RadiusServer } from '../../src/radius/server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { captureLogger, udpExchange } from './helpers.ts';

describe('RADIUS client endpoints (/system/*RadiusClient*)', () => {
  let t: TestApp;
  let server: RadiusServer;
  let port: number;

  before(async () => {
    t = await startTestApp();
    const s = t.services;
    server = new RadiusServer({ db: s.db, keyring: s.keyring, logger: captureLogger().logger, watcher: s.watcher, authenticate: async () => ({ kind: 'reject', message: 'via api client' }) });
    ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  });
  after(async () => {
    await server?.close();
    await t?.close();
  });

  it('setRadiusClient creates a client that the running RADIUS server uses at once; getRadiusClients censors the secret', async () => {
    loadDictionaries();
    const request = () => radius.encode({ code: 'Access-Request', secret: 'api-secret-1', attributes: [['User-Name', 'a'], ['User-Password', 'b']], add_message_authenticator: true });
    const unknown = () => server.stats().dropped.unknown_client ?? 0;
    const before = unknown();
    assert.equal((await udpExchange([request()], port, { handled: () => unknown() > before })).length, 0, 'unknown client: no answer');

    const set = await t.admin('/system/setRadiusClient', { name: 'vpn', address: '127.0.0.1', secret: 'api-secret-1', realm: 'corp' });
    assert.equal(set.status, 200);
    assert.equal(set.json.result.status, true, set.body);
    assert.equal(set.json.result.value, true);
    await server.reload(); // the watcher's reload is asynchronous; settle it before sending
    const [reply] = await udpExchange([request()], port, { expect: 1 });
    assert.equal(reply?.[0], Code.AccessReject);

    const list = await t.admin('/system/getRadiusClients');
    assert.deepEqual(list.json.result.value, {
      vpn: { name: 'vpn', address: '127.0.0.1', secret: '__CENSORED__', realm: 'corp', require_message_authenticator: true, source: 'api' },
    });
    assert.ok(!list.body.includes('api-secret-1'));
    const row = await t.services.db.kysely.selectFrom('radius_clients').selectAll().executeTakeFirstOrThrow();
    assert.equal(t.services.keyring.decryptString('config', row.secret_enc), 'api-secret-1');
  });

  it('__CENSORED__ sent back keeps the secret; require_message_authenticator is parsed strictly', async () => {
    const update = await t.admin('/system/setRadiusClient', { name: 'vpn', address: '127.0.0.0/8', secret: '__CENSORED__', realm: 'corp', require_message_authenticator: 'false' });
    assert.equal(update.json.result.value, true, update.body);
    const [loaded] = await new RadiusClientService({ db: t.services.db, keyring: t.services.keyring }).loadAll();
    assert.equal(loaded.secret.toString(), 'api-secret-1');
    assert.equal(loaded.address, '127.0.0.0/8');
    assert.equal(loaded.requireMessageAuthenticator, false);

    const typo = await t.admin('/system/setRadiusClient', { name: 'vpn', address: '127.0.0.0/8', secret: '__CENSORED__', require_message_authenticator: 'flase' });
    assert.equal(typo.json.result.status, false);
    assert.equal(typo.json.result.error.code, Errors.invalidParameter.code);
    assert.equal((await t.admin('/system/getRadiusClients', { name: 'vpn' })).json.result.value.vpn.require_message_authenticator, false);
  });

  it('refuses bad input with the RADIUS client error code, and unauthenticated callers', async () => {
    const bad = await t.admin('/system/setRadiusClient', { name: 'fw', address: '10.1.2.3/8', secret: 'x' });
    assert.equal(bad.json.result.status, false);
    assert.equal(bad.json.result.error.code, Errors.invalidRadiusClient.code);
    assert.match(bad.json.result.error.message, /address: host bits set/);
    const missing = await t.admin('/system/setRadiusClient', { name: 'fw', address: '10.0.0.1' });
    assert.equal(missing.json.result.error.code, Errors.missingParameter.code);
    assert.match(missing.json.result.error.message, /secret/);
    const anonymous = await t.post('/system/setRadiusClient', { name: 'evil', address: '0.0.0.0/0', secret: 'x' });
    assert.equal(anonymous.json.result.status, false);
    assert.equal(anonymous.json.result.error.code, Errors.notAuthenticated.code);
    assert.deepEqual(Object.keys((await t.admin('/system/getRadiusClients')).json.result.value), ['vpn']);
  });

  it('delRadiusClient removes the client (no answer afterwards); deleting again is an error', async () => {
    const del = await t.admin('/system/delRadiusClient', { name: 'vpn' });
    assert.equal(del.json.result.value, true, del.body);
    await server.reload();
    const request = radius.encode({ code: 'Access-Request', secret: 'api-secret-1', attributes: [['User-Name', 'a'], ['User-Password', 'b']], add_message_authenticator: true });
    const before = server.stats().dropped.unknown_client ?? 0;
    assert.equal((await udpExchange([request], port, { handled: () => (server.stats().dropped.unknown_client ?? 0) > before })).length, 0);
    const again = await t.admin('/system/delRadiusClient', { name: 'vpn' });
    assert.equal(again.json.result.status, false);
    assert.equal(again.json.result.error.code, Errors.noSuchRadiusClient.code);
    assert.deepEqual((await t.admin('/system/getRadiusClients')).json.result.value, {});
  });

  it('the shared secret never reaches the audit log', async () => {
    const rows = await t.services.db.kysely.selectFrom('audit').selectAll().where('action', 'like', 'system/%RadiusClient%').execute();
    assert.ok(rows.length >= 5);
    assert.ok(rows.every((r) => !JSON.stringify(r).includes('api-secret-1')));
    assert.ok(rows.some((r) => r.action === 'system/setRadiusClient' && r.info === 'vpn' && r.action_detail === 'created'));
  });
});
