// Invariant: a misbehaving provider (an HTTP gateway hanging 30 s, answering garbage, HTTP 500 or
// bytes that are not HTTP, closing the connection mid-response; TLS it cannot verify or a plain
// server behind an https URL; an SMSC refusing the bind, dropping the session after it, never
// answering submit_sm; an SMTP server answering 451/550 or never greeting) costs a trigger no more
// than the delivery wait bound: the code fails over to the next provider of the chain, arrives
// there exactly once per challenge and answers its challenge; the delivery log records each
// failed attempt with a plain reason, then the success; no message is lost or sent twice, no
// answer is a 500, and no OTP or provider password reaches the log. Every fault runs at once, in
// its own lane (a user whose policy chains a misbehaving provider before a healthy one), during
// one bounded load run with valid and wrong OTPs, RADIUS and e-mail triggers on a healthy chain.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { Smsc } from '../fixtures/smsc.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { makeSelfSignedCert, type TestCert } from '../fixtures/tls-cert.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertCleanAnswers, Load, OtpdNode, summary, TRIGGER_PIN } from './harness.ts';

/** Timeout of every provider (seconds): a hanging one is given up after it. */
const TIMEOUT_S = 2;
/** DeliveryWaitMs (its default): the longest a trigger waits for a provider's acceptance. */
const WAIT_MS = 3000;
/** Every answer of the load run (valid and wrong OTPs, RADIUS, healthy e-mail triggers): the wait bound plus a margin for a loaded 2-core machine. */
const MAX_MS = WAIT_MS + 3000;
const RUN_MS = 20_000;
/** The timeout of the one hanging provider whose failover comes after the wait bound. */
const PENDING_TIMEOUT_S = 5;
const PHONE = '+4915123456789';
const HTTP_PASSWORD = 'gw-Secret-7Qm2x9';
const SMPP_PASSWORD = 'smpp-Secret-4Kd8';
const SMTP_PASSWORD = 'smtp-Secret-9Zr3w';

