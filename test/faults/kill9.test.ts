// Invariant: `kill -9` at a random point of a load run (20 trials on one SQLite data directory)
// loses nothing that was acknowledged and repeats nothing: token counters never go back and stay
// past every accepted OTP, no OTP is accepted twice across the restarts, every outbox message is
// sent at most once per recorded attempt, and after the last restart every queued message ends
// sent or expired (none stuck); the audit chain verifies.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SmtpSink } from '../fixtures/smtp-sink.ts';
import { waitFor } from '../helpers/wait.ts';
import { hotp } from '../../src/otp/hotp.ts';
import { assertNoHalfWrittenRows, Load, OtpdNode, PIN, seedOf, type LoadReport } from './harness.ts';

const TRIALS = 20;
const dir = mkdtempSync('/dev/shm/otpd-faults-kill9-');
let node: OtpdNode | undefined;
let smtp: SmtpSink | undefined;
after(async () => {
  await node?.kill9();
  await smtp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function counters(n: OtpdNode): Promise<Map<string, number>> {
  const db = await n.openDb();
  try {
    const rows = await db.kysely.selectFrom('tokens').select(['serial', 'counter']).where('serial', 'like', 'OK%').execute();
    return new Map(rows.map((r) => [r.serial, Number(r.counter)]));
  } finally {
    await db.close();
  }
}

test(`kill -9 at random points of ${TRIALS} load runs: nothing acknowledged lost, nothing repeated`, async () => {
  smtp = await new SmtpSink().start();
  node = await OtpdNode.create({ dir, smtpPort: smtp.port, tokens: 6, triggerUsers: 3 });
  const load = new Load(node);
  load.radiusTimeoutMs = 1000;
  const accepted = new Map<string, number>(); // "serial#counter" -> trial
  let last = await counters(node);
  const kills: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    await node.start();
    const killAt = 300 + Math.floor(Math.random() * 2200);
    kills.push(killAt);
    const report: LoadReport = await load.run({ durationMs: killAt + 300, concurrency: 6, requestTimeoutMs: 5000, at: { [killAt]: () => node!.kill9() } });
    for (const a of report.accepted) {
      const key = `${a.serial}#${a.counter}`;
      assert.equal(accepted.get(key), undefined, `${key} accepted in trial ${accepted.get(key)} and again in trial ${trial}`);
      accepted.set(key, trial);
    }
    const now = await counters(node);
    for (const [serial, c] of now) assert.ok(c >= (last.get(serial) ?? 0), `trial ${trial} (killed at ${killAt} ms): ${serial} went back from ${last.get(serial)} to ${c}`);
    for (const a of report.accepted) assert.ok(now.get(a.serial)! > a.counter, `trial ${trial} (killed at ${killAt} ms): ${a.serial} accepted #${a.counter}, stored ${now.get(a.serial)}`);
    last = now;
  }
  assert.ok(accepted.size > TRIALS, `successes over all trials: ${accepted.size}`);
  // the OTPs accepted before a kill stay used after it
  await node.start();
  for (const key of [...accepted.keys()].slice(-6)) {
    const [serial, counter] = key.split('#');
    const res = await fetch(`${node.url}/validate/check`, { method: 'POST', body: new URLSearchParams({ serial: serial!, pass: `${PIN}${hotp(seedOf(Number(serial!.slice(2))), Number(counter))}` }) });
    assert.equal(((await res.json()) as any).result.value, false, `${key} replayed after the restarts`);
  }
  // every queued message ends sent or expired (leases of killed dispatchers run out: up to 30 s)
  const db = await node.openDb();
  try {
    const open = () => db.kysely.selectFrom('delivery_outbox').select(['id', 'status']).where('status', 'in', ['queued', 'sending', 'retry']).execute();
    await waitFor(async () => (await open()).length === 0, { what: 'every outbox row to end sent or expired', timeoutMs: 60_000, intervalMs: 500 }).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await open())}`);
    });
    const rows = await db.kysely.selectFrom('delivery_outbox').select(['id', 'status', 'attempts', 'idempotency_key']).where('idempotency_key', 'like', 'challenge:%').execute();
    const attempts = rows.reduce((n, r) => n + Number(r.attempts), 0);
    const sent = rows.filter((r) => r.status === 'accepted' || r.status === 'delivered').length;
    // at most once per attempt, and each message reported sent did arrive
    assert.ok(smtp.mails.length <= attempts, `${smtp.mails.length} mails for ${attempts} attempts`);
    assert.ok(smtp.mails.length >= sent, `${sent} messages recorded as sent, ${smtp.mails.length} arrived`);
    console.log('kill -9', { kills, accepted: accepted.size, outbox: rows.length, attempts, sent, mails: smtp.mails.length, statuses: rows.reduce<Record<string, number>>((m, r) => ((m[r.status] = (m[r.status] ?? 0) + 1), m), {}) });
  } finally {
    await db.close();
  }
  await assertNoHalfWrittenRows(node);
  await node.stop();
  const verify = execFileSync(process.execPath, [join(import.meta.dirname, '../../bin/otpd.mjs'), 'audit', 'verify'], { cwd: dir, env: { ...process.env, ...node.env }, encoding: 'utf8' });
  assert.match(verify, /intact/);
});
