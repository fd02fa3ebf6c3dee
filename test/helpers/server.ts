import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/settings.ts';
import { startServer, type Running } from '../../src/server.ts';
import { freePort } from '../fixtures/slapd.ts';
import { radclient, type RadclientResult } from '../radius/helpers.ts';

export interface RunningOtpd {
  running: Running;
  /** The temporary folder holding otpd.json, data/ and any files the test writes. */
  dir: string;
  radiusPort: number;
  apiKey: string;
  /** POST form as the admin (API key); the parsed envelope. */
  admin(path: string, form: Record<string, string>): Promise<any>;
  /** POST form without credentials; the parsed envelope. */
  post(path: string, form: Record<string, string>): Promise<any>;
  /** One Access-Request through Debian's radclient, with Message-Authenticator. */
  radius(user: string, password: string, opts?: { timeoutSeconds?: number; retries?: number }): Promise<RadclientResult>;
  stop(): Promise<void>;
}

/**
 * A real otpd process part (HTTP on a free port, the built-in RADIUS listener with one
 * loopback client) on a fresh data directory, with admin `admin` and an API key.
 * `files` are written into the folder first (e.g. a passwd file for a flat-file store).
 */
export async function startOtpd(opts: { radiusSecret: string; radiusRealm: string; files?: Record<string, string> }): Promise<RunningOtpd> {
  const dir = mkdtempSync(join(tmpdir(), 'otpd-server-'));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
  const radiusPort = await freePort();
  writeFileSync(join(dir, 'otpd.json'), JSON.stringify({ radius: { port: radiusPort, clients: [{ name: 'local', address: '127.0.0.1', secret: opts.radiusSecret, realm: opts.radiusRealm }] } }));
  const running = await startServer(loadSettings({ OTPD_DATA_DIR: join(dir, 'data'), OTPD_PORT: '0', OTPD_LOG_LEVEL: 'silent' }, dir));
  await running.services.admins.add('admin', 'admin-password-1');
  const apiKey = await running.services.admins.createApiKey('admin');
  const call = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    (await (await fetch(`${running.url}${path}`, { method: 'POST', body: new URLSearchParams(form), headers })).json()) as any;
  return {
    running, dir, radiusPort, apiKey,
    admin: (path, form) => call(path, form, { authorization: `Bearer ${apiKey}` }),
    post: (path, form) => call(path, form),
    radius: (user, password, o = {}) => radclient({
      target: `127.0.0.1:${radiusPort}`, secret: opts.radiusSecret, input: `User-Name=${user},User-Password=${password},Message-Authenticator=0x00`, ...o,
    }),
    stop: async () => {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