/** A TCP server on 127.0.0.1 that does what `onConnection` says (for bytes no HTTP/SMTP fixture sends). */
class RawServer {
  port = 0;
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(onConnection: (s: Socket) => void) {
    this.server = createServer((s) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
      onConnection(s);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface Bad {
  className: string;
  config: Record<string, unknown>;
  stop(): Promise<void>;
  /** Requests the misbehaving server took in as complete requests: each must be an attempt in the log. */
  requests?: () => number;
  /** What must never have reached that server (accepted messages). */
  accepted?: () => number;
}

interface Lane {
  name: string;
  channel: 'sms' | 'email';
  /** The delivery log's error of a failed attempt at the misbehaving provider. */
  reason: RegExp;
  /** The attempt's status there: transient (retried later, failed over now) or permanent (refused). */
  status: 'transient' | 'permanent';
  /** The misbehaving first provider; none in the control lanes (the healthy provider alone, for the baseline). */
  bad?(): Promise<Bad>;
  /** Its timeout (seconds). @default TIMEOUT_S */
  timeoutS?: number;
  /** Its health probe cannot succeed (bind, EHLO): after the run it is still unhealthy, with a reason. @default false */
  probeFails?: boolean;
  /** Its refusal says nothing about the provider (a refused recipient): its health stays as it was. @default false */
  notProviderFault?: boolean;
}

let cert: TestCert;
const httpLane = (name: string, reason: RegExp, status: Lane['status'], start: () => Promise<{ url: string; stop(): Promise<void>; requests?: () => number; accepted?: () => number }>): Lane => ({
  name, channel: 'sms', reason, status,
  async bad() {
    const s = await start();
    return {
      className: 'HttpSMSProvider',
      config: { URL: s.url, RETURN_SUCCESS: 'OK', USERNAME: 'acme', PASSWORD: HTTP_PASSWORD },
      stop: () => s.stop(),
      ...(s.requests ? { requests: s.requests } : {}),
      ...(s.accepted ? { accepted: s.accepted } : {}),
    };
  },
});
const gatewayLane = (name: string, reason: RegExp, status: Lane['status'], answer: ConstructorParameters<typeof HttpGateway>[0]) =>
  httpLane(name, reason, status, async () => {
    const g = await new HttpGateway(answer).start();
    return { url: `${g.url}/send`, stop: () => g.stop(), requests: () => g.requests.length };
  });
const rawLane = (name: string, reason: RegExp, onConnection: (s: Socket) => void) =>
  httpLane(name, reason, 'transient', async () => {
    const raw = await new RawServer(onConnection).start();
    return { url: `http://127.0.0.1:${raw.port}/send`, stop: () => raw.stop() };
  });
const smppLane = (name: string, reason: RegExp, status: Lane['status'], options: ConstructorParameters<typeof Smsc>[0]): Lane => ({
  name, channel: 'sms', reason, status,
  async bad() {
    const smsc = await new Smsc(options).start();
    return {
      className: 'SMPPSMSProvider',
      config: { server: '127.0.0.1', port: smsc.port, system_id: 'otpd', password: SMPP_PASSWORD, source_addr: 'OTPD' },
      stop: () => smsc.stop(),
      accepted: () => smsc.submitted.length,
    };
  },
});
const smtpConfig = (port: number) => ({ SMTP_SERVER: '127.0.0.1', SMTP_PORT: port, SMTP_USER: 'otpd', SMTP_PASSWORD, EMAIL_FROM: 'otpd@example.org' });
const smtpLane = (name: string, reason: RegExp, status: Lane['status'], options: ConstructorParameters<typeof SmtpSink>[0]): Lane => ({
  name, channel: 'email', reason, status,
  async bad() {
    const sink = await new SmtpSink({ auth: { user: 'otpd', password: SMTP_PASSWORD }, ...options }).start();
    return { className: 'SMTPEmailProvider', config: smtpConfig(sink.port), stop: () => sink.stop(), accepted: () => sink.mails.length };
  },
});

const LANES: Lane[] = [
  gatewayLane('hang', new RegExp(`^no complete answer within ${TIMEOUT_S * 1000} ms$`), 'transient', { respond: () => ({ delayMs: 30_000 }) }),
  // a timeout longer than the wait bound: the trigger answers at the bound (the code is "pending"), the code follows through the next provider
  { ...gatewayLane('hangpending', new RegExp(`^no complete answer within ${PENDING_TIMEOUT_S * 1000} ms$`), 'transient', { respond: () => ({ delayMs: 30_000 }) }), timeoutS: PENDING_TIMEOUT_S },
  gatewayLane('garbage', /^answer does not start with RETURN_SUCCESS$/, 'permanent', { respond: () => ({ body: '<html><body>Service temporarily unavailable</body></html>' }) }),
  gatewayLane('http500', /^gateway answered HTTP 500$/, 'transient', { respond: () => ({ status: 500, body: 'Internal Server Error' }) }),
  // an SSH server where the gateway should be: the answer is not HTTP at all
  rawLane('nothttp', /^the server's answer is not HTTP \(HPE_INVALID_CONSTANT\)$/, (s) => s.write('SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n')),
  // the status line and headers, then two bytes of a 40-byte body, then the connection closes
  rawLane('cutbody', /^the connection closed in the middle of the answer \(HTTP 200, 2 of 40 body bytes\)$/, (s) => s.once('data', () => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\nOK');
    setTimeout(() => s.destroy(), 20);
  })),
  // the headers, then one byte of a chunked body every 300 ms, forever: a hang in the middle of the answer
  rawLane('trickle', new RegExp(`^no complete answer within ${TIMEOUT_S * 1000} ms$`), (s) => s.once('data', () => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
    const drip = setInterval(() => (s.destroyed ? clearInterval(drip) : s.write('1\r\nO\r\n')), 300);
    s.on('close', () => clearInterval(drip));
  })),
  // reads the request, closes without a byte
  rawLane('cutearly', /^connection reset by the server \(ECONNRESET\)$/, (s) => s.once('data', () => s.destroy())),
  httpLane('tlsuntrusted', /^TLS verification failed: TLS certificate not trusted: self-signed/, 'permanent', async () => {
    const server = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.end('OK'));
    let requests = 0;
    server.on('request', () => requests++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `https://127.0.0.1:${(server.address() as { port: number }).port}/send`,
      accepted: () => requests, // the handshake fails: no request gets through
      stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
    };
  }),
  httpLane('tlsplain', /^TLS handshake failed: the server does not speak TLS on this port \(wrong version number\) \(\w+\): is the URL's scheme right/, 'permanent', async () => {
    const g = await new HttpGateway().start();
    return { url: `https://127.0.0.1:${g.port}/send`, stop: () => g.stop(), accepted: () => g.requests.length }; // a ClientHello is no request
  }),
  { ...smppLane('bindfail', /^SMPP bind refused: ESME_RBINDFAIL/, 'permanent', { password: 'another-password' }), probeFails: true },
  smppLane('bindclose', /^SMPP connection (closed|error: connection (reset|closed) by the server \((ECONNRESET|EPIPE)\))$/, 'transient', { password: SMPP_PASSWORD, closeAfterBind: true }),
  smppLane('smscsilent', /^SMPP submit aborted \(timeout\)$|did not answer/, 'transient', { password: SMPP_PASSWORD, silent: true }),
  {
    name: 'bindhang', channel: 'sms', probeFails: true, reason: new RegExp(`^SMPP connect/bind timeout after ${TIMEOUT_S * 1000} ms$`), status: 'transient',
    async bad() {
      const raw = await new RawServer(() => undefined).start(); // accepts the connection, never answers the bind
      return { className: 'SMPPSMSProvider', config: { server: '127.0.0.1', port: raw.port, system_id: 'otpd', password: SMPP_PASSWORD, source_addr: 'OTPD' }, stop: () => raw.stop() };
    },
  },
  smtpLane('smtp451', /^SMTP server answered 451$/, 'transient', { deferRecipient: /.*/ }),
  { ...smtpLane('smtp550', /^SMTP server refused the recipient \(550\)$/, 'permanent', { rejectRecipient: /.*/ }), notProviderFault: true },
  smtpLane('smtp554', /^SMTP server refused the message \(554\)$/, 'permanent', { refuseData: 554 }),
  {
    name: 'smtpclose', channel: 'email', probeFails: true, reason: /^SMTP connection to 127\.0\.0\.1:\d+ failed: Connection closed unexpectedly \(ECONNECTION\)$/, status: 'transient',
    async bad() {
      // greets, then closes the connection at the client's first command
      const raw = await new RawServer((s) => {
        s.write('220 mail.example.org ESMTP\r\n');
        s.once('data', () => s.destroy());
      }).start();
      return { className: 'SMTPEmailProvider', config: smtpConfig(raw.port), stop: () => raw.stop() };
    },
  },
  {
    name: 'smtphang', channel: 'email', probeFails: true, reason: /^SMTP server 127\.0\.0\.1:\d+ did not answer in time \((greeting never received|timeout)\)$/, status: 'transient',
    async bad() {
      const raw = await new RawServer(() => undefined).start(); // accepts, never greets
      return { className: 'SMTPEmailProvider', config: smtpConfig(raw.port), stop: () => raw.stop() };
    },
  },
];

