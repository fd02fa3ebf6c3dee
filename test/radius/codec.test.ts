import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import radius from 'radius';
import {
  Attr,
  Code,
  decryptUserPassword,
  encodeNamedAttributes,
  encodeReply,
  encodeText,
  hideUserPassword,
  loadDictionaries,
  parseFrame,
  verifyReply,
  verifyRequestMessageAuthenticator,
} from '../../src/radius/codec.ts';

const secret = Buffer.from('s3cr3t');

function request(attributes: unknown[], withMa = true): Buffer {
  loadDictionaries();
  return radius.encode({ code: 'Access-Request', identifier: 42, secret: 's3cr3t', attributes, add_message_authenticator: withMa });
}

function frameOf(packet: Buffer) {
  const parsed = parseFrame(packet);
  assert.ok('frame' in parsed, 'error' in parsed ? parsed.error : '');
  return parsed.frame;
}

describe('RADIUS framing', () => {
  it('parses a request encoded by the radius package and verifies its Message-Authenticator', () => {
    const frame = frameOf(request([['User-Name', 'alice'], ['User-Password', 'pw']]));
    assert.equal(frame.code, Code.AccessRequest);
    assert.equal(frame.identifier, 42);
    assert.deepEqual(frame.attributes.map((a) => a.type), [Attr.UserName, Attr.UserPassword, Attr.MessageAuthenticator]);
    assert.equal(verifyRequestMessageAuthenticator(frame, secret), true);
    assert.equal(verifyRequestMessageAuthenticator(frame, Buffer.from('wrong')), false);
  });

  it('detects a flipped bit anywhere in a signed request', () => {
    const packet = request([['User-Name', 'alice'], ['User-Password', 'pw']]);
    for (let i = 0; i < packet.length; i++) {
      const copy = Buffer.from(packet);
      copy[i] ^= 0x01;
      const parsed = parseFrame(copy);
      if ('error' in parsed) continue;
      assert.equal(verifyRequestMessageAuthenticator(parsed.frame, secret), false, `byte ${i}`);
    }
  });

  it('rejects bad lengths, truncations and a second Message-Authenticator', () => {
    const packet = request([['User-Name', 'alice']]);
    assert.ok('error' in parseFrame(packet.subarray(0, 19)));
    const longer = Buffer.from(packet);
    longer.writeUInt16BE(packet.length + 1, 2);
    assert.ok('error' in parseFrame(longer));
    const short = Buffer.from(packet);
    short.writeUInt16BE(19, 2);
    assert.ok('error' in parseFrame(short));
    const zeroAttr = Buffer.from(packet);
    zeroAttr[21] = 0; // User-Name length 0
    assert.ok('error' in parseFrame(zeroAttr));
    const overrun = Buffer.from(packet);
    overrun[21] = 250;
    assert.ok('error' in parseFrame(overrun));
    const twoMa = Buffer.concat([packet, Buffer.from([80, 18]), Buffer.alloc(16)]);
    twoMa.writeUInt16BE(twoMa.length, 2);
    assert.match((parseFrame(twoMa) as { error: string }).error, /Message-Authenticator/);
    // bytes after the declared length are padding (RFC 2865 §3) and ignored
    assert.equal(frameOf(Buffer.concat([packet, Buffer.from([1, 2, 3])])).packet.length, packet.length);
  });

  it('recovers User-Password hidden by the radius package (RFC 2865 §5.2), 1 to 128 bytes', () => {
    for (const pw of ['x', 'alicepw123456', 'a'.repeat(16), 'b'.repeat(17), 'ü€'.repeat(20), 'c'.repeat(128)]) {
      const frame = frameOf(request([['User-Name', 'u'], ['User-Password', pw]]));
      const hidden = frame.attributes.find((a) => a.type === Attr.UserPassword)!.value;
      assert.equal(decryptUserPassword(hidden, secret, frame.authenticator)?.toString(), pw);
      assert.deepEqual(hideUserPassword(Buffer.from(pw), secret, frame.authenticator), hidden);
    }
    assert.equal(decryptUserPassword(Buffer.alloc(15), secret, Buffer.alloc(16)), null);
    assert.equal(decryptUserPassword(Buffer.alloc(144), secret, Buffer.alloc(16)), null);
  });
});

