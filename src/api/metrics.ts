import { defineRoutes, raw, type Api } from './route.ts';

const line = (name: string, labels: Record<string, string>, value: number) => {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');
  return `${name}${l ? `{${l}}` : ''} ${value}`;
};

/** Reloads shown even before one fails, so an alert rule has a series to watch. */
const RELOADED = ['config', 'policies', 'users', 'delivery_providers', 'poll'];

/**
 * `/metrics`: Prometheus text format; admin authentication (an API key for the scraper).
 * Delivery outcomes and send-limit refusals (the SMS-fraud signal), failed reloads of shared
 * state, RADIUS answers and silently dropped packets by reason, since this process started.
 */
export function register(api: Api): void {
  defineRoutes(api, [
    {
      path: '/metrics',
      methods: ['GET'],
      auth: 'admin',
      audit: false,
      policy: { scope: 'system', action: 'read' },
      handler: async ({ services }) => {
        const out: string[] = [];
        const d = services.delivery.metrics();
        out.push('# HELP otpd_delivery_messages_total Out-of-band messages by final or intermediate outcome.', '# TYPE otpd_delivery_messages_total counter');
        for (const status of ['accepted', 'delivered', 'failed', 'expired', 'transient'] as const) out.push(line('otpd_delivery_messages_total', { status }, d[status]));
        out.push('# HELP otpd_delivery_refused_by_limit_total Messages refused by a send limit, by limit.', '# TYPE otpd_delivery_refused_by_limit_total counter');
        for (const [limit, n] of Object.entries(d.refusedByLimit)) out.push(line('otpd_delivery_refused_by_limit_total', { limit }, n));
        out.push('# HELP otpd_reload_failures_total Failed re-reads of shared state another node changed (config, policies, users, …; poll: the revisions table), by what.', '# TYPE otpd_reload_failures_total counter');
        const failures = services.watcher.failures;
        for (const what of new Set([...RELOADED, ...failures.keys()])) out.push(line('otpd_reload_failures_total', { what }, failures.get(what) ?? 0));
        const r = services.radiusStats?.();
        if (r) {
          out.push('# HELP otpd_radius_requests_total RADIUS Access-Requests by answer.', '# TYPE otpd_radius_requests_total counter');
          for (const result of ['accepted', 'rejected', 'challenged', 'duplicates'] as const) out.push(line('otpd_radius_requests_total', { result }, r[result]));
          out.push('# HELP otpd_radius_dropped_total RADIUS packets dropped without an answer, by reason.', '# TYPE otpd_radius_dropped_total counter');
          for (const [reason, n] of Object.entries(r.dropped)) out.push(line('otpd_radius_dropped_total', { reason }, n));
        }
        return raw(`${out.join('\n')}\n`, 'text/plain; version=0.0.4');
      },
    },
  ]);
}
