import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { renderPlain, smtpEmailProvider, substituteVars } from '../../src/delivery/email/smtp.ts';
import { smtpSmsProvider } from '../../src/delivery/sms/smtp.ts';
import type { OutgoingMessage } from '../../src/delivery/types.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { makeSelfSignedCert, type TestCert } from '../fixtures/tls-cert.ts';
import { build, never, sms } from './helpers.ts';

const mail = (to: string, text: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({ channel: 'email', to, text, ...extra });

describe('SmtpSMSProvider (e-mail to SMS gateway) against a real SMTP server', () => {
  let sink: SmtpSink;
  before(async () => {
    sink = await new SmtpSink({ auth: { user: 'gw', password: 'pw' }, rejectRecipient: /^0+@/, deferRecipient: /^9+@/ }).start();
  });
  after(() => sink.stop());

  test('<phone> in mailto/subject/body and <otp> = the SMS text; AUTH used', async () => {
    const p = build(smtpSmsProvider, {
      mailserver: `127.0.0.1:${sink.port}`,
      mailsender: 'otp@example.org',
      mailto: '<phone>@sms.example.com',
      subject: 'SMS for <phone>',
      body: 'Text: <otp>',
      mailuser: 'gw',
      mailpassword: 'pw',
      SUPPRESS_PREFIX: '+',
    });
    const r = await p.send(sms('+4915112345678', 'Your code 123456'), never());
    assert.equal(r.kind, 'accepted');
    const [m] = await sink.waitFor(1);
    assert.equal(m!.from, 'otp@example.org');
    assert.deepEqual(m!.to, ['4915112345678@sms.example.com']);
    assert.equal(m!.user, 'gw');
    assert.match(m!.raw, /^Subject: SMS for 4915112345678\r?$/m);
    assert.match(m!.raw, /Text: Your code 123456/);
  });

  test('wrong password is a permanent provider fault; 550 on the recipient a permanent refusal; 451 transient', async () => {
    const base = { mailserver: '127.0.0.1', mailserver_port: String(sink.port), mailuser: 'gw', mailto: '<phone>@gw.example' };
    const bad = await build(smtpSmsProvider, { ...base, mailpassword: 'nope' }).send(sms('123', 'x'), never());
    assert.equal(bad.kind, 'permanent');
    assert.equal(bad.kind === 'permanent' && bad.providerFault, true);
    assert.match(bad.kind === 'permanent' ? bad.reason : '', /authentication failed/);
    const refused = await build(smtpSmsProvider, { ...base, mailpassword: 'pw' }).send(sms('000', 'x'), never());
    assert.equal(refused.kind, 'permanent');
    assert.equal(refused.kind === 'permanent' && refused.providerFault, false);
    const deferred = await build(smtpSmsProvider, { ...base, mailpassword: 'pw' }).send(sms('999', 'x'), never());
    assert.equal(deferred.kind, 'transient');
  });

  test('a closed port is transient', async () => {
    const r = await build(smtpSmsProvider, { mailserver: '127.0.0.1:1', mailto: 'x@y' }).send(sms('1', 'x'), never());
    assert.equal(r.kind, 'transient');
  });

  test('a server that accepts and never greets: transient within the timeout, a plain reason; a 554 after DATA refuses the message', async () => {
    const held: Socket[] = [];
    const silent = createServer((s) => void held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const refusing = await new SmtpSink({ refuseData: 554 }).start();
    try {
      const port = (silent.address() as AddressInfo).port;
      const t0 = Date.now();
      const r = await build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: port }, { timeoutMs: 500, connectTimeoutMs: 500 }).send(mail('a@example.org', 'x'), never());
      assert.equal(r.kind, 'transient');
      assert.match(r.kind === 'transient' ? r.reason : '', new RegExp(`^SMTP server 127\\.0\\.0\\.1:${port} did not answer in time \\((greeting never received|timeout)\\)$`));
      assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
      const refused = await build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: refusing.port }).send(mail('a@example.org', 'x'), never());
      assert.deepEqual(refused, { kind: 'permanent', reason: 'SMTP server refused the message (554)', providerFault: true });
      assert.equal(refusing.mails.length, 0);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
      await refusing.stop();
    }
  });
});

