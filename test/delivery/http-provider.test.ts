import assert from 'node:assert/strict';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigValidationError, parseConfigJson, parseTimeout, validateConfig } from '../../src/delivery/config.ts';
import { evaluateReturn, httpSmsProvider } from '../../src/delivery/sms/http.ts';
import { HttpGateway } from '../fixtures/http-gateway.ts';
import { makeSelfSignedCert, type TestCert } from '../fixtures/tls-cert.ts';
import { build, never, sms } from './helpers.ts';
import { createHostPolicy } from '../../src/util/net.ts';

describe('HttpSMSProvider against a real HTTP gateway', () => {
  let gw: HttpGateway;
  before(async () => {
    gw = await new HttpGateway().start();
  });
  after(() => gw.stop());

  test('GET sends the number and text under the configured keys, PARAMETER merged last, basic auth', async () => {
    const authGw = await new HttpGateway({ auth: { type: 'basic', user: 'gwuser', password: 'gw:pass' } }).start();
    try {
      const p = build(httpSmsProvider, {
        URL: `${authGw.url}/send`,
        HTTP_Method: 'GET',
        SMS_PHONENUMBER_KEY: 'to',
        SMS_TEXT_KEY: 'msg',
        PARAMETER: { account: 'acme', msg: 'overridden?' },
        USERNAME: 'gwuser',
        PASSWORD: 'gw:pass',
        HEADERS: { 'X-Api': 'k1' },
      });
      const r = await p.send(sms('+4915112345678', 'Your code 123456'), never());
      assert.deepEqual(r, { kind: 'accepted' });
      assert.equal(authGw.requests.length, 1);
      const req = authGw.requests[0]!;
      assert.equal(req.method, 'GET');
      assert.equal(req.path, '/send');
      assert.equal(req.authUser, 'gwuser');
      assert.equal(req.headers['x-api'], 'k1');
      // LinOTP merges PARAMETER after the number and text, so it can override them.
      assert.deepEqual(req.query, { to: '+4915112345678', msg: 'overridden?', account: 'acme' });
    } finally {
      await authGw.stop();
    }
  });

  test('wrong basic credentials: 401 is a permanent refusal that marks the provider', async () => {
    const authGw = await new HttpGateway({ auth: { type: 'basic', user: 'u', password: 'right' } }).start();
    try {
      const p = build(httpSmsProvider, { URL: authGw.url, USERNAME: 'u', PASSWORD: 'wrong' });
      const r = await p.send(sms('+4915112345678', 'x'), never());
      assert.equal(r.kind, 'permanent');
      assert.equal(r.kind === 'permanent' && r.providerFault, true);
      assert.match(r.kind === 'permanent' ? r.reason : '', /401/);
    } finally {
      await authGw.stop();
    }
  });

  test('digest authentication answers the server challenge', async () => {
    const authGw = await new HttpGateway({ auth: { type: 'digest', user: 'dig', password: 'est' } }).start();
    try {
      const p = build(httpSmsProvider, { URL: `${authGw.url}/d?x=1`, USERNAME: 'dig', PASSWORD: 'est', AUTH_TYPE: 'digest' });
      const r = await p.send(sms('+4915112345678', 'code 1'), never());
      assert.deepEqual(r, { kind: 'accepted' });
      assert.equal(authGw.requests.length, 1);
      assert.equal(authGw.requests[0]!.authUser, 'dig');
      assert.deepEqual(authGw.requests[0]!.body, { phone: '+4915112345678', sms: 'code 1' });
    } finally {
      await authGw.stop();
    }
  });

  test('POST is the default, with LinOTP default keys phone/sms, MSISDN and SUPPRESS_PREFIX applied', async () => {
    gw.requests.length = 0;
    const p = build(httpSmsProvider, { URL: `${gw.url}/post`, MSISDN: 'true', SUPPRESS_PREFIX: '+' });
    const r = await p.send(sms('+49 (151) 123-45678', 'hello <otp>', { otp: '987654' }), never());
    assert.equal(r.kind, 'accepted');
    const req = gw.requests[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.deepEqual(req.body, { phone: '4915112345678', sms: 'hello 987654' });
  });

  test('RETURN_* keys decide in LinOTP order against the real answer body', async () => {
    const bodyGw = await new HttpGateway({ respond: (req) => ({ body: String(req.query.reply ?? 'OK') }) }).start();
    try {
      const cases: [Record<string, string>, string, 'accepted' | 'permanent'][] = [
        [{ RETURN_SUCCESS_REGEX: 'id=\\d+', RETURN_FAIL: 'OK' }, 'OK id=42', 'accepted'], // SUCCESS_REGEX wins over FAIL
        [{ RETURN_SUCCESS_REGEX: 'id=\\d+' }, 'OK', 'permanent'],
        [{ RETURN_FAIL_REGEX: 'ERR', RETURN_SUCCESS: 'NOPE' }, 'fine', 'accepted'], // FAIL_REGEX before SUCCESS
        [{ RETURN_FAIL_REGEX: 'ERR' }, 'some ERR here', 'permanent'],
        [{ RETURN_SUCCESS: 'OK' }, 'OK 1', 'accepted'],
        [{ RETURN_SUCCESS: 'OK' }, 'NOT OK', 'permanent'], // prefix, not substring
        [{ RETURN_FAIL: 'ERROR' }, 'ERROR: no credit', 'permanent'],
        [{ RETURN_FAIL: 'ERROR' }, 'OK, no ERROR', 'accepted'],
        [{}, 'anything', 'accepted'],
      ];
      for (const [rules, reply, expected] of cases) {
        const p = build(httpSmsProvider, { URL: `${bodyGw.url}/r`, HTTP_Method: 'GET', PARAMETER: { reply }, ...rules });
        const r = await p.send(sms('+4915112345678', 'x'), never());
        assert.equal(r.kind, expected, `${JSON.stringify(rules)} with body ${JSON.stringify(reply)}`);
        if (r.kind === 'permanent') assert.equal(r.providerFault, true);
      }
      assert.equal(bodyGw.requests.length, cases.length);
    } finally {
      await bodyGw.stop();
    }
  });

  test('evaluateReturn: none configured is success', () => {
    assert.deepEqual(evaluateReturn('', {}), { ok: true });
  });

  test('5xx and 429 are transient; a redirect is refused and never followed', async () => {
    const statusGw = await new HttpGateway({
      respond: (req) => {
        const status = Number(req.query.status);
        return status === 302 ? { status, headers: { location: '/elsewhere' } } : { status, body: 'x' };
      },
    }).start();
    try {
      for (const [status, kind] of [[500, 'transient'], [503, 'transient'], [429, 'transient'], [302, 'permanent'], [404, 'permanent']] as const) {
        const p = build(httpSmsProvider, { URL: `${statusGw.url}/s`, HTTP_Method: 'GET', PARAMETER: { status: String(status) } });
        const r = await p.send(sms('+4915112345678', 'x'), never());
        assert.equal(r.kind, kind, `HTTP ${status}`);
      }
      assert.deepEqual(statusGw.requests.map((r) => r.path), ['/s', '/s', '/s', '/s', '/s']);
    } finally {
      await statusGw.stop();
    }
  });

  test('a slow gateway is cut off at the timeout (transient), an early abort too', async () => {
    let arrived: (() => void) | undefined;
    const slowGw = await new HttpGateway({
      respond: () => {
        arrived?.();
        return { delayMs: 5000 };
      },
    }).start();
    try {
      const p = build(httpSmsProvider, { URL: slowGw.url }, { timeoutMs: 400, connectTimeoutMs: 400 });
      const t0 = Date.now();
      const r = await p.send(sms('+4915112345678', 'x'), never());
      const elapsed = Date.now() - t0;
      assert.equal(r.kind, 'transient');
      assert.match(r.kind === 'transient' ? r.reason : '', /400 ms/);
      assert.ok(elapsed >= 380 && elapsed < 1500, `took ${elapsed} ms`);

      const ac = new AbortController();
      const p2 = build(httpSmsProvider, { URL: slowGw.url }, { timeoutMs: 10_000 });
      arrived = () => ac.abort(); // aborted while the gateway holds the request
      const t1 = Date.now();
      const r2 = await p2.send(sms('+4915112345678', 'x'), ac.signal);
      assert.equal(r2.kind, 'transient');
      assert.ok(Date.now() - t1 < 1000);
    } finally {
      await slowGw.stop();
    }
  });

  test('connection refused is transient', async () => {
    const port = await closedPort();
    const p = build(httpSmsProvider, { URL: `http://127.0.0.1:${port}/x` });
    const r = await p.send(sms('+4915112345678', 'x'), never());
    assert.equal(r.kind, 'transient');
    assert.match(r.kind === 'transient' ? r.reason : '', /ECONNREFUSED/);
    const probe = await p.probe!(never());
    assert.equal(probe.ok, false);
  });

  test('an answer that is not HTTP, or that stops mid-body, is transient with a plain reason; a plain server behind https:// is a refusal', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const raw = (onData: (s: import('node:net').Socket) => void) => {
      const server = createServer((s) => {
        sockets.add(s);
        s.on('error', () => undefined);
        s.once('data', () => onData(s));
      });
      return new Promise<{ port: number; close: () => Promise<void> }>((r) => server.listen(0, '127.0.0.1', () => r({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((c) => server.close(() => c())),
      })));
    };
    const notHttp = await raw((s) => s.write('SSH-2.0-OpenSSH_9.6\r\n'));
    const cut = await raw((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nOK');
      setTimeout(() => s.destroy(), 20);
    });
    try {
      const r1 = await build(httpSmsProvider, { URL: `http://127.0.0.1:${notHttp.port}/send` }).send(sms('+4915112345678', 'x'), never());
      assert.deepEqual(r1, { kind: 'transient', reason: "the server's answer is not HTTP (HPE_INVALID_CONSTANT)" });
      const r2 = await build(httpSmsProvider, { URL: `http://127.0.0.1:${cut.port}/send` }).send(sms('+4915112345678', 'x'), never());
      assert.deepEqual(r2, { kind: 'transient', reason: 'the connection closed in the middle of the answer (HTTP 200, 2 of 40 body bytes)' });
      const r3 = await build(httpSmsProvider, { URL: `https://127.0.0.1:${gw.port}/send` }).send(sms('+4915112345678', 'x'), never());
      assert.equal(r3.kind, 'permanent');
      assert.equal(r3.kind === 'permanent' && r3.providerFault, true);
      assert.match(r3.kind === 'permanent' ? r3.reason : '', /^TLS handshake failed: the server does not speak TLS on this port \(wrong version number\) \(\w+\): is the URL's scheme right/);
    } finally {
      for (const s of sockets) s.destroy();
      await notHttp.close();
      await cut.close();
    }
  });

  test('PROXY: the request goes to the proxy in absolute form', async () => {
    gw.requests.length = 0;
    const p = build(httpSmsProvider, { URL: 'http://sms-gateway.example.net/api/send', PROXY: gw.url, HTTP_Method: 'GET' });
    const r = await p.send(sms('+4915112345678', 'via proxy'), never());
    assert.equal(r.kind, 'accepted');
    assert.equal(gw.requests.length, 1);
    assert.equal(gw.requests[0]!.target, 'http://sms-gateway.example.net/api/send?phone=%2B4915112345678&sms=via+proxy');
    assert.equal(gw.requests[0]!.headers.host, 'sms-gateway.example.net');
    assert.deepEqual(await p.probe!(never()), { ok: true });
  });

  describe('HTTPS with SERVER_CERTIFICATE', () => {
    let cert: TestCert;
    let server: https.Server;
    let port = 0;
    let hits = 0;
    before(async () => {
      cert = makeSelfSignedCert();
      server = https.createServer({ key: cert.key, cert: cert.cert }, (_req, res) => {
        hits++;
        res.end('OK');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      cert.cleanup();
    });

    test('trusting the given CA file works; the system store refuses a self-signed cert (permanent)', async () => {
      const trusted = build(httpSmsProvider, { URL: `https://127.0.0.1:${port}/`, SERVER_CERTIFICATE: cert.certPath });
      assert.equal((await trusted.send(sms('+4915112345678', 'x'), never())).kind, 'accepted');
      const untrusted = build(httpSmsProvider, { URL: `https://127.0.0.1:${port}/` });
      const r = await untrusted.send(sms('+4915112345678', 'x'), never());
      assert.equal(r.kind, 'permanent');
      assert.match(r.kind === 'permanent' ? r.reason : '', /TLS verification failed/);
      const off = build(httpSmsProvider, { URL: `https://127.0.0.1:${port}/`, SERVER_CERTIFICATE: false });
      assert.equal((await off.send(sms('+4915112345678', 'x'), never())).kind, 'accepted');
      assert.equal(hits, 2);
    });
  });

  test('SSRF: metadata addresses are refused at config time, private ones when denied', async () => {
    assert.throws(() => build(httpSmsProvider, { URL: 'http://169.254.169.254/latest/meta-data' }), ConfigValidationError);
    assert.throws(() => build(httpSmsProvider, { URL: 'file:///etc/passwd' }), /only http and https/);
    assert.throws(() => build(httpSmsProvider, { URL: `${gw.url}/x` }, { hostOptions: { denyPrivate: true } }), /\(loopback\) is not allowed for providers while DeliveryDenyPrivateHosts is on/);
    assert.throws(() => build(httpSmsProvider, { URL: `http://localhost:${gw.port}/x` }, { hostOptions: { denyPrivate: true } }), /loopback/);
    // A name whose DNS answer is a refused address is caught at connect time (resolver adapter answers 127.0.0.1).
    const rebinding = createHostPolicy({
      denyPrivate: true,
      purpose: 'providers',
      settings: { denyPrivate: 'DeliveryDenyPrivateHosts' },
      resolve: ((_host: string, _opts: unknown, cb: (err: null, a: { address: string; family: number }[]) => void) => cb(null, [{ address: '127.0.0.1', family: 4 }])) as never,
    });
    const p = build(httpSmsProvider, { URL: `http://sms.rebind.test:${gw.port}/x` }, { hosts: rebinding });
    const before = gw.requests.length;
    const r = await p.send(sms('+4915112345678', 'x'), never());
    assert.equal(r.kind, 'permanent');
    assert.match(r.kind === 'permanent' ? r.reason : '', /address 127\.0\.0\.1 \(loopback\) is not allowed for providers/);
    assert.equal(gw.requests.length, before);
    assert.throws(() => build(httpSmsProvider, { URL: `${gw.url}/x` }, { hostOptions: { allowedHosts: ['sms.example.com'] } }), /allow-list/);
  });
});

describe('provider config validation', () => {
  test('schema errors name the path of the bad key', () => {
    assert.throws(
      () => validateConfig(httpSmsProvider.schema, { HTTP_Method: 'PUT', RETURN_SUCESS: 'OK' }, 'providers.sms.main.config'),
      (e: ConfigValidationError) => {
        assert.deepEqual(e.problems.sort(), [
          'providers.sms.main.config.HTTP_Method: must be one of "GET", "POST", "get", "post"',
          'providers.sms.main.config.RETURN_SUCESS: unknown key',
          'providers.sms.main.config.URL: required',
        ]);
        return true;
      },
    );
  });

  test('invalid JSON names the problem and the position; single quotes get a hint', () => {
    assert.throws(
      () => parseConfigJson("{'URL': 'http://x'}", 'config'),
      (e: ConfigValidationError) => {
        assert.equal(e.problems[0], "config: invalid JSON: Expected property name or '}' at position 1 (line 1, column 2) (single quotes are not JSON: use double quotes for keys and strings)");
        return true;
      },
    );
    assert.throws(() => parseConfigJson('{\n "a": 1,\n}', 'config'), /at position 11 \(line 3, column 1\)/);
    assert.throws(() => parseConfigJson('[1]', 'config'), /must be a JSON object/);
    assert.deepEqual(parseConfigJson('{"URL": "http://x"}', 'config'), { URL: 'http://x' });
  });

  test('timeouts: seconds or "connect,read"', () => {
    assert.deepEqual(parseTimeout('5'), { connectMs: 5000, totalMs: 5000 });
    assert.deepEqual(parseTimeout('2,10'), { connectMs: 2000, totalMs: 12000 });
    assert.deepEqual(parseTimeout(undefined), { connectMs: 5000, totalMs: 5000 });
    assert.throws(() => parseTimeout('abc'), /timeout/);
    assert.throws(() => parseTimeout('0'), /timeout/);
  });

  test('an invalid RETURN_SUCCESS_REGEX is refused when the provider is built', () => {
    assert.throws(() => build(httpSmsProvider, { URL: 'http://127.0.0.1:1/', RETURN_SUCCESS_REGEX: '(' }), /RETURN_SUCCESS_REGEX: invalid regular expression/);
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
