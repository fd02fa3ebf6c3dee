// Invariant (security item 21, issue 10 finding 5): no configured outgoing host — SMS/e-mail
// provider URLs and SMTP servers, LDAP and SQL user-store URIs — can point at an address the
// host policy refuses, whatever spelling it uses: dotted, decimal, octal or hex IPv4, IPv4-mapped
// IPv6 (`[::ffff:127.0.0.1]`, `[::ffff:7f00:1]`), NAT64 (`64:ff9b::/96`), 6to4, Teredo.
// Always refused: unspecified, link-local (169.254.169.254 metadata), multicast, broadcast,
// reserved. Refused when the deny-private switch is on: loopback, RFC 1918, CGNAT, unique-local.
// Refusals happen before any connection attempt and answer in LinOTP's envelope; nothing is
// stored. CIDR values with host bits set (`10.1.2.3/8`) are refused for RADIUS clients and policy
// `client` fields instead of being silently widened.
// Only loopback is ever connected to; every other address in here must be refused unconnected.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { httpSmsProvider } from '../../src/delivery/sms/http.ts';
import { restSmsProvider } from '../../src/delivery/sms/rest.ts';
import { smtpSmsProvider } from '../../src/delivery/sms/smtp.ts';
import { smtpEmailProvider } from '../../src/delivery/email/smtp.ts';
import pino from 'pino';
import { build } from '../delivery/helpers.ts';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDb } from '../helpers/db.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { ldapResolverType } from '../../src/users/ldap.ts';
import { sqlResolverType } from '../../src/users/sql.ts';
import { createHostPolicy } from '../../src/util/net.ts';

type Kind = 'always' | 'private';

/** Host spellings as they would appear in a URL authority, with what the policy must do. */
const HOSTILE: [host: string, kind: Kind][] = [
  ['169.254.169.254', 'always'],
  ['2852039166', 'always'], // decimal 169.254.169.254
  ['0xa9fea9fe', 'always'], // hex
  ['0251.0376.0251.0376', 'always'], // octal
  ['0xa9.0xfe.0xa9.0xfe', 'always'],
  ['[::ffff:169.254.169.254]', 'always'],
  ['[::ffff:a9fe:a9fe]', 'always'],
  ['[64:ff9b::a9fe:a9fe]', 'always'], // NAT64
  ['[64:ff9b::169.254.169.254]', 'always'],
  ['[::ffff:0:a9fe:a9fe]', 'always'], // IPv4-translated (RFC 6145)
  ['[2002:a9fe:a9fe::1]', 'always'], // 6to4
  ['[2001:0:4136:e378:8000:63bf:5601:5601]', 'always'], // Teredo, client 169.254.169.254
  ['[fe80::1]', 'always'],
  ['[::]', 'always'],
  ['0.0.0.0', 'always'],
  ['0', 'always'],
  ['[::ffff:0.0.0.0]', 'always'],
  ['224.0.0.1', 'always'],
  ['[ff02::1]', 'always'],
  ['255.255.255.255', 'always'],
  ['240.0.0.1', 'always'],
  ['192.0.0.192', 'always'], // IETF protocol assignments (a cloud metadata address)
  ['127.0.0.1', 'private'],
  ['2130706433', 'private'], // decimal 127.0.0.1
  ['0x7f000001', 'private'],
  ['0177.0.0.1', 'private'],
  ['127.1', 'private'],
  ['[::1]', 'private'],
  ['[::ffff:127.0.0.1]', 'private'],
  ['[::ffff:7f00:1]', 'private'],
  ['[64:ff9b::7f00:1]', 'private'],
  ['[::ffff:10.0.0.1]', 'private'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'private'], // CGNAT
  ['[fc00::1]', 'private'],
  ['[fd12:3456::1]', 'private'],
  ['[::ffff:100.64.0.1]', 'private'],
];

const bare = (host: string) => host.replace(/^\[|\]$/g, '');

