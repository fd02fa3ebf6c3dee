import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { KeyRing } from '../../src/crypto/keyring.ts';
import { registerRadiusCommands } from '../../src/radius/cli.ts';
import { RadiusClientService } from '../../src/radius/clients.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

describe('otpd radius client add|list|remove', () => {
  let t: TestDb;
  const keyring = KeyRing.fromBytes();
  before(async () => {
    t = await createTestDb('sqlite');
  });
  after(async () => t?.drop());

  /** Runs `otpd <args>` against the test database; returns what it printed and the exit code. */
  async function otpd(...args: string[]): Promise<{ out: string; err: string; code: number }> {
    const program = new Command().exitOverride();
    let out = '';
    let err = '';
    let code = 0;
    let opened = 0;
    let closed = 0;
    registerRadiusCommands(
      program,
      async () => {
        opened++;
        return { db: t.db, keyring, close: async () => void closed++ };
      },
      { out: (s) => void (out += s), err: (s) => void (err += s), failed: (c) => void (code = c) },
    );
    await program.parseAsync(['node', 'otpd', ...args]);
    assert.equal(closed, opened, 'the command closes what it opened');
    return { out, err, code };
  }

  const stored = async (name: string) => (await new RadiusClientService({ db: t.db, keyring }).loadAll()).find((c) => c.name === name);

  it('add with a given secret; list shows no secret', async () => {
    const add = await otpd('radius', 'client', 'add', 'vpn', '--address', '192.0.2.0/24', '--secret', 'vpn-secret', '--realm', 'corp');
    assert.equal(add.code, 0, add.err);
    assert.equal(add.out, 'RADIUS client vpn saved\n');
    assert.equal((await stored('vpn'))?.secret.toString(), 'vpn-secret');
    const list = await otpd('radius', 'client', 'list');
    assert.equal(list.out, 'NAME  ADDRESS       REALM  MESSAGE-AUTHENTICATOR  SOURCE\nvpn   192.0.2.0/24  corp   required               api\n');
    assert.ok(!list.out.includes('vpn-secret'));
    const json = JSON.parse((await otpd('radius', 'client', 'list', '--json')).out);
    assert.deepEqual(json, [{ name: 'vpn', address: '192.0.2.0/24', secret: '__CENSORED__', realm: 'corp', require_message_authenticator: true, source: 'api' }]);
  });

  it('add without a secret generates one, prints it once, and warns for --no-message-authenticator', async () => {
    const add = await otpd('radius', 'client', 'add', 'pam-host', '--address', '::1', '--no-message-authenticator');
    assert.equal(add.code, 0, add.err);
    const secret = /shared secret \(shown once\): (\S+)\n/.exec(add.out)?.[1];
    assert.ok(secret && secret.length >= 24);
    const record = await stored('pam-host');
    assert.equal(record?.secret.toString(), secret);
    assert.equal(record?.requireMessageAuthenticator, false);
    assert.match(add.err, /does not require Message-Authenticator.*CVE-2024-3596/);
    assert.match((await otpd('radius', 'client', 'list')).out, /pam-host +::1 +- +NOT REQUIRED +api/);
  });

  it('refuses a duplicate or a bad address with exit code 1; --update keeps the secret unless a new one is given', async () => {
    const dup = await otpd('radius', 'client', 'add', 'vpn', '--address', '198.51.100.1', '--secret', 'x');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /otpd: RADIUS client vpn exists/);
    const bad = await otpd('radius', 'client', 'add', 'fw', '--address', '10.1.2.3/8', '--secret', 'x');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /host bits set/);
    const update = await otpd('radius', 'client', 'add', 'vpn', '--address', '198.51.100.1', '--update');
    assert.equal(update.code, 0, update.err);
    assert.equal(update.out, 'RADIUS client vpn saved\n');
    assert.equal((await stored('vpn'))?.secret.toString(), 'vpn-secret');
    assert.equal((await stored('vpn'))?.address, '198.51.100.1');
  });

  it('remove; removing an unknown client fails', async () => {
    assert.deepEqual(await otpd('radius', 'client', 'remove', 'vpn'), { out: 'RADIUS client vpn removed\n', err: '', code: 0 });
    const again = await otpd('radius', 'client', 'remove', 'vpn');
    assert.equal(again.code, 1);
    assert.match(again.err, /no RADIUS client named vpn/);
    assert.equal(await stored('vpn'), undefined);
  });
});
