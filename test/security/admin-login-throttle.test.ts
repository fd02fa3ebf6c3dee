// Invariant: /admin/login is throttled per admin name and per client address, with the state in
// the database. After NAME_THRESHOLD consecutive failures for a name, the name is refused for a
// window starting at 1 s and doubling to a cap; a refusal answers ERR2013 (HTTP 429) at once,
// costs no password check and counts no failure; success resets the name. A concurrent burst
// buys at most NAME_THRESHOLD password checks. An unknown name answers exactly like a known one.
// One source is refused after CLIENT_THRESHOLD failures whatever names it tries, and a spoofed
// X-Forwarded-For from a peer that is not a trusted proxy does not change the source; IPv6
// sources count per /64. The state survives a restart.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildApp } from '../../src/api/app.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices } from '../../src/services.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { Errors } from '../../src/errors.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { availableDialects } from '../helpers/db.ts';

/** The documented defaults (docs/api.md, "Admin login throttling"). */
const NAME_THRESHOLD = 5;
const CLIENT_THRESHOLD = 20;
const THROTTLED = 2013;
const PASSWORD = 'admin-password-1';

type Inject = { status: number; json: any };

async function login(t: TestApp, username: string, password: string, opts: { remoteAddress?: string; headers?: Record<string, string> } = {}): Promise<Inject & { retryAfter?: string }> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/admin/login',
    payload: new URLSearchParams({ username, password }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers },
    remoteAddress: opts.remoteAddress,
  });
  return { status: res.statusCode, json: JSON.parse(res.body), retryAfter: res.headers['retry-after'] as string | undefined };
}

const isThrottled = (r: Inject) => r.status === 429 && r.json.result.status === false && r.json.result.error.code === THROTTLED;
const isBadPassword = (r: Inject) => r.status === 401 && r.json.result.value === false;
const isSuccess = (r: Inject) => r.status === 200 && r.json.result.value === true;

const dialects = availableDialects();

describe('admin login throttle: per name, sequential', async () => {
  const clock = new FakeClock();
  let t: TestApp;
  after(() => t?.close());

  test('threshold, 1 s window doubling, refusals count nothing, success resets', async () => {
    t = await startTestApp({ clock });
    for (let i = 0; i < NAME_THRESHOLD; i++) assert.ok(isBadPassword(await login(t, 'admin', `wrong-${i}`)), `try ${i}`);
    const refused = await login(t, 'admin', 'wrong-x');
    assert.ok(isThrottled(refused), JSON.stringify(refused.json));
    assert.equal(refused.retryAfter, '1');
    assert.equal(refused.json.result.error.code, Errors.adminLoginThrottled.code);
    // the right password is refused too while the window is open: no password check at all
    assert.ok(isThrottled(await login(t, 'admin', PASSWORD)));
    // many refusals do not lengthen the window
    for (let i = 0; i < 10; i++) assert.ok(isThrottled(await login(t, 'admin', 'wrong-y')));
    clock.advance(1000);
    assert.ok(isBadPassword(await login(t, 'admin', 'wrong-z')), 'one check after the window');
    const second = await login(t, 'admin', 'wrong-z');
    assert.ok(isThrottled(second));
    assert.equal(second.retryAfter, '2', 'window doubled to 2 s (refusals in between counted nothing)');
    clock.advance(1999);
    assert.ok(isThrottled(await login(t, 'admin', PASSWORD)));
    clock.advance(1);
    assert.ok(isSuccess(await login(t, 'admin', PASSWORD)));
    // success reset the name: the threshold applies afresh
    for (let i = 0; i < NAME_THRESHOLD; i++) assert.ok(isBadPassword(await login(t, 'admin', `again-${i}`)), `again ${i}`);
    assert.ok(isThrottled(await login(t, 'admin', 'again-x')));
    // a refusal is audited as a failed login, never with the password
    const rows = await t.services.db.kysely.selectFrom('audit').select(['action', 'success', 'info', 'user']).where('action', '=', 'admin/login').execute();
    assert.ok(rows.some((r) => r.success === '0' && /too many failed logins/.test(r.info)));
    assert.ok(rows.every((r) => !JSON.stringify(r).includes('wrong-') && !JSON.stringify(r).includes(PASSWORD)));
  });

  for (const { dialect, skip } of await dialects) {
    test(`${dialect}: the window grows to the cap and stays there`, { skip }, async () => {
      const t2 = await startTestApp({ dialect, clock: new FakeClock() });
      try {
        for (let i = 0; i < NAME_THRESHOLD; i++) await login(t2, 'admin', 'wrong');
        let last = 0;
        for (let step = 0; step < 14; step++) {
          const r = await login(t2, 'admin', 'wrong');
          assert.ok(isThrottled(r));
          last = Number(r.retryAfter);
          (t2.services.clock as FakeClock).advance(last * 1000);
          assert.ok(isBadPassword(await login(t2, 'admin', 'wrong')));
        }
        assert.equal(last, 900, 'cap 15 min');
      } finally {
        await t2.close();
      }
    });
  }
});

