import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../helpers/require.ts';
import { startHarness, type Harness } from './helpers.ts';

const PAM_MODULE = '/lib/x86_64-linux-gnu/security/pam_radius_auth.so';
const skip = haveBinary('pamtester', 'pamtester') || haveBinary(PAM_MODULE, 'libpam-radius-auth');
const PAM_SECRET = 'pam-shared-secret';

function pamtester(service: string, user: string, answers: string[]): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('pamtester', ['-v', service, user, 'authenticate'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? -1, output }));
    child.stdin.end(answers.map((a) => `${a}\n`).join(''));
  });
}

/**
 * A real PAM login through Debian's pam_radius_auth 2.0 (which sends no
 * Message-Authenticator, so its client has the requirement off). The module's config
 * lives in a temp dir (`conf=`), never /etc/pam_radius_auth.conf (stack.md gotcha 11);
 * pamtester needs a service file in /etc/pam.d, created and removed here.
 */
describe('PAM login through pam_radius_auth + pamtester', { skip }, () => {
  let h: Harness;
  let dir: string;
  const service = `otpd-test-${randomBytes(4).toString('hex')}`;
  const pamFile = join('/etc/pam.d', service);

  before(async () => {
    h = await startHarness({ clients: [{ name: 'pam-host', address: '127.0.0.1', secret: PAM_SECRET, require_message_authenticator: false }] });
    dir = mkdtempSync(join(tmpdir(), 'otpd-pam-'));
    const conf = join(dir, 'pam_radius_auth.conf');
    writeFileSync(conf, `127.0.0.1:${h.port} ${PAM_SECRET} 3\n`, { mode: 0o600 });
    writeFileSync(pamFile, `auth required pam_radius_auth.so conf=${conf} retry=1\naccount required pam_permit.so\n`);
  });
  after(async () => {
    rmSync(pamFile, { force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('password, then the OTP at the challenge prompt → authenticated', async () => {
    const otp = h.validator.otp('alice');
    const r = await pamtester(service, 'alice', ['alicepw', otp]);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /successfully authenticated/);
    const [first, second] = h.validator.calls.slice(-2);
    assert.equal(first.password, 'alicepw');
    assert.equal(first.transactionId, undefined);
    assert.equal(second.password, otp);
    assert.match(second.transactionId ?? '', /^tx-\d+$/);
    assert.equal(second.clientName, 'pam-host');
    assert.equal(h.server.stats().challenged, 1);
  });

  it('password+OTP in one step → authenticated without a challenge', async () => {
    const r = await pamtester(service, 'bob', [`bobpw${h.validator.otp('bob')}`]);
    assert.equal(r.exitCode, 0, r.output);
    assert.equal(h.server.stats().challenged, 1);
  });

  it('a wrong OTP at the challenge prompt → authentication failure', async () => {
    const r = await pamtester(service, 'alice', ['alicepw', '000000']);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.output, /Authentication failure|authentication failure/i);
    assert.equal(h.validator.calls.at(-1)?.password, '000000');
  });
});