/** Every provider kind that takes a host, built as setProvider would. */
const PROVIDERS: [name: string, configFor: (host: string) => [typeof httpSmsProvider, Record<string, unknown>]][] = [
  ['HttpSMSProvider URL', (h) => [httpSmsProvider, { URL: `http://${h}:8080/send` }]],
  ['RestSMSProvider URL', (h) => [restSmsProvider, { URL: `https://${h}/v1/sms`, PAYLOAD: { to: '', text: '' }, SMS_TEXT_KEY: 'text', SMS_PHONENUMBER_KEY: 'to' }]],
  ['HttpSMSProvider PROXY', (h) => [httpSmsProvider, { URL: 'http://sms.example.com/send', PROXY: `http://${h}:3128` }]],
  ['RestSMSProvider PROXY.https', (h) => [restSmsProvider, { URL: 'https://sms.example.com/v1', PROXY: { https: `http://${h}:3128` }, PAYLOAD: { to: '', text: '' }, SMS_TEXT_KEY: 'text', SMS_PHONENUMBER_KEY: 'to' }]],
  ['SmtpSMSProvider mailserver', (h) => [smtpSmsProvider, { mailserver: `${h}:25`, mailto: '<phone>@gw.example.com' }]],
  ['SMTPEmailProvider SMTP_SERVER', (h) => [smtpEmailProvider, { SMTP_SERVER: bare(h) }]],
];

describe('SSRF: provider hosts in every spelling', () => {
  for (const [label, configFor] of PROVIDERS) {
    test(`${label}: always-refused hosts are refused even with the default policy`, () => {
      for (const [host, kind] of HOSTILE) {
        const [module, config] = configFor(host);
        if (kind === 'always') assert.throws(() => build(module, config), /not allowed/, `${label} ${host}`);
        else assert.doesNotThrow(() => build(module, config), `${label} ${host}: loopback/private stay usable by default`);
      }
    });

    test(`${label}: with deny-private every hostile host is refused`, () => {
      for (const [host] of HOSTILE) {
        const [module, config] = configFor(host);
        assert.throws(() => build(module, config, { hostOptions: { denyPrivate: true } }), /not allowed/, `${label} ${host}`);
      }
    });
  }
});

