// Invariant: a token's realms are replaced as a whole. Parallel realm changes of one token (a
// burst of /admin/tokenrealm, the HTTP fuzz found it: UNIQUE token_realms, an internal error)
// all succeed and apply one after the other, each as a whole (which of them comes last is the
// order the database grants the token row's lock, not the order of the calls: on MariaDB a
// burst once ended with an earlier call's set), and a change after them stands; parallel changes
// of different tokens neither fail nor deadlock (MariaDB's gap locks). On every dialect.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { TokenRepository, type NewToken } from '../../src/tokens/repository.ts';
import { availableDialects, createTestDb, type TestDb } from '../helpers/db.ts';

const token = (serial: string, realms: string[]): NewToken => ({
  serial, type: 'hmac', description: '', keyEnc: 'x', otplen: 6, hashlib: 'sha1', countWindow: 10, syncWindow: 1000, maxFail: 10,
  pinHash: '', pinSalt: '', userId: '', resolver: '', resolverClass: '', info: {}, realms, createdAt: 0,
});

for (const { dialect, skip } of await availableDialects()) {
  describe(`token realms on ${dialect}`, { skip }, () => {
    let t: TestDb;
    let repo: TokenRepository;
    beforeEach(async () => {
      t = await createTestDb(dialect);
      repo = new TokenRepository(t.db);
    });
    afterEach(() => t.drop());

    test('parallel changes of one token all succeed, each as a whole; the next one stands', async () => {
      const id = await repo.insert(token('R1', ['staff']));
      const sets = Array.from({ length: 30 }, (_, i) => (i % 2 ? ['staff'] : ['Lab', 'corp', 'lab']));
      const results = await Promise.allSettled(sets.map((realms) => repo.setRealms(id, realms)));
      assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)).slice(0, 2), []);
      // one of the sets whole, never a mix of two
      assert.ok(['corp,lab', 'staff'].includes([...(await repo.bySerial('R1'))!.realms].sort().join(',')), String((await repo.bySerial('R1'))!.realms));
      await repo.setRealms(id, ['lab', 'corp']);
      assert.deepEqual((await repo.bySerial('R1'))!.realms.sort(), ['corp', 'lab']);
      await repo.setRealms(id, []);
      assert.deepEqual((await repo.bySerial('R1'))!.realms, []);
    });

    test('parallel changes of different tokens neither fail nor deadlock', async () => {
      const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => repo.insert(token(`D${i}`, i % 2 ? ['a'] : []))));
      const results = await Promise.allSettled(ids.flatMap((id) => [repo.setRealms(id, ['a', 'b']), repo.setRealms(id, ['b', 'c'])]));
      assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)).slice(0, 2), []);
      for (let i = 0; i < ids.length; i++) {
        const realms = (await repo.bySerial(`D${i}`))!.realms;
        assert.ok(['a,b', 'b,c'].includes([...realms].sort().join(',')), `token D${i}: ${realms}`);
      }
    });
  });
}
