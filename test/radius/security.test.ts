/*
 * Invariants (spec/security.md B.2 items 27, 28, 30):
 * - every Access-Accept, Access-Reject and Access-Challenge carries a valid
 *   Message-Authenticator as its FIRST attribute;
 * - a retransmission (same source address and port, Identifier, Request Authenticator)
 *   gets the byte-identical reply and never reaches the validation service twice, also
 *   when the copies arrive while the first is still being processed;
 * - a State is consumed once, even by a concurrent burst, and dies with its challenge;
 * - failures fail closed: an internal error is not answered (the NAS retries or fails
 *   over), and is not cached; an Accept whose attributes cannot be encoded becomes a Reject.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import radius from 'radius';
import { Attr, Code, loadDictionaries, parseFrame, verifyReply } from '../../src/radius/codec.ts';
import type { RadiusAuthRequest, RadiusAuthResult } from '../../src/radius/server.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { SECRET, droppedTotal, startHarness, udpExchange, type Harness } from './helpers.ts';

loadDictionaries();
let nextId = 0;

function accessRequest(attributes: unknown[], opts: { secret?: string; identifier?: number; messageAuthenticator?: boolean } = {}): Buffer {
  return radius.encode({
    code: 'Access-Request',
    identifier: opts.identifier ?? nextId++ % 256,
    secret: opts.secret ?? SECRET,
    attributes,
    add_message_authenticator: opts.messageAuthenticator ?? true,
  });
}

function attributesOf(reply: Buffer) {
  const parsed = parseFrame(reply);
  assert.ok('frame' in parsed);
  return parsed.frame.attributes;
}

function assertSignedReply(reply: Buffer, request: Buffer, code: number, secret = SECRET) {
  assert.equal(reply[0], code, `reply code ${reply[0]}`);
  assert.equal(reply[1], request[1], 'identifier');
  assert.equal(attributesOf(reply)[0].type, Attr.MessageAuthenticator, 'Message-Authenticator first');
  assert.ok(verifyReply(reply, request.subarray(4, 20), Buffer.from(secret)), 'authenticators verify');
}

describe('RADIUS security invariants', () => {
  let h: Harness;
  const clock = new FakeClock(Date.now());
  let behaviour: ((r: RadiusAuthRequest) => Promise<RadiusAuthResult>) | undefined;
  const calls: RadiusAuthRequest[] = [];

  before(async () => {
    h = await startHarness({
      clock,
      clients: [{ name: 'loopback', address: '127.0.0.1', secret: SECRET }],
      authenticate: async (r) => {
        calls.push(r);
        return behaviour ? behaviour(r) : h.validator.authenticate(r);
      },
    });
  });
  after(async () => h?.close());

  it('Message-Authenticator comes first in Accept, Reject and Challenge', async () => {
    behaviour = undefined;
    const cases: Array<[unknown[], number]> = [
      [[['User-Name', 'alice'], ['User-Password', `alicepw${h.validator.otp('alice')}`]], Code.AccessAccept],
      [[['User-Name', 'alice'], ['User-Password', 'wrong']], Code.AccessReject],
      [[['User-Name', 'alice'], ['User-Password', 'alicepw']], Code.AccessChallenge],
      [[['User-Name', 'alice']], Code.AccessReject], // no User-Password (e.g. CHAP): refused, still signed
    ];
    for (const [attributes, code] of cases) {
      const request = accessRequest(attributes);
      const [reply] = await udpExchange([request], h.port, { expect: 1 });
      assert.ok(reply, `no reply for ${JSON.stringify(attributes)}`);
      assertSignedReply(reply, request, code);
    }
  });

  it('a retransmission gets the byte-identical reply and the validation service is called once (challenge: one State, one SMS)', async () => {
    behaviour = undefined;
    for (const attributes of [
      [['User-Name', 'alice'], ['User-Password', 'alicepw']], // challenge
      [['User-Name', 'alice'], ['User-Password', `alicepw${h.validator.otp('alice')}`]], // accept
      [['User-Name', 'bob'], ['User-Password', 'nope']], // reject
    ]) {
      const request = accessRequest(attributes);
      const before = calls.length;
      // each retransmission leaves once the previous copy was answered
      const replies = await udpExchange([request, request, request], h.port, { afterReplies: (i) => i, expect: 3 });
      assert.equal(replies.length, 3);
      assert.deepEqual(replies[1], replies[0]);
      assert.deepEqual(replies[2], replies[0]);
      assert.equal(calls.length, before + 1);
    }
    assert.ok(h.server.stats().duplicates >= 6);
  });

  it('copies arriving while the first is processed are discarded; later copies get the cached reply', async () => {
    behaviour = async (r) => {
      await new Promise((res) => setTimeout(res, 200));
      return { kind: 'reject', message: `slow ${r.user}` };
    };
    const request = accessRequest([['User-Name', 'carol'], ['User-Password', 'x']]);
    const before = calls.length;
    const inProgressBefore = h.server.stats().dropped.duplicate_in_progress ?? 0;
    // eight copies at once, then one more after the answer, all from the same source port
    const replies = await udpExchange(Array.from({ length: 9 }, () => request), h.port, { afterReplies: (i) => (i === 8 ? 1 : 0), expect: 2 });
    assert.equal(replies.length, 2);
    assert.deepEqual(replies[1], replies[0]);
    assert.equal(replies[0][0], Code.AccessReject);
    assert.equal(calls.length, before + 1);
    assert.equal(h.server.stats().dropped.duplicate_in_progress, inProgressBefore + 7);
  });

  it('the same Identifier and authenticator from another source port is a different request', async () => {
    behaviour = async () => ({ kind: 'reject' });
    const request = accessRequest([['User-Name', 'dave'], ['User-Password', 'x']]);
    const before = calls.length;
    await udpExchange([request], h.port, { expect: 1 });
    await udpExchange([request], h.port, { expect: 1 });
    assert.equal(calls.length, before + 2);
  });

  it('a State is consumed once under a concurrent burst of different requests, and expires with its challenge', async () => {
    behaviour = async (r) =>
      r.transactionId ? { kind: 'accept' } : { kind: 'challenge', transactionId: 'tx-burst', message: 'code?', expiresAt: clock.now() + 60_000 };
    const [challenge] = await udpExchange([accessRequest([['User-Name', 'erin'], ['User-Password', 'pw']])], h.port, { expect: 1 });
    const state = attributesOf(challenge).find((a) => a.type === Attr.State)!.value;
    assert.ok(state.length * 8 >= 128);
    const answers = Array.from({ length: 12 }, () => accessRequest([['User-Name', 'erin'], ['User-Password', '123456'], ['State', state]]));
    const replies = await udpExchange(answers, h.port, { waitMs: 2000, expect: 12 });
    assert.equal(replies.length, 12);
    assert.equal(replies.filter((r) => r[0] === Code.AccessAccept).length, 1);
    assert.equal(replies.filter((r) => r[0] === Code.AccessReject).length, 11);
    assert.equal(calls.filter((c) => c.transactionId === 'tx-burst').length, 1);

    const [second] = await udpExchange([accessRequest([['User-Name', 'erin'], ['User-Password', 'pw']])], h.port, { expect: 1 });
    const state2 = attributesOf(second).find((a) => a.type === Attr.State)!.value;
    clock.advance(60_000);
    const [late] = await udpExchange([accessRequest([['User-Name', 'erin'], ['User-Password', '123456'], ['State', state2]])], h.port, { expect: 1 });
    assert.equal(late[0], Code.AccessReject);
    assert.equal(calls.filter((c) => c.transactionId === 'tx-burst').length, 1);
  });

  it('fault injection: a failing validation service gets no answer and no cache entry; the retransmission is processed', async () => {
    let failures = 1;
    behaviour = async () => {
      if (failures-- > 0) throw new Error('database unavailable');
      return { kind: 'reject' };
    };
    const request = accessRequest([['User-Name', 'frank'], ['User-Password', 'x']]);
    const before = h.server.stats().dropped.internal_error ?? 0;
    const first = await udpExchange([request], h.port, { handled: () => (h.server.stats().dropped.internal_error ?? 0) > before });
    assert.equal(first.length, 0);
    assert.equal(h.server.stats().dropped.internal_error, before + 1);
    // same socket → same source port: a true retransmission
    const both = await udpExchange([request, request], h.port, { afterReplies: (i) => i, expect: 2 });
    assert.equal(both.length, 2);
    assert.equal(both[0][0], Code.AccessReject);
    assert.deepEqual(both[1], both[0]);
  });

  it('fails closed when an Accept carries attributes that cannot be encoded', async () => {
    behaviour = async () => ({ kind: 'accept', attributes: { 'Not-An-Attribute': 'x' } });
    const request = accessRequest([['User-Name', 'gina'], ['User-Password', 'x']]);
    const [reply] = await udpExchange([request], h.port, { expect: 1 });
    assertSignedReply(reply, request, Code.AccessReject);
  });

  it('wrong secret, unknown code and garbage are never answered', async () => {
    behaviour = async () => ({ kind: 'accept' });
    const droppedBefore = droppedTotal(h);
    const replies = await udpExchange(
      [
        accessRequest([['User-Name', 'x'], ['User-Password', 'y']], { secret: 'wrong' }),
        accessRequest([['User-Name', 'x'], ['User-Password', 'y']], { messageAuthenticator: false }),
        radius.encode({ code: 'Accounting-Request', secret: SECRET, attributes: [['User-Name', 'x']] }),
        Buffer.from('hello radius'),
        Buffer.alloc(0),
      ],
      h.port,
      { handled: () => droppedTotal(h) === droppedBefore + 5 },
    );
    assert.equal(replies.length, 0);
  });
});

describe('client without Message-Authenticator requirement', () => {
  it('logs a BlastRADIUS warning at start and answers requests without Message-Authenticator (still signed)', async () => {
    const h = await startHarness({ clients: [{ name: 'legacy-pam', address: '127.0.0.1', secret: SECRET, require_message_authenticator: false }] });
    try {
      const warning = h.log.lines().find((l) => l.level === 40 && l.client === 'legacy-pam');
      assert.ok(warning, 'warning logged');
      assert.match(String(warning.msg), /does not require Message-Authenticator.*CVE-2024-3596/);
      const request = accessRequest([['User-Name', 'alice'], ['User-Password', 'alicepw']], { messageAuthenticator: false });
      const [reply] = await udpExchange([request], h.port, { expect: 1 });
      assertSignedReply(reply, request, Code.AccessChallenge);
      // a request that does carry one must still carry a valid one
      const dropped = droppedTotal(h);
      const [none] = await udpExchange([accessRequest([['User-Name', 'alice'], ['User-Password', 'x']], { secret: 'wrong' })], h.port, { handled: () => droppedTotal(h) > dropped });
      assert.equal(none, undefined);
    } finally {
      await h.close();
    }
  });
});
