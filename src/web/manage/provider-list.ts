import type { PageCall } from './session.ts';
import type { ProviderClass, SchemaNode } from './provider-forms.ts';

/**
 * What the provider pages read, through the API's routes: the classes with their schemas
 * (`/system/getProviderDef`), and per channel the providers (`/system/getProvider`) with
 * otpd's `detail`: health, the default provider and the policies' failover chains.
 */

export type Channel = 'sms' | 'email';
export const CHANNELS: Record<Channel, { label: string; lower: string }> = { sms: { label: 'SMS', lower: 'SMS' }, email: { label: 'E-mail', lower: 'e-mail' } };
export const isChannel = (t: string): t is Channel => t === 'sms' || t === 'email';

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

export async function providerClasses(call: PageCall): Promise<ProviderClass[]> {
  return Object.entries(asRecord(await call.api('/system/getProviderDef'))).map(([className, d]) => {
    const def = asRecord(d);
    return { className, type: def.type === 'email' ? 'email' : 'sms', name: String(def.name ?? className), schema: asRecord(def.schema) as SchemaNode };
  });
}

/** A health state in words, with the colour class of its word. */
export interface HealthView { word: string; tone: 'ok' | 'bad' | 'warn'; text: string; until?: number }

function healthView(h: Record<string, unknown>): HealthView {
  const lastError = String(h.last_error ?? '');
  const failures = Number(h.failures ?? 0);
  switch (h.status) {
    case 'backing-off':
      return { word: 'backing off', tone: 'bad', until: Number(h.down_until), text: `${failures} ${failures === 1 ? 'failure' : 'failures'} in a row; skipped until the back-off ends. Last error: ${lastError}` };
    case 'probing':
      return { word: 'recovering', tone: 'warn', text: `The back-off is over (or its health probe answered): the next message decides. Last error: ${lastError}` };
    case 'unusable':
      return { word: 'unusable', tone: 'bad', text: String(h.error ?? lastError) };
    default:
      return { word: 'healthy', tone: 'ok', text: '' };
  }
}

export interface ProviderRow {
  type: Channel;
  name: string;
  className: string;
  classLabel: string;
  timeout: string;
  isDefault: boolean;
  managed: boolean;
  /** The censored config (absent for managed providers). */
  config?: Record<string, unknown>;
  health: HealthView;
  /** Policies whose chain names it. */
  policies: string[];
}

export interface FailoverChain { policy: string; active: boolean; realm: string; user: string; client: string; providers: { name: string; known: boolean }[] }

export interface ChannelFacts { type: Channel; rows: ProviderRow[]; default: string | null; failover: FailoverChain[] }

/** The providers of one channel with health, the default and the failover chains. */
export async function channelFacts(call: PageCall, type: Channel, classes: ProviderClass[]): Promise<ChannelFacts> {
  const { value, detail } = await call.answer('/system/getProvider', { type });
  const health = asRecord(detail?.health);
  const names = Object.keys(asRecord(value));
  const failover = (Array.isArray(detail?.failover) ? detail.failover : []).map((c) => {
    const chain = asRecord(c);
    return {
      policy: String(chain.policy), active: chain.active === true, realm: String(chain.realm ?? ''), user: String(chain.user ?? ''), client: String(chain.client ?? ''),
      providers: ((chain.providers as string[] | undefined) ?? []).map((name) => ({ name, known: names.includes(name) })),
    };
  });
  const rows = Object.entries(asRecord(value)).map(([name, p]): ProviderRow => {
    const v = asRecord(p);
    const className = String(v.Class);
    let config: Record<string, unknown> | undefined;
    try {
      config = v.Managed ? undefined : asRecord(JSON.parse(String(v.Config ?? '{}')));
    } catch {
      config = {};
    }
    return {
      type, name, className, classLabel: classes.find((c) => c.className === className)?.name ?? className, timeout: String(v.Timeout ?? ''),
      isDefault: v.Default === true, managed: v.Managed === true, ...(config ? { config } : {}),
      health: healthView(asRecord(health[name])),
      policies: failover.filter((c) => c.providers.some((x) => x.name === name)).map((c) => c.policy),
    };
  });
  return { type, rows, default: typeof detail?.default === 'string' ? detail.default : null, failover };
}

/** One provider, or undefined. */
export async function oneProvider(call: PageCall, type: Channel, name: string, classes: ProviderClass[]): Promise<{ row: ProviderRow; facts: ChannelFacts } | undefined> {
  const facts = await channelFacts(call, type, classes);
  const row = facts.rows.find((r) => r.name === name);
  return row ? { row, facts } : undefined;
}
