// Invariant: the directory going away under load (slapd stopped and started; then a server that
// accepts LDAP connections and never answers) is an outage, never a refusal: requests that need
// it get ERR2004 within the resolver's TIMEOUT (plus a margin), valid OTPs are never refused,
// no attempt is spent (fail counters stay 0), and otpd recovers by itself when the directory is
// back.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PW, FIXTURE_BASE, startSlapd, type Slapd } from '../fixtures/slapd.ts';
import { haveBinary } from '../helpers/require.ts';
import { assertCleanAnswers, isAccept, Load, OtpdNode, summary, waitForRecovery, type LoadReport } from './harness.ts';

const skip = haveBinary('/usr/sbin/slapd', 'slapd');
const TIMEOUT_S = 2;
const MAX_MS = TIMEOUT_S * 1000 + 2500;
const OWNERS = ['alice', 'bob', 'carol', 'dave', 'mallory'];
const dir = mkdtempSync('/dev/shm/otpd-faults-directory-');
let node: OtpdNode | undefined;
let ldap: Slapd | undefined;
const held: Socket[] = [];
const blackhole = createServer((s) => void held.push(s)); // accepts, reads, never answers
after(async () => {
  await node?.stop();
  await ldap?.dispose();
  for (const s of held) s.destroy();
  blackhole.close();
  rmSync(dir, { recursive: true, force: true });
});

const ldapForm = (url: string) => ({
  name: 'ldapusers', type: 'ldapresolver', PRESET: 'openldap', LDAPURI: url, LDAPBASE: FIXTURE_BASE,
  BINDDN: FIXTURE_ADMIN_DN, BINDPW: FIXTURE_ADMIN_PW, EnforceTLS: 'False', UIDTYPE: 'DN', TIMEOUT: String(TIMEOUT_S),
  // the circuit breaker skips a failed server this long (default 30 s): recovery comes after it
  BLOCK_SECONDS: '2',
});

function check(report: LoadReport, window: [number, number], what: string): void {
  const counts = summary(report);
  assertCleanAnswers(report, { maxMs: MAX_MS, codes: [Errors.userStoreUnavailable.code] });
  const refused = report.answers.filter((a) => a.kind === 'success' && a.value === false);
  assert.deepEqual(refused.map((a) => `${a.serial}#${a.counter}@${a.at}`), [], `${what}: valid OTPs refused ${JSON.stringify(counts)}`);
  const during = report.answers.filter((a) => a.kind === 'success' && a.at > window[0] + 300 && a.at + a.ms < window[1]);
  const odd = during.filter((a) => a.code !== Errors.userStoreUnavailable.code);
  assert.ok(during.length > 0 && odd.length === 0, `${what} ${window}: ${during.length} requests, not ERR2004: ${odd.slice(0, 5).map((a) => `${a.at}+${a.ms}=${a.code ?? a.value}`)} ${JSON.stringify(counts)}`);
  assert.ok(report.answers.some((a) => a.kind === 'success' && isAccept(a) && a.at > window[1] + 500), `${what}: no success after it came back ${JSON.stringify(counts)}`);
  console.log(what, window, counts);
}

test('slapd stopped and started, then a directory that never answers: ERR2004 in time, no attempt spent, recovery', { skip }, async () => {
  ldap = await startSlapd();
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()));
  const holePort = (blackhole.address() as { port: number }).port;
  node = await OtpdNode.create({ dir, tokens: 5, ldapResolver: ldapForm(ldap.url), owners: OWNERS, config: { UserCacheTTL: '0' } });
  await node.start();
  const load = new Load(node);
  const mix = { success: 3, wrong: 1, trigger: 0, 'radius-success': 0, 'radius-wrong': 0 };
  const t0 = Date.now();
  let window: [number, number] = [0, 0];
  const stopped = await load.run({
    durationMs: 12_000, concurrency: 5, mix,
    at: {
      3000: async () => {
        await ldap!.stop();
        window[0] = Date.now() - t0;
      },
      7000: async () => {
        window[1] = Date.now() - t0; // slapd may answer before restart() resolves
        await ldap!.restart();
      },
    },
  });
  check(stopped, window, 'slapd stopped');
  await waitForRecovery(load);

  // a directory that accepts the connection and never answers (a hung server, a dead firewall state)
  const t1 = Date.now();
  window = [0, 0];
  const hung = await load.run({
    durationMs: 12_000, concurrency: 5, mix,
    at: {
      3000: async () => {
        const r = await node!.admin('/system/setResolver', { ...ldapForm(`ldap://127.0.0.1:${holePort}`), previous_name: 'ldapusers' });
        assert.equal(r.result.value, true, JSON.stringify(r));
        window[0] = Date.now() - t1 + 1500; // the loaded resolvers follow within the revision poll (1 s)
      },
      7000: async () => {
        window[1] = Date.now() - t1;
        const r = await node!.admin('/system/setResolver', { ...ldapForm(ldap!.url), previous_name: 'ldapusers' });
        assert.equal(r.result.value, true, JSON.stringify(r));
      },
    },
  });
  check(hung, window, 'directory never answers');
  // no attempt spent: the fail counters of the valid tokens stayed 0
  const db = await node.openDb();
  try {
    const rows = await db.kysely.selectFrom('tokens').select(['serial', 'fail_count']).where('serial', 'like', 'OK%').execute();
    assert.deepEqual(rows.filter((r) => Number(r.fail_count) !== 0), [], 'attempts spent by the outage');
    const attempts = await db.kysely.selectFrom('account_attempts').select(['login', 'fail_count']).where('login', 'in', OWNERS).where('fail_count', '>', 0).execute();
    assert.deepEqual(attempts, [], 'account attempts spent by the outage');
  } finally {
    await db.close();
  }
});
