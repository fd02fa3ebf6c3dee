// Invariant: a transaction run through store/transaction.ts that the database breaks off for a
// deadlock (PostgreSQL 40P01, MariaDB 1213) runs again and commits, with only its last run's
// writes; and under `readCommitted` the pattern of a challenge trigger (close the token's open
// challenges, then insert one) does not deadlock on MariaDB when parallel triggers of
// neighbouring tokens find the same gap of the challenges_token index (REPEATABLE READ's gap
// locks did: test/faults/cluster.test.ts). atomicSteps writes all of its statements or none, on
// every database, and on SQLite inside the group commit (no explicit transaction of its own).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { affected, atomicSteps, isRetryableConflict, transaction, type Steps } from '../../src/store/transaction.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.ts';
import { ChallengeRepository } from '../../src/validation/challenges.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';

/** Resolves once `n` callers have arrived: two transactions meet between their statements. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const all = new Promise<void>((r) => (open = r));
  return () => {
    if (++arrived === n) open();
    return all;
  };
}

const tokenRow = (serial: string) => ({
  serial, type: 'sms', description: '', key_enc: '', otplen: 6, hashlib: 'sha1', counter: 0, count_window: 10, sync_window: 1000,
  max_fail: 10, fail_count: 0, active: 1, pin_hash: '', pin_salt: '', user_id: '', resolver: '', resolver_class: '', token_info: '{}',
  created_at: 0, last_auth_success: null, last_auth_match: null, count_auth: 0, count_auth_success: 0,
});

test('deadlocks and serialisation failures are retryable, other errors are not', () => {
  assert.ok(isRetryableConflict({ code: '40P01' }));
  assert.ok(isRetryableConflict({ code: '40001' }));
  assert.ok(isRetryableConflict({ code: 'ER_LOCK_DEADLOCK', errno: 1213 }));
  // a lock wait timeout waited its bound already: answered as an outage, not run again
  assert.ok(!isRetryableConflict({ code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205 }));
  assert.ok(!isRetryableConflict({ code: 'SQLITE_BUSY' }));
  assert.ok(!isRetryableConflict({ code: '23505' }));
  assert.ok(!isRetryableConflict({ code: 'ER_DUP_ENTRY', errno: 1062 }));
  assert.ok(!isRetryableConflict(new Error('boom')));
  assert.ok(!isRetryableConflict(undefined));
});

for (const { dialect, skip } of await availableDialects()) {
  // SQLite runs one writer at a time: no deadlock to provoke
  if (dialect === 'sqlite') continue;
  describe(`transaction() on ${dialect}`, { skip }, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(dialect);
    });
    after(async () => {
      await t?.drop();
    });

    test('two transactions that lock two rows in opposite order: the one broken off runs again, both commit', async () => {
      await t.db.kysely.insertInto('config').values([{ key: 'dl.a', value: '0', type: '', description: '' }, { key: 'dl.b', value: '0', type: '', description: '' }]).execute();
      const meet = barrier(2);
      const runs = { ab: 0, ba: 0 };
      const run = (name: 'ab' | 'ba', first: string, second: string) => transaction(t.db, async (trx) => {
        runs[name]++;
        await trx.updateTable('config').set({ description: name }).where('key', '=', first).execute();
        if (runs[name] === 1) await meet(); // only the first runs meet: a rerun finds the other committed or waits for it
        await trx.updateTable('config').set({ description: name }).where('key', '=', second).execute();
        await trx.updateTable('config').set({ value: `${name}:${runs[name]}` }).where('key', '=', `dl.${name === 'ab' ? 'a' : 'b'}`).execute();
        return runs[name];
      });
      const [ab, ba] = await Promise.all([run('ab', 'dl.a', 'dl.b'), run('ba', 'dl.b', 'dl.a')]);
      // at least one rerun; more on a loaded machine, where a rerun can take the first row before the
      // waiting winner does (PostgreSQL) and the two deadlock again
      assert.ok(ab + ba >= 3, `one of the two ran again after the deadlock (ab ${ab}, ba ${ba})`);
      const rows = await t.db.kysely.selectFrom('config').select(['key', 'value']).where('key', 'in', ['dl.a', 'dl.b']).orderBy('key').execute();
      assert.deepEqual(rows.map((r) => r.value), [`ab:${ab}`, `ba:${ba}`], 'each wrote its own row, the rerun with its last run');
    });

    test('a conflict on every run is thrown after `attempts` runs; other errors at once', async () => {
      let runs = 0;
      const conflict = Object.assign(new Error('deadlock'), dialect === 'mysql' ? { code: 'ER_LOCK_DEADLOCK', errno: 1213 } : { code: '40P01' });
      await assert.rejects(transaction(t.db, async () => {
        runs++;
        throw conflict;
      }, { attempts: 3 }), conflict);
      assert.equal(runs, 3);
      runs = 0;
      await assert.rejects(transaction(t.db, async () => {
        runs++;
        throw new Error('not a conflict');
      }), /not a conflict/);
      assert.equal(runs, 1);
    });

    test('parallel triggers of neighbouring tokens (close the open challenges, insert one) under readCommitted: no deadlock, one run each', async () => {
      const challenges = new ChallengeRepository(t.db);
      const challenge = (tokenId: number, tid: string) => ({
        transactionId: tid, tokenId, serial: `T${tokenId}`, subject: 'u@r', otpHash: '', counter: -1, message: '', client: '', createdAt: 0, expiresAt: Date.now() + 60_000, data: {},
      });
      /** Three new tokens, the third with an open challenge: the first two find the same gap of challenges_token before it. */
      const neighbours = async (round: number) => {
        const ids: number[] = [];
        for (const k of [0, 1, 2]) {
          await t.db.kysely.insertInto('tokens').values(tokenRow(`NB${round}.${k}`)).execute();
          ids.push(Number((await t.db.kysely.selectFrom('tokens').select('id').where('serial', '=', `NB${round}.${k}`).executeTakeFirstOrThrow()).id));
        }
        await challenges.insert(challenge(ids[2]!, `nb-${round}-open`));
        return ids;
      };
      const trigger = async (readCommitted: boolean, attempts: number, round: number) => {
        const ids = await neighbours(round);
        const meet = barrier(2);
        const runs = [0, 0];
        const one = (k: number) => transaction(t.db, async (trx) => {
          runs[k]!++;
          await challenges.supersede(ids[k]!, 'u@r', trx);
          if (runs[k] === 1) await meet();
          await challenges.insert(challenge(ids[k]!, `nb-${round}-${k}-${runs[k]}`), trx);
        }, { readCommitted, attempts });
        return Promise.allSettled([one(0), one(1)]).then((settled) => ({ settled, runs }));
      };
      const rc = await trigger(true, 1, 1);
      assert.deepEqual(rc.settled.map((s) => s.status), ['fulfilled', 'fulfilled'], JSON.stringify(rc.settled));
      assert.deepEqual(rc.runs, [1, 1]);
      if (dialect === 'mysql') {
        // the premise: the same under MariaDB's REPEATABLE READ deadlocks (a gap lock each, then both insert into the gap)
        const rr = await trigger(false, 1, 2);
        const refused = rr.settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
        assert.equal(refused.length, 1, JSON.stringify(rr.settled));
        assert.ok(isRetryableConflict(refused[0]!.reason), String(refused[0]!.reason));
        // and rerun, it commits
        const retried = await trigger(false, 5, 3);
        assert.deepEqual(retried.settled.map((s) => s.status), ['fulfilled', 'fulfilled'], JSON.stringify(retried.settled));
      }
    });
  });
}