describe('admin login throttle: unknown names are no oracle', () => {
  test('an unknown name gets the same answers as a known one, step by step', async () => {
    const clock = new FakeClock();
    const t = await startTestApp({ clock });
    try {
      const known: unknown[] = [];
      const unknown: unknown[] = [];
      for (let i = 0; i < NAME_THRESHOLD + 2; i++) {
        const a = await login(t, 'admin', 'wrong', { remoteAddress: '192.0.2.1' });
        const b = await login(t, 'ghost', 'wrong', { remoteAddress: '192.0.2.2' });
        known.push({ s: a.status, r: a.json.result, ra: a.retryAfter });
        unknown.push({ s: b.status, r: b.json.result, ra: b.retryAfter });
      }
      assert.deepEqual(unknown, known);
      assert.equal((known.at(-1) as { s: number }).s, 429);
      // an unknown name still pays one password check per try: not measurably faster
      clock.advance(3_600_000);
      const time = async (name: string) => {
        const s = performance.now();
        for (let i = 0; i < 3; i++) await login(t, name, 'wrong', { remoteAddress: `198.51.100.${name.length}` });
        return performance.now() - s;
      };
      await time('nobody-warmup');
      const knownMs = await time('admin');
      const unknownMs = await time('nobody');
      assert.ok(unknownMs > knownMs / 3, `unknown ${unknownMs.toFixed(0)} ms vs known ${knownMs.toFixed(0)} ms`);
    } finally {
      await t.close();
    }
  });
});

describe('admin login throttle: concurrent burst', async () => {
  for (const { dialect, skip } of await dialects) {
    test(`${dialect}: 30 parallel wrong passwords buy at most ${NAME_THRESHOLD} checks`, { skip }, async () => {
      const clock = new FakeClock();
      const t = await startTestApp({ dialect, clock });
      try {
        const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => login(t, 'admin', `wrong-${i}`, { remoteAddress: `203.0.113.${i + 1}` })));
        const checked = burst.filter(isBadPassword).length;
        const refused = burst.filter(isThrottled).length;
        assert.equal(checked, NAME_THRESHOLD, `checked ${checked}`);
        assert.equal(refused, 30 - NAME_THRESHOLD);
        assert.ok(isThrottled(await login(t, 'admin', PASSWORD)), 'right password refused during the window');
        clock.advance(1000);
        assert.ok(isSuccess(await login(t, 'admin', PASSWORD)));
      } finally {
        await t.close();
      }
    });
  }
});

