// The deployment files are correct as far as this machine can tell without a container
// registry or a running systemd: the systemd unit passes `systemd-analyze verify` and keeps
// its hardening; the Dockerfile runs as a non-root user, installs production dependencies,
// builds, keeps its data in a volume and checks health; and the runtime layout the
// Dockerfile assembles (its COPY lines) starts from a read-only file system with only the
// data directory writable, answers its HEALTHCHECK and stops cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort } from '../fixtures/slapd.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const REPO = join(import.meta.dirname, '../..');
const UNIT = readFileSync(join(REPO, 'deploy/otpd.service'), 'utf8');
const DOCKERFILE = readFileSync(join(REPO, 'Dockerfile'), 'utf8');

/** Dockerfile instructions with continuation lines joined and comments dropped. */
const instructions = DOCKERFILE.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const runtime = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));

test('systemd unit: systemd-analyze verify finds nothing, hardening options set', (t) => {
  const directives = new Map<string, string[]>();
  for (const line of UNIT.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.at(-1);
  for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['PrivateDevices', 'yes'], ['RestrictSUIDSGID', 'yes'], ['CapabilityBoundingSet', ''], ['AmbientCapabilities', ''], ['User', 'otpd'], ['StateDirectory', 'otpd']]) {
    assert.equal(one(key), value, `${key}=${value}`);
  }
  assert.match(one('ReadWritePaths') ?? '', /(^| )\/var\/lib\/otpd( |$)/);
  assert.equal(one('ExecStart'), '/usr/bin/node /opt/otpd/bin/otpd.mjs serve');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('MemoryDenyWriteExecute'), undefined, 'V8 needs W+X memory');

  if (spawnSync('systemd-analyze', ['--version']).status !== 0) return t.skip('systemd-analyze not installed (apt-get install -y systemd)');
  // verify checks that ExecStart's program exists: point it at this checkout's node and bin
  const dir = testTmpDir('otpd-unit-');
  try {
    const unit = join(dir, 'otpd.service');
    writeFileSync(unit, UNIT.replace('/usr/bin/node /opt/otpd/bin/otpd.mjs', `${process.execPath} ${join(REPO, 'bin/otpd.mjs')}`).replace('WorkingDirectory=/opt/otpd', `WorkingDirectory=${REPO}`));
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // unknown keys and bad values are only warnings: none may name this unit (other units' noise is ignored)
    const ours = r.stderr.split('\n').filter((l) => l.includes('otpd.service'));
    assert.deepEqual(ours, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Dockerfile: non-root, production dependencies, build, data volume, health check, every COPY source present', () => {
  assert.ok(instructions.some((l) => /^RUN .*npm ci --omit=dev\b/.test(l)), 'npm ci --omit=dev');
  assert.ok(instructions.some((l) => /^RUN node scripts\/build\.mjs$/.test(l)), 'the build');
  const user = runtime.findIndex((l) => l.startsWith('USER '));
  assert.equal(runtime[user], 'USER otpd');
  assert.ok(user < runtime.findIndex((l) => l.startsWith('ENTRYPOINT ')), 'USER before ENTRYPOINT');
  assert.ok(runtime.includes('VOLUME ["/var/lib/otpd"]'));
  assert.match(runtime.find((l) => l.startsWith('ENV ')) ?? '', /OTPD_DATA_DIR=\/var\/lib\/otpd/);
  assert.match(runtime.find((l) => l.startsWith('HEALTHCHECK ')) ?? '', /deploy\/healthcheck\.mjs/);
  const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  for (const l of instructions.filter((i) => i.startsWith('COPY ') && !i.includes('--from='))) {
    for (const src of l.split(/\s+/).slice(1, -1)) {
      assert.ok(existsSync(join(REPO, src)), `COPY source ${src} exists`);
      assert.ok(!ignored.includes(src.split('/')[0]!), `COPY source ${src} is not in .dockerignore`);
    }
  }
});

test('the runtime layout of the Dockerfile runs from a read-only file system, passes its HEALTHCHECK, stops on SIGTERM', async (t) => {
  // the build stage's dist/: this checkout's, current (bin/otpd.mjs rebuilds it when a source changed)
  assert.equal(spawnSync(process.execPath, [join(REPO, 'bin/otpd.mjs'), '--version']).status, 0);
  const root = testTmpDir('otpd-image-');
  const app = join(root, 'opt/otpd');
  const data = join(root, 'var/lib/otpd');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  // the runtime stage's COPY lines: from the build stage (node_modules, dist) or the context
  for (const l of runtime.filter((i) => i.startsWith('COPY '))) {
    const parts = l.split(/\s+/).slice(1);
    const from = parts[0]!.startsWith('--from=') ? parts.shift() : undefined;
    const dest = join(app, parts.pop()!);
    for (const src of parts) {
      const source = from ? join(REPO, src.replace('/opt/otpd/', '')) : join(REPO, src);
      const target = parts.length > 1 || dest.endsWith('/') ? join(dest, src.split('/').pop()!) : dest;
      mkdirSync(dirname(target), { recursive: true });
      if (src.endsWith('node_modules')) symlinkSync(source, target);
      else cpSync(source, target, { recursive: true });
    }
  }
  assert.ok(existsSync(join(app, 'dist/main.js')), 'dist/ was copied');
  assert.ok(!existsSync(join(app, 'src')), 'no sources in the image');
  const env: Record<string, string> = {};
  for (const l of runtime.filter((i) => i.startsWith('ENV '))) for (const m of l.slice(4).matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  const port = await freePort();
  Object.assign(env, { OTPD_HOST: '127.0.0.1', OTPD_PORT: String(port), OTPD_DATA_DIR: data, OTPD_ADMIN_USER: 'admin', OTPD_ADMIN_PASSWORD: 'admin-password-1' });

  const readOnly = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
  if (!readOnly) t.diagnostic('not root or no unshare: the layout runs writable');
  const script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && cd "$1" && exec "$2" bin/otpd.mjs serve';
  const child = readOnly
    ? spawn('unshare', ['-m', 'sh', '-c', script, 'sh', app, process.execPath], { env: { PATH: process.env.PATH!, ...env } })
    : spawn(process.execPath, ['bin/otpd.mjs', 'serve'], { cwd: app, env: { PATH: process.env.PATH!, ...env } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const health = () => spawnSync(process.execPath, [join(app, 'deploy/healthcheck.mjs')], { env: { ...process.env, ...env } }).status;
    await waitFor(() => health() === 0, { what: 'the HEALTHCHECK to pass', timeoutMs: 20_000, intervalMs: 200 }).catch((e: Error) => {
      throw new Error(`${e.message}; output:\n${output}`);
    });
    assert.ok(existsSync(join(data, 'otpd.key')) && existsSync(join(data, 'otpd.sqlite')), 'the data directory holds key and database');
    assert.doesNotMatch(output, /rebuilt dist|EROFS|read-only/i);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.match(output, /shutdown complete/);
    assert.notEqual(health(), 0, 'the check fails once otpd is gone');
  } finally {
    child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
