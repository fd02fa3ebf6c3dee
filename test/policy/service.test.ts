import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Errors, OtpdError } from '../../src/errors.ts';
import { PolicyService, validateStoredPolicies } from '../../src/policy/service.ts';
import { type Db, openDatabase } from '../../src/store/db.ts';
import { RevisionWatcher } from '../../src/store/revisions.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { type TestDb, availableDialects, createTestDb } from '../helpers/db.ts';

function capturingLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

const alice = { login: 'alice', realm: 'corp', client: '10.1.2.3' };

for (const { dialect, skip } of await availableDialects()) {
  describe(`PolicyService on ${dialect}`, { skip }, () => {
    // one database per dialect; every test starts from an empty policies table
    let t: TestDb;
    let other: Db;
    const cleanups: (() => Promise<void>)[] = [];
    before(async () => {
      t = await createTestDb(dialect);
      other = await openDatabase(t.url);
    });
    after(async () => {
      for (const c of cleanups.reverse()) await c();
      await other.close();
      await t.drop();
    });

    async function twoNodes() {
      await t.db.kysely.deleteFrom('policies').execute();
      const clock = new FakeClock(new Date(2026, 10, 30, 12, 0).getTime());
      const a = new PolicyService({ db: t.db, logger: pino({ level: 'silent' }), clock });
      const b = new PolicyService({ db: other, logger: pino({ level: 'silent' }), clock });
      await a.load();
      await b.load();
      const watcher = new RevisionWatcher(other, 60_000);
      await watcher.start();
      cleanups.push(async () => watcher.stop());
      b.watch(watcher);
      return { t, a, b, watcher, clock };
    }

    test('a change on one node reaches the other through the revision watcher', async () => {
      const { t, a, b, watcher } = await twoNodes();
      await a.set({ name: 'pin_password', scope: 'authentication', action: 'otppin=1', realm: 'corp', user: '*', client: '*' });
      assert.equal(a.value('authentication', 'otppin', alice), 'password');
      // node b still answers from its cache
      assert.equal(b.value('authentication', 'otppin', alice), undefined);
      await watcher.poll();
      await b.settled();
      assert.equal(b.value('authentication', 'otppin', alice), 'password');

      await a.set({ name: 'pin_password', scope: 'authentication', action: 'otppin=only_otp', realm: 'corp' });
      await watcher.poll();
      await b.settled();
      assert.equal(b.value('authentication', 'otppin', alice), 'only_otp');

      assert.deepEqual(await a.delete(['pin_password', 'missing']), ['pin_password']);
      await watcher.poll();
      await b.settled();
      assert.equal(b.value('authentication', 'otppin', alice), undefined);
      const rows = await t.db.kysely.selectFrom('policies').selectAll().execute();
      assert.equal(rows.length, 0);
    });

    test('stored form: LinOTP fields, normalised; list filters', async () => {
      const { t, a } = await twoNodes();
      await a.set({ name: 'autoenroll', scope: 'enrollment', action: 'autoenrollment=sms email', realm: 'Corp', user: '', client: '' });
      await a.set({ name: 'helpdesk', scope: 'admin', action: 'show, reset', realm: 'corp, lab', user: 'hd*', client: '' });
      await a.set({ name: 'off', scope: 'authentication', action: 'passthru', realm: '*', active: 'False' });
      await a.set({ name: 'notify', scope: 'authentication', action: "smstext='Code <otp>'", realm: '*', user: 'alice' });
      const row = await t.db.kysely.selectFrom('policies').selectAll().where('name', '=', 'autoenroll').executeTakeFirstOrThrow();
      assert.deepEqual(
        { ...row, active: Number(row.active) },
        { name: 'autoenroll', scope: 'enrollment', action: 'autoenrollment=sms email', realm: 'corp', user: '*', client: '*', time: '* * * * * *;', active: 1 },
      );
      assert.deepEqual(a.list().map((p) => p.name), ['autoenroll', 'helpdesk', 'notify']);
      assert.deepEqual(a.list({ includeInactive: true }).map((p) => p.name), ['autoenroll', 'helpdesk', 'notify', 'off']);
      assert.deepEqual(a.list({ name: 'helpdesk,off', includeInactive: true }).map((p) => p.name), ['helpdesk', 'off']);
      assert.deepEqual(a.list({ scope: 'admin' }).map((p) => p.name), ['helpdesk']);
      assert.deepEqual(a.list({ realm: 'LAB' }).map((p) => p.name), ['helpdesk', 'notify']);
      assert.deepEqual(a.list({ user: 'alice' }).map((p) => p.name), ['autoenroll', 'notify']);
      assert.deepEqual(a.list({ action: 'reset' }).map((p) => p.name), ['helpdesk']);
      assert.deepEqual(a.list({ scope: 'bogus' }), []);
      const off = a.list({ name: 'off', includeInactive: true })[0];
      assert.deepEqual(off, { name: 'off', scope: 'authentication', action: 'passthru', realm: '*', user: '*', client: '*', time: '* * * * * *;', active: false });
    });

    test('invalid definitions are refused and nothing is stored', async () => {
      const { t, a } = await twoNodes();
      for (const bad of [
        { name: 'x', scope: 'enrollment', action: 'autoenrollment=hmac', realm: '*' },
        { name: 'x', scope: 'authentication', action: 'otppin=7', realm: '*' },
        { name: 'x', scope: 'authentication', action: 'passthru', realm: '*', client: '10.0.0.0/99' },
        { name: 'x y', scope: 'authentication', action: 'passthru', realm: '*' },
      ]) {
        await assert.rejects(a.set(bad), (e: unknown) => e instanceof OtpdError && e.code === Errors.invalidPolicy.code);
      }
      assert.equal((await t.db.kysely.selectFrom('policies').selectAll().execute()).length, 0);
      // import is all or nothing
      await assert.rejects(
        a.import([
          { name: 'good', scope: 'authentication', action: 'passthru', realm: '*' },
          { name: 'bad', scope: 'authentication', action: 'otppin=9', realm: '*' },
        ]),
        /policy 'bad': action 'otppin'/,
      );
      assert.equal((await t.db.kysely.selectFrom('policies').selectAll().execute()).length, 0);
      assert.deepEqual(
        await a.import([
          { name: 'good', scope: 'authentication', action: 'passthru', realm: '*' },
          { name: 'good2', scope: 'authentication', action: 'otppin=2', realm: '*' },
        ]),
        ['good', 'good2'],
      );
      assert.equal(a.value('authentication', 'otppin', alice), 'only_otp');
    });

    test('system lock-out is refused unless enforced', async () => {
      const { a } = await twoNodes();
      await assert.rejects(
        a.set({ name: 'readers', scope: 'system', action: 'read', realm: '*', user: 'auditor' }),
        (e: unknown) => e instanceof OtpdError && e.code === Errors.policyLockout.code,
      );
      // an empty user field in scope system matches nobody: still a lock-out
      await assert.rejects(a.set({ name: 'nobody', scope: 'system', action: 'write', realm: '*', user: '' }), (e: unknown) => e instanceof OtpdError && e.code === Errors.policyLockout.code);
      await a.set({ name: 'writers', scope: 'system', action: 'read, write', realm: '*', user: 'admin' });
      await a.set({ name: 'readers', scope: 'system', action: 'read', realm: '*', user: 'auditor' });
      assert.deepEqual(a.adminAllowed('admin', 'system', 'write'), { allowed: true, realms: '*' });
      assert.deepEqual(a.adminAllowed('auditor', 'system', 'write'), { allowed: false, realms: [] });
      await assert.rejects(a.delete(['writers']), /enforce/);
      assert.deepEqual(await a.delete(['writers'], { enforce: true }), ['writers']);
      assert.equal(a.adminAllowed('admin', 'system', 'write').allowed, false);
    });

    test('anyPolicy, has, admin realms and time windows at their boundaries', async () => {
      const { a, clock } = await twoNodes();
      assert.equal(a.anyPolicy('authorization'), false);
      assert.equal(a.adminAllowed('anyone', 'admin', 'remove').allowed, true);
      await a.set({ name: 'vpn_only', scope: 'authorization', action: 'authorize', realm: 'corp', client: '10.0.0.0/8, !10.66.0.0/16' });
      await a.set({ name: 'no_passthru_bob', scope: 'authentication', action: '!passthru', realm: 'corp', user: 'bob' });
      await a.set({ name: 'passthru_corp', scope: 'authentication', action: 'passthru', realm: 'corp' });
      await a.set({ name: 'office_hours', scope: 'authentication', action: 'passOnNoToken', realm: 'corp', time: '* 8-17 * * 1-5 *' });
      await a.set({ name: 'hd', scope: 'admin', action: 'show', realm: 'corp, lab', user: 'hd1@admins' });
      assert.equal(a.anyPolicy('authorization'), true);
      assert.equal(a.anyPolicy('authorization', 'authorize'), true);
      assert.equal(a.anyPolicy('authorization', 'tokentype'), false);
      assert.equal(a.has('authorization', 'authorize', alice), true);
      assert.equal(a.has('authorization', 'authorize', { ...alice, client: '10.66.0.1' }), false);
      assert.equal(a.has('authorization', 'authorize', { ...alice, client: '192.0.2.1' }), false);
      assert.equal(a.has('authentication', 'passthru', alice), true);
      assert.equal(a.has('authentication', 'passthru', { ...alice, login: 'bob' }), false);
      assert.equal(a.value('authentication', 'passthru', { ...alice, login: 'bob' }), false);
      assert.deepEqual(a.adminAllowed('hd1@admins', 'admin', 'show'), { allowed: true, realms: ['corp', 'lab'] });
      assert.deepEqual(a.adminAllowed('hd1@other', 'admin', 'show'), { allowed: false, realms: [] });

      clock.set(new Date(2026, 10, 30, 7, 59, 59).getTime()); // Monday
      assert.equal(a.has('authentication', 'passOnNoToken', alice), false);
      assert.equal(a.has('authentication', 'passOnNoToken', alice, { ignoreTime: true }), true);
      clock.advance(1000);
      assert.equal(a.has('authentication', 'passOnNoToken', alice), true);
      clock.set(new Date(2026, 10, 30, 17, 59, 59).getTime());
      assert.equal(a.has('authentication', 'passOnNoToken', alice), true);
      clock.advance(1000);
      assert.equal(a.has('authentication', 'passOnNoToken', alice), false);
    });

    test('conflicts are logged once; a stored policy that no longer validates is logged, refuses the start, and never replaces the version in force', async () => {
      await t.db.kysely.deleteFrom('policies').execute();
      const { logger, lines } = capturingLogger();
      const svc = new PolicyService({ db: t.db, logger });
      await svc.load();
      await svc.set({ name: 'a1', scope: 'authentication', action: 'otppin=1', realm: '*' });
      await svc.set({ name: 'a2', scope: 'authentication', action: 'otppin=2', realm: '*' });
      assert.equal(svc.value('authentication', 'otppin', alice), 'password');
      assert.equal(svc.value('authentication', 'otppin', alice), 'password');
      const warnings = lines.filter((l) => l.level === 40);
      assert.equal(warnings.length, 1);
      assert.deepEqual(warnings[0].conflicting, ['a2']);
      assert.equal(warnings[0].winner, 'a1');

      await t.db.kysely
        .insertInto('policies')
        .values({ name: 'legacy', scope: 'authentication', action: 'otppin=9', realm: '*', user: '*', client: '*', time: '', active: 1 })
        .execute();
      await svc.load();
      assert.deepEqual(svc.list().map((p) => p.name), ['a1', 'a2']);
      assert.ok(lines.some((l) => l.level === 50 && l.policy === 'legacy'));
      assert.deepEqual(svc.rejected.map((r) => r.policy), ['legacy']);
      // the server refuses to start on it (ERR2402, naming the policy)
      assert.throws(() => validateStoredPolicies(svc), (e: unknown) => e instanceof OtpdError && e.code === Errors.storedPolicyInvalid.code && /legacy: /.test(e.message));

      // a policy in force spoilt around the API: the running node keeps the version it had
      await t.db.kysely.updateTable('policies').set({ action: 'otppin=7' }).where('name', '=', 'a1').execute();
      await svc.load();
      assert.deepEqual(svc.list().map((p) => p.name), ['a1', 'a2']);
      assert.equal(svc.value('authentication', 'otppin', alice), 'password', 'a1 as loaded before stays in force');
      assert.deepEqual(svc.rejected.map((r) => r.policy).sort(), ['a1', 'legacy']);
      await t.db.kysely.deleteFrom('policies').where('name', 'in', ['a1', 'legacy']).execute();
      await svc.load();
      assert.deepEqual(svc.rejected, []);
      validateStoredPolicies(svc);
    });

    test('simulate through the service uses the injected clock', async () => {
      const { a, clock } = await twoNodes();
      await a.set({ name: 'weekday', scope: 'authentication', action: 'otppin=1', realm: '*', time: '* * * * 1-5 *' });
      clock.set(new Date(2026, 11, 6, 12, 0).getTime()); // Sunday
      const r = a.simulate({ user: 'alice', realm: 'corp', scope: 'authentication', action: 'otppin' });
      assert.equal(r.actions[0].source, 'default');
      assert.match(r.policies[0].reason, /outside/);
      clock.set(new Date(2026, 11, 7, 12, 0).getTime()); // Monday
      assert.equal(a.simulate({ user: 'alice', realm: 'corp', scope: 'authentication', action: 'otppin' }).actions[0].value, 'password');
    });
  });
}
