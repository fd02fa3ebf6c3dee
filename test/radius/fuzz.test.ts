/*
 * Invariant (spec/security.md B.2 item 29): no datagram crashes the RADIUS server or makes
 * it answer what it must not. More than a million random and mutated packets (lengths,
 * attribute lengths, truncations, duplicated and foreign attributes, re-signed mutations
 * that pass Message-Authenticator) go through the packet handler in-process and over UDP;
 * afterwards a valid request is still answered. Every reply produced on the way is a
 * correctly signed reply with Message-Authenticator first, and a client that requires
 * Message-Authenticator never gets an answer to a packet that does not carry a valid one.
 * The seed is printed so a failure can be replayed (OTPD_FUZZ_SEED).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import radius from 'radius';
import { Attr, Code, findAttribute, loadDictionaries, parseFrame, verifyReply, verifyRequestMessageAuthenticator } from '../../src/radius/codec.ts';
import type { RadiusAuthRequest, RadiusAuthResult } from '../../src/radius/server.ts';
import { SECRET, startHarness, udpExchange, type Harness } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

const IN_PROCESS = { random: 300_000, mutated: 400_000, resigned: 250_000 };
const OVER_UDP = 60_000;
const SEED = Number(process.env.OTPD_FUZZ_SEED ?? (Date.now() % 2 ** 31));
const NO_MA_SECRET = 'legacy-secret';

/** xorshift32: fast and replayable. */
function prng(seed: number) {
  let x = seed || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  return {
    int: (n: number) => next() % n,
    bytes: (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}

loadDictionaries();

function templates(rnd: ReturnType<typeof prng>, secret: string, withMa: boolean): Buffer[] {
  const sets: unknown[][] = [
    [['User-Name', 'alice'], ['User-Password', 'alicepw123456']],
    [['User-Name', 'alice'], ['User-Password', 'x'], ['State', rnd.bytes(16)]],
    [['User-Name', 'bob'], ['User-Password', 'p'.repeat(40)], ['NAS-IP-Address', '192.0.2.1'], ['Proxy-State', rnd.bytes(8)], ['Proxy-State', rnd.bytes(3)]],
    [['User-Name', 'carol'], ['CHAP-Password', rnd.bytes(17)]],
    [['User-Name', 'dave'], ['User-Password', 'pw'], ['Vendor-Specific', 9, [['Cisco-AVPair', 'shell:priv-lvl=15']]], ['NAS-IPv6-Address', rnd.bytes(16)]],
    [['User-Name', 'é'.repeat(60)], ['User-Password', 'q'.repeat(128)], ['Class', rnd.bytes(40)], ['Reply-Message', 'hello']],
    [['User-Password', 'no-user']],
  ];
  return sets.map((attributes, i) => radius.encode({ code: 'Access-Request', identifier: i, secret, attributes, add_message_authenticator: withMa }));
}

function mutate(rnd: ReturnType<typeof prng>, original: Buffer): Buffer {
  let p = Buffer.from(original);
  const rounds = 1 + rnd.int(3);
  for (let r = 0; r < rounds; r++) {
    switch (rnd.int(9)) {
      case 0: // flip bytes
        for (let i = 1 + rnd.int(4); i > 0 && p.length > 0; i--) p[rnd.int(p.length)] ^= 1 << rnd.int(8);
        break;
      case 1: // declared length
        if (p.length >= 4) p.writeUInt16BE(rnd.int(3) === 0 ? rnd.int(65536) : Math.max(0, p.length + rnd.int(41) - 20), 2);
        break;
      case 2: // an attribute length byte
        if (p.length > 21) p[20 + rnd.int(p.length - 20)] = rnd.int(256);
        break;
      case 3: // truncate, keeping or not the declared length
        p = p.subarray(0, rnd.int(p.length + 1));
        if (rnd.int(2) && p.length >= 4) p.writeUInt16BE(p.length, 2);
        break;
      case 4: // extend with junk
        p = Buffer.concat([p, rnd.bytes(rnd.int(300))]);
        if (rnd.int(2) && p.length >= 4) p.writeUInt16BE(Math.min(p.length, 65535), 2);
        break;
      case 5: // append a random attribute (type, length and value all random)
        p = Buffer.concat([p, Buffer.from([rnd.int(256), rnd.int(256)]), rnd.bytes(rnd.int(260))]);
        if (rnd.int(4) !== 0 && p.length >= 4) p.writeUInt16BE(Math.min(p.length, 65535), 2);
        break;
      case 6: // duplicate an existing slice of attributes (second User-Name, Message-Authenticator, State …)
        if (p.length > 22) {
          const start = 20 + rnd.int(p.length - 20);
          p = Buffer.concat([p, p.subarray(start, Math.min(p.length, start + 2 + rnd.int(40)))]);
          p.writeUInt16BE(Math.min(p.length, 65535), 2); // length > 22 here
        }
        break;
      case 7: // packet code
        if (p.length > 0) p[0] = rnd.int(3) === 0 ? Code.StatusServer : rnd.int(256);
        break;
      default: // oversize
        if (rnd.int(20) === 0) {
          p = Buffer.concat([p, rnd.bytes(4200)]);
          p.writeUInt16BE(Math.min(p.length, 65535), 2); // length ≥ 4200 here
        }
    }
  }
  return p;
}

/** Makes a mutated packet pass authentication again: recompute its Message-Authenticator. */
function resign(p: Buffer, secret: string): Buffer {
  const parsed = parseFrame(p);
  if ('error' in parsed) return p;
  const ma = findAttribute(parsed.frame, Attr.MessageAuthenticator);
  if (!ma) return p;
  const packet = Buffer.from(parsed.frame.packet);
  packet.fill(0, ma.offset + 2, ma.offset + 18);
  createHmac('md5', secret).update(packet).digest().copy(packet, ma.offset + 2);
  return packet;
}

describe('RADIUS fuzz: over a million random and mutated packets', () => {
  let h: Harness;
  const rnd = prng(SEED);
  let callbackCalls = 0;
  let badReplies = 0;

  const authenticate = async (r: RadiusAuthRequest): Promise<RadiusAuthResult> => {
    callbackCalls++;
    assert.equal(typeof r.user, 'string');
    assert.equal(typeof r.password, 'string');
    if (r.user === 'alice' && r.password === 'alicepw123456') return { kind: 'accept', message: 'Welcome', attributes: { 'Filter-Id': 'staff' } };
    const pick = (r.password.length + r.user.length) % 500;
    if (callbackCalls % 997 === 0) return { kind: 'challenge', transactionId: `tx-${callbackCalls}`, message: 'Enter OTP', expiresAt: Date.now() + 60_000 };
    if (pick < 50) return { kind: 'accept', attributes: pick % 2 ? { Class: r.password } : { 'Not-An-Attribute': 'x' } };
    return { kind: 'reject', message: r.user.slice(0, 300) };
  };

  before(async () => {
    process.stdout.write(`# fuzz seed ${SEED}\n`);
    h = await startHarness({
      authenticate,
      clients: [
        { name: 'signed', address: '127.0.0.1', secret: SECRET },
        { name: 'legacy', address: '::1', secret: NO_MA_SECRET, require_message_authenticator: false },
      ],
    });
  });
  after(async () => h?.close());

  async function feed(packet: Buffer, address: string, secret: string, mustBeSigned: boolean): Promise<void> {
    const reply = await h.server.handle(packet, { address, port: 1000 + rnd.int(60000) });
    if (!reply) return;
    const parsed = parseFrame(packet);
    const ok =
      'frame' in parsed &&
      reply[20] === Attr.MessageAuthenticator &&
      verifyReply(reply, parsed.frame.authenticator, Buffer.from(secret)) &&
      (!mustBeSigned || verifyRequestMessageAuthenticator(parsed.frame, Buffer.from(secret)));
    if (!ok) badReplies++;
  }

  it('survives random, mutated and re-signed packets in-process', { timeout: 120_000 }, async () => {
    const started = Date.now();
    for (let i = 0; i < IN_PROCESS.random; i++) {
      const length = rnd.int(8) === 0 ? rnd.int(4200) : rnd.int(200);
      const p = rnd.bytes(length);
      if (length >= 4 && rnd.int(2)) {
        p[0] = Code.AccessRequest;
        p.writeUInt16BE(rnd.int(3) ? length : rnd.int(65536), 2);
      }
      if (rnd.int(2)) await feed(p, '127.0.0.1', SECRET, true);
      else await feed(p, '::1', NO_MA_SECRET, false);
    }
    const signed = templates(rnd, SECRET, true);
    const unsigned = templates(rnd, NO_MA_SECRET, false);
    for (let i = 0; i < IN_PROCESS.mutated; i++) {
      if (i % 2) await feed(mutate(rnd, signed[rnd.int(signed.length)]), '127.0.0.1', SECRET, true);
      else await feed(mutate(rnd, unsigned[rnd.int(unsigned.length)]), '::1', NO_MA_SECRET, false);
    }
    for (let i = 0; i < IN_PROCESS.resigned; i++) {
      const base = signed[rnd.int(signed.length)];
      // fresh Request Authenticator so the duplicate cache does not short-cut processing
      const fresh = Buffer.from(base);
      rnd.bytes(16).copy(fresh, 4);
      await feed(resign(mutate(rnd, resign(fresh, SECRET)), SECRET), '127.0.0.1', SECRET, true);
    }
    const stats = h.server.stats();
    process.stdout.write(`# in-process: ${Date.now() - started} ms, callback ${callbackCalls}, stats ${JSON.stringify(stats)}\n`);
    assert.equal(badReplies, 0);
    assert.ok(callbackCalls > 1000, 're-signed mutations reached the validation callback');
    assert.ok((stats.dropped.malformed ?? 0) > 100_000);
    assert.ok((stats.dropped.bad_message_authenticator ?? 0) > 10_000);
    assert.ok(stats.rejected + stats.accepted > 1000);
    assert.ok(stats.challenged > 5, 'challenges (State rows) were issued along the way');
  });

  it('survives a UDP flood and still answers a valid request', { timeout: 60_000 }, async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((res) => socket.bind(0, '127.0.0.1', () => res()));
    socket.on('message', () => undefined);
    const signed = templates(rnd, SECRET, true);
    const handled = (s: ReturnType<typeof h.server.stats>) =>
      Object.values(s.dropped).reduce((a, b) => a + b, 0) + s.accepted + s.rejected + s.challenged + s.duplicates;
    const before = handled(h.server.stats());
    for (let sent = 0; sent < OVER_UDP; ) {
      for (let j = 0; j < 100; j++, sent++) {
        const kind = rnd.int(3);
        const p = kind === 0 ? rnd.bytes(rnd.int(300)) : kind === 1 ? mutate(rnd, signed[rnd.int(signed.length)]) : resign(mutate(rnd, signed[rnd.int(signed.length)]), SECRET);
        socket.send(p, h.port, '127.0.0.1');
      }
      // pace the sender so the datagrams are processed, not lost in the socket buffer
      const deadline = Date.now() + 50;
      while (handled(h.server.stats()) - before < sent - 100 && Date.now() < deadline) await new Promise((res) => setImmediate(res));
    }
    // the server works through what is still queued; more than half must reach it
    await waitFor(() => handled(h.server.stats()) - before > OVER_UDP / 2, { what: `more than ${OVER_UDP / 2} of ${OVER_UDP} datagrams to reach the server`, timeoutMs: 5000 });
    socket.close();
    const reached = handled(h.server.stats()) - before;
    process.stdout.write(`# UDP: ${reached} of ${OVER_UDP} datagrams reached the server\n`);

    const request = radius.encode({ code: 'Access-Request', identifier: 7, secret: SECRET, attributes: [['User-Name', 'alice'], ['User-Password', 'alicepw123456']], add_message_authenticator: true });
    const [reply] = await udpExchange([request], h.port, { expect: 1, waitMs: 3000 });
    assert.ok(reply, 'valid request answered after the flood');
    assert.equal(reply[0], Code.AccessAccept);
    assert.ok(verifyReply(reply, request.subarray(4, 20), Buffer.from(SECRET)));
  });
});
