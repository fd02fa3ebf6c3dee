// Invariant: with synchronous replication (the primary's synchronous_standby_names naming the
// standby, synchronous_commit = on), a PostgreSQL failover under load loses no success otpd
// acknowledged: the primary is killed with -9 in the middle of a mixed run, the standby (built
// by this test with pg_basebackup) is promoted and the address otpd uses (a TCP proxy standing
// in for a virtual IP or DNS name) moves to it. Every OTP accepted before the failover stays
// used on the promoted standby (its counter moved, the OTP refused when sent again); while no
// primary answers, HTTP gets ERR2008 in the envelope (never a 500, never a stack trace) within
// a bound and RADIUS stays silent; otpd recovers by itself (no restart); no challenge is left
// without its outbox row or the other way round.
// The asynchronous case shows that the setting is what gives the guarantee: with the link to
// the standby quiet for a moment (held in a proxy, so the run is deterministic), OTPs the
// primary acknowledged are missing after the failover and are accepted a second time.
// A todo test names an open problem found here: with the synchronous standby unreachable, a
// validation waits for it without bound instead of getting ERR2008.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { dbInstancesMissing, startPostgresReplica, startPrivatePostgres, type PgInstance, type PgReplica } from '../fixtures/db-instances.ts';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { TcpProxy } from '../fixtures/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  assertCleanAnswers, assertNoAcknowledgedSuccessLost, assertNoHalfWrittenRows, isAccept, Load, OtpdNode, PIN, summary, waitForRecovery,
  type Answer, type RunOptions,
} from './harness.ts';

/** The longest an answer may take around the failover (the pool's connect timeout is 5 s). */
const MAX_ANSWER_MS = 8000;
/**
 * From the kill to the promoted standby taking the address: what a failover manager needs to
 * decide (seconds in practice). Long enough for the load workers to come back several times
 * from a silent RADIUS request (RADIUS_TIMEOUT_MS each) and send HTTP requests while no
 * primary answers.
 */
const DETECTION_MS = 4500;
/**
 * The load's RADIUS timeout (a NAS's): while no primary answers, every RADIUS request holds a
 * worker this long, so a shorter one leaves more HTTP requests to look at (with the harness's
 * 2 s a run had only 19 inside the outage).
 */
const RADIUS_TIMEOUT_MS = 1000;
/** Successes (HTTP and RADIUS) acknowledged before the primary is killed. */
const SUCCESSES_BEFORE_KILL = 40;
/** How long the load goes on after the standby has the address. */
const AFTER_SWITCH_MS = 6000;
const STANDBY = 'replica1';
const SYNC_WAIT_UNBOUNDED = 'open: with the synchronous standby unreachable, a validation waits for it without bound (no ERR2008)';

/** The standby as the primary sees it in pg_stat_replication (undefined until it connects). */
async function standbyState(primary: PgInstance, name: string): Promise<{ state: string; sync_state: string } | undefined> {
  const rows = await primary.query(`select state, sync_state from pg_stat_replication where application_name = '${name}'`);
  return rows[0] as { state: string; sync_state: string } | undefined;
}

/**
 * A primary on `port` and its standby on `port + 1`, copied and streaming (asynchronously)
 * through `link`; otpd's URL leads to the primary through `db`. `synchronous()` makes the
 * standby synchronous.
 */
async function startPair(port: number) {
  const primary = await startPrivatePostgres(port, { synchronous_commit: 'on' });
  const link = await TcpProxy.start(port);
  const replica = await startPostgresReplica(link.port, port + 1, STANDBY, { wal_retrieve_retry_interval: '200ms' });
  const streaming = (want: 'sync' | 'async') => waitFor(async () => {
    const s = await standbyState(primary, STANDBY);
    return s?.state === 'streaming' && s.sync_state === want;
  }, { what: `the standby to stream (${want})`, timeoutMs: 30_000, intervalMs: 100 });
  await streaming('async');
  const db = await TcpProxy.start(port);
  return {
    primary, replica, link, db, url: `postgres://postgres@127.0.0.1:${db.port}/otp`,
    /** Names the standby in synchronous_standby_names (set after the copy, so the standby does not inherit it), waits for `sync`. */
    synchronous: async () => {
      await primary.query(`alter system set synchronous_standby_names = 'FIRST 1 (${STANDBY})'`);
      await primary.query('select pg_reload_conf()');
      await streaming('sync');
    },
  };
}