// the same triggers through a healthy chain at the same time: the baseline of the answer times
const CONTROLS: Lane[] = [
  { name: 'controlsms', channel: 'sms', reason: /^$/, status: 'transient' },
  { name: 'controlmail', channel: 'email', reason: /^$/, status: 'transient' },
];
LANES.push(...CONTROLS);

const userOf = (lane: Lane) => `lane${lane.name}`;
const serialOf = (lane: Lane) => `LANE_${lane.name}`.toUpperCase();

const dir = mkdtempSync('/dev/shm/otpd-faults-providers-');
const stops: (() => Promise<unknown>)[] = [];
let node: OtpdNode | undefined;
after(async () => {
  await node?.stop();
  for (const stop of stops) await stop().catch(() => undefined);
  cert?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface LaneRecord {
  triggers: { at: number; ms: number; status: number; body: string; tid?: string }[];
  answers: { tid: string; value: unknown; ms: number; body: string }[];
  lost: string[];
  codes: string[];
}

test('providers misbehaving under load: bounded trigger answers, failover, exactly one delivery, a plain delivery log, no secret logged', { timeout: 180_000 }, async () => {
  cert = makeSelfSignedCert();
  const good = await new HttpGateway().start();
  const goodMail = await new SmtpSink().start();
  const loadMail = await new SmtpSink().start();
  stops.push(() => good.stop(), () => goodMail.stop(), () => loadMail.stop());
  const bads = new Map<string, Bad>();
  for (const lane of LANES) {
    if (!lane.bad) continue;
    const b = await lane.bad();
    bads.set(lane.name, b);
    stops.push(() => b.stop());
  }

  node = await OtpdNode.create({
    dir, smtpPort: loadMail.port, tokens: 4, triggerUsers: 2,
    env: { OTPD_LOG_LEVEL: 'debug' },
    // a failed provider is skipped 1–2 s, then probed and tried again: each fault recurs during the run
    // every lane sends to the one test number: the per-number, per-prefix and global limits would refuse most of it
    config: { SMSBlockingTimeout: '0', DeliveryBackoffMs: '1000', DeliveryBackoffMaxMs: '2000', DeliveryLimitPerPrefix: 'off', DeliveryLimitPerCountry: 'off', DeliveryLimitGlobal: 'off' },
  });
  appendFileSync(join(dir, 'users.passwd'), LANES.map((l, i) => `${userOf(l)}:x:${9000 + i}:9000:Lane ${l.name},,,,${userOf(l)}@example.org:/:/bin/sh\n`).join(''));
  await node.start();
  const admin = async (path: string, form: Record<string, string>) => {
    const r = await node!.admin(path, form);
    assert.equal(r.result?.status, true, `${path} ${form.name ?? ''}: ${JSON.stringify(r)}`);
    assert.notEqual(r.result?.value, false, `${path} ${form.name ?? ''}: ${JSON.stringify(r)}`);
    return r;
  };
  // the code and the challenge's transaction id in every SMS, the code between markers in every mail
  await admin('/system/setPolicy', { name: 'texts', scope: 'authentication', action: 'smstext=<otp> tid <transactionid>, emailtext=code <otp> end', realm: '*', user: '*', client: '' });
  for (const lane of LANES) {
    const bad = bads.get(lane.name);
    if (bad) await admin('/system/setProvider', { type: lane.channel, name: `${lane.name}Bad`, class: bad.className, timeout: String(lane.timeoutS ?? TIMEOUT_S), config: JSON.stringify(bad.config) });
    const goodConfig = lane.channel === 'sms'
      ? { URL: `${good.url}/${lane.name}`, RETURN_SUCCESS: 'OK' }
      : { SMTP_SERVER: '127.0.0.1', SMTP_PORT: goodMail.port, EMAIL_FROM: 'otpd@example.org' };
    await admin('/system/setProvider', { type: lane.channel, name: `${lane.name}Good`, class: lane.channel === 'sms' ? 'HttpSMSProvider' : 'SMTPEmailProvider', timeout: String(TIMEOUT_S), config: JSON.stringify(goodConfig) });
    await admin('/system/setPolicy', { name: `chain${lane.name}`, scope: 'authentication', action: `${lane.channel}_provider=${bad ? `${lane.name}Bad ` : ''}${lane.name}Good`, realm: 'faults', user: userOf(lane), client: '' });
    await admin('/admin/init', {
      type: lane.channel, serial: serialOf(lane), user: userOf(lane), pin: TRIGGER_PIN,
      ...(lane.channel === 'sms' ? { phone: PHONE } : { email_address: `${userOf(lane)}@example.org` }),
    });
  }

  // the code a healthy provider received for this challenge (SMS: by transaction id; e-mail: the n-th mail to the lane's address)
  const received = (lane: Lane) => lane.channel === 'sms'
    ? good.requests.filter((r) => r.path === `/${lane.name}`).map((r) => String(r.body.sms ?? ''))
    : goodMail.mails.filter((m) => m.to.includes(`${userOf(lane)}@example.org`)).map((m) => m.raw);
  const codeIn = (lane: Lane, text: string) => (lane.channel === 'sms' ? /^(\d{6,8}) tid (\S+)$/.exec(text)?.[1] : /code (\d{6,8}) end/.exec(text)?.[1]);
  const findCode = (lane: Lane, tid: string, n: number): string | undefined => {
    const texts = received(lane);
    const text = lane.channel === 'sms' ? texts.find((t) => t.endsWith(` tid ${tid}`)) : texts[n];
    return text === undefined ? undefined : codeIn(lane, text);
  };

  const post = async (form: Record<string, string>) => {
    const t0 = Date.now();
    try {
      const res = await fetch(`${node!.url}/validate/check`, { method: 'POST', body: new URLSearchParams(form), signal: AbortSignal.timeout(35_000) });
      return { status: res.status, body: await res.text(), ms: Date.now() - t0 };
    } catch (e) {
      return { status: 0, body: String((e as Error).cause ?? (e as Error).message), ms: Date.now() - t0 };
    }
  };
  const records = new Map<string, LaneRecord>(LANES.map((l) => [l.name, { triggers: [], answers: [], lost: [], codes: [] }]));
  const t0 = Date.now();
  const laneWorker = async (lane: Lane) => {
    const rec = records.get(lane.name)!;
    while (Date.now() - t0 < RUN_MS) {
      const at = Date.now() - t0;
      const trig = await post({ user: userOf(lane), pass: TRIGGER_PIN });
      let tid: string | undefined;
      try {
        tid = JSON.parse(trig.body).detail?.transactionid;
      } catch {
        /* reported below */
      }
      rec.triggers.push({ at, ...trig, ...(tid ? { tid } : {}) });
      if (!tid) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const n = rec.triggers.filter((t) => t.tid).length - 1;
      // the healthy provider has it within the wait bound, or soon after when the answer said "pending"
      let code: string | undefined;
      const deadline = Date.now() + MAX_MS + PENDING_TIMEOUT_S * 1000;
      while (!(code = findCode(lane, tid, n)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (!code) {
        rec.lost.push(tid);
        continue;
      }
      rec.codes.push(code);
      const ans = await post({ user: userOf(lane), pass: code, transactionid: tid });
      let value: unknown;
      try {
        value = JSON.parse(ans.body).result?.value;
      } catch {
        value = ans.body.slice(0, 200);
      }
      rec.answers.push({ tid, value, ms: ans.ms, body: ans.body });
    }
  };
  const load = new Load(node);
  const [report] = await Promise.all([load.run({ durationMs: RUN_MS, concurrency: 4 }), ...LANES.map(laneWorker)]);
  console.log('load', summary(report));
  // A trigger through a misbehaving provider may take the wait bound longer than one through a
  // healthy chain at the same time (the control lanes, the load's e-mail triggers), never the 30 s
  // of a hang; at least MAX_MS is allowed.
  const base = [...report.answers.filter((a) => a.kind === 'trigger').map((a) => a.ms), ...CONTROLS.flatMap((l) => records.get(l.name)!.triggers.map((t) => t.ms))].sort((a, b) => a - b);
  assert.ok(base.length >= 10, `${base.length} triggers through healthy chains`);
  const triggerBound = Math.max(MAX_MS, base.at(-1)! + WAIT_MS + 500);
  console.log(`triggers through healthy chains: ${base.length}, median ${base[base.length >> 1]} ms, slowest ${base.at(-1)} ms; bound on a lane's trigger ${triggerBound} ms`);

  // every message of a lane reaches a final state (nothing left queued, sending or to retry)
  const serials = LANES.map(serialOf);
  const logTexts: string[] = [];
  const db = await node.openDb();
  try {
    await waitFor(async () => {
      const open = await db.kysely.selectFrom('delivery_outbox').select('id').where('serial', 'in', serials).where('status', 'in', ['queued', 'sending', 'retry']).execute();
      return open.length === 0;
    }, { what: 'every lane message to be final', timeoutMs: 20_000, intervalMs: 200 });

    assertCleanAnswers(report, { maxMs: MAX_MS });
    const problems: string[] = [];
    const apiText: string[] = [];
    const figures: Record<string, string> = {};
    for (const lane of LANES) {
      const rec = records.get(lane.name)!;
      const bad = bads.get(lane.name);
      const where = (s: string) => problems.push(`${lane.name}: ${s}`);
      // the trigger answers: in time, an envelope with a challenge, never a 500
      for (const t of rec.triggers) {
        if (t.ms > triggerBound) where(`trigger at ${t.at} ms answered after ${t.ms} ms > ${triggerBound} ms`);
        if (t.status !== 200) where(`trigger at ${t.at} ms: HTTP ${t.status} ${t.body.slice(0, 200)}`);
        else if (!t.tid) where(`trigger at ${t.at} ms: no challenge: ${t.body.slice(0, 300)}`);
      }
      for (const a of rec.answers) if (a.value !== true || a.ms > triggerBound) where(`the delivered code of ${a.tid} answered ${String(a.value)} after ${a.ms} ms: ${a.body.slice(0, 200)}`);
      if (rec.lost.length) where(`no code arrived at the healthy provider for ${rec.lost.join(', ')}`);
      const tids = rec.triggers.flatMap((t) => (t.tid ? [t.tid] : []));
      if (tids.length < 3) where(`only ${tids.length} challenges in ${RUN_MS} ms`);

      // the outbox / delivery log: one row per challenge, accepted by the healthy provider
      const rows = await db.kysely.selectFrom('delivery_outbox').selectAll().where('serial', '=', serialOf(lane)).execute();
      const keys = rows.map((r) => r.idempotency_key).sort();
      const expected = tids.map((t) => `challenge:${t}`).sort();
      if (JSON.stringify(keys) !== JSON.stringify(expected)) where(`outbox rows ${JSON.stringify(keys.slice(0, 6))} for challenges ${JSON.stringify(expected.slice(0, 6))} (${keys.length} rows, ${expected.length} challenges)`);
      const attempts = await db.kysely.selectFrom('delivery_attempts').selectAll().where('outbox_id', 'in', rows.map((r) => r.id)).orderBy('outbox_id').orderBy('attempt_no').execute();
      let failed = 0;
      for (const r of rows) {
        if (r.status !== 'accepted' || r.provider !== `${lane.name}Good` || r.payload_enc !== '') where(`message ${r.id} ended ${r.status} via '${r.provider}' (${r.error})`);
        const mine = attempts.filter((a) => Number(a.outbox_id) === Number(r.id));
        const last = mine.at(-1);
        if (!last || last.provider !== `${lane.name}Good` || last.status !== 'accepted') where(`message ${r.id}: last attempt ${JSON.stringify(last)}`);
        if (mine.filter((a) => a.status === 'accepted').length !== 1) where(`message ${r.id}: ${mine.filter((a) => a.status === 'accepted').length} accepted attempts`);
        for (const a of mine.slice(0, -1)) {
          failed++;
          if (a.provider !== `${lane.name}Bad` || a.status !== lane.status || !lane.reason.test(a.error) || a.finished_at === null) {
            where(`message ${r.id} attempt ${a.attempt_no}: ${a.provider} ${a.status} '${a.error}' (expected ${lane.status} ${lane.reason})`);
          }
        }
      }
      if (bad && failed === 0) where('the misbehaving provider was never tried');
      if (!bad && failed !== 0) where(`${failed} failed attempts at a healthy provider`);
      // every request the misbehaving server took in is a failed attempt in the log; none of them was accepted there
      if (bad?.requests && bad.requests() !== failed) where(`the misbehaving server took ${bad.requests()} requests, the log has ${failed} failed attempts`);
      if (bad?.accepted && bad.accepted() !== 0) where(`the misbehaving server accepted ${bad.accepted()} messages`);
      // exactly once at the healthy provider: one message per challenge
      const texts = received(lane);
      if (lane.channel === 'sms') {
        for (const tid of tids) {
          const n = texts.filter((t) => t.endsWith(` tid ${tid}`)).length;
          if (n !== 1) where(`challenge ${tid} reached the healthy provider ${n} times`);
        }
      }
      if (texts.length !== tids.length) where(`${texts.length} messages at the healthy provider for ${tids.length} challenges`);

      // the admin API shows the same: failed attempts with their reason, then the success
      const logged = await node.admin('/system/deliveryLog', { serial: serialOf(lane), pagesize: '500' });
      apiText.push(JSON.stringify(logged));
      const entries = logged.result.value.entries as { status: string; provider: string; attempts: { provider: string; status: string; error: string }[] }[];
      if (entries.length !== rows.length || entries.some((e) => e.status !== 'accepted' || e.attempts.at(-1)?.status !== 'accepted')) where(`deliveryLog: ${JSON.stringify(entries.slice(0, 2))}`);
      // provider health (getProvider's detail): a provider whose probe cannot succeed stays down, with a plain reason
      let health = '';
      if (bad) {
        const h = (await node.admin('/system/getProvider', { type: lane.channel, name: `${lane.name}Bad` })).detail?.health?.[`${lane.name}Bad`];
        apiText.push(JSON.stringify(h));
        health = `, health ${h?.status} (${h?.failures} failures, '${h?.last_error}')`;
        // no send through it ever succeeded: every failed attempt (and failed probe) is one more failure in a row, never reset by a probe that answered
        if (!lane.notProviderFault && !(h && h.failures >= failed)) where(`health after ${failed} failed attempts: ${JSON.stringify(h)}`);
        if (lane.notProviderFault && !(h && h.failures === 0)) where(`a refused recipient changed the provider's health: ${JSON.stringify(h)}`);
        if (lane.probeFails && !(h && h.failures > 0 && (h.status === 'backing-off' || h.status === 'probing') && /^probe: |^\w/.test(h.last_error) && !/\bat [\w.<>]+ \(/.test(h.last_error))) where(`health after the run: ${JSON.stringify(h)}`);
      }
      const reasons = [...new Set(entries.flatMap((e) => e.attempts.filter((a) => a.status !== 'accepted').map((a) => a.error)))];
      const ms = rec.triggers.map((t) => t.ms).sort((a, b) => a - b);
      const slow = rec.triggers.filter((t) => t.ms > WAIT_MS).map((t) => `${t.ms} ms at ${t.at}`);
      figures[lane.name] = `${tids.length} challenges, ${failed} failed attempts, trigger median ${ms[ms.length >> 1]} ms, slowest ${ms.at(-1)} ms, reasons ${JSON.stringify(reasons)}${health}${slow.length ? `, over the wait bound: ${slow.join(', ')}` : ''}`;
    }
    console.log(figures);
    assert.deepEqual(problems, [], problems.slice(0, 30).join('\n'));
    // the delivery log's answers and the audit rows of the run carry reasons, never a code or a password
    const audit = await db.kysely.selectFrom('audit').selectAll().execute();
    assert.ok(audit.length > 0, 'audit rows');
    logTexts.push(...apiText, ...audit.map((r) => JSON.stringify(r)));
  } finally {
    await db.close();
  }

  // the log of the whole run: no OTP, no provider password, no stack, nothing at error level
  const secrets = new Map<string, string>([['HTTP gateway password', HTTP_PASSWORD], ['SMPP password', SMPP_PASSWORD], ['SMTP password', SMTP_PASSWORD]]);
  const otps = new Set<string>([...[...records.values()].flatMap((r) => r.codes), ...report.accepted.map((a) => a.otp)]);
  for (const m of loadMail.mails) for (const c of m.raw.matchAll(/code (\d{6,8}) end/g)) otps.add(c[1]!);
  assert.ok(otps.size > 20, `${otps.size} OTPs to look for`);
  const lines = node.log.split('\n').filter(Boolean);
  const leaks: string[] = [];
  for (const line of [...lines, ...logTexts]) {
    for (const [label, s] of secrets) if (line.includes(s)) leaks.push(`${label}: ${line.slice(0, 300)}`);
    for (const m of line.matchAll(/(?<![\w.])\d{6,8}(?![\w.])/g)) if (otps.has(m[0])) leaks.push(`OTP ${m[0]}: ${line.slice(0, 300)}`);
  }
  assert.deepEqual(leaks.slice(0, 5), [], 'secrets in the log');
  const bad = lines.filter((l) => /"stack"|\bat [\w.<>]+ \(|node:internal|"level":(50|60)/.test(l));
  assert.deepEqual(bad.slice(0, 5), [], 'stack traces or errors in the log');
  console.log(`log: ${lines.length} lines, delivery log answers and ${logTexts.length - LANES.length} audit rows: ${otps.size} OTPs and ${secrets.size} passwords looked for`);
});
