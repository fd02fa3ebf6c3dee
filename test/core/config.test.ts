// Config entries are stored in the database, cached in the process, and re-read when another
// node (another ConfigService on the same database) changes them; password entries are
// encrypted at rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableDialects, createTestDb } from '../helpers/db.ts';
import { ConfigService } from '../../src/config/service.ts';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { RevisionWatcher } from '../../src/store/revisions.ts';
import { loadSettings, SettingsError } from '../../src/config/settings.ts';

for (const { dialect, skip } of await availableDialects()) {
  test(`config cache follows other nodes on ${dialect}`, { skip }, async () => {
    const t = await createTestDb(dialect);
    try {
      const keyring = KeyRing.fromBytes();
      const nodeA = new ConfigService(t.db, keyring);
      const nodeB = new ConfigService(t.db, keyring);
      await nodeA.load();
      await nodeB.load();
      const watcherB = new RevisionWatcher(t.db, 60_000);
      nodeB.watch(watcherB);
      await watcherB.start();
      assert.equal(nodeB.get('DefaultMaxFailCount'), '10', 'LinOTP default');
      await nodeA.set('DefaultMaxFailCount', '7');
      assert.equal(nodeA.get('DefaultMaxFailCount'), '7');
      assert.equal(nodeB.get('DefaultMaxFailCount'), '10', 'cached until the revision is seen');
      await watcherB.poll();
      await watcherB.settled();
      assert.equal(nodeB.get('DefaultMaxFailCount'), '7');
      await nodeA.set('smtp.pw', 's3cret-value', 'password');
      const row = await t.db.kysely.selectFrom('config').selectAll().where('key', '=', 'smtp.pw').executeTakeFirstOrThrow();
      assert.ok(!row.value.includes('s3cret'), 'encrypted at rest');
      assert.equal(nodeA.get('smtp.pw'), 's3cret-value');
      await nodeA.delete('DefaultMaxFailCount');
      await watcherB.poll();
      await watcherB.settled();
      assert.equal(nodeB.get('DefaultMaxFailCount'), '10');
      watcherB.stop();
    } finally {
      await t.drop();
    }
  });
}

test('settings: defaults, environment over file, errors name the key', () => {
  const s = loadSettings({}, '/tmp');
  assert.equal(s.host, '127.0.0.1');
  assert.equal(s.port, 5001);
  assert.equal(s.databaseUrl, 'sqlite:/tmp/data/otpd.sqlite');
  assert.equal(s.radius.port, undefined);
  const r = loadSettings({ OTPD_RADIUS_PORT: '1812', OTPD_PORT: '6000' }, '/tmp');
  assert.equal(r.radius.port, 1812);
  assert.equal(r.port, 6000);
  assert.throws(() => loadSettings({ OTPD_PORT: 'abc' }, '/tmp'), (e: Error) => e instanceof SettingsError && /OTPD_PORT \(port\)/.test(e.message));
  assert.throws(() => loadSettings({ OTPD_ADMIN_USER: 'x' }, '/tmp'), /must be set together/);
  assert.throws(() => loadSettings({ OTPD_CONFIG: '/nonexistent/otpd.json' }, '/tmp'), /config file/);
});