/** The same serial and counter: a retry of one OTP. */
const sameOtp = (a: Answer, b: Answer) => a.serial === b.serial && a.counter === b.counter;

describe('PostgreSQL failover to a synchronous standby under load', { skip: dbInstancesMissing('postgres') }, () => {
  let pair: Awaited<ReturnType<typeof startPair>>;
  let node: OtpdNode;
  let load: Load;
  let smtp: SmtpSink | undefined;
  const dir = mkdtempSync('/dev/shm/otpd-faults-replica-');
  before(async () => {
    pair = await startPair(19430);
    smtp = await new SmtpSink().start();
    node = await OtpdNode.create({ dir, databaseUrl: pair.url, smtpPort: smtp.port });
    // synchronous from here on (the set-up's many small commits need not wait for the standby)
    await pair.synchronous();
    await node.start();
    load = new Load(node);
    load.radiusTimeoutMs = RADIUS_TIMEOUT_MS;
  });
  after(async () => {
    if (process.env.FAULTS_KEEP_LOG && node) writeFileSync(process.env.FAULTS_KEEP_LOG, node.log);
    await node?.stop();
    for (const p of [pair?.link, pair?.db]) await p?.close();
    await pair?.primary.destroy();
    await pair?.replica.destroy();
    await smtp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Open problem, found here: a commit waits for the synchronous standby without a bound (no
  // statement or client timeout on otpd's side; PostgreSQL itself waits as long as it takes), and
  // /readyz stays 200 (it only reads). The request should get ERR2008 within the bound instead.
  test('the synchronous standby unreachable: a validation is answered within the bound', { todo: SYNC_WAIT_UNBOUNDED }, async () => {
    assert.ok(isAccept(await load.one('success', 5000)), 'a success before the link goes quiet');
    pair.link.hold();
    let held: Answer;
    try {
      held = await load.one('success', MAX_ANSWER_MS + 1000);
    } finally {
      // the standby reconnects and catches up; the waiting commit then returns
      pair.link.cut();
      await waitFor(async () => {
        const s = await standbyState(pair.primary, STANDBY);
        return s?.state === 'streaming' && s.sync_state === 'sync';
      }, { what: 'the standby to stream (sync) again', timeoutMs: 30_000, intervalMs: 100 });
    }
    assert.ok(held.status === 200 && held.code === Errors.databaseUnavailable.code, `answer while the standby was unreachable: after ${held.ms} ms ${held.status} ${held.error ?? held.body}`);
  });

  test('kill -9 of the primary, standby promoted: nothing acknowledged lost, ERR2008 meanwhile, recovery without restart', async () => {
    const { primary, replica } = pair;
    let killSentAt = 0;
    let killedAt = 0;
    let switchedAt = 0;
    let syncBeforeKill: unknown;
    let probe: Answer | undefined;
    const t0 = Date.now();
    const run: RunOptions = {
      durationMs: 40_000, // shortened once the standby has the address
      concurrency: 6,
      at: {
        1000: async () => {
          // the kill comes after a count of successes, not at a time (the machine may be slow)
          const acknowledged = () => Array.from({ length: node.tokenCount }, (_, i) => load.counter(`OK${i}`)).reduce((x, y) => x + y, 0);
          await waitFor(() => acknowledged() >= SUCCESSES_BEFORE_KILL, { what: `${SUCCESSES_BEFORE_KILL} successes before the kill`, timeoutMs: 15_000, intervalMs: 20 }).catch(() => undefined);
          syncBeforeKill = await standbyState(primary, STANDBY);
          killSentAt = Date.now() - t0;
          await primary.kill9();
          killedAt = Date.now() - t0;
          await new Promise((r) => setTimeout(r, DETECTION_MS));
          await replica.promote();
          pair.db.retarget(replica.port);
          switchedAt = Date.now() - t0;
          // how soon otpd answers from the promoted standby (the load's own workers may be
          // waiting out a silent RADIUS request just then)
          probe = await load.one('success', MAX_ANSWER_MS);
          run.durationMs = Date.now() - t0 + AFTER_SWITCH_MS;
        },
      },
    };
    const report = await load.run(run);
    const counts = summary(report);
    const where = `kill sent at ${killSentAt} ms, all gone at ${killedAt} ms, switched at ${switchedAt} ms; ${JSON.stringify(counts)}`;
    assert.deepEqual(syncBeforeKill, { state: 'streaming', sync_state: 'sync' }, 'the standby was synchronous when the primary died');
    const http = report.answers.filter((a) => !a.kind.startsWith('radius'));
    assert.deepEqual(http.filter((a) => a.status === 0).slice(0, 5).map((a) => `${a.kind} at ${a.at} after ${a.ms} ms: ${a.error}`), [], `HTTP requests without an answer (${where})`);
    // while no primary answers: an error in the envelope, never "authenticated" nor "refused"
    const whileDown = http.filter((a) => a.at > killedAt + 100 && a.at + a.ms < switchedAt - 100);
    const timeline = () => report.answers.filter((a) => a.at > killSentAt - 300 && a.at < switchedAt + 1000)
      .map((a) => `${a.kind}${a.serial ? ` ${a.serial}/${a.counter}` : ''}@${a.at}+${a.ms}:${a.status === 0 ? 'none' : a.code ?? a.value}`).join(' ');
    assert.ok(whileDown.length > 10, `requests while no primary answered: ${where}; ${timeline()}`);
    for (const a of whileDown) assert.equal(a.code, Errors.databaseUnavailable.code, `${a.kind} at ${a.at} ms (${where}): ${a.body?.slice(0, 200)}`);
    assertCleanAnswers(report, { maxMs: MAX_ANSWER_MS, codes: [Errors.databaseUnavailable.code] });

    const acknowledgedBefore = report.accepted.filter((acc) => report.answers.some((a) => a.serial === acc.serial && a.counter === acc.counter && isAccept(a) && a.at + a.ms < killSentAt));
    assert.ok(acknowledgedBefore.length >= SUCCESSES_BEFORE_KILL / 2, `successes acknowledged before the kill: ${acknowledgedBefore.length} (${where})`);
    // A valid OTP refused after the failover is acceptable only as the retry of a request that was
    // in flight when the primary died and got ERR2008: its commit had reached the standby (so it
    // was kept, as it must be) but the answer had not reached otpd. The load sends that OTP again
    // with the token's next request, over HTTP or RADIUS. Anything else is a lost OTP.
    const inFlightAtKill = http.filter((a) => a.kind === 'success' && a.code !== undefined && a.at <= killedAt && a.at + a.ms >= killSentAt);
    const refused = report.answers.filter((a) => (a.kind === 'success' && a.value === false) || (a.kind === 'radius-success' && a.value === 'Access-Reject'));
    assert.deepEqual(refused.filter((r) => !inFlightAtKill.some((f) => sameOtp(f, r))).map((a) => `${a.kind} ${a.serial}/${a.counter} at ${a.at}: ${a.body ?? a.value}`), [],
      `valid OTPs refused (${where}; in flight at the kill: ${inFlightAtKill.map((a) => `${a.serial}/${a.counter}`).join(' ')}); ${timeline()}`);
    // RADIUS is answered again once the standby has the address
    assert.ok(report.answers.some((a) => a.kind === 'radius-success' && a.value === 'Access-Accept' && a.at > switchedAt), `no RADIUS accept after the switch (${where})`);
    // recovery without a restart of otpd
    assert.ok(http.some((a) => a.kind === 'success' && isAccept(a) && a.at > switchedAt), `no success after the switch (${where})`);
    assert.ok(probe && (isAccept(probe) || (probe.value === false && inFlightAtKill.some((f) => sameOtp(f, probe!)))), `the first request after the switch: ${probe?.ms} ms ${probe?.error ?? probe?.body}`);
    assert.equal(node.child?.exitCode, null, 'otpd kept running');
    const recoveryMs = await waitForRecovery(load);
    // each refused retry was refused because its first request's commit was kept: the counter is past it
    const stored = new Map((await replica.query("select serial, counter from tokens where serial like 'OK%'")).map((r) => [r.serial, Number(r.counter)]));
    assert.deepEqual(refused.filter((r) => !((stored.get(r.serial) ?? -1) > r.counter!)).map((r) => `${r.serial}/${r.counter}: stored ${stored.get(r.serial)}`), [], 'a refused retry whose commit was not kept');

    // on the promoted standby (otpd's URL now leads there): every acknowledged OTP is still used
    if (isAccept(probe)) report.accepted.push({ serial: probe.serial!, counter: probe.counter!, otp: (probe as Answer & { otp: string }).otp });
    await assertNoAcknowledgedSuccessLost(node, report);
    const replayed = await Promise.all(acknowledgedBefore.slice(-20).map(async (a) => {
      const res = await fetch(`${node.url}/validate/check`, { method: 'POST', body: new URLSearchParams({ serial: a.serial, pass: `${PIN}${a.otp}` }) });
      return { ...a, value: ((await res.json()) as { result: { value: unknown } }).result.value };
    }));
    assert.deepEqual(replayed.filter((r) => r.value !== false), [], 'OTPs acknowledged before the failover, sent again after it');
    assert.equal((await replica.query('select pg_is_in_recovery() as r'))[0]!.r, false, 'otpd wrote to the promoted standby');
    await assertNoHalfWrittenRows(node);
    assert.doesNotMatch(node.log, /"level":(50|60).*unhandled|uncaught/i, 'no unhandled error in the log');
    console.log(`failover: ${where}; ${acknowledgedBefore.length} successes acknowledged before the kill, ${whileDown.length} HTTP answers while no primary answered (all ERR2008), ${inFlightAtKill.length} in flight at it (${refused.length} of those kept), the first request after the switch answered in ${probe.ms} ms (${probe.value}), recovered ${recoveryMs} ms after the run`);
    // the old primary's log shows that it died without a shutdown (a crash, not a stop)
    assert.doesNotMatch(readFileSync(primary.logFile, 'utf8'), /database system is shut down/);
  });
});

describe('PostgreSQL failover to an asynchronous standby (the guarantee is not given)', { skip: dbInstancesMissing('postgres') }, () => {
  let primary: PgInstance | undefined;
  let replica: PgReplica | undefined;
  let proxies: TcpProxy[] = [];
  let node: OtpdNode | undefined;
  const dir = mkdtempSync('/dev/shm/otpd-faults-replica-async-');
  after(async () => {
    await node?.stop();
    for (const p of proxies) await p.close();
    await primary?.destroy();
    await replica?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('OTPs acknowledged while the standby lagged are accepted again after the failover', async () => {
    const pair = await startPair(19432);
    ({ primary, replica } = pair);
    proxies = [pair.link, pair.db];
    node = await OtpdNode.create({ dir, databaseUrl: pair.url, tokens: 2 });
    await node.start();
    const load = new Load(node);
    // the link is quiet from here: the primary acknowledges without the standby
    pair.link.hold();
    const acknowledged: Answer[] = [];
    for (let i = 0; i < 4; i++) {
      const a = await load.one('success', 5000);
      assert.ok(isAccept(a), `success ${i} on the primary: ${a.body}`);
      acknowledged.push(a);
    }
    await primary.kill9();
    pair.link.cut();
    await replica.promote();
    pair.db.retarget(replica.port);
    await waitFor(async () => (await fetch(`${node!.url}/readyz`)).ok, { what: 'otpd to reach the promoted standby', timeoutMs: 15_000, intervalMs: 100 });
    const again = [];
    for (const a of acknowledged) {
      const res = await fetch(`${node.url}/validate/check`, { method: 'POST', body: new URLSearchParams({ serial: a.serial!, pass: `${PIN}${(a as Answer & { otp: string }).otp}` }) });
      again.push(((await res.json()) as { result: { value: unknown } }).result.value);
    }
    // each was lost with the primary: the same OTP is accepted a second time
    assert.deepEqual(again, acknowledged.map(() => true), 'OTPs acknowledged by the primary alone, sent again after the failover');
  });
});