describe('RADIUS replies', () => {
  it('the radius package puts Message-Authenticator last, which is why otpd frames replies itself', () => {
    const req = request([['User-Name', 'alice'], ['User-Password', 'pw']]);
    const decoded = radius.decode({ packet: req, secret: 's3cr3t' });
    const theirs = radius.encode_response({ packet: decoded, code: 'Access-Accept', secret: 's3cr3t', attributes: [['Reply-Message', 'hi']] });
    assert.equal(theirs[20], Attr.ReplyMessage);
    assert.equal(theirs[theirs.length - 18], Attr.MessageAuthenticator);
  });

  it('puts Message-Authenticator first and signs it so the radius package and verifyReply accept it', () => {
    const req = request([['User-Name', 'alice'], ['User-Password', 'pw']]);
    const frame = frameOf(req);
    for (const code of [Code.AccessAccept, Code.AccessReject, Code.AccessChallenge]) {
      const reply = encodeReply({
        code,
        identifier: frame.identifier,
        requestAuthenticator: frame.authenticator,
        secret,
        attributes: [...encodeText(Attr.ReplyMessage, 'Welcome'), Buffer.from([Attr.State, 4, 1, 2])],
      });
      assert.equal(reply[0], code);
      assert.equal(reply[1], 42);
      assert.equal(reply[20], Attr.MessageAuthenticator);
      assert.equal(reply[21], 18);
      assert.equal(verifyReply(reply, frame.authenticator, secret), true);
      assert.equal(verifyReply(reply, frame.authenticator, Buffer.from('other')), false);
      assert.equal(radius.verify_response({ request: req, response: Buffer.from(reply), secret: 's3cr3t' }), true);
      // the Message-Authenticator value is HMAC-MD5 over the reply with the request authenticator and a zeroed MA
      const copy = Buffer.from(reply);
      frame.authenticator.copy(copy, 4);
      copy.fill(0, 22, 38);
      assert.deepEqual(createHmac('md5', secret).update(copy).digest(), reply.subarray(22, 38));
    }
  });

  it('splits long Reply-Message text at character boundaries into ≤253-byte attributes', () => {
    const text = 'é'.repeat(300); // 600 bytes
    const parts = encodeText(Attr.ReplyMessage, text);
    assert.equal(parts.length, 3);
    assert.ok(parts.every((p) => p[1] <= 255 && p[0] === Attr.ReplyMessage));
    assert.equal(Buffer.concat(parts.map((p) => p.subarray(2))).toString(), text);
  });

  it('encodes named reply attributes by dictionary, vendor attributes included, and refuses unknown or reserved ones', () => {
    const bytes = encodeNamedAttributes({ Class: 'vpn', 'Filter-Id': 'staff', 'Session-Timeout': '3600', 'Cisco-AVPair': 'shell:priv-lvl=15' });
    const packet = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.alloc(16), bytes]);
    packet.writeUInt16BE(packet.length, 2);
    const decoded = radius.decode_without_secret({ packet }).attributes;
    assert.deepEqual(decoded.Class, Buffer.from('vpn'));
    assert.equal(decoded['Filter-Id'], 'staff');
    assert.equal(decoded['Session-Timeout'], 3600);
    assert.equal(decoded['Vendor-Specific']['Cisco-AVPair'], 'shell:priv-lvl=15');
    assert.deepEqual(encodeNamedAttributes({ Class: '0x0a0b' }), Buffer.from([25, 4, 10, 11]));
    assert.throws(() => encodeNamedAttributes({ 'Not-A-Real-Attribute': 'x' }), /unknown reply attribute Not-A-Real-Attribute/);
    assert.throws(() => encodeNamedAttributes({ 'Auth-Type': 'Accept' }), /unknown reply attribute Auth-Type/); // FreeRADIUS internal
    assert.throws(() => encodeNamedAttributes({ State: 'x' }), /set by the server/);
    assert.throws(() => encodeNamedAttributes({ 'Session-Timeout': 'soon' }), /Session-Timeout/);
  });
});