describe('SMTP over TLS (certificate made by openssl at test time)', () => {
  let cert: TestCert;
  let starttls: SmtpSink;
  let implicit: SmtpSink;
  before(async () => {
    cert = makeSelfSignedCert();
    starttls = await new SmtpSink({ tls: { key: cert.key, cert: cert.cert }, requireTls: true, auth: { user: 'u', password: 'p' } }).start();
    implicit = await new SmtpSink({ tls: { key: cert.key, cert: cert.cert }, implicitTls: true }).start();
  });
  after(async () => {
    await starttls.stop();
    await implicit.stop();
    cert.cleanup();
  });

  test('START_TLS with the CA given: the mail travels encrypted and authenticated', async () => {
    const p = build(smtpEmailProvider, {
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: starttls.port,
      START_TLS: true,
      SMTP_USER: 'u',
      SMTP_PASSWORD: 'p',
      SERVER_CERTIFICATE: cert.certPath,
    });
    const r = await p.send(mail('alice@example.org', 'code <otp>', { otp: '111222' }), never());
    assert.equal(r.kind, 'accepted');
    const [m] = await starttls.waitFor(1);
    assert.equal(m!.secure, true);
    assert.equal(m!.user, 'u');
    assert.match(m!.raw, /code 111222/);
  });

  test('START_TLS against an untrusted certificate fails as a provider fault, nothing is sent', async () => {
    const before = starttls.mails.length;
    const p = build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: starttls.port, START_TLS: 'true', SMTP_USER: 'u', SMTP_PASSWORD: 'p' });
    const r = await p.send(mail('alice@example.org', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.equal(r.kind === 'permanent' && r.providerFault, true);
    assert.equal(starttls.mails.length, before);
  });

  test('USE_SSL (implicit TLS)', async () => {
    const p = build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(implicit.port), USE_SSL: true, SERVER_CERTIFICATE: cert.certPath });
    assert.equal((await p.send(mail('bob@example.org', 'hi'), never())).kind, 'accepted');
    const [m] = await implicit.waitFor(1);
    assert.equal(m!.secure, true);
    assert.deepEqual(await p.probe!(never()), { ok: true });
  });
});

describe('SMTPEmailProvider rendering', () => {
  let sink: SmtpSink;
  let root: string;
  before(async () => {
    sink = await new SmtpSink().start();
    root = mkdtempSync(join(tmpdir(), 'otpd-tpl-'));
    mkdirSync(join(root, 'mail'));
    writeFileSync(join(root, 'mail', 'otp.eml'), 'From: ${From}\nTo: ${To}\nSubject: ${Subject}\nContent-Type: text/plain; charset=utf-8\n\nHello ${givenname}, your code is ${otp} (${serial}). ${unknown}\n');
    writeFileSync(join(tmpdir(), 'otpd-outside.eml'), 'secret');
  });
  after(async () => {
    await sink.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(join(tmpdir(), 'otpd-outside.eml'), { force: true });
  });

  test('plain mode: <otp>, <serial>, ${field}; unknown ${var} stays; default subject "Your OTP"', async () => {
    const p = build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: sink.port, EMAIL_FROM: 'otpd@example.org' });
    const r = await p.send(
      mail('alice@example.org', 'Hi ${givenname} ${surname}: <otp> for <serial> ${nope}', { otp: '424242', serial: 'LSEM0001', userInfo: { givenname: 'Alice', surname: 'Liddell' } }),
      never(),
    );
    assert.equal(r.kind, 'accepted');
    assert.match(r.kind === 'accepted' ? r.providerMessageId ?? '' : '', /^<.+>$/);
    const m = (await sink.waitFor(1)).at(-1)!;
    assert.equal(m.from, 'otpd@example.org');
    assert.deepEqual(m.to, ['alice@example.org']);
    assert.match(m.raw, /^Subject: Your OTP\r?$/m);
    assert.match(m.raw, /^Date: .+ \+0000\r?$/m);
    assert.match(m.raw, /Hi Alice Liddell: 424242 for LSEM0001 \$\{nope\}/);
  });

  test('renderPlain appends the code when the text lacks it; the policy subject wins over EMAIL_SUBJECT', () => {
    assert.deepEqual(renderPlain(mail('a@b', 'Your code:', { otp: '1', subject: 'Login <serial>', serial: 'S1' }), 'Your OTP'), { subject: 'Login S1', body: 'Your code: 1' });
    assert.equal(substituteVars('${a}${b}', { a: 'x\r\ny' }, true), 'x y${b}');
  });

  test('template mode: file:// under the template root, provider subject, header values without line breaks', async () => {
    const p = build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: sink.port, EMAIL_FROM: 'otpd@example.org', EMAIL_SUBJECT: 'Login code', TEMPLATE: 'file://mail/otp.eml' }, { templateRoot: root });
    const r = await p.send(mail('carol@example.org', 'ignored', { otp: '777888', serial: 'LSEM9', subject: 'policy subject', userInfo: { givenname: 'Carol\r\nBcc: evil@example.org' } }), never());
    assert.equal(r.kind, 'accepted');
    const m = (await sink.waitFor(2)).at(-1)!;
    assert.deepEqual(m.to, ['carol@example.org']);
    assert.match(m.raw, /^Subject: Login code\r$/m);
    assert.match(m.raw, /Hello Carol Bcc: evil@example.org, your code is 777888 \(LSEM9\)\. \$\{unknown\}/);
    assert.doesNotMatch(m.raw, /^Bcc:/m);
  });

  test('templates outside the root are refused', () => {
    assert.throws(
      () => build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', TEMPLATE: 'file://../otpd-outside.eml' }, { templateRoot: root }),
      /outside the template root/,
    );
  });

  test('a recipient with a line break is refused before any connection', async () => {
    const p = build(smtpEmailProvider, { SMTP_SERVER: '127.0.0.1', SMTP_PORT: 1 });
    assert.equal((await p.send(mail('a@b\r\nRCPT TO:<x@y>', 'x'), never())).kind, 'permanent');
  });
});