for (const { dialect, skip } of await availableDialects()) {
  describe(`atomicSteps() on ${dialect}`, { skip }, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(dialect);
    });
    after(async () => {
      await t?.drop();
    });
    const row = (key: string, value: string) => ({ key, value, type: '', description: '' });
    const valueOf = async (key: string) => (await t.db.kysely.selectFrom('config').select('value').where('key', '=', key).executeTakeFirst())?.value;

    /** Inserts `a`, counts it up when it is below `max`, then inserts `b`; throws between the two when told. */
    function* steps(k: Kysely<Database>, a: string, b: string, max: number, fail: boolean): Steps<string> {
      yield k.insertInto('config').values(row(a, '1')).compile();
      const bumped = affected(yield k.updateTable('config').set({ value: '2' }).where('key', '=', a).where('value', '<', String(max)).compile());
      if (fail) throw new Error('undo');
      if (bumped === 0) return 'stopped';
      yield k.insertInto('config').values(row(b, 'x')).compile();
      const read = yield k.selectFrom('config').select('value').where('key', '=', a).compile();
      return String((read.rows[0] as { value: string }).value);
    }

    test('all or nothing: a throw undoes every statement; a return keeps what ran; reads see the step\'s own writes', async () => {
      assert.equal(await atomicSteps(t.db, (k) => steps(k, 'as.a1', 'as.b1', 5, false)), '2');
      assert.deepEqual([await valueOf('as.a1'), await valueOf('as.b1')], ['2', 'x']);
      await assert.rejects(atomicSteps(t.db, (k) => steps(k, 'as.a2', 'as.b2', 5, true)), /undo/);
      assert.deepEqual([await valueOf('as.a2'), await valueOf('as.b2')], [undefined, undefined]);
      assert.equal(await atomicSteps(t.db, (k) => steps(k, 'as.a3', 'as.b3', 1, false)), 'stopped');
      assert.deepEqual([await valueOf('as.a3'), await valueOf('as.b3')], ['1', undefined]);
    });

    test('a failing step next to others at once: only its own writes are undone', async () => {
      const plain = t.db.kysely.insertInto('config').values(row('as.plain', 'p')).execute();
      const results = await Promise.allSettled([
        atomicSteps(t.db, (k) => steps(k, 'as.c1', 'as.d1', 5, false)),
        atomicSteps(t.db, (k) => steps(k, 'as.c2', 'as.d2', 5, true)),
        atomicSteps(t.db, (k) => steps(k, 'as.c3', 'as.d3', 5, false)),
        plain,
      ]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      assert.deepEqual(await Promise.all(['as.c1', 'as.d1', 'as.c2', 'as.d2', 'as.c3', 'as.d3', 'as.plain'].map(valueOf)), ['2', 'x', undefined, undefined, '2', 'x', 'p']);
    });

    if (dialect === 'sqlite') {
      test('SQLite: steps at once share the group commit instead of a transaction each', async () => {
        const before = t.db.stats().sqlite!.commits;
        await Promise.all(Array.from({ length: 10 }, (_, i) => atomicSteps(t.db, (k) => steps(k, `as.g${i}`, `as.h${i}`, 5, false))));
        const commits = t.db.stats().sqlite!.commits - before;
        // an explicit transaction each would add no group commit at all (and ten COMMITs of their own)
        assert.ok(commits >= 1 && commits <= 2, `group commits for ten steps: ${commits}`);
      });
    }
  });
}
