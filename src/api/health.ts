import { sql } from 'kysely';
import { migrationsCurrent } from '../store/migrate.ts';
import { raw, defineRoutes, type Api } from './route.ts';

/** `/healthz`: the process answers. `/readyz`: database reachable and migrations current. */
export function register(api: Api): void {
  defineRoutes(api, [
    { path: '/healthz', methods: ['GET'], audit: false, handler: async () => raw({ status: 'ok' }) },
    {
      path: '/readyz',
      methods: ['GET'],
      audit: false,
      handler: async ({ services }) => {
        try {
          await sql`select 1`.execute(services.db.kysely);
          const current = await migrationsCurrent(services.db);
          return current ? raw({ status: 'ready' }) : { ...raw({ status: 'not ready', reason: 'migrations pending' }), httpStatus: 503 };
        } catch {
          return { ...raw({ status: 'not ready', reason: 'database unreachable' }), httpStatus: 503 };
        }
      },
    },
  ]);
}