describe('admin login throttle: per client', () => {
  test('one source spraying names is refused; another source is not', async () => {
    const t = await startTestApp({ clock: new FakeClock() });
    try {
      for (let i = 0; i < CLIENT_THRESHOLD; i++) assert.ok(isBadPassword(await login(t, `name${i}`, 'wrong', { remoteAddress: '192.0.2.10' })), `try ${i}`);
      assert.ok(isThrottled(await login(t, 'fresh-name', 'wrong', { remoteAddress: '192.0.2.10' })));
      assert.ok(isThrottled(await login(t, 'admin', PASSWORD, { remoteAddress: '192.0.2.10' })), 'the source is refused even with the right password');
      assert.ok(isSuccess(await login(t, 'admin', PASSWORD, { remoteAddress: '192.0.2.11' })), 'the admin can still log in from elsewhere');
    } finally {
      await t.close();
    }
  });

  test('a successful login does not reset the source, but is not counted as a failure', async () => {
    const t = await startTestApp({ clock: new FakeClock() });
    try {
      for (let i = 0; i < CLIENT_THRESHOLD - 1; i++) await login(t, `n${i}`, 'wrong', { remoteAddress: '192.0.2.20' });
      for (let i = 0; i < 5; i++) assert.ok(isSuccess(await login(t, 'admin', PASSWORD, { remoteAddress: '192.0.2.20' })));
      assert.ok(isBadPassword(await login(t, 'last', 'wrong', { remoteAddress: '192.0.2.20' })));
      assert.ok(isThrottled(await login(t, 'one-more', 'wrong', { remoteAddress: '192.0.2.20' })));
    } finally {
      await t.close();
    }
  });

  test('a rotating X-Forwarded-For from an untrusted peer does not rotate the source', async () => {
    for (const env of [{}, { OTPD_TRUSTED_PROXIES: '192.0.2.99' }] as Record<string, string>[]) {
      const t = await startTestApp({ clock: new FakeClock(), env });
      try {
        const spoof = (i: number) => ({ remoteAddress: '192.0.2.30', headers: { 'x-forwarded-for': `10.1.${i >> 8}.${i & 255}` } });
        for (let i = 0; i < CLIENT_THRESHOLD; i++) assert.ok(isBadPassword(await login(t, `x${i}`, 'wrong', spoof(i))), `try ${i}`);
        assert.ok(isThrottled(await login(t, 'x-last', 'wrong', spoof(999))), JSON.stringify(env));
      } finally {
        await t.close();
      }
    }
  });

  test('behind a trusted proxy each forwarded client is its own source', async () => {
    const t = await startTestApp({ clock: new FakeClock(), env: { OTPD_TRUSTED_PROXIES: '192.0.2.99' } });
    try {
      const via = (client: string) => ({ remoteAddress: '192.0.2.99', headers: { 'x-forwarded-for': client } });
      for (let i = 0; i < CLIENT_THRESHOLD; i++) await login(t, `p${i}`, 'wrong', via('198.51.100.7'));
      assert.ok(isThrottled(await login(t, 'p-last', 'wrong', via('198.51.100.7'))));
      // a client prepending a fake hop does not escape: the proxy's own entry is used
      assert.ok(isThrottled(await login(t, 'p-last', 'wrong', via('10.9.9.9, 198.51.100.7'))));
      assert.ok(isSuccess(await login(t, 'admin', PASSWORD, via('198.51.100.8'))));
    } finally {
      await t.close();
    }
  });

  test('IPv6 sources count per /64, IPv4-mapped addresses as IPv4', async () => {
    const t = await startTestApp({ clock: new FakeClock() });
    try {
      for (let i = 0; i < CLIENT_THRESHOLD; i++) await login(t, `v${i}`, 'wrong', { remoteAddress: `2001:db8:1:2::${(i + 1).toString(16)}` });
      assert.ok(isThrottled(await login(t, 'v-last', 'wrong', { remoteAddress: '2001:db8:1:2:ffff::1' })));
      assert.ok(isSuccess(await login(t, 'admin', PASSWORD, { remoteAddress: '2001:db8:1:3::1' })));
      for (let i = 0; i < CLIENT_THRESHOLD; i++) await login(t, `m${i}`, 'wrong', { remoteAddress: i % 2 ? '::ffff:192.0.2.40' : '192.0.2.40' });
      assert.ok(isThrottled(await login(t, 'm-last', 'wrong', { remoteAddress: '192.0.2.40' })));
    } finally {
      await t.close();
    }
  });
});

describe('admin login throttle: state in the database', () => {
  test('a restart does not forget the throttle', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'otpd-throttle-'));
    const clock = new FakeClock();
    const start = async () => {
      const services = await createServices({ settings: loadSettings({ OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent' }, dataDir), clock });
      const app = await buildApp(services);
      return { app, services, close: async () => { await app.close(); await services.close(); } } as unknown as TestApp;
    };
    try {
      const first = await start();
      await first.services.admins.add('admin', PASSWORD);
      for (let i = 0; i < NAME_THRESHOLD; i++) assert.ok(isBadPassword(await login(first, 'admin', 'wrong')));
      await first.close();
      const second = await start();
      try {
        assert.ok(isThrottled(await login(second, 'admin', PASSWORD)), 'still refused after the restart');
        clock.advance(1000);
        assert.ok(isSuccess(await login(second, 'admin', PASSWORD)));
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('fault: without its throttle state the login fails closed, in the envelope', async () => {
    const t = await startTestApp({ clock: new FakeClock() });
    try {
      await t.services.db.kysely.schema.dropTable('admin_login_throttle').execute();
      const res = await t.app.inject({ method: 'POST', url: '/admin/login', payload: new URLSearchParams({ username: 'admin', password: PASSWORD }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      const json = JSON.parse(res.body);
      assert.equal(json.result.status, false);
      assert.equal(json.result.error.code, -311);
      assert.ok(!res.body.includes('admin_login_throttle') && !/at .*\.ts/.test(res.body), 'no internals');
      assert.equal(res.cookies.length, 0, 'no session');
      assert.equal((await t.services.db.kysely.selectFrom('sessions').select('id').execute()).length, 0);
    } finally {
      await t.close();
    }
  });

  test('flooding other names does not evict the counter of a name', async () => {
    const t = await startTestApp({ clock: new FakeClock() });
    try {
      for (let i = 0; i < NAME_THRESHOLD; i++) await login(t, 'admin', 'wrong', { remoteAddress: '192.0.2.50' });
      // 200 other names from many sources (an in-memory LRU of that size would have dropped it)
      for (let b = 0; b < 4; b++) {
        await Promise.all(Array.from({ length: 50 }, (_, i) => login(t, `flood-${b}-${i}`, 'wrong', { remoteAddress: `10.${b}.${i}.1` })));
      }
      assert.ok(isThrottled(await login(t, 'admin', PASSWORD, { remoteAddress: '192.0.2.51' })));
    } finally {
      await t.close();
    }
  });
});
