import { sql } from 'kysely';
import { migrationsCurrent } from '../store/migrate.ts';
import { raw, defineRoutes, type Api, type RouteResult } from './route.ts';
import type { Services } from '../services.ts';

/** Ready: the database answers and its migrations are current; else HTTP 503 with the reason. */
async function readiness({ services }: { services: Services }): Promise<RouteResult> {
  try {
    await sql`select 1`.execute(services.db.kysely);
    const current = await migrationsCurrent(services.db);
    return current ? raw({ status: 'ready' }) : { ...raw({ status: 'not ready', reason: 'migrations pending' }), httpStatus: 503 };
  } catch {
    return { ...raw({ status: 'not ready', reason: 'database unreachable' }), httpStatus: 503 };
  }
}

/**
 * `/healthz`: the process answers. `/readyz`: database reachable and migrations current.
 * LinOTP's probes `/maintenance/check_status` and `/healthcheck/status` are aliases of `/readyz`
 * (same answer, same 200/503), public like it, so existing load-balancer checks keep working.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    { path: '/healthz', methods: ['GET'], audit: false, handler: async () => raw({ status: 'ok' }) },
    ...['/readyz', '/maintenance/check_status', '/healthcheck/status'].map((path) => ({ path, methods: ['GET' as const], audit: false, handler: readiness })),
  ]);
}
