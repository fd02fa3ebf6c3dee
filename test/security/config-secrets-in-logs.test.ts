// Invariant: a secret of a provider or resolver configuration (a field marked `secret: true`
// in its schema, a secret-named header, the password of a URL) never reaches a log line or the
// audit, whatever happens to the configuration: creating it, building it, testing it against a
// server that is down, sending through it, or a request that is refused. otpd does not log
// configurations at all, so this holds even without the process logger's redaction: the log
// here is a plain pino logger at trace level with no redaction.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { startTestApp, type TestApp } from '../helpers/app.ts';

const SECRETS = {
  ldapBind: 'ldap-bind-pw-3e7c',
  sqlPassword: 'sql-db-pw-81fa',
  sqlUrlPassword: 'sql-url-pw-5d20',
  httpPassword: 'http-gw-pw-9b41',
  httpHeader: 'hdr-token-0c6e',
  smtpPassword: 'smtp-pw-47d3',
  smppPassword: 'smpp-pw-a1b8',
};

const lines: string[] = [];
let t: TestApp;
let sink: Server;
let port: number;

before(async () => {
  t = await startTestApp({ logger: pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) }) });
  // a listener that drops every connection: each store and provider fails after connecting
  sink = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  port = (sink.address() as { port: number }).port;
});
after(async () => {
  await t.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
});

function assertNoSecret(text: string, where: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!text.includes(secret), `${where} contains ${name}: ${text.slice(0, 2000)}`);
}

test('resolver secrets stay out of the log and the audit: save, test against a dead server, refused input', async () => {
  const ldap = {
    name: 'ldapdown', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: `ldap://127.0.0.1:${port}`, LDAPBASE: 'dc=example,dc=org',
    BINDDN: 'cn=otpd,dc=example,dc=org', BINDPW: SECRETS.ldapBind, EnforceTLS: 'False', TIMEOUT: '2', BLOCK_SECONDS: '0',
  };
  const sql = {
    name: 'sqldown', type: 'sqlresolver', Connect: `postgresql://otpd:${SECRETS.sqlUrlPassword}@127.0.0.1:${port}/users`,
    Table: 'users', Map: '{"userid": "id", "username": "login"}', TIMEOUT: '2',
  };
  for (const form of [ldap, sql]) {
    const saved = await t.admin('/system/setResolver', form);
    assert.equal(saved.json.result.value, true, saved.body);
    const tested = await t.admin('/system/testResolver', { name: form.name });
    assert.equal(tested.json.result.value.result, 'error', tested.body);
    const unsaved = await t.admin('/system/testResolver', { ...form, name: `${form.name}2` });
    assert.equal(unsaved.json.result.value.result, 'error', unsaved.body);
    assertNoSecret(saved.body + tested.body + unsaved.body, `${form.type} answers`);
  }
  // a database password given as its own key, and a refused config that carries one
  const withPassword = await t.admin('/system/testResolver', { ...sql, name: 'sqldown3', Connect: `postgresql://otpd@127.0.0.1:${port}/users`, Password: SECRETS.sqlPassword });
  assert.equal(withPassword.json.result.value.result, 'error', withPassword.body);
  const refused = await t.admin('/system/setResolver', { ...ldap, name: 'ldapbad', LDAPFILTER: '(uid=alice)' });
  assert.equal(refused.json.result.error.code, 2300, refused.body);
  assertNoSecret(withPassword.body + refused.body, 'answers');
  // the store was really asked (something to leak was logged), and nothing leaked
  assert.ok(lines.some((l) => /user store 'ldapdown': LDAP server ldap:\/\/\S+ failed/.test(l)), 'LDAP failure logged');
  assert.ok(lines.some((l) => /user store 'sqldown\d?' (unreachable|failed): /.test(l)), 'SQL failure logged');
  assertNoSecret(lines.join('\n'), 'log');
  const audit = JSON.stringify(await t.services.db.kysely.selectFrom('audit').selectAll().execute());
  assert.ok(audit.includes('ldapdown') && audit.includes('sqldown'), 'audit rows for the resolvers');
  assertNoSecret(audit, 'audit');
});

test('provider secrets stay out of the log and the audit: save, build, send to a dead server, refused input', async () => {
  const providers = [
    { type: 'sms', name: 'httpdown', class: 'HttpSMSProvider', config: { URL: `http://otpd:${SECRETS.httpPassword}@127.0.0.1:${port}/send`, HEADERS: { 'X-Auth-Token': SECRETS.httpHeader } } },
    { type: 'sms', name: 'smppdown', class: 'SMPPSMSProvider', config: { server: '127.0.0.1', port, system_id: 'otpd', password: SECRETS.smppPassword, source_addr: 'otpd' } },
    { type: 'email', name: 'smtpdown', class: 'SMTPEmailProvider', config: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: port, SMTP_USER: 'otpd', SMTP_PASSWORD: SECRETS.smtpPassword } },
  ];
  for (const p of providers) {
    const saved = await t.admin('/system/setProvider', { type: p.type, name: p.name, class: p.class, timeout: '2', config: JSON.stringify(p.config) });
    assert.equal(saved.json.result.value, true, saved.body);
    const to = p.type === 'sms' ? '+4915123456789' : 'alice@example.org';
    const sent = await t.admin('/system/testProvider', { type: p.type, name: p.name, to, message: 'otpd test' });
    assert.equal(sent.json.result.value, false, sent.body);
    const shown = await t.admin('/system/getProvider', { type: p.type, name: p.name });
    assertNoSecret(saved.body + sent.body + shown.body, `${p.class} answers`);
  }
  const refused = await t.admin('/system/setProvider', { type: 'email', name: 'smtpbad', class: 'SMTPEmailProvider', timeout: '2', config: JSON.stringify({ SMTP_PORT: port, SMTP_PASSWORD: SECRETS.smtpPassword }) });
  assert.match(refused.json.result.error.message, /SMTP_SERVER: required/);
  assertNoSecret(refused.body, 'refusal');
  assertNoSecret(lines.join('\n'), 'log');
  const audit = JSON.stringify(await t.services.db.kysely.selectFrom('audit').selectAll().execute());
  for (const p of providers) assert.ok(audit.includes(p.name), `audit rows for ${p.name}`);
  assertNoSecret(audit, 'audit');
});
