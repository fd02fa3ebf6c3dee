/**
 * Flat-file resolver: passwd layout, GECOS mapping of spec 7.3 (mobile, phone,
 * e-mail), crypt hashes from openssl, `x`/`*`/`!` never authenticate, the file
 * is re-read when it changes, and a missing file is "user store unavailable".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { UserStoreUnavailableError } from '../../src/errors.ts';
import { parsePasswdLine, passwdResolverType } from '../../src/users/passwd.ts';
import { systemClock } from '../../src/util/clock.ts';
import { captureLogs } from '../helpers/logs.ts';

const logger = pino({ level: 'silent' });
const crypt = (alg: string, pw: string) => execFileSync('openssl', ['passwd', alg, pw]).toString().trim();

describe('passwd resolver', () => {
  let dir: string;
  let file: string;
  const lines = () => [
    '# comment line',
    `passthru_user1:${crypt('-6', 'geheim1')}:1000:1000:Passthru User1,Room 1,+49(0)1234-24,+49(0)5678-24,pass.true@example.com:/home/p:/bin/bash`,
    `email_only:${crypt('-5', 'geheim1')}:1001:1001:Email Only,,,,email.only@example.com:/home/e:/bin/sh`,
    `mobile_only:${crypt('-1', 'geheim1')}:1002:1002:Mobile Only,,+49 170 1,,:/home/m:/bin/sh`,
    'shadowed:x:1003:1003:Shadowed User:/home/s:/bin/sh',
    'locked:!$6$abc$def:1004:1004:Locked:/home/l:/bin/sh',
    'star:*:1005:1005::/:/usr/sbin/nologin',
    `short_gecos:${crypt('-6', 'pw')}:1006:1006:Short Gecos,Room,+1 555:/:/bin/sh`,
    'broken line without colons',
    '',
  ];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'otpd-passwd-'));
    file = join(dir, 'passwd');
    writeFileSync(file, lines().join('\n'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const open = () => passwdResolverType.create('files', passwdResolverType.normalize({ fileName: file }), { logger, clock: systemClock });

  test('GECOS mapping: name, mobile [2], phone [3], first e-mail of [4..]', async () => {
    const s = open();
    const u = await s.lookup('passthru_user1');
    assert.deepEqual(u, {
      login: 'passthru_user1', userId: '1000',
      info: {
        username: 'passthru_user1', userid: '1000', givenname: 'Passthru', surname: 'User1', description: 'Passthru User1',
        mobile: '+49(0)1234-24', phone: '+49(0)5678-24', email: 'pass.true@example.com',
      },
    });
    const e = await s.lookup('email_only');
    assert.equal(e?.info.email, 'email.only@example.com');
    assert.equal(e?.info.mobile, undefined);
    const m = await s.lookup('mobile_only');
    assert.equal(m?.info.mobile, '+49 170 1');
    assert.equal(m?.info.email, undefined);
    // fewer than 4 GECOS fields: no mobile/phone
    const short = await s.lookup('short_gecos');
    assert.equal(short?.info.mobile, undefined);
    assert.equal(short?.info.phone, undefined);
    assert.equal((await s.byId('1001'))?.login, 'email_only');
    assert.equal(await s.lookup('nobody'), null);
  });

  test('crypt passwords; x, *, ! never authenticate', async () => {
    const s = open();
    for (const login of ['passthru_user1', 'email_only', 'mobile_only']) {
      const u = (await s.lookup(login))!;
      assert.equal(await s.checkPassword(u, 'geheim1'), true, login);
      assert.equal(await s.checkPassword(u, 'geheim2'), false, login);
      assert.equal(await s.checkPassword(u, ''), false);
      assert.equal(await s.checkPassword(u, 'geheim1\0'), false);
    }
    for (const [login, pw] of [['shadowed', 'x'], ['locked', '!$6$abc$def'], ['star', '*']]) {
      const u = (await s.lookup(login))!;
      assert.ok(u, login);
      assert.equal(await s.checkPassword(u, pw), false, login);
    }
    // a user object whose login does not belong to the uid is refused
    const u = (await s.lookup('email_only'))!;
    assert.equal(await s.checkPassword({ ...u, userId: '1000' }, 'geheim1'), false);
  });

  test('search and test()', async () => {
    const s = open();
    assert.deepEqual((await s.search({ username: '*only' }, 10)).map((u) => u.login), ['email_only', 'mobile_only']);
    assert.deepEqual((await s.search({ email: 'pass.*' }, 10)).map((u) => u.login), ['passthru_user1']);
    assert.equal((await s.search({}, 2)).length, 2);
    const h = await s.test();
    assert.equal(h.ok, true);
    assert.equal(h.userCount, 7);
  });

  test('the file is re-read after a change', async () => {
    const s = open();
    assert.equal(await s.lookup('newcomer'), null);
    writeFileSync(file, [...lines(), `newcomer:${crypt('-6', 'hello')}:2000:2000:New Comer:/:/bin/sh`].join('\n'));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const n = await s.lookup('newcomer');
    assert.equal(n?.userId, '2000');
    assert.equal(await s.checkPassword(n!, 'hello'), true);
  });

  test('parallel lookups of a new file read and parse it once, and an edit is still seen by the next lookup', async () => {
    const logs = captureLogs('debug');
    const s = passwdResolverType.create('files', passwdResolverType.normalize({ fileName: file }), { logger: logs.logger, clock: systemClock });
    const loaded = () => logs.lines().filter((l) => l.msg === 'passwd file loaded').length;
    const found = await Promise.all(Array.from({ length: 50 }, () => s.lookup('email_only')));
    assert.ok(found.every((u) => u?.userId === '1001'));
    assert.equal(loaded(), 1, 'one parse for 50 lookups at once');
    writeFileSync(file, [...lines(), `second:x:2001:2001:Second:/:/bin/sh`].join('\n'));
    utimesSync(file, new Date(), new Date(Date.now() + 10_000));
    const after = await Promise.all(Array.from({ length: 20 }, () => s.lookup('second')));
    assert.ok(after.every((u) => u?.userId === '2001'));
    assert.equal(loaded(), 2);
  });

  test('a missing file is "user store unavailable"', async () => {
    const s = passwdResolverType.create('gone', { fileName: join(dir, 'missing') }, { logger, clock: systemClock });
    await assert.rejects(s.lookup('x'), (e: unknown) => e instanceof UserStoreUnavailableError && /cannot read .*ENOENT/.test(e.message));
  });

  test('parsePasswdLine ignores comments and malformed lines', () => {
    assert.equal(parsePasswdLine('# x:y:z'), undefined);
    assert.equal(parsePasswdLine('no colons'), undefined);
    assert.equal(parsePasswdLine(':x:1'), undefined);
    assert.equal(parsePasswdLine('a:x:7')?.user.userId, '7');
  });
});
