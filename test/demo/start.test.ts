// Invariant: the README's start command on an empty data directory, with nothing configured,
// runs the demo: the seed scenario (autoenrollment by e-mail for alice, by SMS for bob, otppin=1,
// password followed by the code) works over /validate/check and RADIUS with nothing else
// installed, the codes readable at /demo/messages.json. With OTPD_DEMO=0, with a database URL,
// or once a real user store exists, there is no demo: no demo realm, users, providers or RADIUS
// client, /demo is 404, and what an earlier demo created is removed at that start.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { radclient } from '../radius/helpers.ts';
import { haveBinary } from '../helpers/require.ts';
import { testTmpDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/otpd.mjs');
/** HTTP and RADIUS ports of this file (the brief's ranges: 18500–18599, 18600–18649). */
const HTTP_PORT = 18531;
const RADIUS_PORT = 18631;
const DEMO_RADIUS_SECRET = 'demo-radius-secret';

/**
 * The README's quick start, as written: the first command block under "## Quick start". Its
 * install step (`npm install` / `npm ci`) has been done for the test run; the other steps run
 * as they are, the last one being the server.
 */
function readmeStartCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'README quick start has a sh block');
  const line = block[1].split('\n').map((l) => l.replace(/#.*$/, '').trim()).find(Boolean)!;
  const steps = line.split('&&').map((s) => s.trim());
  assert.match(steps[0], /^npm (install|ci)\b/, `the quick start begins with the install: ${line}`);
  return steps.slice(1);
}

interface Started { child: ChildProcess; log: () => string; base: string; dataDir: string }

const running = new Set<ChildProcess>();

async function start(dataDir: string, env: Record<string, string> = {}): Promise<Started> {
  const steps = readmeStartCommands();
  const fullEnv = { ...process.env, OTPD_DATA_DIR: dataDir, OTPD_PORT: String(HTTP_PORT), OTPD_RADIUS_PORT: String(RADIUS_PORT), ...env };
  delete (fullEnv as Record<string, string | undefined>).OTPD_CONFIG;
  for (const step of steps.slice(0, -1)) {
    const r = spawnSync(step, { cwd: ROOT, shell: true, env: fullEnv, encoding: 'utf8' });
    assert.equal(r.status, 0, `${step}: ${r.stdout}${r.stderr}`);
  }
  // its own process group, so stopping it stops npm and the node process npm started
  const child = spawn(steps.at(-1)!, { cwd: ROOT, shell: true, env: fullEnv, detached: true });
  running.add(child);
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${HTTP_PORT}`;
  await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok, { what: `${steps.at(-1)} to answer /healthz`, timeoutMs: 30_000, intervalMs: 100 })
    .catch((e: Error) => { throw new Error(`${e.message}; its output:\n${log}`); });
  // the banner is written once the listeners are up; wait for it so RADIUS is ready too
  if (env.OTPD_DEMO !== '0' && !env.OTPD_DATABASE_URL) await waitFor(() => /DEMO MODE/.test(log) || /demo mode is off/.test(log), { what: 'the demo banner', timeoutMs: 10_000 }).catch(() => undefined);
  return { child, log: () => log, base, dataDir };
}

async function stop(s: Started): Promise<void> {
  process.kill(-s.child.pid!, 'SIGTERM');
  // npm may exit before the server it started: wait until the whole group is gone
  const groupAlive = () => {
    try {
      process.kill(-s.child.pid!, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(() => !groupAlive(), { what: 'the server to stop', timeoutMs: 20_000, intervalMs: 50 });
  running.delete(s.child);
}

after(() => {
  for (const c of running) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

const post = async (base: string, path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  (await (await fetch(`${base}${path}`, { method: 'POST', body: new URLSearchParams(form), headers })).json()) as any;

interface Captured { channel: string; to: string; text: string; time: string }
const messages = async (base: string): Promise<Captured[]> => {
  const res = await fetch(`${base}/demo/messages.json`);
  assert.equal(res.status, 200);
  return (await res.json()) as Captured[];
};
const codeIn = (m: Captured): string => {
  const code = /\b(\d{6})\b/.exec(m.text)?.[1];
  assert.ok(code, `a 6-digit code in ${JSON.stringify(m.text)}`);
  return code;
};

/** The JSON lines of the log (the process logs JSON when stdout is not a terminal). */
const logLines = (log: string) => log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

function dbRows(dataDir: string, sql: string): unknown[] {
  const db = new Database(join(dataDir, 'otpd.sqlite'), { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

/** No demo object in the database and no users file: what "no demo data" means. */
function assertNoDemoData(dataDir: string): void {
  assert.deepEqual(dbRows(dataDir, 'select name from resolvers where name = \'demo-users\''), []);
  assert.deepEqual(dbRows(dataDir, 'select name from realms where name = \'demo\''), []);
  assert.deepEqual(dbRows(dataDir, 'select name from policies where name like \'demo%\''), []);
  assert.deepEqual(dbRows(dataDir, 'select name from delivery_providers where class_name like \'otpd.demo.%\''), []);
  assert.deepEqual(dbRows(dataDir, 'select name from radius_clients where name = \'demo\''), []);
  assert.deepEqual(dbRows(dataDir, 'select count(*) as n from demo_messages'), [{ n: 0 }]);
  assert.deepEqual(dbRows(dataDir, 'select count(*) as n from demo_objects'), [{ n: 0 }]);
  assert.deepEqual(dbRows(dataDir, 'select serial from tokens where resolver = \'demo-users\''), []);
  assert.equal(existsSync(join(dataDir, 'demo-users.sqlite')), false, 'the demo users file is gone');
}

async function assertDemoRoutesGone(base: string): Promise<void> {
  for (const path of ['/demo/messages', '/demo/messages.json', '/demo']) assert.equal((await fetch(`${base}${path}`)).status, 404, path);
  const auth = await (await fetch(`${base}/auth/index`)).text();
  assert.doesNotMatch(auth, /demo-banner|Demo mode/);
  assert.doesNotMatch(await (await fetch(`${base}/manage/login`)).text(), /demo-banner/);
  assert.doesNotMatch(await (await fetch(`${base}/selfservice/login`)).text(), /demo-banner/);
  // no demo user exists: alice with the demo password is refused and nothing is captured
  assert.equal((await post(base, '/validate/check', { user: 'alice', pass: 'demo' })).result.value, false);
}

describe('npm start on an empty data directory: demo mode', { skip: haveBinary('radclient', 'freeradius-utils') }, () => {
  const dataDir = join(testTmpDir('otpd-demo-'), 'data');
  after(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));

  test('the seed scenario for alice (e-mail) and bob (SMS) over /validate/check and RADIUS, then OTPD_DEMO=0 removes it all', async () => {
    const s = await start(dataDir);
    try {
      const lines = logLines(s.log());
      const banner = lines.find((l) => l.level === 40 && /^DEMO MODE/.test(String(l.msg)));
      assert.ok(banner, `a warn-level demo banner in the log:\n${s.log()}`);
      assert.equal(banner.messages, `${s.base}/demo/messages`);
      assert.doesNotMatch(s.log(), /demo-radius-secret|"pass(word)?":/, 'neither the demo password nor the RADIUS secret is logged');
      assert.deepEqual(await messages(s.base), []);

      // alice: e-mail only → autoenrolled e-mail token, code at /demo/messages, then demo+code
      const first = await post(s.base, '/validate/check', { user: 'alice', pass: 'demo' });
      assert.equal(first.result.value, false);
      assert.equal(first.detail.message, 'e-mail sent successfully');
      assert.equal(first.detail.linotp_tokentype, 'email');
      const [mail] = await messages(s.base);
      assert.equal(mail.channel, 'email');
      assert.equal(mail.to, 'alice@example.org');
      assert.ok(Math.abs(Date.parse(mail.time) - Date.now()) < 60_000, 'time is ISO 8601 and now');
      const wrong = await post(s.base, '/validate/check', { user: 'alice', pass: `wrong${codeIn(mail)}` });
      assert.equal(wrong.result.value, false, 'otppin=1: the demo password must come first');
      assert.equal((await post(s.base, '/validate/check', { user: 'alice', pass: `demo${codeIn(mail)}` })).result.value, true);
      assert.equal((await post(s.base, '/validate/check', { user: 'alice', pass: `demo${codeIn(mail)}` })).result.value, false, 'the code is used once');

      // bob: mobile only → SMS token; the challenge answered with transaction id + code
      const bob = await post(s.base, '/validate/check', { user: 'bob', pass: 'demo' });
      assert.equal(bob.detail.linotp_tokentype, 'sms');
      const [sms] = await messages(s.base);
      assert.equal(sms.channel, 'sms');
      assert.equal(sms.to, '+4915123456789');
      assert.equal((await post(s.base, '/validate/check', { user: 'bob', pass: codeIn(sms), transactionid: bob.detail.transactionid })).result.value, true);
      assert.equal((await messages(s.base)).length, 2, 'newest first, both kept');

      // RADIUS with the demo client: password → Access-Challenge with State, code → Access-Accept
      const rad = (input: string) => radclient({ target: `127.0.0.1:${RADIUS_PORT}`, secret: DEMO_RADIUS_SECRET, input: `${input},Message-Authenticator=0x00` });
      const challenge = await rad('User-Name=bob,User-Password=demo');
      assert.equal(challenge.reply, 'Access-Challenge', challenge.output);
      const [radiusSms] = await messages(s.base);
      assert.equal(radiusSms.to, '+4915123456789');
      const accept = await rad(`User-Name=bob,User-Password=${codeIn(radiusSms)},State=${challenge.attributes.State}`);
      assert.equal(accept.reply, 'Access-Accept', accept.output);
      assert.equal((await rad('User-Name=bob,User-Password=wrong')).reply, 'Access-Reject');
      // one step: the demo password followed by the code of the open challenge
      assert.equal((await rad('User-Name=alice,User-Password=demo')).reply, 'Access-Challenge');
      const [radiusMail] = await messages(s.base);
      assert.equal(radiusMail.to, 'alice@example.org');
      assert.equal((await rad(`User-Name=alice,User-Password=demo${codeIn(radiusMail)}`)).reply, 'Access-Accept');

      // the pages are marked
      const page = await fetch(`${s.base}/demo/messages`);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /class="demo-banner"/);
      assert.match(html, /\+4915123456789/);
      assert.match(await (await fetch(`${s.base}/auth/index`)).text(), /class="demo-banner"[\s\S]*href="\/demo\/messages"/);
      assert.match(await (await fetch(`${s.base}/manage/login`)).text(), /class="demo-banner"[\s\S]*href="\/demo\/messages"/);
      assert.match(await (await fetch(`${s.base}/selfservice/login`)).text(), /class="demo-banner"[\s\S]*href="\/demo\/messages"/);
    } finally {
      await stop(s);
    }

    // the same data directory with OTPD_DEMO=0: the demo's objects are removed, /demo is 404
    const off = await start(dataDir, { OTPD_DEMO: '0' });
    try {
      const removal = logLines(off.log()).find((l) => l.level === 40 && /^demo mode is off \(OTPD_DEMO=0\)/.test(String(l.msg)));
      assert.ok(removal, off.log());
      await assertDemoRoutesGone(off.base);
    } finally {
      await stop(off);
    }
    assertNoDemoData(dataDir);
    // the audit keeps what happened: the demo's set-up, its logins and its removal
    const actions = (dbRows(dataDir, 'select action from audit order by id') as { action: string }[]).map((r) => r.action);
    assert.equal(actions[0], 'demo/setup');
    assert.ok(actions.includes('validate/check'));
    assert.ok(actions.includes('radius/access-request'));
    assert.ok(actions.indexOf('demo/remove') > actions.lastIndexOf('radius/access-request'), actions.join(' '));
  });
});

describe('no demo', () => {
  test('OTPD_DEMO=0 on an empty data directory: no demo data, /demo is 404', async () => {
    const dir = testTmpDir('otpd-nodemo-');
    const s = await start(join(dir, 'data'), { OTPD_DEMO: '0' });
    try {
      assert.doesNotMatch(s.log(), /DEMO MODE/);
      await assertDemoRoutesGone(s.base);
    } finally {
      await stop(s);
      assertNoDemoData(join(dir, 'data'));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a database URL is configured: no demo, even on an empty data directory', async () => {
    const dir = testTmpDir('otpd-dburl-');
    const dataDir = join(dir, 'data');
    const s = await start(dataDir, { OTPD_DATABASE_URL: `sqlite:${join(dataDir, 'otpd.sqlite')}` });
    try {
      assert.doesNotMatch(s.log(), /DEMO MODE/);
      await assertDemoRoutesGone(s.base);
    } finally {
      await stop(s);
      assertNoDemoData(dataDir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a real user store configured during the demo ends it at the next start; the admin\'s store and realm stay', async () => {
    const dir = testTmpDir('otpd-realstore-');
    const dataDir = join(dir, 'data');
    writeFileSync(join(dir, 'passwd'), 'carol:x:1001:1001:Carol Example,,+4915123456780,,carol@example.org:/home/carol:/bin/sh\n');
    const s = await start(dataDir);
    try {
      assert.match(s.log(), /DEMO MODE/);
      const env = { ...process.env, OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'warn' };
      assert.equal(spawnSync(process.execPath, [BIN, 'admin', 'add', 'admin'], { input: 'admin-password-1\n', env, encoding: 'utf8' }).status, 0);
      const key = spawnSync(process.execPath, [BIN, 'admin', 'apikey', 'admin'], { env, encoding: 'utf8' }).stdout.trim();
      const auth = { authorization: `Bearer ${key}` };
      assert.equal((await post(s.base, '/system/setResolver', { name: 'staff', type: 'passwdresolver', fileName: join(dir, 'passwd') }, auth)).result.value, true);
      assert.equal((await post(s.base, '/system/setRealm', { realm: 'corp', resolvers: 'staff' }, auth)).result.value, true);
      // the demo goes on until the next start
      assert.equal((await fetch(`${s.base}/demo/messages.json`)).status, 200);
    } finally {
      await stop(s);
    }
    const next = await start(dataDir);
    try {
      const removal = logLines(next.log()).find((l) => l.level === 40 && /^demo mode is off \(a user store is configured \(staff\)\)/.test(String(l.msg)));
      assert.ok(removal, next.log());
      assert.doesNotMatch(next.log(), /DEMO MODE/);
      await assertDemoRoutesGone(next.base);
    } finally {
      await stop(next);
    }
    assertNoDemoData(dataDir);
    assert.deepEqual(dbRows(dataDir, 'select name from resolvers'), [{ name: 'staff' }]);
    assert.deepEqual(dbRows(dataDir, 'select name from realms'), [{ name: 'corp' }]);
    assert.deepEqual(dbRows(dataDir, 'select value from config where key = \'DefaultRealm\''), [], 'the demo realm was the default; the default is cleared with it');
    rmSync(dir, { recursive: true, force: true });
  });
});
