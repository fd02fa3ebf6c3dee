// Invariant: a runtime configuration value in the database that setConfig would refuse (garbage,
// out of bounds, a send limit that does not parse) never switches a limit off. The server refuses
// to start, naming every bad key and why; a bad value that arrives while running (another node,
// a direct database write) is ignored: the last valid value (or the default) stays in force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableDialects, createTestDb } from '../helpers/db.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices } from '../../src/services.ts';
import { startServer } from '../../src/server.ts';
import { ConfigService } from '../../src/config/service.ts';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { RevisionWatcher, bumpRevision } from '../../src/store/revisions.ts';
import { parseLimit, setting } from '../../src/delivery/settings.ts';
import type { Db } from '../../src/store/db.ts';

const GARBAGE: Record<string, [string, RegExp]> = {
  DefaultMaxFailCount: ['lots', /DefaultMaxFailCount.*not an integer/],
  DefaultCountWindow: ['-5', /DefaultCountWindow.*not an integer/],
  DefaultSyncWindow: ['99999999', /DefaultSyncWindow.*between 1 and 10000/],
  DeliveryLimitPerDestination: ['unlimited!', /DeliveryLimitPerDestination.*count\/seconds/],
  SMSBlockingTimeout: ['-1', /SMSBlockingTimeout.*not an integer/],
  ChallengeMaxAttempts: ['0', /ChallengeMaxAttempts.*between 1 and 100/],
};

async function writeRaw(db: Db, key: string, value: string): Promise<void> {
  await db.kysely.deleteFrom('config').where('key', '=', key).execute();
  await db.kysely.insertInto('config').values({ key, value, type: '', description: '' }).execute();
}

test('the server refuses to start on invalid stored config, naming each key and the reason', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'otpd-cfg-'));
  try {
    const settings = loadSettings({ OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent', OTPD_PORT: '0' }, dataDir);
    const first = await createServices({ settings });
    for (const [key, [value]] of Object.entries(GARBAGE)) await writeRaw(first.db, key, value);
    await first.close();
    const attempt = await startServer(settings).catch((e: Error) => e);
    if (!(attempt instanceof Error)) {
      await attempt.stop();
      assert.fail('the server started with invalid stored config');
    }
    for (const [, [, re]] of Object.entries(GARBAGE)) assert.match(attempt.message, re);
    assert.match(attempt.message, /refusing to start/);
    // fixed values: it starts
    const fix = await createServices({ settings });
    for (const key of Object.keys(GARBAGE)) await fix.db.kysely.deleteFrom('config').where('key', '=', key).execute();
    await writeRaw(fix.db, 'DeliveryLimitPerDestination', 'off');
    await fix.close();
    const running = await startServer(settings);
    await running.stop();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the server refuses to start on an invalid stored policy (ERR2402, naming it), and starts once it is fixed', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'otpd-pol-'));
  try {
    const settings = loadSettings({ OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent', OTPD_PORT: '0' }, dataDir);
    const first = await createServices({ settings });
    await first.db.kysely.insertInto('policies')
      .values({ name: 'by_hand', scope: 'authentication', action: 'otppin=9', realm: '*', user: '*', client: '*', time: '', active: 1 }).execute();
    await first.close();
    const attempt = await startServer(settings).catch((e: Error) => e);
    if (!(attempt instanceof Error)) {
      await attempt.stop();
      assert.fail('the server started with an invalid stored policy');
    }
    assert.match(attempt.message, /^invalid policies in the database, refusing to start: by_hand: action /);
    const fix = await createServices({ settings });
    await fix.db.kysely.updateTable('policies').set({ action: 'otppin=1' }).where('name', '=', 'by_hand').execute();
    await fix.close();
    const running = await startServer(settings);
    await running.stop();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

for (const { dialect, skip } of await availableDialects()) {
  test(`a bad value arriving at runtime keeps the last valid one in force (${dialect})`, { skip }, async () => {
    const t = await createTestDb(dialect);
    const watcher = new RevisionWatcher(t.db, 60_000);
    try {
      const keyring = KeyRing.fromBytes();
      const writer = new ConfigService(t.db, keyring);
      const node = new ConfigService(t.db, keyring);
      await writer.load();
      await writer.set('DeliveryLimitPerDestination', '3/3600');
      await writer.set('SMSBlockingTimeout', '60');
      await node.load();
      node.watch(watcher);
      await watcher.start();
      for (const [key, [value]] of Object.entries(GARBAGE)) await writeRaw(t.db, key, value);
      await bumpRevision(t.db, 'config');
      await watcher.poll();
      // a burst of concurrent reloads must all settle on valid values
      await Promise.all(Array.from({ length: 20 }, () => node.load()));
      assert.deepEqual(parseLimit(setting(node, 'DeliveryLimitPerDestination')), { max: 3, windowMs: 3_600_000 }, 'limit stays on');
      assert.equal(node.getInt('SMSBlockingTimeout', 30), 60, 'last valid value');
      assert.equal(node.getInt('DefaultMaxFailCount', 10), 10, 'default');
      assert.equal(node.getInt('DefaultCountWindow', 10), 10, 'default');
      assert.equal(node.getInt('DefaultSyncWindow', 1000), 1000, 'default');
      assert.equal(node.getInt('ChallengeMaxAttempts', 5), 5, 'default');
      assert.deepEqual(node.rejected.map((r) => r.key).sort(), Object.keys(GARBAGE).sort());
      // a valid write afterwards takes effect again
      await writer.set('DefaultMaxFailCount', '4');
      await node.load();
      assert.equal(node.getInt('DefaultMaxFailCount', 10), 4);
    } finally {
      watcher.stop();
      await t.drop();
    }
  });
}
