import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import type { DialectName } from '../../src/store/db.ts';
import type { Clock } from '../../src/util/clock.ts';

export const KEY = '3132333435363738393031323334353637383930';
export const SEED = Buffer.from(KEY, 'hex');
export const KEY2 = '3132333435363738393031323334353637383931';
export const SEED2 = Buffer.from(KEY2, 'hex');

const hashes = new Map<string, string>();
/** sha512-crypt of a password (cached: openssl takes a moment). */
export function crypt(pw: string): string {
  let h = hashes.get(pw);
  if (!h) hashes.set(pw, (h = execFileSync('openssl', ['passwd', '-6', pw], { encoding: 'utf8' }).trim()));
  return h;
}

export interface ValidationFixture extends TestApp {
  check(form: Record<string, string>, path?: string, headers?: Record<string, string>): Promise<{ status: number; json: any; body: string }>;
  policy(name: string, scope: string, action: string, extra?: Record<string, string>): Promise<void>;
  setConfig(key: string, value: string): Promise<void>;
  lastAudit(action?: string): Promise<{ action_detail: string; success: string; user: string; serial: string; info: string }>;
  failCount(serial: string): Promise<number>;
}

/**
 * otpd on a fresh database with a flat-file user store: realm `staff` (default) with
 * alice (AlicePw1), bob (BobPw1) and carol (CarolPw1, no token), realm `lab` with dave (DavePw1).
 */
export async function startValidationFixture(opts: { dialect?: DialectName; clock?: Clock } = {}): Promise<ValidationFixture> {
  const t = await startTestApp(opts);
  const staff = join(t.dataDir, 'staff');
  writeFileSync(staff, [
    `alice:${crypt('AlicePw1')}:1001:1001:Alice Anders,,+4915123456789,+4915123456780,alice@example.org:/home/alice:/bin/sh`,
    `bob:${crypt('BobPw1')}:1002:1002:Bob Berg,,+4915123456781,+4915123456782,bob@example.org:/home/bob:/bin/sh`,
    `carol:${crypt('CarolPw1')}:1003:1003:Carol Cole,,,,carol@example.org:/home/carol:/bin/sh`,
  ].join('\n') + '\n');
  const lab = join(t.dataDir, 'lab');
  writeFileSync(lab, `dave:${crypt('DavePw1')}:2001:2001:Dave Dorn,,,,dave@example.org:/home/dave:/bin/sh\n`);
  const ok = async (path: string, form: Record<string, string>) => {
    const r = await t.admin(path, form);
    assert.equal(r.json?.result?.status, true, `${path}: ${r.body}`);
    return r;
  };
  await ok('/system/setResolver', { name: 'stafffiles', type: 'passwdresolver', fileName: staff });
  await ok('/system/setResolver', { name: 'labfiles', type: 'passwdresolver', fileName: lab });
  await ok('/system/setRealm', { realm: 'staff', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.stafffiles' });
  await ok('/system/setRealm', { realm: 'lab', resolvers: 'useridresolver.PasswdIdResolver.IdResolver.labfiles' });
  await ok('/system/setDefaultRealm', { realm: 'staff' });
  return {
    ...t,
    check: (form, path = '/validate/check', headers = {}) => t.post(path, form, headers),
    policy: async (name, scope, action, extra = {}) => {
      await ok('/system/setPolicy', { name, scope, action, realm: '*', user: '*', client: '*', ...extra });
    },
    setConfig: async (key, value) => {
      await ok('/system/setConfig', { key, value });
    },
    lastAudit: async (action = 'validate/check') =>
      (await t.services.db.kysely.selectFrom('audit').selectAll().where('action', '=', action).orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow()) as any,
    failCount: async (serial) => (await t.services.tokens.repository.bySerial(serial))!.failCount,
  };
}
