import { openForeignDatabase } from '../../store/foreign.ts';

/**
 * The LinOTP database as otpd reads it. spec/linotp.md describes the data (the token fields of
 * `/admin/show`, the `LinOtpKeyEnc`/`LinOtpKeyIV`/`LinOtpPinHash`/`LinOtpSeed` columns, config
 * entries `linotp.<name>` with encrypted ones as `enclinotp.<name>`, policies, resolvers and realms
 * as config entries) but no table layout; otpd reads this one (docs/migration.md):
 *
 * - `Config` (`Key`, `Value`, `Type`, `Description`): every configuration entry.
 * - `Token`: one row per token, columns `LinOtp` + the `/admin/show` field name (`LinOtpTokenSerialnumber`,
 *   `LinOtpTokenType`, `LinOtpTokenDesc`, `LinOtpTokenInfo`, `LinOtpIdResClass`, `LinOtpUserid`,
 *   `LinOtpOtpLen`, `LinOtpMaxFail`, `LinOtpIsactive`, `LinOtpFailCount`, `LinOtpCount`,
 *   `LinOtpCountWindow`, `LinOtpSyncWindow`, `LinOtpTokenId`) and the secret columns of spec 9.2.
 * - `Realm` (`id`, `name`) and `TokenRealm` (`token_id`, `realm_id`): the realms of each token.
 *
 * Column names are matched case-insensitively (PostgreSQL folds unquoted names).
 */
export interface LinotpConfigRow {
  key: string;
  value: string;
  type: string;
}

export interface LinotpSnapshot {
  config: LinotpConfigRow[];
  /** Token rows with lower-case column names. */
  tokens: Record<string, unknown>[];
  /** token id → realm names (lower case). */
  tokenRealms: Map<number, string[]>;
}

const lower = (row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v]));
const str = (v: unknown): string => (v === null || v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/** Reads the tables otpd imports; throws naming the database (password censored) when a table is missing. */
export async function readLinotpDatabase(url: string): Promise<LinotpSnapshot> {
  const db = await openForeignDatabase(url);
  try {
    const read = async (table: string) => {
      try {
        return ((await db.kysely.selectFrom(table).selectAll().execute()) as Record<string, unknown>[]).map(lower);
      } catch (e) {
        throw new Error(`${db.safeUrl}: cannot read table ${table} (${(e as Error).message.split('\n')[0]}): is this a LinOTP database?`);
      }
    };
    // in a stable order whatever the database returns: config by key, tokens by id
    const config = (await read('Config')).map((r) => ({ key: str(r.key), value: str(r.value), type: str(r.type) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const tokens = (await read('Token')).sort((a, b) => Number(a.linotptokenid) - Number(b.linotptokenid));
    const realms = new Map((await read('Realm')).map((r) => [Number(r.id), str(r.name).toLowerCase()]));
    const tokenRealms = new Map<number, string[]>();
    for (const r of await read('TokenRealm')) {
      const realm = realms.get(Number(r.realm_id));
      if (realm === undefined) continue;
      const id = Number(r.token_id);
      tokenRealms.set(id, [...(tokenRealms.get(id) ?? []), realm]);
    }
    return { config, tokens, tokenRealms };
  } finally {
    await db.close();
  }
}
