// Invariant: three otpd nodes (real processes, one key file, distinct ports on loopback) on one
// PostgreSQL database and, separately, on one MariaDB database behave as one server. Parallel
// requests spread over the nodes accept an OTP once, raise a fail counter by exactly the number
// of wrong answers and never past MaxFailCount, hold the per-account failure limit and the
// per-user send limit; every challenge is delivered once whichever node's dispatcher takes it
// (also when its first attempt fails and a later pass on any node retries it); a challenge made
// on one node is answered on another, over HTTP and over RADIUS (State); a config or policy
// change made on one node is in force on all within PROPAGATION_BOUND_MS; and a node killed
// with -9 in the middle of a mixed load run loses nothing that was acknowledged: no OTP is
// accepted twice, counters never go back, every acknowledged challenge is answered, every
// outbox message ends sent or expired, and the audit chain stays intact.
// The nodes start at the same moment on an empty database, as a fleet does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { hotp } from '../../src/otp/hotp.ts';
import { HttpGateway, type GatewayAnswer, type GatewayRequest } from '../fixtures/http-gateway.ts';
import { availableDialects } from '../helpers/db.ts';
import { haveBinary } from '../helpers/require.ts';
import { waitFor } from '../helpers/wait.ts';
import { radclient } from '../radius/helpers.ts';
import { emptyDatabase, RADIUS_SECRET, startCluster, type Answer, type Cluster, type OtpdNode } from './cluster/nodes.ts';

/** A change on one node is in force on every node within this bound (the revision poll runs every second). */
export const PROPAGATION_BOUND_MS = 2000;

const KEY = '3132333435363738393031323334353637383930';
const SEED = Buffer.from(KEY, 'hex');
const otp = (counter: number) => hotp(SEED, counter);
const radclientMissing = haveBinary('radclient', 'freeradius-utils');

/** Rows of the shared database, read beside otpd (the test's own connection). */
type Query = (text: string) => Promise<Record<string, unknown>[]>;

function queryer(dialect: 'postgres' | 'mysql', url: string): { query: Query; close(): Promise<void> } {
  if (dialect === 'postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    return { query: async (q) => (await pool.query(q)).rows, close: () => pool.end() };
  }
  const pool = mysql.createPool({ uri: url, connectionLimit: 2 });
  return { query: async (q) => (await pool.query(q))[0] as Record<string, unknown>[], close: () => pool.end() };
}

const crypt = (pw: string) => execFileSync('openssl', ['passwd', '-6', pw], { encoding: 'utf8' }).trim();
const phoneOf = (i: number) => `+491512345${String(6000 + i)}`;

