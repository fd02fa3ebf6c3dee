import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { registerPolicyCommands } from '../../src/policy/cli.ts';
import { formatPolicyFile, parsePolicyFile } from '../../src/policy/policyfile.ts';
import { PolicyService } from '../../src/policy/service.ts';
import { PolicyDefinitionError } from '../../src/policy/parse.ts';
import { type TestDb, createTestDb } from '../helpers/db.ts';

let t: TestDb;
let dir: string;
before(async () => {
  t = await createTestDb('sqlite');
  dir = mkdtempSync(join(tmpdir(), 'otpd-policy-cli-'));
});
after(async () => {
  await t.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `otpd <args>` against the test database; returns what it printed. */
async function otpd(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  let closed = 0;
  const chunks: string[] = [];
  registerPolicyCommands(
    program,
    async () => {
      const policies = new PolicyService({ db: t.db, logger: pino({ level: 'silent' }) });
      await policies.load();
      return { policies, close: async () => void closed++ };
    },
    (text) => void chunks.push(text),
  );
  await program.parseAsync(['node', 'otpd', ...args]);
  assert.equal(closed, 1, 'the command closes what it opened');
  return chunks.join('');
}

const LINOTP_EXPORT = `[autoenroll_email]
realm = myrealm
active = True
client = ""
user = *
time = * * * * * *;
action = autoenrollment=email
scope = enrollment

# a comment
[vpn]
scope = "authentication"
action = "otppin=1, smstext='Code: <otp>'"
realm = myrealm, lab
user = '*, !guest'
client = 10.0.0.0/8, 2001:db8::/32
time = "* 6-20 * * 1-5 *;"
active = False
`;

test('policy.cfg: reads a LinOTP-style export (unquoted lists, comments) and round-trips its own output', () => {
  const parsed = parsePolicyFile(LINOTP_EXPORT);
  assert.deepEqual(parsed, [
    { name: 'autoenroll_email', scope: 'enrollment', action: 'autoenrollment=email', realm: 'myrealm', user: '*', client: '', time: '* * * * * *;', active: 'True' },
    {
      name: 'vpn',
      scope: 'authentication',
      action: "otppin=1, smstext='Code: <otp>'",
      realm: 'myrealm, lab',
      user: '*, !guest',
      client: '10.0.0.0/8, 2001:db8::/32',
      time: '* 6-20 * * 1-5 *;',
      active: 'False',
    },
  ]);
  const policies = [
    { name: 'q', scope: 'authentication' as const, action: `smstext='say "<otp>"'`, realm: '*', user: '*', client: '*', time: '* * * * * *;', active: true },
  ];
  assert.deepEqual(parsePolicyFile(formatPolicyFile(policies)), [{ ...policies[0], active: 'True' }]);
  for (const bad of ['scope = x', '[a]\nscope = "x', '[a]\nfoo = 1', '[a]\naction = x', '[a]\nscope=admin\n[a]\nscope=admin']) {
    assert.throws(() => parsePolicyFile(bad), PolicyDefinitionError, bad);
  }
});

test('otpd policy import / list / export / simulate', async () => {
  const file = join(dir, 'policy.cfg');
  writeFileSync(file, LINOTP_EXPORT);
  assert.equal(await otpd('policy', 'import', file), 'imported 2 policies: autoenroll_email, vpn\n');
  assert.match(await otpd('policy', 'list'), /^  autoenroll_email \[enrollment\] autoenrollment=email \| realm myrealm \| user \* \| client \*\n$/);
  assert.match(await otpd('policy', 'list', '--all'), /- vpn \[authentication\]/);

  const out = join(dir, 'out.cfg');
  await otpd('policy', 'export', out);
  assert.deepEqual(
    parsePolicyFile(readFileSync(out, 'utf8')).map((p) => p.name),
    ['autoenroll_email', 'vpn'],
  );

  await otpd('policy', 'import', file); // re-import replaces
  const sim = await otpd('policy', 'simulate', '--user', 'alice', '--realm', 'myrealm', '--client', '10.1.2.3', '--scope', 'enrollment');
  assert.match(sim, /^user alice@myrealm, client 10\.1\.2\.3/);
  assert.match(sim, /\+ autoenroll_email \[enrollment\]: matches/);
  assert.match(sim, /enrollment\/autoenrollment = "email" \(from 'autoenroll_email'\)/);

  const json = JSON.parse(await otpd('policy', 'simulate', '--user', 'guest@myrealm', '--scope', 'authentication', '--action', 'otppin', '--json'));
  assert.equal(json.actions[0].source, 'default');
  assert.equal(json.policies[0].reason, 'policy is inactive');

  const attr = JSON.parse(
    await otpd('policy', 'simulate', '--user', 'bob@myrealm', '--scope', 'enrollment', '--attr', 'mobile=+12015550123', '--attr', 'email=b@example.org', '--json'),
  );
  assert.equal(attr.actions[0].value, 'email');

  await assert.rejects(otpd('policy', 'simulate', '--scope', 'nope'), /unknown scope 'nope'/);
  writeFileSync(file, '[bad]\nscope = enrollment\naction = autoenrollment=hmac\nrealm = *\n');
  await assert.rejects(otpd('policy', 'import', file), /policy 'bad': action 'autoenrollment'/);
});
