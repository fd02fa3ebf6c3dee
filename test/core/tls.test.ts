// TLS for HTTP from certificate files: with OTPD_TLS_CERT and OTPD_TLS_KEY, `serve` answers
// HTTPS (and nothing in plain text) on its port; SIGHUP re-reads the files, so a renewed
// certificate is served to new connections without a restart, and a broken renewal keeps the
// previous one. One setting without the other, or a key that does not match, stops start-up
// with the setting named. Certificates are made by openssl at test time, on loopback only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { makeSelfSignedCert, type TestCert } from '../fixtures/tls-cert.ts';
import { BIN, spawnServe } from '../helpers/serve.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

/** GET over HTTPS trusting only `ca`, on a fresh connection. */
function httpsGet(port: number, path: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, ca, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** The certificate a new TLS connection to the port is shown (not verified: only compared). */
function servedCert(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

const fingerprint = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

test('HTTPS from certificate files; SIGHUP serves a renewed certificate, a broken one is refused and the old one kept', async () => {
  const dir = testTmpDir('otpd-tls-');
  const first = makeSelfSignedCert();
  const renewed = makeSelfSignedCert();
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  copyFileSync(first.certPath, cert);
  copyFileSync(first.keyPath, key);
  const ready = async (port: number) => (await httpsGet(port, '/healthz', first.cert).catch(() => undefined))?.status === 200;
  const server = await spawnServe(dir, { OTPD_TLS_CERT: cert, OTPD_TLS_KEY: key }, { ready });
  try {
    const health = await httpsGet(server.port, '/healthz', first.cert);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
    assert.match(server.output(), /"address":"https:\/\/127\.0\.0\.1:\d+","msg":"otpd listening"/);
    const plain = await fetch(`http://127.0.0.1:${server.port}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status, (e: Error) => e.name);
    assert.notEqual(plain, 200, 'no plain-text answer on the TLS port');

    // renewal: new files in place, then SIGHUP
    copyFileSync(renewed.certPath, cert);
    copyFileSync(renewed.keyPath, key);
    server.child.kill('SIGHUP');
    await waitFor(() => /TLS certificate and key reloaded/.test(server.output()), { what: 'the reload' });
    assert.equal((await servedCert(server.port)).fingerprint256, fingerprint(renewed.cert));
    assert.equal((await httpsGet(server.port, '/healthz', renewed.cert)).status, 200);

    // a broken renewal (a key that is not PEM) is refused: the renewed pair stays in use
    writeFileSync(key, 'not a key\n');
    server.child.kill('SIGHUP');
    await waitFor(() => /TLS certificate not reloaded, the previous one stays in use: .*OTPD_TLS_KEY/.test(server.output()), { what: 'the refused reload' });
    assert.equal((await servedCert(server.port)).fingerprint256, fingerprint(renewed.cert));
    assert.equal(server.child.exitCode, null);
  } finally {
    const exit = await server.stop();
    assert.equal(exit.code, 0);
    first.cleanup();
    renewed.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

function serveOnce(dir: string, env: Record<string, string>) {
  return spawnSync(process.execPath, [BIN, 'serve'], {
    cwd: dir, encoding: 'utf8', timeout: 20_000,
    env: { ...process.env, OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', ...env },
  });
}

test('a certificate without its key (or the reverse), a missing file or a key of another certificate stops start-up', () => {
  const dir = testTmpDir('otpd-tls-');
  let a: TestCert | undefined;
  let b: TestCert | undefined;
  try {
    a = makeSelfSignedCert();
    b = makeSelfSignedCert();
    const certOnly = serveOnce(dir, { OTPD_TLS_CERT: a.certPath });
    assert.equal(certOnly.status, 2);
    assert.match(certOnly.stderr, /OTPD_TLS_CERT \(tlsCert\) and OTPD_TLS_KEY \(tlsKey\) must be set together: a certificate without its key/);
    const keyOnly = serveOnce(dir, { OTPD_TLS_KEY: a.keyPath });
    assert.equal(keyOnly.status, 2);
    assert.match(keyOnly.stderr, /must be set together: a key without a certificate/);
    const missing = serveOnce(dir, { OTPD_TLS_CERT: join(dir, 'nope.pem'), OTPD_TLS_KEY: a.keyPath });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /TLS certificate \(OTPD_TLS_CERT\) .*nope\.pem: ENOENT/);
    const mismatch = serveOnce(dir, { OTPD_TLS_CERT: a.certPath, OTPD_TLS_KEY: b.keyPath });
    assert.equal(mismatch.status, 1);
    assert.match(mismatch.stderr, /do not make a TLS context: .*key values mismatch/);
  } finally {
    a?.cleanup();
    b?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
