import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bumpRevision } from '../../src/store/revisions.ts';
import { haveBinary } from '../helpers/require.ts';
import { radclient, SECRET, startHarness, type Harness } from './helpers.ts';

const skip = haveBinary('radclient', 'freeradius-utils');

describe('RADIUS server with Debian radclient', { skip }, () => {
  let h: Harness & { port6?: number };
  let target: string;
  before(async () => {
    h = await startHarness({
      ipv6: true,
      clients: [
        { name: 'loopback', address: '127.0.0.1', secret: SECRET, realm: 'corp' },
        { name: 'loopback6', address: '::1/128', secret: 'v6-secret' },
      ],
    });
    target = `127.0.0.1:${h.port}`;
  });
  after(async () => h?.close());

  it('password+OTP in one step → Access-Accept with Reply-Message, Class and Filter-Id; the callback sees user, client, realm', async () => {
    const otp = h.validator.otp('alice');
    const r = await radclient({ target, secret: SECRET, input: `User-Name=alice,User-Password=alicepw${otp},NAS-IP-Address=192.0.2.10,Message-Authenticator=0x00` });
    assert.equal(r.reply, 'Access-Accept', r.output);
    assert.equal(r.exitCode, 0);
    assert.equal(r.attributes['Reply-Message'], 'Welcome');
    assert.equal(r.attributes.Class, `0x${Buffer.from('vpn-users').toString('hex')}`);
    assert.equal(r.attributes['Filter-Id'], 'staff');
    assert.match(r.output, /Received Access-Accept[^\n]*\n\tMessage-Authenticator = 0x[0-9a-f]{32}\n/);
    const call = h.validator.calls.at(-1)!;
    assert.deepEqual(call, { user: 'alice', password: `alicepw${otp}`, transactionId: undefined, client: '192.0.2.10', realm: 'corp', clientName: 'loopback' });
  });

  it('wrong password → Access-Reject (Message-Authenticator first)', async () => {
    const before = h.server.stats().rejected;
    const r = await radclient({ target, secret: SECRET, input: 'User-Name=alice,User-Password=nope,Message-Authenticator=0x00' });
    assert.equal(r.reply, 'Access-Reject');
    assert.equal(r.exitCode, 1);
    assert.match(r.output, /Received Access-Reject[^\n]*\n\tMessage-Authenticator = 0x/);
    assert.equal(h.server.stats().rejected, before + 1);
    assert.equal(h.validator.calls.at(-1)?.client, '127.0.0.1'); // no NAS-IP-Address: the source address
  });

  it('two-step challenge: password → Access-Challenge with State and Reply-Message; OTP + State → Access-Accept; the State is single use', async () => {
    const first = await radclient({ target, secret: SECRET, input: 'User-Name=alice,User-Password=alicepw,Message-Authenticator=0x00' });
    assert.equal(first.reply, 'Access-Challenge', first.output);
    assert.equal(first.attributes['Reply-Message'], 'Enter the OTP sent to your phone');
    const state = first.attributes.State;
    assert.match(state, /^0x[0-9a-f]{32,}$/);
    assert.match(first.output, /Received Access-Challenge[^\n]*\n\tMessage-Authenticator = 0x/);

    const otp = h.validator.otp('alice');
    const answer = `User-Name=alice,User-Password=${otp},State=${state},Message-Authenticator=0x00`;
    const second = await radclient({ target, secret: SECRET, input: answer });
    assert.equal(second.reply, 'Access-Accept', second.output);
    assert.equal(h.validator.calls.at(-1)?.transactionId, 'tx-1');
    assert.equal(h.validator.calls.at(-1)?.password, otp);

    const calls = h.validator.calls.length;
    const replay = await radclient({ target, secret: SECRET, input: answer });
    assert.equal(replay.reply, 'Access-Reject');
    assert.equal(h.validator.calls.length, calls, 'a used State never reaches the validation service');
  });

  it('a State is bound to its user: bob cannot answer alice\'s challenge, and alice still can', async () => {
    const first = await radclient({ target, secret: SECRET, input: 'User-Name=alice,User-Password=alicepw,Message-Authenticator=0x00' });
    const state = first.attributes.State;
    const bob = await radclient({ target, secret: SECRET, input: `User-Name=bob,User-Password=${h.validator.otp('bob')},State=${state},Message-Authenticator=0x00` });
    assert.equal(bob.reply, 'Access-Reject');
    const alice = await radclient({ target, secret: SECRET, input: `User-Name=alice,User-Password=${h.validator.otp('alice')},State=${state},Message-Authenticator=0x00` });
    assert.equal(alice.reply, 'Access-Accept');
  });

  it('wrong shared secret → no answer at all, counted as dropped', async () => {
    const before = h.server.stats().dropped.bad_message_authenticator ?? 0;
    const r = await radclient({ target, secret: 'not-the-secret', input: 'User-Name=alice,User-Password=alicepw,Message-Authenticator=0x00', timeoutSeconds: 1 });
    assert.equal(r.reply, undefined, r.output);
    assert.match(r.output, /No reply from server/);
    assert.equal(h.server.stats().dropped.bad_message_authenticator, before + 1);
  });

  it('missing Message-Authenticator from a client that requires it → dropped', async () => {
    const before = h.server.stats().dropped.missing_message_authenticator ?? 0;
    const calls = h.validator.calls.length;
    const r = await radclient({ target, secret: SECRET, input: 'User-Name=alice,User-Password=alicepw', timeoutSeconds: 1 });
    assert.equal(r.reply, undefined, r.output);
    assert.equal(h.server.stats().dropped.missing_message_authenticator, before + 1);
    assert.equal(h.validator.calls.length, calls);
  });

  it('echoes Proxy-State attributes in order', async () => {
    const r = await radclient({ target, secret: SECRET, input: 'User-Name=alice,User-Password=nope,Proxy-State=0x0102,Proxy-State=0xa1b2c3,Message-Authenticator=0x00' });
    assert.equal(r.reply, 'Access-Reject');
    assert.equal(r.attributes['Proxy-State'], '0x0102\n0xa1b2c3');
  });

  it('answers over IPv6 (::1) with the IPv6 client\'s secret', async () => {
    const otp = h.validator.otp('bob');
    const r = await radclient({ target: `[::1]:${h.port6}`, secret: 'v6-secret', input: `User-Name=bob,User-Password=bobpw${otp},Message-Authenticator=0x00` });
    assert.equal(r.reply, 'Access-Accept', r.output);
    assert.equal(h.validator.calls.at(-1)?.client, '::1');
    assert.equal(h.validator.calls.at(-1)?.clientName, 'loopback6');
    assert.equal(h.validator.calls.at(-1)?.realm, undefined);
  });

  it('Status-Server (RFC 5997) with Message-Authenticator → Access-Accept', async () => {
    const r = await radclient({ target, secret: SECRET, input: 'Message-Authenticator=0x00', command: 'status' });
    assert.equal(r.reply, 'Access-Accept', r.output);
  });

  it('Status-Server while the node is not ready (database unreachable) → silence, counted as not_ready; answered again once ready', async () => {
    let ready = false;
    const g = await startHarness({ ready: async () => ready });
    try {
      const status = () => radclient({ target: `127.0.0.1:${g.port}`, secret: SECRET, input: 'Message-Authenticator=0x00', command: 'status', timeoutSeconds: 1 });
      assert.equal((await status()).reply, undefined);
      assert.equal(g.server.stats().dropped.not_ready, 1);
      ready = true;
      assert.equal((await status()).reply, 'Access-Accept');
    } finally {
      await g.close();
    }
  });

  it('client changes apply without restart (revision watcher): new secret, removal, re-add', async () => {
    const input = 'User-Name=alice,User-Password=nope,Message-Authenticator=0x00';
    await h.clients.set({ name: 'loopback', address: '127.0.0.1', secret: 'rotated-secret', realm: 'corp' });
    await h.watcher.poll();
    await h.server.reload(); // the watcher's reload runs asynchronously; wait for a settled list
    assert.equal((await radclient({ target, secret: SECRET, input, timeoutSeconds: 1 })).reply, undefined);
    assert.equal((await radclient({ target, secret: 'rotated-secret', input })).reply, 'Access-Reject');

    const unknownBefore = h.server.stats().dropped.unknown_client ?? 0;
    assert.equal(await h.clients.remove('loopback'), true);
    await h.watcher.poll();
    await h.server.reload();
    assert.equal((await radclient({ target, secret: 'rotated-secret', input, timeoutSeconds: 1 })).reply, undefined);
    assert.equal(h.server.stats().dropped.unknown_client, unknownBefore + 1);

    await h.clients.add({ name: 'lo-net', address: '127.0.0.0/8', secret: SECRET, realm: 'corp' });
    await bumpRevision(h.testDb.db, 'radius');
    await h.watcher.poll();
    await h.server.reload();
    assert.equal((await radclient({ target, secret: SECRET, input })).reply, 'Access-Reject');
    assert.equal(h.validator.calls.at(-1)?.clientName, 'lo-net');
  });
});
