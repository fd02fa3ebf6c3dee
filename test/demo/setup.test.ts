// Invariant: the demo's set-up step is idempotent and owns exactly what it recorded. A second
// start creates nothing; an object the administrator deleted stays deleted; when the demo ends
// its users, tokens, providers, messages and RADIUS client (public secret) are removed, while a
// demo policy the administrator changed and a realm holding the administrator's store are kept.
// The demo listens on loopback only: a non-loopback host is refused before anything listens.
// A database that holds configuration from before never turns into a demo.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSettings } from '../../src/config/settings.ts';
import { startServer, type Running } from '../../src/server.ts';
import { createServices } from '../../src/services.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { testTmpDir } from '../helpers/tmp.ts';

/** RADIUS port of this file (the brief's range 18600–18649); HTTP on port 0. */
const RADIUS_PORT = '18635';

function settingsFor(dir: string, env: Record<string, string> = {}) {
  return loadSettings({ OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', OTPD_LOG_LEVEL: 'silent', OTPD_RADIUS_PORT: RADIUS_PORT, ...env }, dir);
}

const demoObjects = async (r: Running) =>
  (await r.services.db.kysely.selectFrom('demo_objects').select(['kind', 'name']).orderBy('kind').orderBy('name').execute()).map((o) => `${o.kind}:${o.name}`);

const post = async (r: Running, path: string, form: Record<string, string>) =>
  (await (await fetch(`${r.url}${path}`, { method: 'POST', body: new URLSearchParams(form) })).json()) as any;

test('set-up once: a second start creates nothing, a deleted demo object stays deleted', async () => {
  const dir = testTmpDir('otpd-demo-setup-');
  try {
    const first = await startServer(settingsFor(dir));
    let objects: string[];
    try {
      assert.ok(first.services.demo, 'demo mode is on');
      objects = await demoObjects(first);
      assert.deepEqual(objects, [
        'file:demo-users.sqlite', 'policy:demo_autoenroll', 'policy:demo_otppin', 'provider:email:demo-mail', 'provider:sms:demo-sms',
        'radius_client:demo', 'realm:demo', 'resolver:demo-users',
      ]);
      assert.equal(first.services.users.defaultRealm(), 'demo');
      assert.deepEqual((await first.services.users.testResolver('demo-users')).userCount, 2);
      await first.services.policies.delete(['demo_otppin']);
    } finally {
      await first.stop();
    }
    const second = await startServer(settingsFor(dir));
    try {
      assert.deepEqual(await demoObjects(second), objects);
      assert.equal(second.services.policies.list({ name: 'demo_otppin' }).length, 0, 'not created again');
      const setups = await second.services.db.kysely.selectFrom('audit').select('action').where('action', '=', 'demo/setup').execute();
      assert.equal(setups.length, 1, 'one set-up, audited once');
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an administrator added before the first start (otpd admin add) still gets the demo', async () => {
  const dir = testTmpDir('otpd-demo-admin-');
  try {
    const cli = await createServices({ settings: settingsFor(dir) });
    await cli.admins.add('admin', 'admin-password-1');
    await cli.close();
    const r = await startServer(settingsFor(dir));
    try {
      assert.ok(r.services.demo);
      const key = await r.services.admins.createApiKey('admin');
      const defs = await (await fetch(`${r.url}/system/getProviderDef?type=sms`, { headers: { authorization: `Bearer ${key}` } })).json() as any;
      assert.ok('otpd.demo.CaptureSMS' in defs.result.value, 'offered in demo mode');
    } finally {
      await r.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the README's HOTP example works in demo mode too", async () => {
  const dir = testTmpDir('otpd-demo-hotp-');
  try {
    const r = await startServer(settingsFor(dir));
    try {
      await r.services.admins.add('admin', 'admin-password-1');
      const key = await r.services.admins.createApiKey('admin');
      const init = await (await fetch(`${r.url}/admin/init`, {
        method: 'POST', headers: { authorization: `Bearer ${key}` },
        body: new URLSearchParams({ type: 'hmac', serial: 'DEMO1', otpkey: '3132333435363738393031323334353637383930', pin: '1234' }),
      })).json() as any;
      assert.equal(init.result.value, true);
      assert.equal(hotp(Buffer.from('12345678901234567890'), 0), '755224');
      assert.equal((await post(r, '/validate/check', { serial: 'DEMO1', pass: '1234755224' })).result.value, true);
      assert.equal((await post(r, '/validate/check', { serial: 'DEMO1', pass: '1234755224' })).result.value, false);
    } finally {
      await r.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('when the demo ends: what the administrator changed or added stays, the rest of the demo goes', async () => {
  const dir = testTmpDir('otpd-demo-end-');
  try {
    const demo = await startServer(settingsFor(dir));
    try {
      // alice gets a token (autoenrollment), so there is a demo user's token to remove
      assert.equal((await post(demo, '/validate/check', { user: 'alice', pass: 'demo' })).result.value, false);
      // the administrator adopts the autoenrollment policy, adds a real SMS gateway (not the
      // default) and puts a store of their own into the demo realm
      await demo.services.policies.set({ name: 'demo_autoenroll', scope: 'enrollment', action: 'autoenrollment=sms', realm: 'demo', user: '*', client: '*' });
      await demo.services.delivery.setProvider({ type: 'sms', name: 'gateway', className: 'HttpSMSProvider', config: '{"URL": "http://127.0.0.1:9/send"}', timeout: '5' });
      await demo.services.users.setResolver('staff', 'passwdresolver', { fileName: join(dir, 'passwd') });
      await demo.services.users.setRealm('demo', ['demo-users', 'staff']);
    } finally {
      await demo.stop();
    }
    const after = await startServer(settingsFor(dir));
    try {
      const s = after.services;
      assert.equal(s.demo, undefined, 'demo mode is off');
      assert.deepEqual(await demoObjects(after), []);
      assert.deepEqual(s.users.resolverNames(), ['staff']);
      assert.deepEqual(s.users.resolversOfRealm('demo'), ['staff'], 'the realm holds the admin\'s store: kept, without the demo store');
      assert.deepEqual(s.policies.list({ includeInactive: true }).map((p) => p.name), ['demo_autoenroll'], 'the changed policy is the admin\'s; the unchanged one is gone');
      assert.deepEqual((await s.delivery.listProviders('sms')).map((p) => [p.name, p.isDefault]), [['gateway', true]], 'the capture provider is gone, the gateway is the default now');
      assert.deepEqual(await s.delivery.listProviders('email'), []);
      assert.deepEqual(await s.radiusClients.list(), []);
      assert.deepEqual(await s.db.kysely.selectFrom('tokens').select('serial').execute(), []);
      assert.deepEqual(await s.db.kysely.selectFrom('demo_messages').select('id').execute(), []);
      const removal = await s.db.kysely.selectFrom('audit').select('info').where('action', '=', 'demo/remove').executeTakeFirstOrThrow();
      assert.match(removal.info, /^demo mode off \(a user store is configured \(staff\)\): removed 1 token\(s\) of the demo users, user store demo-users, file demo-users.sqlite, policy demo_otppin, provider sms:demo-sms, provider email:demo-mail, RADIUS client demo, 1 captured message\(s\); kept realm demo \(it holds staff\), policy demo_autoenroll \(changed by an administrator\)$/);
      assert.equal((await fetch(`${after.url}/demo/messages.json`)).status, 404);
      // the capture classes exist only in demo mode: not offered, and refused
      await assert.rejects(
        s.delivery.setProvider({ type: 'sms', name: 'again', className: 'otpd.demo.CaptureSMS', config: '{}', timeout: '5' }),
        (e: Error) => /^providers\.sms\.again\.config: otpd\.demo\.CaptureSMS keeps messages for \/demo\/messages and exists only in demo mode \(docs\/demo\.md\)$/.test(e.message),
      );
      await s.admins.add('admin', 'admin-password-1');
      const key = await s.admins.createApiKey('admin');
      const defs = await (await fetch(`${after.url}/system/getProviderDef`, { headers: { authorization: `Bearer ${key}` } })).json() as any;
      assert.deepEqual(Object.keys(defs.result.value).filter((c) => c.startsWith('otpd.demo.')), []);
    } finally {
      await after.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo mode refuses a non-loopback host (HTTP or RADIUS) before anything listens; localhost is loopback', async () => {
  const dir = testTmpDir('otpd-demo-host-');
  try {
    for (const env of [{ OTPD_HOST: '0.0.0.0' }, { OTPD_RADIUS_HOST: '192.0.2.1' }] as Record<string, string>[]) {
      const refused = await startServer(settingsFor(dir, env)).then(async (r) => {
        await r.stop();
        return undefined;
      }, (e: Error) => e);
      assert.ok(refused, `${JSON.stringify(env)} is refused`);
      assert.match(refused.message, /^demo mode listens on loopback only .* is refused: use 127\.0\.0\.1, or set OTPD_DEMO=0, or configure a user store first \(docs\/demo\.md\)$/);
    }
    // a loopback name is fine
    const ok = await startServer(settingsFor(dir, { OTPD_HOST: 'localhost' }));
    await ok.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a database with configuration from before never becomes a demo', async () => {
  const dir = testTmpDir('otpd-demo-old-');
  try {
    const plain = await startServer(settingsFor(dir, { OTPD_DEMO: '0' }));
    try {
      await plain.services.config.set('DefaultOtpLen', '8');
    } finally {
      await plain.stop();
    }
    const again = await startServer(settingsFor(dir));
    try {
      assert.equal(again.services.demo, undefined);
      assert.deepEqual(again.services.users.resolverNames(), []);
      assert.deepEqual(await demoObjects(again), []);
    } finally {
      await again.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
