// A failed delivery or a user-store outage is logged at warn/error with the provider's or the
// store's name and the cause in plain words, as an administrator reads the log file to
// troubleshoot: "SMS provider 'gw1' refused the message: gateway answered HTTP 401",
// "user store 'corp-ldap' unreachable: … connection refused 127.0.0.1:PORT (ECONNREFUSED)".
// Phone numbers appear masked only, and no credential appears at all. Real servers on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ldapResolverType } from '../../src/users/ldap.ts';
import { sqlResolverType } from '../../src/users/sql.ts';
import { UserStoreUnavailableError } from '../../src/errors.ts';
import { systemClock } from '../../src/util/clock.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, freePort, SLAPD_BIN, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { captureLogs, type CapturedLogs, type LogLine } from '../helpers/logs.ts';
import { haveBinary } from '../helpers/require.ts';
import { httpProvider, serviceFixture, sms, type ServiceFixture } from '../delivery/helpers.ts';

const PHONE = '+4915123456789';
const SMTP_PASSWORD = 'smtp-pw-never-logged-7';
const WARN = 40;
const ERROR = 50;

/** The one line whose message matches, at least at `level`; fails listing what was logged. */
function lineMatching(logs: CapturedLogs, re: RegExp, level: number): LogLine {
  const found = logs.lines().filter((l) => re.test(l.msg));
  assert.equal(found.length > 0, true, `no line matching ${re}; logged:\n${logs.lines().map((l) => `${l.level} ${l.msg}`).join('\n')}`);
  assert.ok(found.every((l) => l.level >= level), `${re} logged below level ${level}`);
  return found[0]!;
}

describe('failed deliveries', () => {
  let logs: CapturedLogs;
  let f: ServiceFixture;
  let gateway: HttpGateway;
  let plainRelay: SmtpSink;

  before(async () => {
    gateway = await new HttpGateway({ respond: () => ({ status: 401, body: 'unauthorised' }) }).start();
    plainRelay = await new SmtpSink().start();
  });
  after(async () => {
    await f?.close();
    await gateway.stop();
    await plainRelay.stop();
  });

  test('an SMS gateway answering 401: warn naming the provider and the status, error for the outcome, number masked', async () => {
    logs = captureLogs('info');
    f = await serviceFixture('sqlite', {}, { logger: logs.logger });
    await f.svc.setProvider(httpProvider('gw1', `${gateway.url}/send`, { RETURN_SUCCESS: 'OK' }));
    const id = await f.enqueue(sms(PHONE, 'Your code 864209'), { providers: ['gw1'] });
    assert.equal((await f.svc.dispatchAndWait(id, 3000)).status, 'failed');
    const attempt = lineMatching(logs, /^SMS provider 'gw1' refused the message: gateway answered HTTP 401\b/, WARN);
    assert.equal(attempt.provider, 'gw1');
    const outcome = lineMatching(logs, /^delivery outcome: SMS to \+4915\*+89 failed: gw1: gateway answered HTTP 401/, ERROR);
    assert.equal(outcome.status, 'failed');
    const all = logs.raw.join('\n');
    assert.ok(!all.includes(PHONE) && !all.includes('864209'), 'neither the number nor the code is logged');
  });

  test('e-mail: a closed port, USE_SSL on a plain relay, START_TLS against a relay without it: each cause in words', async () => {
    logs = captureLogs('info');
    await f?.close();
    f = await serviceFixture('sqlite', {}, { logger: logs.logger });
    const closed = await freePort();
    const mail = (name: string, config: Record<string, unknown>) =>
      f.svc.setProvider({ type: 'email', name, className: 'SMTPEmailProvider', timeout: '3', config: JSON.stringify({ SMTP_SERVER: '127.0.0.1', EMAIL_FROM: 'otpd@example.org', SMTP_USER: 'otpd', SMTP_PASSWORD, ...config }) });
    await mail('closed', { SMTP_PORT: String(closed) });
    await mail('ssl-on-plain', { SMTP_PORT: String(plainRelay.port), USE_SSL: true });
    await mail('starttls-on-plain', { SMTP_PORT: String(plainRelay.port), START_TLS: true });
    for (const provider of ['closed', 'ssl-on-plain', 'starttls-on-plain']) {
      const id = await f.enqueue({ channel: 'email', to: 'alice@example.org', text: 'Your code 864209' }, { providers: [provider], expiresInMs: 1000 });
      await f.svc.dispatchAndWait(id, 5000);
    }
    lineMatching(logs, new RegExp(`^e-mail provider 'closed' failed for now: SMTP connection to 127\\.0\\.0\\.1:${closed} failed: connection refused 127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`), WARN);
    lineMatching(logs, /^e-mail provider 'ssl-on-plain' refused the message: SMTP TLS failed: the server 127\.0\.0\.1:\d+ does not speak TLS on connect \(wrong version number\): USE_SSL is for port 465/, WARN);
    lineMatching(logs, /^e-mail provider 'starttls-on-plain' refused the message: SMTP server 127\.0\.0\.1:\d+ does not offer STARTTLS .*for a plain relay set START_TLS off/, WARN);
    lineMatching(logs, /^delivery outcome: e-mail to \S+ failed: ssl-on-plain: SMTP TLS failed/, ERROR);
    assert.ok(!logs.raw.join('\n').includes(SMTP_PASSWORD), 'the SMTP password is not logged');
  });
});

