// Unit tests of src/util/net.ts: literal parsing, CIDR with the one host-bit rule,
// classification with embedded IPv4 taken out, and the outgoing-host policy.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CidrError, cidrContains, classifyAddress, createHostPolicy, formatCidr, formatIp, hostAddress, ipFromBytes, parseCidr, parseIp, sameCidr,
} from '../../src/util/net.ts';

describe('parseIp / formatIp', () => {
  test('IPv4, IPv6 (RFC 5952 text), IPv4-mapped as IPv4', () => {
    assert.equal(formatIp(parseIp('192.0.2.1')!), '192.0.2.1');
    assert.equal(formatIp(parseIp('::ffff:192.0.2.7')!), '192.0.2.7');
    assert.equal(formatIp(parseIp('::ffff:c000:207')!), '192.0.2.7');
    assert.equal(parseIp('::ffff:c000:207')!.kind(), 'ipv4');
    assert.equal(formatIp(parseIp('2001:DB8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('::')!), '::');
    assert.equal(formatIp(parseIp('1::')!), '1::');
    assert.equal(formatIp(parseIp('64:ff9b::192.0.2.33')!), '64:ff9b::c000:221'); // NAT64 stays IPv6 for matching
  });

  test('refuses non-literals, numeric forms and (unless stripped) zone ids', () => {
    for (const bad of ['256.1.1.1', '010.0.0.1', '2130706433', '0x7f.1', '127.1', 'example.org', '', '1.2.3.4/8', 'fe80::1%eth0']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
    assert.equal(formatIp(parseIp('fe80::1%eth0', { zone: 'strip' })!), 'fe80::1');
  });

  test('ipFromBytes: 4 or 16 bytes, mapped as IPv4', () => {
    assert.equal(formatIp(ipFromBytes(Buffer.from([192, 0, 2, 9]))!), '192.0.2.9');
    assert.equal(formatIp(ipFromBytes(Buffer.from('00000000000000000000ffffc0000209', 'hex'))!), '192.0.2.9');
    assert.equal(formatIp(ipFromBytes(Buffer.from('20010db8000000000000000000000001', 'hex'))!), '2001:db8::1');
    assert.equal(ipFromBytes(Buffer.from([1, 2, 3])), undefined);
  });
});

describe('parseCidr: one rule for host bits', () => {
  test('networks and single addresses', () => {
    assert.equal(formatCidr(parseCidr('10.0.0.0/8')), '10.0.0.0/8');
    assert.equal(formatCidr(parseCidr('2001:DB8::/32')), '2001:db8::/32');
    assert.equal(formatCidr(parseCidr('::1')), '::1');
    assert.equal(formatCidr(parseCidr('192.0.2.7/32')), '192.0.2.7');
    assert.equal(formatCidr(parseCidr('::ffff:10.0.0.0/104')), '10.0.0.0/8');
    assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
    assert.ok(sameCidr(parseCidr('::ffff:192.0.2.7'), parseCidr('192.0.2.7/32')));
    assert.ok(!sameCidr(parseCidr('10.0.0.0/8'), parseCidr('10.0.0.0/9')));
  });

  test('host bits are refused with the network meant', () => {
    const cases: [string, string][] = [
      ['10.1.2.3/8', '10.0.0.0/8'],
      ['192.168.1.7/24', '192.168.1.0/24'],
      ['2001:db8::1/32', '2001:db8::/32'],
      ['::ffff:10.1.2.3/104', '10.0.0.0/8'],
      ['0.0.0.1/0', '0.0.0.0/0'],
    ];
    for (const [text, meant] of cases) {
      assert.throws(() => parseCidr(text), (e: unknown) => e instanceof CidrError && e.suggestion === meant && e.message === `host bits set in ${text}; did you mean ${meant}?`, text);
    }
  });

  test('bad prefixes and non-addresses are refused without a suggestion', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0/33', /prefix length must be 0\.\.32/],
      ['2001:db8::/129', /prefix length must be 0\.\.128/],
      ['10.0.0.0/', /prefix length/],
      ['10.0.0.0/8/1', /not an IP/],
      ['radius.example.org', /not an IP/],
      ['fe80::1%eth0', /not an IP/],
      ['2130706433', /not an IP/],
      ['::ffff:0:0/95', /IPv4-mapped network must be 96\.\.128/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseCidr(text), (e: unknown) => e instanceof CidrError && e.suggestion === undefined && message.test(e.message), text);
    }
  });

  test('cidrContains', () => {
    assert.ok(cidrContains(parseCidr('10.0.0.0/8'), parseIp('10.200.1.1')!));
    assert.ok(!cidrContains(parseCidr('10.0.0.0/8'), parseIp('11.0.0.1')!));
    assert.ok(cidrContains(parseCidr('2001:db8::/32'), parseIp('2001:db8:ffff::1')!));
    assert.ok(!cidrContains(parseCidr('2001:db8::/32'), parseIp('10.0.0.1')!));
    assert.ok(!cidrContains(parseCidr('2001:db8::/32'), parseIp('2001:db9::')!));
    assert.ok(cidrContains(parseCidr('0.0.0.0/0'), parseIp('::ffff:8.8.8.8')!));
    assert.ok(cidrContains(parseCidr('::ffff:10.0.0.0/104'), parseIp('10.1.1.1')!));
    assert.ok(cidrContains(parseCidr('1.2.3.4'), parseIp('1.2.3.4')!));
    assert.ok(!cidrContains(parseCidr('::/0'), parseIp('10.0.0.1')!));
  });
});

describe('classifyAddress', () => {
  const cases: [string, string, string?][] = [
    ['8.8.8.8', 'public'],
    ['2606:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.1.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.128.0.1', 'public'],
    ['fc00::1', 'unique-local'],
    ['fd00::1', 'unique-local'],
    ['fec0::1', 'unique-local'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.192', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['::7f00:1', 'reserved'], // IPv4-compatible (deprecated)
    ['64:ff9b:1::1', 'reserved'],
    ['::ffff:a9fe:a9fe', 'link-local'], // parseIp unmaps: plain IPv4 then
    ['64:ff9b::a9fe:a9fe', 'link-local', 'NAT64 169.254.169.254'],
    ['64:ff9b::808:808', 'public', 'NAT64 8.8.8.8'],
    ['64:ff9b::7f00:1', 'loopback', 'NAT64 127.0.0.1'],
    ['::ffff:0:a00:1', 'private', 'IPv4-translated 10.0.0.1'],
    ['2002:7f00:1::1', 'loopback', '6to4 127.0.0.1'],
    ['2002:808:808::1', 'public'],
    ['2001:0:4136:e378:8000:63bf:5601:5601', 'link-local', 'Teredo 169.254.169.254'],
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'public'], // Teredo client 8.8.8.8
  ];
  for (const [address, expected, embedded] of cases) {
    test(`${address} → ${expected}${embedded ? ` (${embedded})` : ''}`, () => {
      const c = classifyAddress(address);
      assert.equal(c.class, expected);
      assert.equal(c.embedded ? `${c.embedded.via} ${c.embedded.ipv4}` : undefined, embedded);
    });
  }
  test('a non-literal is never public', () => assert.equal(classifyAddress('example.org').class, 'reserved'));
});

describe('hostAddress: what the system resolver would make of a numeric host', () => {
  const cases: [string, string | undefined][] = [
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['[FE80::1%25eth0]', 'fe80::1'],
    ['0', '0.0.0.0'],
    ['example.org', undefined],
    ['cafe.de', undefined],
    ['1.2.3.4.5', undefined],
  ];
  for (const [host, expected] of cases) {
    test(`${host} → ${expected}`, () => {
      const ip = hostAddress(host);
      assert.equal(ip && formatIp(ip), expected);
    });
  }
});

describe('createHostPolicy', () => {
  const settings = { allowedHosts: 'XAllowedHosts', denyPrivate: 'XDenyPrivateHosts' };
  test('default: always-refused classes and metadata names; loopback and private allowed', () => {
    const p = createHostPolicy({ purpose: 'things', settings });
    assert.equal(p.refuse('169.254.169.254'), 'address 169.254.169.254 (link-local) is not allowed for things');
    assert.equal(p.refuse('[::ffff:a9fe:a9fe]'), 'address ::ffff:a9fe:a9fe (IPv4-mapped 169.254.169.254, link-local) is not allowed for things');
    assert.equal(p.refuse('2852039166'), 'address 2852039166 (169.254.169.254, link-local) is not allowed for things');
    assert.equal(p.refuse('metadata.google.internal'), 'host metadata.google.internal is not allowed for things');
    assert.equal(p.refuse(''), 'empty host');
    for (const ok of ['127.0.0.1', '[::1]', 'localhost', '10.0.0.1', '[fd00::1]', 'sms.example.com', '8.8.8.8']) assert.equal(p.refuse(ok), null, ok);
    assert.equal(p.refuseAddress('::ffff:169.254.169.254'), 'address ::ffff:169.254.169.254 (IPv4-mapped 169.254.169.254, link-local) is not allowed for things');
  });

  test('deny-private refuses loopback, private, CGNAT, unique-local and localhost, naming the switch', () => {
    const p = createHostPolicy({ denyPrivate: true, purpose: 'things', settings });
    assert.equal(p.refuse('[::ffff:7f00:1]'), 'address ::ffff:7f00:1 (IPv4-mapped 127.0.0.1, loopback) is not allowed for things while XDenyPrivateHosts is on');
    assert.equal(p.refuse('app.localhost'), 'address app.localhost (127.0.0.1, loopback) is not allowed for things while XDenyPrivateHosts is on');
    for (const bad of ['10.0.0.1', '100.64.0.1', '[fc00::1]', '127.1']) assert.match(p.refuse(bad) ?? '', /XDenyPrivateHosts/, bad);
    assert.equal(p.refuse('8.8.8.8'), null);
  });

  test('allow-list and live options', () => {
    let allowed = ['sms.example.com', '*.gw.example.com'];
    const p = createHostPolicy(() => ({ allowedHosts: allowed, settings }));
    assert.equal(p.refuse('SMS.example.com'), null);
    assert.equal(p.refuse('a.gw.example.com'), null);
    assert.equal(p.refuse('gw.example.com'), 'host gw.example.com is not in the allow-list (XAllowedHosts)');
    allowed = [];
    assert.equal(p.refuse('gw.example.com'), null);
  });

  test('lookup and check resolve and check every address, before any connection', async () => {
    const p = createHostPolicy({ denyPrivate: true, purpose: 'things', settings });
    await assert.rejects(p.check('localhost'), (e: NodeJS.ErrnoException) => e.code === 'ENOTALLOWED' && /loopback/.test(e.message));
    await assert.rejects(p.check('[::ffff:a9fe:a9fe]'), (e: NodeJS.ErrnoException) => e.code === 'ENOTALLOWED');
    const open = createHostPolicy();
    await open.check('127.0.0.1');
    const address = await new Promise<string>((resolve, reject) =>
      open.lookup('localhost', { family: 4 }, (err, a) => (err ? reject(err) : resolve(a as string))),
    );
    assert.equal(address, '127.0.0.1');
  });

  test('a DNS answer cannot smuggle in a refused address (mapped metadata address from the resolver)', async () => {
    const answers: Record<string, string[]> = { 'rebind.test': ['8.8.8.8', '::ffff:169.254.169.254'], 'fine.test': ['8.8.8.8'] };
    const resolve = ((host: string, _opts: unknown, cb: (err: Error | null, a: { address: string; family: number }[]) => void) =>
      cb(null, (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))) as never;
    const p = createHostPolicy({ purpose: 'things', resolve });
    assert.equal(p.refuse('rebind.test'), null); // a name passes the static check ...
    await assert.rejects(p.check('rebind.test'), /address ::ffff:169\.254\.169\.254 \(IPv4-mapped 169\.254\.169\.254, link-local\) is not allowed for things/);
    await p.check('fine.test');
    const first = await new Promise<string>((ok, fail) => p.lookup('fine.test', {}, (err, a) => (err ? fail(err) : ok(a as string))));
    assert.equal(first, '8.8.8.8');
  });
});