describe('SSRF: through the API (envelope, nothing stored, nothing connected)', () => {
  let t: TestApp;
  let listener: Server;
  let port = 0;
  const sockets: Socket[] = [];
  before(async () => {
    t = await startTestApp();
    listener = createServer((s) => {
      sockets.push(s);
      s.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
  });
  after(async () => {
    await t.close();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  });

  const setConfig = async (key: string, value: string) => {
    const res = await t.admin('/system/setConfig', { key, value });
    assert.equal(res.json.result.status, true, res.body);
  };

  test('setProvider: mapped and NAT64 metadata addresses are refused with a clear message (burst of 20)', async () => {
    const hosts = ['[::ffff:a9fe:a9fe]', '[64:ff9b::a9fe:a9fe]', '[::ffff:169.254.169.254]', '2852039166', '[fe80::1]'];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.admin('/system/setProvider', {
          type: 'sms', name: `p${i}`, class: 'HttpSMSProvider', timeout: '5', config: JSON.stringify({ URL: `http://${hosts[i % hosts.length]}/` }),
        }),
      ),
    );
    for (const res of results) {
      assert.equal(res.status, 200);
      assert.equal(res.json.result.status, false, res.body);
      assert.equal(res.json.result.error.code, 2007);
      assert.match(res.json.result.error.message, /^ERR2007: Invalid provider config: providers\.sms\.p\d+\.config\.URL: address .* is not allowed for providers/);
    }
    assert.match(results[0]!.json.result.error.message, /169\.254\.169\.254/);
    assert.deepEqual((await t.admin('/system/getProvider', { type: 'sms' })).json.result.value, {});
  });

  const ldapForm = (name: string, host: string) => ({
    name, type: 'ldapresolver', PRESET: 'openldap', LDAPURI: `ldap://${host}:${port}`, LDAPBASE: 'dc=example,dc=org', EnforceTLS: 'False', TIMEOUT: '2',
  });
  const sqlForm = (name: string, host: string) => ({
    name, type: 'sqlresolver', Connect: `postgresql://otpd@${host}:${port}/users`, Table: 'users', Map: '{"userid": "id", "username": "login"}', TIMEOUT: '2',
  });

  test('setResolver: hostile LDAP and SQL hosts are refused, naming the key; nothing is stored', async () => {
    for (const [host, kind] of HOSTILE) {
      if (kind !== 'always') continue;
      for (const [form, key] of [[ldapForm('hostile', host), 'LDAPURI'], [sqlForm('hostile', host), 'Connect']] as const) {
        const res = await t.admin('/system/setResolver', form);
        assert.equal(res.json.result.status, false, `${key} ${host}: ${res.body}`);
        assert.equal(res.json.result.error.code, Errors.resolverHostRefused.code);
        assert.match(res.json.result.error.message, new RegExp(`'${key}': .*not allowed for user stores`), `${key} ${host}`);
      }
    }
    assert.equal((await t.admin('/system/getResolvers')).json.result.value.hostile, undefined);
    assert.equal(sockets.length, 0);
  });

  test('the default keeps loopback user stores usable; UserStoreDenyPrivateHosts refuses them before connecting', async () => {
    // default: a loopback LDAP/SQL server is reached (the listener drops the connection)
    const ldap = await t.admin('/system/testResolver', ldapForm('loopldap', '127.0.0.1'));
    assert.equal(ldap.json.result.status, true, ldap.body);
    const sqlRes = await t.admin('/system/testResolver', sqlForm('loopsql', '[::ffff:127.0.0.1]'));
    assert.equal(sqlRes.json.result.status, true, sqlRes.body);
    const reached = sockets.length;
    assert.ok(reached >= 2, `loopback listener reached ${reached} times`);
    assert.equal((await t.admin('/system/setResolver', ldapForm('storedldap', '127.0.0.1'))).json.result.status, true);

    await setConfig('UserStoreDenyPrivateHosts', 'True');
    for (const host of ['127.0.0.1', '[::ffff:7f00:1]', '2130706433', '[::1]', 'localhost']) {
      for (const [form, key] of [[ldapForm('denied', host), 'LDAPURI'], [sqlForm('denied', host), 'Connect']] as const) {
        for (const path of ['/system/testResolver', '/system/setResolver']) {
          const res = await t.admin(path, form);
          assert.equal(res.json.result.status, false, `${path} ${key} ${host}: ${res.body}`);
          assert.equal(res.json.result.error.code, Errors.resolverHostRefused.code);
          assert.match(res.json.result.error.message, new RegExp(`'${key}': .*(private|loopback).*not allowed for user stores.*UserStoreDenyPrivateHosts`), `${path} ${host}`);
        }
      }
    }
    // A resolver stored while allowed is refused at connect time, still without a connection.
    const stored = await t.admin('/system/testResolver', { name: 'storedldap' });
    assert.equal(stored.json.result.status, true, stored.body);
    assert.equal(stored.json.result.value.result, 'error', stored.body);
    assert.match(stored.body, /not allowed for user stores/);
    assert.equal(sockets.length, reached, 'no connection after the switch');
    await setConfig('UserStoreDenyPrivateHosts', 'False');
  });

  test('UserStoreAllowedHosts limits user stores to the listed names', async () => {
    await setConfig('UserStoreAllowedHosts', 'ldap.example.com');
    const res = await t.admin('/system/setResolver', ldapForm('listed', '127.0.0.1'));
    assert.equal(res.json.result.status, false);
    assert.match(res.json.result.error.message, /'LDAPURI': host 127\.0\.0\.1 is not in the allow-list \(UserStoreAllowedHosts\)/);
    await setConfig('UserStoreAllowedHosts', '');
  });

  test('host policy settings that would not take effect are refused by setConfig', async () => {
    for (const [key, value, message] of [
      ['UserStoreDenyPrivateHosts', 'maybe', /'UserStoreDenyPrivateHosts': use True or False/],
      ['DeliveryDenyPrivateHosts', 'ja', /'DeliveryDenyPrivateHosts': use True or False/],
      ['UserStoreAllowedHosts', 'ldap.example.com, http://x/', /not a host name or \*\.domain pattern: http:\/\/x\//],
      ['DeliveryAllowedHosts', '*example.com', /not a host name/],
    ] as const) {
      const res = await t.admin('/system/setConfig', { key, value });
      assert.equal(res.json.result.status, false, `${key}=${value}: ${res.body}`);
      assert.equal(res.json.result.error.code, Errors.invalidConfigValue.code);
      assert.match(res.json.result.error.message, message);
    }
    assert.equal(t.services.config.get('UserStoreDenyPrivateHosts'), 'False'); // as the earlier test left it
    await setConfig('DeliveryAllowedHosts', 'sms.example.com, *.gw.example.com, 127.0.0.1');
    await setConfig('DeliveryAllowedHosts', '');
  });

  test('a policy client with host bits set is refused at setPolicy and importPolicy, naming the value', async () => {
    for (const client of ['10.1.2.3/8', '*, !192.168.1.7/24', '2001:db8::1/32']) {
      const res = await t.admin('/system/setPolicy', { name: 'vpn', scope: 'authentication', action: 'otppin=2', realm: '*', user: '*', client });
      assert.equal(res.json.result.status, false, `${client}: ${res.body}`);
      assert.equal(res.json.result.error.code, 2012);
      assert.match(res.json.result.error.message, /host bits set/);
      assert.match(res.json.result.error.message, /did you mean/);
    }
    const file = '[vpn]\nscope = authentication\naction = otppin=2\nrealm = *\nuser = *\nclient = 10.1.2.3/8\n';
    const imported = await t.admin('/system/importPolicy', { file });
    assert.equal(imported.json.result.status, false, imported.body);
    assert.match(imported.json.result.error.message, /policy 'vpn'.*'10\.1\.2\.3\/8'.*host bits set.*did you mean 10\.0\.0\.0\/8/);
    assert.equal(t.services.policies.list({ name: 'vpn', includeInactive: true }).length, 0);
    const good = await t.admin('/system/setPolicy', { name: 'vpn', scope: 'authentication', action: 'otppin=2', realm: '*', user: '*', client: '10.0.0.0/8, ::ffff:192.168.0.0/112' });
    assert.equal(good.json.result.status, true, good.body);
  });

  test('a RADIUS client with host bits set is refused, naming the value', async () => {
    for (const address of ['10.1.2.3/8', '2001:db8::1/32', '::ffff:10.1.2.3/104']) {
      const res = await t.admin('/system/setRadiusClient', { name: 'nas', address, secret: 'radius-secret-1' });
      assert.equal(res.json.result.status, false, `${address}: ${res.body}`);
      assert.match(res.json.result.error.message, /host bits set in .*did you mean/);
    }
    assert.deepEqual((await t.admin('/system/getRadiusClients')).json.result.value, {});
  });
});

test('a stored policy client with host bits keeps its old (widened) meaning, with a warning, until saved again', async () => {
  const t = await createTestDb('sqlite');
  try {
    const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // written before host bits were refused
    await t.db.kysely.insertInto('policies').values({
      name: 'legacy_vpn', scope: 'authentication', action: 'otppin=2', realm: '*', user: '*', client: '10.1.2.3/8, !10.66.6.6/16', time: '', active: 1,
    }).execute();
    const policies = new PolicyService({ db: t.db, logger });
    await policies.load();
    assert.equal(policies.value('authentication', 'otppin', { login: 'alice', realm: 'corp', client: '10.9.9.9' }), 'only_otp');
    assert.equal(policies.value('authentication', 'otppin', { login: 'alice', realm: 'corp', client: '10.66.1.1' }), undefined);
    assert.equal(policies.value('authentication', 'otppin', { login: 'alice', realm: 'corp', client: '11.0.0.1' }), undefined);
    assert.equal(policies.list({ name: 'legacy_vpn' })[0]?.client, '10.0.0.0/8, !10.66.0.0/16');
    const warning = lines.find((l) => l.policy === 'legacy_vpn');
    assert.equal(warning?.level, 40);
    assert.equal(warning?.stored, '10.1.2.3/8, !10.66.6.6/16');
    assert.equal(warning?.applied, '10.0.0.0/8, !10.66.0.0/16');
    assert.match(warning?.msg ?? '', /host bits set.*setPolicy refuses/);
    // saving the stored value again is refused; the shown (network) value is accepted
    await assert.rejects(policies.set({ name: 'legacy_vpn', scope: 'authentication', action: 'otppin=2', realm: '*', client: '10.1.2.3/8' }), /host bits set/);
    await policies.set({ name: 'legacy_vpn', scope: 'authentication', action: 'otppin=2', realm: '*', client: '10.0.0.0/8, !10.66.0.0/16' });
  } finally {
    await t.drop();
  }
});

test('user stores: a DNS answer with a refused address is caught before connecting (LDAP, LDAPS, PostgreSQL, MySQL)', async () => {
  const sockets: Socket[] = [];
  const listener = createServer((sock) => {
    sockets.push(sock);
    sock.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as { port: number }).port;
  // the resolver adapter answers a loopback address, then a mapped metadata address, for any name
  let answer = '127.0.0.1';
  const resolve = ((_host: string, _opts: unknown, cb: (err: null, a: { address: string; family: number }[]) => void) =>
    cb(null, [{ address: answer, family: answer.includes(':') ? 6 : 4 }])) as never;
  const hosts = createHostPolicy({ denyPrivate: true, purpose: 'user stores', settings: { denyPrivate: 'UserStoreDenyPrivateHosts' }, resolve });
  const deps = { logger: pino({ level: 'silent' }), clock: { now: () => Date.now() }, hosts } as Parameters<typeof ldapResolverType.create>[2];
  const ldapConfig = (uri: string) => ldapResolverType.normalize({ PRESET: 'openldap', LDAPURI: uri, LDAPBASE: 'dc=example,dc=org', EnforceTLS: 'False', TIMEOUT: '2', BLOCK_SECONDS: '0' });
  const sqlConfig = (connect: string) => sqlResolverType.normalize({ Connect: connect, Table: 'users', Map: '{"userid": "id", "username": "login"}', TIMEOUT: '2' });
  try {
    for (const address of ['127.0.0.1', '::ffff:169.254.169.254']) {
      answer = address;
      const stores = [
        ldapResolverType.create('dnsldap', ldapConfig(`ldap://ldap.rebind.test:${port}`), deps),
        ldapResolverType.create('dnsldaps', ldapConfig(`ldaps://ldap.rebind.test:${port}`), deps),
        sqlResolverType.create('dnspg', sqlConfig(`postgresql://otpd@db.rebind.test:${port}/users`), deps),
        sqlResolverType.create('dnsmy', sqlConfig(`mysql://otpd@db.rebind.test:${port}/users`), deps),
      ];
      for (const store of stores) {
        const health = await store.test();
        await store.close();
        assert.equal(health.ok, false);
        assert.match(health.error ?? '', new RegExp(`address ${address.replace(/\./g, '\\.')} \\(.*\\) is not allowed for user stores`), health.error);
      }
    }
    assert.equal(sockets.length, 0);
  } finally {
    await new Promise<void>((r) => listener.close(() => r()));
  }
});

test('SMTP providers: a DNS answer with a refused address is caught when nodemailer connects, before any packet', async () => {
  const sockets: Socket[] = [];
  const listener = createServer((sock) => {
    sockets.push(sock);
    sock.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as { port: number }).port;
  // 'localhost' passes the static check; the resolver adapter behind the socket answers the metadata address
  const resolve = ((_host: string, _opts: unknown, cb: (err: null, a: { address: string; family: number }[]) => void) =>
    cb(null, [{ address: '::ffff:169.254.169.254', family: 6 }])) as never;
  const hosts = createHostPolicy({ purpose: 'providers', resolve });
  try {
    for (const [module, config] of [
      [smtpEmailProvider, { SMTP_SERVER: 'localhost', SMTP_PORT: String(port) }],
      [smtpSmsProvider, { mailserver: `localhost:${port}`, mailto: '<phone>@gw.example.com' }],
    ] as const) {
      const provider = build(module, config, { hosts });
      const message = module === smtpEmailProvider
        ? { channel: 'email' as const, to: 'alice@example.com', text: 'x', subject: 's' }
        : { channel: 'sms' as const, to: '+4915123456789', text: 'x' };
      const r = await provider.send(message, new AbortController().signal);
      assert.deepEqual(r, {
        kind: 'permanent',
        reason: 'SMTP host refused: address ::ffff:169.254.169.254 (IPv4-mapped 169.254.169.254, link-local) is not allowed for providers',
        providerFault: true,
      });
    }
    assert.equal(sockets.length, 0);
  } finally {
    await new Promise<void>((r) => listener.close(() => r()));
  }
});