describe('user-store outages', () => {
  const skip = haveBinary(SLAPD_BIN, 'slapd ldap-utils');
  let slapd: Slapd | undefined;
  before(async () => {
    if (!skip) slapd = await startSlapd();
  });
  after(async () => slapd?.dispose());

  const ldapConfig = (uri: string, extra: Record<string, string> = {}) => ldapResolverType.normalize({
    LDAPURI: uri, LDAPBASE: FIXTURE_BASE, BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, LOGINNAMEATTRIBUTE: 'uid',
    LDAPSEARCHFILTER: '(uid=*)(objectClass=inetOrgPerson)', LDAPFILTER: '(&(uid=%s)(objectClass=inetOrgPerson))',
    USERINFO: '{ "username": "uid", "email": "mail", "mobile": "mobile" }', UIDTYPE: 'DN', EnforceTLS: 'False', TIMEOUT: '2;3', ...extra,
  });

  test('an LDAP server that refuses connections: a warning per server, one error "unreachable", the bind password nowhere', async () => {
    const logs = captureLogs('info');
    const port = await freePort();
    const store = ldapResolverType.create('corp-ldap', ldapConfig(`ldap://127.0.0.1:${port}`), { logger: logs.logger, clock: systemClock });
    await assert.rejects(store.lookup('alice'), UserStoreUnavailableError);
    lineMatching(logs, new RegExp(`^user store 'corp-ldap': LDAP server ldap://127\\.0\\.0\\.1:${port} failed: connection refused 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)$`), WARN);
    const down = lineMatching(logs, new RegExp(`^user store 'corp-ldap' unreachable: ldap://127\\.0\\.0\\.1:${port}: connection refused 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)$`), ERROR);
    assert.equal(down.resolver, 'corp-ldap');
    assert.ok(!logs.raw.join('\n').includes(FIXTURE_ADMIN_PW));
    await store.close?.();
  });

  test('ldap:// with EnforceTLS against a directory without StartTLS says so, and "unavailable" (it answered)', { skip }, async () => {
    const logs = captureLogs('info');
    const store = ldapResolverType.create('lab-ldap', ldapConfig(slapd!.url, { EnforceTLS: 'True' }), { logger: logs.logger, clock: systemClock });
    await assert.rejects(store.lookup('alice'), UserStoreUnavailableError);
    lineMatching(logs, /^user store 'lab-ldap': LDAP server ldap:\S+ failed: the server does not support StartTLS: use ldaps:\/\/ or set EnforceTLS off$/, WARN);
    lineMatching(logs, /^user store 'lab-ldap' unavailable: ldap:\S+: the server does not support StartTLS/, ERROR);
    await store.close?.();
  });

  test('an SQL user store whose server refuses connections: error "unreachable" in words, no password', async () => {
    const logs = captureLogs('info');
    const port = await freePort();
    for (const Connect of [`postgresql://otpd@127.0.0.1:${port}/users`, `mysql://otpd@127.0.0.1:${port}/users`]) {
      const store = sqlResolverType.create('corp-sql', sqlResolverType.normalize({ Connect, Password: 'sql-pw-never-logged', Table: 't', Map: '{ "username": "u", "userid": "id" }', TIMEOUT: '2' }), { logger: logs.logger, clock: systemClock });
      await assert.rejects(store.lookup('alice'), UserStoreUnavailableError);
      await store.close?.();
    }
    const lines = logs.lines().filter((l) => new RegExp(`^user store 'corp-sql' unreachable: connection refused 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)$`).test(l.msg));
    assert.equal(lines.length, 2, logs.raw.join('\n'));
    assert.ok(lines.every((l) => l.level === ERROR));
    assert.ok(!logs.raw.join('\n').includes('sql-pw-never-logged'));
  });
});
