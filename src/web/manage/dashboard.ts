import type { PageCall } from './session.ts';

/** One item of the seed scenario's checklist: done or not, what it is, and how to fix it. */
export interface CheckItem {
  label: string;
  done: boolean;
  detail: string;
  /** The API call (LinOTP's name) that sets it, as a hint for the seed's guide. */
  hint: string;
  /** The page that sets it (shown once that page exists). */
  fix?: { path: string; label: string };
}

interface PolicyRow { scope: string; action: string; realm: string; active?: string }

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});

/**
 * What the dashboard shows, read through the same API routes the admin could call (so an
 * admin restricted to one realm sees only that realm): the seed scenario's checklist — a user
 * store, a realm, the autoenrollment and otppin policies, an SMS or e-mail provider — then
 * recent failed deliveries and failed logins.
 */
/** One user store's answer to a connection test, for the dashboard's "Check the user stores". */
export interface StoreCheck { name: string; ok: boolean; detail: string }

/** Tests every user store the admin may read (`/system/testResolver` by name): on request only, since each test connects. */
export async function checkStores(call: PageCall): Promise<StoreCheck[]> {
  const names = Object.keys(asRecord(await call.api('/system/getResolvers')));
  const out: StoreCheck[] = [];
  for (const name of names) {
    try {
      const r = asRecord(await call.api('/system/testResolver', { name }));
      const ok = r.result === 'success';
      out.push({ name, ok, detail: ok ? `reachable${r.usercount !== undefined ? `, ${Number(r.usercount).toLocaleString('en')} users` : ''}` : String(r.error ?? 'failed') });
    } catch (e) {
      out.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}

export async function dashboardFacts(call: PageCall, pages: ReadonlySet<string> = new Set()): Promise<Record<string, unknown>> {
  const link = (section: string, path: string, label: string) => (pages.has(section) ? { fix: { path, label } } : {});
  const resolvers = Object.keys(asRecord(await call.api('/system/getResolvers')));
  const realms = asRecord(await call.api('/system/getRealms'));
  const defaultRealm = Object.entries(realms).find(([, r]) => asRecord(r).default === 'true')?.[0];
  const policies = Object.values(asRecord(await call.api('/system/getPolicy'))) as PolicyRow[];
  const active = policies.filter((p) => p.active !== 'False');
  const withAction = (scope: string, action: string) => active.filter((p) => p.scope === scope && p.action.split(',').some((a) => a.trim().split('=')[0]!.trim() === action));
  const answers = {
    sms: await call.answer('/system/getProvider', { type: 'sms' }),
    email: await call.answer('/system/getProvider', { type: 'email' }),
  };
  const providers = { sms: asRecord(answers.sms.value), email: asRecord(answers.email.value) };
  const providerHealth = (['sms', 'email'] as const).flatMap((channel) =>
    Object.entries(asRecord(answers[channel].detail?.health)).map(([name, h]) => {
      const health = asRecord(h);
      return { channel, name, status: String(health.status ?? 'unknown'), error: String(health.error ?? health.last_error ?? '') };
    }));
  const defaults = (type: 'sms' | 'email') => Object.entries(providers[type]).filter(([, p]) => asRecord(p).Default === true).map(([n]) => n);
  const autoenroll = withAction('enrollment', 'autoenrollment');
  const otppin = withAction('authentication', 'otppin');
  const checklist: CheckItem[] = [
    { label: 'User store', done: resolvers.length > 0, detail: resolvers.length ? resolvers.join(', ') : 'No LDAP, SQL or file user store yet.', hint: '/system/setResolver', ...link('/manage/resolvers', '/manage/resolvers', 'Add a user store') },
    {
      label: 'Realm', done: Object.keys(realms).length > 0,
      detail: Object.keys(realms).length ? `${Object.keys(realms).join(', ')}${defaultRealm ? ` (default: ${defaultRealm})` : ' — no default realm'}` : 'No realm groups the user stores yet.',
      hint: '/system/setRealm, /system/setDefaultRealm', ...link('/manage/realms', '/manage/realms', 'Set up realms'),
    },
    { label: 'Autoenrollment policy', done: autoenroll.length > 0, detail: autoenroll.length ? autoenroll.map((p) => `${p.action} (realm ${p.realm})`).join('; ') : 'Users without a token are not enrolled on their first login.', hint: 'scope=enrollment, action=autoenrollment', ...link('/manage/policies', '/manage/policies', 'Add a policy') },
    { label: 'otppin policy', done: otppin.length > 0, detail: otppin.length ? otppin.map((p) => `${p.action} (realm ${p.realm})`).join('; ') : 'The PIN is the token PIN (otppin=0); the seed scenario uses the directory password (otppin=1).', hint: 'scope=authentication, action=otppin', ...link('/manage/policies', '/manage/policies', 'Add a policy') },
    {
      label: 'SMS or e-mail provider', done: defaults('sms').length + defaults('email').length > 0,
      detail: [['SMS', defaults('sms')], ['E-mail', defaults('email')]].map(([k, v]) => `${k}: ${(v as string[]).length ? (v as string[]).join(', ') : 'none'}`).join(' · '),
      hint: '/system/setProvider, /system/setDefaultProvider', ...link('/manage/providers', '/manage/providers', 'Set up a provider'),
    },
  ];
  const log = asRecord(await call.api('/system/deliveryLog', { status: 'failed', pagesize: '5' }));
  const failedDeliveries = (Array.isArray(log.entries) ? log.entries : []) as { channel: string; to: string; provider: string | null; error: string | null; createdAt: number; user: string | null }[];
  const audit = asRecord(await call.api('/audit/search', { action: 'validate/*', success: '0', rp: '5', sortorder: 'desc' }));
  const failedLogins = ((Array.isArray(audit.rows) ? audit.rows : []) as { cell: unknown[] }[]).map(({ cell }) => ({
    time: String(cell[1]), action: String(cell[4]), user: String(cell[8] ?? ''), realm: String(cell[9] ?? ''), detail: String(cell[11] ?? ''), client: String(cell[14] ?? ''),
  }));
  return {
    providerHealth,
    resolverNames: resolvers,
    // with no admin-scope policy every administrator may do everything in every realm
    adminUnrestricted: !policies.some((p) => p.scope === 'admin'),
    checklist,
    ready: checklist.every((c) => c.done),
    failedDeliveries,
    failedLogins,
    failedDeliveriesTotal: Number(log.total ?? 0),
    failedLoginsTotal: Number(audit.total ?? 0),
  };
}