for (const { dialect, skip } of await availableDialects()) {
  if (dialect === 'sqlite') continue;
  describe(`three nodes on one ${dialect === 'postgres' ? 'PostgreSQL' : 'MariaDB'} database`, { skip }, () => {
    let cluster: Cluster;
    let db: { url: string; drop(): Promise<void> };
    let sql: { query: Query; close(): Promise<void> };
    let gatewayAnswer: (req: GatewayRequest) => GatewayAnswer = () => ({});
    const gateway = new HttpGateway({ respond: (req) => gatewayAnswer(req) });
    const sms = (phone: string) => gateway.requests.filter((r) => r.body.phone === phone);
    const codeOf = (r: GatewayRequest) => /(\d{6})/.exec(String(r.body.sms))![1]!;
    /** The n-th (1-based) SMS to `phone`, once it arrived. */
    const smsCode = async (phone: string, n: number) => codeOf(await waitFor(() => sms(phone)[n - 1], { what: `SMS ${n} to ${phone}`, timeoutMs: 10_000 }));
    const node = (i: number): OtpdNode => cluster.nodes[i]!;
    const value = (a: Answer) => a.json?.result?.value;

    before(async () => {
      await gateway.start();
      db = await emptyDatabase(dialect as 'postgres' | 'mysql');
      sql = queryer(dialect as 'postgres' | 'mysql', db.url);
    });
    after(async () => {
      await cluster?.close();
      await sql?.close();
      await db?.drop();
      await gateway.stop();
    });

    test('three nodes started at the same moment on an empty database all come up (migrations, admin, RADIUS clients)', async () => {
      cluster = await startCluster({ databaseUrl: db.url });
      const users = [
        `carol:${crypt('CarolPw1')}:1003:1003:Carol Cole,,,,carol@example.org:/home/carol:/bin/sh`,
        ...Array.from({ length: 12 }, (_, i) => `u${i}:x:${2000 + i}:${2000 + i}:User ${i},,${phoneOf(i)},,u${i}@example.org:/home/u${i}:/bin/sh`),
      ];
      const passwd = join(cluster.dir, 'staff');
      writeFileSync(passwd, users.join('\n') + '\n');
      const n0 = node(0);
      await n0.admin('/system/setResolver', { name: 'stafffiles', type: 'passwdresolver', fileName: passwd });
      await n0.admin('/system/setRealm', { realm: 'staff', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.stafffiles' });
      await n0.admin('/system/setDefaultRealm', { realm: 'staff' });
      await n0.admin('/system/setProvider', {
        type: 'sms', name: 'gateway', class: 'HttpSMSProvider', timeout: '3', default: 'true',
        config: JSON.stringify({ URL: `${gateway.url}/send`, HTTP_Method: 'POST', SMS_PHONENUMBER_KEY: 'phone', SMS_TEXT_KEY: 'sms', RETURN_SUCCESS: 'OK' }),
      });
      for (const [key, v] of Object.entries({
        DeliveryAllowedCountryCodes: '49', SMSBlockingTimeout: '0', DeliveryLimitPerUser: '0', DeliveryLimitPerDestination: '0',
        DeliveryLimitPerPrefix: '0', DeliveryLimitPerClient: '0', DeliveryRetryMs: '300', DeliveryPollMs: '200',
      })) await n0.admin('/system/setConfig', { key, value: v });
      // every node sees the store and the provider (the change notices), each on its own
      await waitFor(async () => {
        for (const n of cluster.nodes) if (!(await n.post('/system/getProvider', { type: 'sms' }, { admin: true })).body.includes('gateway')) return false;
        return true;
      }, { what: 'every node to see the SMS provider', timeoutMs: PROPAGATION_BOUND_MS * 2 });
      assert.equal(Number((await sql.query('select count(*) as c from admins'))[0]!.c), 1, 'one admin, created by whichever node was first');
    });

    test('30 parallel uses of one OTP spread over the nodes: one success; the counter moves once', async () => {
      await node(0).admin('/admin/init', { type: 'hmac', serial: 'SU1', otpkey: KEY, pin: 'p' });
      await node(1).admin('/admin/set', { serial: 'SU1', MaxFailCount: '100' });
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => node(i % 3).post('/validate/check', { serial: 'SU1', pass: `p${otp(0)}` })));
      assert.deepEqual(answers.map((a) => a.status).filter((s) => s !== 200), []);
      assert.equal(answers.filter((a) => value(a) === true).length, 1);
      const row = (await sql.query("select counter, fail_count from tokens where serial = 'SU1'"))[0]!;
      assert.equal(Number(row.counter), 1);
      for (const n of cluster.nodes) assert.equal(value(await n.post('/validate/check', { serial: 'SU1', pass: `p${otp(0)}` })), false, `replay on ${n.name}`);
      assert.equal(value(await node(2).post('/validate/check', { serial: 'SU1', pass: `p${otp(1)}` })), true, 'the next OTP');
    });

    test('N parallel wrong OTPs over the nodes raise the fail counter by exactly N; a burst never passes MaxFailCount', async () => {
      await node(0).admin('/admin/init', { type: 'hmac', serial: 'FC1', otpkey: KEY, pin: 'p' });
      await node(0).admin('/admin/set', { serial: 'FC1', MaxFailCount: '100' });
      await Promise.all(Array.from({ length: 24 }, (_, i) => node(i % 3).post('/validate/check', { serial: 'FC1', pass: `p${String(100000 + i)}` })));
      assert.equal(Number((await sql.query("select fail_count from tokens where serial = 'FC1'"))[0]!.fail_count), 24);

      await node(0).admin('/admin/init', { type: 'hmac', serial: 'FC2', otpkey: KEY, pin: 'p' });
      await node(0).admin('/admin/set', { serial: 'FC2', MaxFailCount: '5' });
      await Promise.all(Array.from({ length: 30 }, (_, i) => node(i % 3).post('/validate/check', { serial: 'FC2', pass: `p${String(200000 + i)}` })));
      assert.equal(Number((await sql.query("select fail_count from tokens where serial = 'FC2'"))[0]!.fail_count), 5);
      for (const n of cluster.nodes) assert.equal(value(await n.post('/validate/check', { serial: 'FC2', pass: `p${otp(0)}` })), false, `locked on ${n.name}`);
    });

    test('per-account failure limit: a burst of 45 wrong passwords over the nodes is checked at most AccountMaxParallel times', async () => {
      await node(0).admin('/system/setPolicy', { name: 'pt', scope: 'authentication', action: 'passthru', realm: '*', user: 'carol', client: '*' });
      await new Promise((r) => setTimeout(r, PROPAGATION_BOUND_MS));
      const answers = await Promise.all(Array.from({ length: 45 }, (_, i) => node(i % 3).post('/validate/check', { user: 'carol', pass: `wrong${i}` })));
      for (const a of answers) assert.equal(value(a), false);
      const failCount = Number((await sql.query("select fail_count from account_attempts where login = 'carol'"))[0]!.fail_count);
      assert.ok(failCount >= 5 && failCount <= 10, `fail_count ${failCount}: between AccountFailDelayAfter (5) and AccountMaxParallel (10)`);
      for (const n of cluster.nodes) assert.equal(value(await n.post('/validate/check', { user: 'carol', pass: 'CarolPw1' })), false, `throttled on ${n.name}`);
      assert.equal(Number((await sql.query("select fail_count from account_attempts where login = 'carol'"))[0]!.fail_count), failCount, 'refusals count nothing');
      await node(2).admin('/admin/reset', { user: 'carol' });
      assert.equal(value(await node(1).post('/validate/check', { user: 'carol', pass: 'CarolPw1' })), true, 'after the reset on another node');
    });

    test('per-user send limit over the nodes: 8 triggers for one user, round robin, limit 3 per hour → exactly 3 SMS', async () => {
      await node(0).admin('/admin/init', { type: 'sms', user: 'u11', phone: phoneOf(11), pin: 'sp', serial: 'LIM1' });
      await node(0).admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: '3/3600' });
      await new Promise((r) => setTimeout(r, PROPAGATION_BOUND_MS));
      try {
        // one after the other: parallel triggers of one token share one open challenge (one SMS), whatever the node
        const answers: Answer[] = [];
        for (let i = 0; i < 8; i++) answers.push(await node(i % 3).post('/validate/check', { user: 'u11', pass: 'sp' }));
        assert.deepEqual(answers.map((a) => a.status).filter((s) => s !== 200), []);
        await waitFor(async () => Number((await sql.query("select count(*) as c from delivery_outbox where serial = 'LIM1' and status in ('queued', 'retry', 'sending')"))[0]!.c) === 0, { what: 'LIM1 messages to settle' });
        assert.equal(sms(phoneOf(11)).length, 3, answers.map((a) => JSON.stringify(a.json?.detail ?? a.json?.result)).join('\n'));
      } finally {
        await node(0).admin('/system/setConfig', { key: 'DeliveryLimitPerUser', value: '0' });
      }
    });

    test('inside SMSBlockingTimeout, parallel triggers of one token on all nodes share one challenge and one SMS', async () => {
      await node(0).admin('/admin/init', { type: 'sms', user: 'u10', phone: phoneOf(10), pin: 'pp', serial: 'PAR1' });
      await node(0).admin('/system/setConfig', { key: 'SMSBlockingTimeout', value: '30' });
      await new Promise((r) => setTimeout(r, PROPAGATION_BOUND_MS));
      try {
        const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => node(i % 3).post('/validate/check', { user: 'u10', pass: 'pp' })));
        const tids = new Set(answers.map((a) => a.json?.detail?.transactionid));
        assert.equal(tids.size, 1, answers.map((a) => a.body).join('\n'));
        const code = await smsCode(phoneOf(10), 1);
        assert.equal(value(await node(1).post('/validate/check', { user: 'u10', pass: code, transactionid: [...tids][0] })), true);
        assert.equal(sms(phoneOf(10)).length, 1);
      } finally {
        await node(0).admin('/system/setConfig', { key: 'SMSBlockingTimeout', value: '0' });
        await new Promise((r) => setTimeout(r, PROPAGATION_BOUND_MS));
      }
    });

    test('every challenge is delivered once, whichever node sends it; made on one node, answered on another', async () => {
      const users = [0, 1, 2, 3, 4, 5];
      for (const i of users) await node(i % 3).admin('/admin/init', { type: 'sms', user: `u${i}`, phone: phoneOf(i), pin: `pin${i}`, serial: `SMS${i}` });
      const triggers = await Promise.all(users.map((i) => node(i % 3).post('/validate/check', { user: `u${i}`, pass: `pin${i}` })));
      for (const [k, i] of users.entries()) {
        const tid = triggers[k]!.json.detail?.transactionid as string;
        assert.ok(tid, triggers[k]!.body);
        assert.match(tid, /^\d+$/);
        const code = await smsCode(phoneOf(i), 1);
        const answer = await node((i + 1) % 3).post('/validate/check', { user: `u${i}`, pass: code, transactionid: tid });
        if (value(answer) !== true) {
          const audit = await sql.query(`select server, success, action_detail, info from audit where user = 'u${i}' order by id`);
          const challenges = await sql.query(`select transaction_id, status, fail_count, created_at from challenges where serial = 'SMS${i}' order by id`);
          assert.fail(`u${i}: code of the challenge ${tid} (made on ${node(i % 3).name}) refused on ${node((i + 1) % 3).name}; SMS: ${JSON.stringify(sms(phoneOf(i)).map((r) => r.body.sms))}; audit: ${JSON.stringify(audit)}; challenges: ${JSON.stringify(challenges)}`);
        }
        assert.equal(value(await node((i + 2) % 3).post('/validate/check', { user: `u${i}`, pass: code, transactionid: tid })), false, 'replay on the third node');
      }
      // the first attempt of each message fails (503): the retry is taken by whichever dispatcher polls first
      const failedOnce = new Set<string>();
      gatewayAnswer = (req) => {
        const phone = String(req.body.phone);
        if (failedOnce.has(phone)) return {};
        failedOnce.add(phone);
        return { status: 503, body: 'busy' };
      };
      try {
        const second = await Promise.all(users.map((i) => node(i % 3).post('/validate/check', { user: `u${i}`, pass: `pin${i}` })));
        for (const [k, i] of users.entries()) {
          const code = await smsCode(phoneOf(i), 3);
          assert.equal(value(await node((i + 1) % 3).post('/validate/check', { user: `u${i}`, pass: code, transactionid: second[k]!.json.detail.transactionid })), true);
        }
      } finally {
        gatewayAnswer = () => ({});
      }
      for (const i of users) assert.equal(sms(phoneOf(i)).length, 3, `u${i}: one SMS, then one refused and one accepted attempt`);
      const rows = await sql.query("select o.id, o.status, count(a.attempt_no) as attempts from delivery_outbox o join delivery_attempts a on a.outbox_id = o.id where o.serial like 'SMS%' group by o.id, o.status");
      assert.equal(rows.length, users.length * 2);
      assert.deepEqual(rows.map((r) => r.status).filter((s) => s !== 'accepted'), []);
      assert.deepEqual(rows.map((r) => Number(r.attempts)).sort(), [...Array(users.length).fill(1), ...Array(users.length).fill(2)]);
    });

    test('RADIUS: an Access-Challenge from one node is answered with its State on another', { skip: radclientMissing }, async () => {
      await node(0).admin('/admin/init', { type: 'sms', user: 'u6', phone: phoneOf(6), pin: 'rp', serial: 'RAD1' });
      const challenge = await radclient({ target: `127.0.0.1:${node(0).radiusPort}`, secret: RADIUS_SECRET, input: 'User-Name=u6,User-Password=rp,Message-Authenticator=0x00' });
      assert.equal(challenge.reply, 'Access-Challenge', challenge.output);
      const state = challenge.attributes.State!;
      assert.match(state, /^0x[0-9a-f]+$/);
      const code = await smsCode(phoneOf(6), 1);
      const answer = await radclient({ target: `127.0.0.1:${node(1).radiusPort}`, secret: RADIUS_SECRET, input: `User-Name=u6,User-Password=${code},State=${state},Message-Authenticator=0x00` });
      assert.equal(answer.reply, 'Access-Accept', answer.output);
      const replay = await radclient({ target: `127.0.0.1:${node(2).radiusPort}`, secret: RADIUS_SECRET, input: `User-Name=u6,User-Password=${code},State=${state},Message-Authenticator=0x00` });
      assert.equal(replay.reply, 'Access-Reject', replay.output);
    });

    test(`a config or policy change on one node is in force on all within ${PROPAGATION_BOUND_MS} ms`, async () => {
      const seen = async (check: (n: OtpdNode) => Promise<boolean>) => {
        const started = performance.now();
        const lag = await Promise.all(cluster.nodes.slice(1).map(async (n) => {
          await waitFor(() => check(n), { what: `${n.name} to see the change`, timeoutMs: PROPAGATION_BOUND_MS * 3, intervalMs: 20 });
          return performance.now() - started;
        }));
        return Math.max(...lag);
      };
      await node(0).admin('/system/setConfig', { key: 'DefaultMaxFailCount', value: '17' });
      const configLag = await seen(async (n) => (await n.post('/system/getConfig', { key: 'DefaultMaxFailCount' }, { admin: true })).json.result.value['getConfig DefaultMaxFailCount'] === '17');
      await node(0).admin('/admin/init', { type: 'hmac', user: 'u7', otpkey: KEY, pin: 'secretpin', serial: 'POL1' });
      await node(0).admin('/system/setPolicy', { name: 'nopin', scope: 'authentication', action: 'otppin=2', realm: '*', user: 'u7', client: '*' });
      const policyLag = await seen(async (n) => JSON.stringify((await n.post('/system/getPolicy', { name: 'nopin' }, { admin: true })).json.result.value).includes('otppin=2'));
      // and in force, not only listed: the OTP without the PIN passes on every node
      for (const [i, n] of cluster.nodes.entries()) assert.equal(value(await n.post('/validate/check', { user: 'u7', pass: otp(i) })), true, `otppin=2 on ${n.name}`);
      assert.ok(configLag <= PROPAGATION_BOUND_MS, `config seen after ${configLag.toFixed(0)} ms`);
      assert.ok(policyLag <= PROPAGATION_BOUND_MS, `policy in force after ${policyLag.toFixed(0)} ms`);
      await node(0).admin('/system/delPolicy', { name: 'nopin' });
    });

    test('a node killed with -9 in the middle of a mixed load run loses nothing acknowledged', async () => {
      const workers = 6;
      const runMs = 9000;
      for (let w = 0; w < workers; w++) {
        await node(0).admin('/admin/init', { type: 'hmac', serial: `LD${w}`, otpkey: KEY, pin: `lp${w}` });
        await node(0).admin('/admin/set', { serial: `LD${w}`, MaxFailCount: '100' });
        await node(0).admin('/admin/init', { type: 'sms', user: `u${w}`, phone: phoneOf(w), pin: `lpin${w}`, serial: `LS${w}` });
        await node(0).admin('/admin/set', { serial: `LS${w}`, MaxFailCount: '100' });
      }
      const smsBefore = new Map(Array.from({ length: workers }, (_, w) => [w, sms(phoneOf(w)).length]));
      /** counter → answers that said true, per worker: never more than one. */
      const accepted = Array.from({ length: workers }, () => new Map<number, number>());
      const problems: string[] = [];
      let unanswered = 0;
      let answeredChallenges = 0;
      /** Challenges closed by a right answer the kill cut off (the copy sent again then refused). */
      let answeredByCutOff = 0;
      const deadline = Date.now() + runMs;
      /** Challenges answered, per worker. */
      const answeredOf = Array.from({ length: workers }, () => 0);
      // The run has a length, not a rate: on a loaded machine a worker goes on past the deadline
      // until it has its 6 successes and its answered challenge (within a minute more, or the
      // assertions below name what it did not get).
      const hardDeadline = deadline + 60_000;
      const going = (w: number) => Date.now() < deadline || ((accepted[w]!.size < 6 || answeredOf[w]! < 1) && Date.now() < hardDeadline);
      /** What each worker's challenges went through (node, answer), for the message when one is refused. */
      const trail = Array.from({ length: workers }, () => [] as string[]);
      const t0 = Date.now();
      /** One request as a load balancer does it: a node that does not answer is taken out, the client tries again elsewhere. */
      const send = async (form: Record<string, string>, w?: number): Promise<Answer | undefined> => {
        const n = cluster.next();
        try {
          const a = await n.post('/validate/check', form, { timeoutMs: 10_000 });
          if (a.status !== 200 || !a.json?.result) problems.push(`${n.name}: HTTP ${a.status} ${a.body.slice(0, 200)}`);
          if (w !== undefined) trail[w]!.push(`${Date.now() - t0} ms ${n.name} ${form.transactionid ? `answer ${form.transactionid}` : 'trigger'}: ${JSON.stringify(a.json?.result?.value)} ${a.json?.detail?.transactionid ?? ''}`);
          return a;
        } catch {
          if (w !== undefined) trail[w]!.push(`${Date.now() - t0} ms ${n.name} ${form.transactionid ? `answer ${form.transactionid}` : 'trigger'}: no answer`);
          unanswered++;
          return undefined;
        }
      };
      const worker = async (w: number) => {
        let counter = 0;
        let lastUnanswered = false;
        for (let round = 0; going(w); round++) {
          const kind = round % 5;
          if (kind === 1) {
            const a = await send({ serial: `LD${w}`, pass: `lp${w}${String(300000 + round)}` });
            if (a && value(a) !== false) problems.push(`LD${w}: a wrong OTP answered ${a.body.slice(0, 100)}`);
            continue;
          }
          if (kind === 3) {
            // The message names its challenge: a trigger cut off by the kill may still have its SMS
            // sent (before the kill, or by another node's dispatcher afterwards), so "the next SMS to
            // the phone" need not be this challenge's.
            const trigger = await send({ user: `u${w}`, pass: `lpin${w}`, data: 'code <otp> for <transactionid>' }, w);
            const tid = trigger?.json?.detail?.transactionid as string | undefined;
            if (!tid) continue; // not acknowledged: the user would log in again
            const message = await waitFor(() => sms(phoneOf(w)).find((r) => String(r.body.sms).endsWith(` for ${tid}`)), { what: `the SMS of challenge ${tid}`, timeoutMs: 40_000 });
            const code = codeOf(message);
            trail[w]!.push(`${Date.now() - t0} ms SMS: ${message.body.sms}`);
            let answered: Answer | undefined;
            let cutOff = false;
            for (let i = 0; i < 3 && !answered; i++) {
              answered = await send({ user: `u${w}`, pass: code, transactionid: tid }, w);
              if (!answered) cutOff = true;
            }
            if (answered && value(answered) === true) {
              answeredChallenges++;
              answeredOf[w]!++;
            } else if (answered) {
              const challenges = await sql.query(`select transaction_id, status, valid_tan, fail_count, received_count, created_at, data from challenges where serial = 'LS${w}' order by id`);
              // An answer cut off by the kill may have closed the challenge with this right code before the
              // node died (the client never heard): refusing the copy is single use, if that is what happened.
              const mine = challenges.find((c) => c.transaction_id === tid);
              if (cutOff && mine && mine.status === 'closed' && Number(mine.valid_tan) === 1 && Number(mine.fail_count) === 0) {
                answeredChallenges++;
                answeredOf[w]!++;
                answeredByCutOff++;
                continue;
              }
              const outbox = await sql.query(`select id, idempotency_key, status, attempts, lease_owner, created_at, updated_at from delivery_outbox where serial = 'LS${w}' order by id`);
              problems.push(`challenge ${tid} of u${w}: its code was refused: ${answered.body.slice(0, 200)}\ntrail: ${trail[w]!.join('\n  ')}\nchallenges: ${JSON.stringify(challenges)}\noutbox: ${JSON.stringify(outbox)}`);
            }
            continue;
          }
          const a = await send({ serial: `LD${w}`, pass: `lp${w}${otp(counter)}` });
          if (!a) {
            lastUnanswered = true; // the OTP may or may not be used now: try it again elsewhere
            continue;
          }
          if (value(a) === true) accepted[w]!.set(counter, (accepted[w]!.get(counter) ?? 0) + 1);
          else if (!lastUnanswered) problems.push(`LD${w}: valid OTP at counter ${counter} refused: ${a.body.slice(0, 200)}`);
          lastUnanswered = false;
          counter++;
        }
      };
      const load = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
      await new Promise((r) => setTimeout(r, runMs * 0.35));
      await node(2).kill();
      for (const t of trail) t.push(`${Date.now() - t0} ms node3 killed`);
      await new Promise((r) => setTimeout(r, runMs * 0.3));
      for (const t of trail) t.push(`${Date.now() - t0} ms node3 starting`);
      const restart = node(2).start();
      await load;
      const loadMs = Date.now() - t0;
      await restart;
      assert.deepEqual(problems, []);
      // no OTP accepted twice, and every acknowledged one stays used on every node (the restarted one too)
      for (let w = 0; w < workers; w++) {
        for (const [c, times] of accepted[w]!) assert.equal(times, 1, `LD${w} counter ${c} accepted ${times} times`);
        const top = Math.max(-1, ...accepted[w]!.keys());
        assert.ok(top >= 5, `LD${w}: the run got through (${top + 1} successes)`);
        const counter = Number((await sql.query(`select counter from tokens where serial = 'LD${w}'`))[0]!.counter);
        assert.ok(counter >= top + 1, `LD${w}: counter ${counter} went back behind the acknowledged ${top}`);
        for (const n of cluster.nodes) assert.equal(value(await n.post('/validate/check', { serial: `LD${w}`, pass: `lp${w}${otp(top)}` })), false, `replay of LD${w}@${top} on ${n.name}`);
      }
      assert.deepEqual(answeredOf.filter((a) => a < 1), [], `every worker answered a challenge: ${answeredOf.join(', ')}`);
      // every message ends sent or expired (one the killed node was sending is taken over when its lease ends)
      await waitFor(async () => Number((await sql.query("select count(*) as c from delivery_outbox where status in ('queued', 'retry', 'sending')"))[0]!.c) === 0, {
        what: 'every outbox message to be final', timeoutMs: 60_000, intervalMs: 500,
      });
      const open = await sql.query("select status, count(*) as c from delivery_outbox where serial like 'LS%' group by status");
      assert.deepEqual(open.map((r) => r.status).filter((s) => s !== 'accepted' && s !== 'expired'), []);
      // at most one SMS per attempt: the gateway got no more messages than attempts were begun
      const attempts = Number((await sql.query("select count(*) as c from delivery_attempts a join delivery_outbox o on o.id = a.outbox_id where o.serial like 'LS%'"))[0]!.c);
      const sent = Array.from({ length: workers }, (_, w) => sms(phoneOf(w)).length - smsBefore.get(w)!).reduce((a, b) => a + b, 0);
      const accepts = Number((await sql.query("select count(*) as c from delivery_attempts a join delivery_outbox o on o.id = a.outbox_id where o.serial like 'LS%' and a.status = 'accepted'"))[0]!.c);
      assert.ok(sent <= attempts && sent >= accepts, `${sent} SMS sent for ${attempts} attempts (${accepts} recorded accepted)`);
      const verify = cluster.cli(['audit', 'verify']);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /intact/);
      for (const n of cluster.nodes) assert.doesNotMatch(n.log(), /"level":(50|60)|\n\s+at /, `${n.name} logged an error or a stack trace`);
      console.log(`# ${dialect}: a ${(loadMs / 1000).toFixed(1)} s run, ${unanswered} requests cut off by the kill, ${answeredChallenges} challenges answered (${answeredByCutOff} by an answer the kill cut off), ${sent} SMS for ${attempts} attempts`);
    });
  });
}
