import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { testTmpDir } from './tmp.ts';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { createServices, type Services } from '../../src/services.ts';
import type { Logger } from 'pino';
import type { Clock } from '../../src/util/clock.ts';
import { createTestDb, type TestDb } from './db.ts';
import type { DialectName } from '../../src/store/db.ts';

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  dataDir: string;
  /** Every route Fastify registered (url + methods, HEAD included once the app is ready). */
  routes: { url: string; methods: string[] }[];
  /** Bearer API key of admin `admin`. */
  apiKey: string;
  /** POST form to a path; returns status and the parsed JSON (or text). */
  post(path: string, form: Record<string, string>, headers?: Record<string, string>): Promise<{ status: number; json: any; body: string }>;
  /** POST as the admin (API key). */
  admin(path: string, form?: Record<string, string>): Promise<{ status: number; json: any; body: string }>;
  close(): Promise<void>;
}

/** A full otpd (services + Fastify app, no socket) on a fresh database of the given dialect. */
export async function startTestApp(opts: { dialect?: DialectName; clock?: Clock; env?: Record<string, string>; logger?: Logger } = {}): Promise<TestApp> {
  const dataDir = testTmpDir('otpd-app-');
  let testDb: TestDb | undefined;
  const env: Record<string, string> = { OTPD_DATA_DIR: dataDir, OTPD_LOG_LEVEL: 'silent', ...opts.env };
  if (opts.dialect && opts.dialect !== 'sqlite') {
    testDb = await createTestDb(opts.dialect);
    env.OTPD_DATABASE_URL = testDb.url;
  }
  const settings = loadSettings(env, dataDir);
  const services = await createServices({ settings, clock: opts.clock, logger: opts.logger });
  const routes: { url: string; methods: string[] }[] = [];
  const app = await buildApp(services, { onRoute: (r) => void routes.push(r) });
  await services.admins.add('admin', 'admin-password-1');
  const apiKey = await services.admins.createApiKey('admin', 'tests');
  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await app.inject({ method: 'POST', url: path, payload: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
    let json: any;
    try {
      json = JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, body: res.body };
  };
  return {
    app, services, dataDir, apiKey, post, routes,
    admin: (path, form = {}) => post(path, form, { authorization: `Bearer ${apiKey}` }),
    close: async () => {
      await app.close();
      await services.close();
      if (testDb) {
        // services.close() closed the pool; drop the database with a fresh admin connection
        await testDb.drop().catch(() => undefined);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
