import { readiness as probe } from '../store/readiness.ts';
import { raw, defineRoutes, type Api, type RouteResult } from './route.ts';
import type { Services } from '../services.ts';

/** Ready: the database answers and its migrations are current; else HTTP 503 with the reason. */
async function readiness({ services }: { services: Services }): Promise<RouteResult> {
  const state = await probe(services.db);
  return state === 'ready' ? raw({ status: 'ready' }) : { ...raw({ status: 'not ready', reason: state }), httpStatus: 503 };
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
