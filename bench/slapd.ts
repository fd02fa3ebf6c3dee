/**
 * slapd for the LDAP case (stack.md 7.1, like test/fixtures/slapd.ts): a temporary directory,
 * 127.0.0.1 on the given port, loaded with the bench's LDAP users (layout.ts, password = login).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LDAP, LDAP_ADMIN_DN, LDAP_ADMIN_PW, LDAP_BASE, LDAP_SUFFIX, indices, login } from './layout.ts';

export interface BenchSlapd {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchSlapd(port: number): Promise<BenchSlapd> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-bench-slapd-'));
  mkdirSync(join(dir, 'db'));
  writeFileSync(join(dir, 'slapd.conf'), [
    'include /etc/ldap/schema/core.schema', 'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/nis.schema', 'include /etc/ldap/schema/inetorgperson.schema',
    `pidfile ${join(dir, 'slapd.pid')}`, `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap', 'moduleload back_mdb', 'database mdb', 'maxsize 104857600',
    `suffix "${LDAP_SUFFIX}"`, `rootdn "${LDAP_ADMIN_DN}"`, `rootpw ${LDAP_ADMIN_PW}`, `directory ${join(dir, 'db')}`,
    'index objectClass eq', 'index uid eq',
    'access to attrs=userPassword by self write by anonymous auth by * none', 'access to * by * read', '',
  ].join('\n'));
  const entries = [
    `dn: ${LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
    `dn: ${LDAP_BASE}\nobjectClass: organizationalUnit\nou: people\n`,
    ...indices(LDAP).map((i) => {
      const uid = login(LDAP, i);
      return `dn: uid=${uid},${LDAP_BASE}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: Bench ${uid}\nsn: ${uid}\nuserPassword: ${uid}\nmail: ${uid}@example.org\nmobile: +4915123${String(i).padStart(6, '0')}\n`;
    }),
  ];
  writeFileSync(join(dir, 'users.ldif'), entries.join('\n'));
  execFileSync('/usr/sbin/slapadd', ['-q', '-f', join(dir, 'slapd.conf'), '-l', join(dir, 'users.ldif')], { stdio: 'pipe' });
  const child: ChildProcess = spawn('/usr/sbin/slapd', ['-d', '0', '-h', `ldap://127.0.0.1:${port}/`, '-f', join(dir, 'slapd.conf')], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`slapd exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port }, () => (sock.destroy(), resolve(true)));
      sock.once('error', () => (sock.destroy(), resolve(false)));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`slapd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `ldap://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
