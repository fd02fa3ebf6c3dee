import type { Logger } from 'pino';
import { Errors } from '../errors.ts';
import type { Db } from '../store/db.ts';
import { bumpRevision, type RevisionWatcher } from '../store/revisions.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { type ActionValue, type Scope, isScope } from './catalogue.ts';
import { type AdminDecision, TimeOfRequest, evaluateAdmin, isFlag, quickDecision } from './evaluate.ts';
import {
  type CompiledPolicy,
  NO,
  type Policy,
  type PolicyInput,
  clientWithoutHostBits,
  compilePolicy,
  matchRealm,
  matchUser,
  policyValue,
  prepareSubject,
} from './match.ts';
import { PolicyDefinitionError, type UnsupportedAction } from './parse.ts';
import { PolicyIndex } from './policy-index.ts';
import { type SimulationInput, type SimulationResult, simulate } from './simulate.ts';
import { type NameUsage, policiesNaming } from './usage.ts';

export type { Policy, PolicyInput } from './match.ts';
export type { Scope } from './catalogue.ts';
export type { SimulationInput, SimulationResult } from './simulate.ts';

/** The user (and request) a policy question is about. */
export interface PolicySubject {
  login: string;
  realm: string;
  resolver?: string;
  /** client IP of the request; undefined = client conditions are not checked */
  client?: string;
  /** user-store attributes for `#attr` conditions (mobile, email, …) */
  userInfo?: Record<string, string | undefined>;
}

export interface PolicyQueryOptions {
  /** Skip time conditions (LinOTP's has_client_policy: autoenrollment, passOnNoToken, …). @default false */
  ignoreTime?: boolean;
}

/** `/system/getPolicy` filters; every given filter must hold. */
export interface PolicyFilter {
  /** exact names (a comma list is split) */
  name?: string | string[];
  scope?: string;
  /** policies that apply to this realm (listed or `*`, not excluded) */
  realm?: string;
  /** policies whose user condition matches this login (`login@realm` also checks the realm part) */
  user?: string;
  /** policies that carry this action (or `*`) */
  action?: string;
  /** include inactive policies (LinOTP's display_inactive) @default false */
  includeInactive?: boolean;
}

export interface WriteOptions {
  /** store even when the change leaves no administrator with system/write (LinOTP's enforce) @default false */
  enforce?: boolean;
}

/**
 * Policies: persistence in the `policies` table, an in-process cache of
 * compiled policies (invalidated through the `policies` revision, so other
 * nodes re-read), and the questions validation and administration ask.
 * Evaluation never touches the database.
 */
export class PolicyService {
  private readonly db: Db;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private index = new PolicyIndex([]);
  private reported = new Set<string>();
  private readonly warnedUnsupported = new Set<string>();
  private loading: Promise<void> | undefined;

  constructor(deps: { db: Db; logger: Logger; clock?: Clock }) {
    this.db = deps.db;
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
  }

  /** Stored policies that do not validate (see load): the server refuses to start on any. */
  rejected: { policy: string; problem: string }[] = [];

  /**
   * (Re)reads every policy. A stored policy that no longer validates is
   * logged and listed in `rejected`; a running node keeps the version it had
   * compiled before (a write around the API cannot switch a policy off), and
   * the server refuses to start on it (validateStoredPolicies). A stored policy with actions otpd does not support
   * (stored before otpd refused them) is loaded without those actions, and a
   * warning names the policy and each action, once per process: the rest of
   * the policy stays in force, the unsupported action is not.
   */
  async load(): Promise<void> {
    const rows = await this.db.kysely.selectFrom('policies').selectAll().execute();
    const compiled: CompiledPolicy[] = [];
    const rejected: { policy: string; problem: string }[] = [];
    const previous = new Map(this.index.all.map((p) => [p.name, p]));
    for (const row of rows) {
      const input = { ...row, active: Number(row.active) === 1 };
      try {
        const p = compilePolicy(input, { stored: true });
        for (const u of p.unsupported) this.warnUnsupported(p, u);
        compiled.push(p);
      } catch (e) {
        // Stored before host bits were refused: keep what it matched then (no silent change), and say so.
        const widened = e instanceof PolicyDefinitionError && e.field === 'client' ? clientWithoutHostBits(row.client) : undefined;
        if (widened !== undefined) {
          try {
            const p = compilePolicy({ ...input, client: widened }, { stored: true });
            for (const u of p.unsupported) this.warnUnsupported(p, u);
            compiled.push(p);
            this.logger.warn(
              { policy: row.name, stored: row.client, applied: widened },
              'stored policy client has host bits set; it is applied as the network shown, and setPolicy refuses the stored value: save the policy with the network address',
            );
            continue;
          } catch {
            // invalid for another reason too
          }
        }
        const kept = previous.get(row.name);
        if (kept) compiled.push(kept);
        rejected.push({ policy: row.name, problem: (e as Error).message });
        this.logger.error({ policy: row.name, err: e }, kept ? 'stored policy is invalid; the version loaded before stays in force' : 'stored policy is invalid and is not in force');
      }
    }
    this.rejected = rejected;
    this.index = new PolicyIndex(compiled);
    this.reported.clear();
  }

  /** Stored policies with actions otpd does not support (not in force), by policy name. */
  unsupportedActions(): { policy: string; scope: Scope; item: string; action: string; reason: string }[] {
    return this.index.all.flatMap((p) => p.unsupported.map((u) => ({ policy: p.name, scope: p.scope, ...u })));
  }

  private warnUnsupported(p: CompiledPolicy, u: UnsupportedAction): void {
    const key = `${p.name}\0${p.scope}\0${u.item}`;
    if (this.warnedUnsupported.has(key)) return;
    this.warnedUnsupported.add(key);
    this.logger.warn(
      { policy: p.name, scope: p.scope, action: u.item, reason: u.reason },
      `stored policy '${p.name}' (scope ${p.scope}) carries the action '${u.item}', which otpd does not support: it is NOT in force (the rest of the policy is). ${u.reason} Change or delete the policy; setPolicy and importPolicy refuse this action.`,
    );
  }

  /** Re-reads the policies whenever any node changes them; a failed reload is logged and counted by the watcher. */
  watch(watcher: RevisionWatcher): void {
    watcher.on('policies', () => (this.loading = this.load()));
  }

  /** Resolves when a reload started by the watcher has finished, failed or not (for tests and the CLI). */
  async settled(): Promise<void> {
    await this.loading?.catch(() => undefined);
  }

  /** Typed value of the winning policy, or undefined when no active policy sets it. */
  value(scope: Scope, action: string, subject: PolicySubject, opts?: PolicyQueryOptions): ActionValue | undefined {
    const candidates = this.index.forRealm(scope, action, subject.realm);
    if (candidates.length === 0) return undefined;
    const time = new TimeOfRequest(this.clock.now());
    const d = quickDecision(candidates, prepareSubject(subject), time, opts?.ignoreTime);
    if (d.conflicts) this.reportConflict(scope, action, d.winner!.name, d.conflicts);
    return d.value;
  }

  /**
   * Whether the winning policy switches the action on (passthru,
   * trigger_sms, detail_on_*, authorize, …). Unlike LinOTP, `!passthru` or
   * `passthru=false` in the winning policy means off, not on.
   */
  has(scope: Scope, action: string, subject: PolicySubject, opts?: PolicyQueryOptions): boolean {
    const v = this.value(scope, action, subject, opts);
    return v !== undefined && v !== false;
  }

  /** Whether any active policy of the scope (carrying the action, when given) exists. */
  anyPolicy(scope: Scope, action?: string): boolean {
    return action === undefined ? this.index.activeInScope(scope).length > 0 : this.index.candidates(scope, action).length > 0;
  }

  /**
   * Administrator authorisation (scopes admin, system, audit): with no active
   * policy in the scope everything is allowed in every realm; otherwise the
   * admin (`login` or `login@realm`) must match a policy granting the action,
   * and may act in the union of those policies' realms.
   */
  adminAllowed(admin: string, scope: 'admin' | 'system' | 'audit', action: string): { allowed: boolean; realms: '*' | string[] } {
    const d = this.adminDecision(admin, scope, action, this.index.all);
    return { allowed: d.allowed, realms: d.realms };
  }

  private adminDecision(admin: string, scope: 'admin' | 'system' | 'audit', action: string, policies: readonly CompiledPolicy[]): AdminDecision {
    const at = admin.lastIndexOf('@');
    const subject = prepareSubject(at < 0 ? { login: admin } : { login: admin.slice(0, at), realm: admin.slice(at + 1) });
    return evaluateAdmin(policies, scope, action, subject, this.clock.now());
  }

  /**
   * Creates or replaces a policy after validating it. Refuses (code 410) a
   * change after which no administrator may write the system configuration,
   * unless `enforce`.
   */
  async set(input: PolicyInput, opts: WriteOptions = {}): Promise<void> {
    const p = compilePolicy(input);
    this.checkLockout(
      [...this.index.all.filter((x) => x.name !== p.name), p],
      opts,
    );
    await this.db.kysely.transaction().execute(async (trx) => {
      const row = toRow(p);
      const existing = await trx.selectFrom('policies').select('name').where('name', '=', p.name).executeTakeFirst();
      if (existing) await trx.updateTable('policies').set(row).where('name', '=', p.name).execute();
      else await trx.insertInto('policies').values(row).execute();
    });
    await this.changed();
  }

  /**
   * Why setPolicy would refuse this policy (the catalogue's actions and values, the
   * conditions), or undefined when it would be stored. Nothing is written.
   */
  refusal(input: PolicyInput): string | undefined {
    try {
      compilePolicy(input);
      return undefined;
    } catch (e) {
      if (e instanceof PolicyDefinitionError) return e.message;
      throw e;
    }
  }

  /**
   * Validates every policy first, then stores all of them in one transaction
   * (all or none). A file with refused policies stores nothing, and the
   * error lists every refused policy with its reason (not only the first):
   * importing the rest would leave out a restriction the file meant to set.
   * Returns the names stored.
   */
  async import(inputs: PolicyInput[], opts: WriteOptions = {}): Promise<string[]> {
    return this.store(this.compileAll(inputs, 'imported'), opts);
  }

  /**
   * `/system/importPolicy`: stores every policy of the file that compiles and reports each
   * refused one with its reason (nothing refused is stored). The lock-out check covers the
   * stored ones; when it fails, nothing is stored.
   */
  async importEach(inputs: PolicyInput[], opts: WriteOptions = {}): Promise<{ imported: string[]; refused: { name: string; reason: string }[] }> {
    const { compiled, refused } = this.compileEach(inputs);
    const imported = compiled.length ? await this.store(compiled, opts) : [];
    return { imported, refused: refused.map((r) => ({ name: r.name, reason: r.error.message })) };
  }

  /**
   * Every check of {@link replace} without writing: each policy compiles (all refusals listed
   * together, as in import), no name twice, and the policies after the change (these stored or
   * replaced, `deletions` gone) leave an administrator with system/write unless `enforce`.
   * Returns the policies as they would be stored (normalized fields).
   */
  checkReplace(inputs: PolicyInput[], deletions: string[], opts: WriteOptions = {}): Policy[] {
    return this.compileReplace(inputs, deletions, opts).map(publicPolicy);
  }

  /**
   * Stores `inputs` (created or replaced) and deletes `deletions` in one transaction, after
   * {@link checkReplace}'s checks (`otpd config apply`): all or nothing.
   */
  async replace(inputs: PolicyInput[], deletions: string[], opts: WriteOptions = {}): Promise<void> {
    const compiled = this.compileReplace(inputs, deletions, opts);
    if (compiled.length === 0 && deletions.length === 0) return;
    await this.db.kysely.transaction().execute(async (trx) => {
      for (const name of deletions) await trx.deleteFrom('policies').where('name', '=', name).execute();
      for (const p of compiled) {
        await trx.deleteFrom('policies').where('name', '=', p.name).execute();
        await trx.insertInto('policies').values(toRow(p)).execute();
      }
    });
    await this.changed();
  }

  private compileReplace(inputs: PolicyInput[], deletions: string[], opts: WriteOptions): CompiledPolicy[] {
    const compiled = this.compileAll(inputs, 'stored');
    const gone = new Set([...deletions, ...compiled.map((p) => p.name)]);
    this.checkLockout([...this.index.all.filter((x) => !gone.has(x.name)), ...compiled], opts);
    return compiled;
  }

  /**
   * Compiles every policy; refusals (and names given twice) are collected and thrown together
   * as one PolicyDefinitionError, so nothing is stored when any is refused.
   */
  private compileAll(inputs: PolicyInput[], verb: 'imported' | 'stored'): CompiledPolicy[] {
    const { compiled, refused } = this.compileEach(inputs);
    if (refused.length > 0) {
      const list = refused.map((r) => `policy '${r.name}': ${r.error.message}`).join('; ');
      const message =
        refused.length === 1 && inputs.length === 1
          ? list
          : `${refused.length} of ${inputs.length} policies refused (${refused.map((r) => r.name).join(', ')}), nothing ${verb}: ${list}`;
      throw new PolicyDefinitionError(refused[0].error.field, message);
    }
    return compiled;
  }

  /** Compiles each policy; the refused ones (and names given twice) are listed, not thrown. */
  private compileEach(inputs: PolicyInput[]): { compiled: CompiledPolicy[]; refused: { name: string; error: PolicyDefinitionError }[] } {
    const compiled: CompiledPolicy[] = [];
    const names = new Set<string>();
    const refused: { name: string; error: PolicyDefinitionError }[] = [];
    for (const input of inputs) {
      let p: CompiledPolicy;
      try {
        p = compilePolicy(input);
      } catch (e) {
        if (e instanceof PolicyDefinitionError) {
          refused.push({ name: String(input.name), error: e });
          continue;
        }
        throw e;
      }
      if (names.has(p.name)) {
        refused.push({ name: p.name, error: new PolicyDefinitionError('name', 'appears twice') });
        continue;
      }
      names.add(p.name);
      compiled.push(p);
    }
    return { compiled, refused };
  }

  private async store(compiled: CompiledPolicy[], opts: WriteOptions): Promise<string[]> {
    const names = new Set(compiled.map((p) => p.name));
    this.checkLockout([...this.index.all.filter((x) => !names.has(x.name)), ...compiled], opts);
    await this.db.kysely.transaction().execute(async (trx) => {
      for (const p of compiled) {
        await trx.deleteFrom('policies').where('name', '=', p.name).execute();
        await trx.insertInto('policies').values(toRow(p)).execute();
      }
    });
    await this.changed();
    return compiled.map((p) => p.name);
  }

  /** Deletes policies by name; returns the names that existed and were deleted. */
  async delete(names: string[], opts: WriteOptions = {}): Promise<string[]> {
    const wanted = new Set(names.map((n) => n.trim()).filter(Boolean));
    this.checkLockout(this.index.all.filter((p) => !wanted.has(p.name)), opts);
    const deleted: string[] = [];
    await this.db.kysely.transaction().execute(async (trx) => {
      for (const name of wanted) {
        const res = await trx.deleteFrom('policies').where('name', '=', name).executeTakeFirst();
        if (Number(res.numDeletedRows) > 0) deleted.push(name);
      }
    });
    if (deleted.length > 0) await this.changed();
    return deleted;
  }

  /** Policies (by name) that pass every given filter. */
  list(filter: PolicyFilter = {}): Policy[] {
    const names =
      filter.name === undefined
        ? undefined
        : new Set((Array.isArray(filter.name) ? filter.name : filter.name.split(',')).map((n) => n.trim()).filter(Boolean));
    let realmSubject: ReturnType<typeof prepareSubject> | undefined;
    if (filter.realm) realmSubject = prepareSubject({ realm: filter.realm.trim() });
    let userSubject: ReturnType<typeof prepareSubject> | undefined;
    if (filter.user) {
      const u = filter.user.trim();
      const at = u.lastIndexOf('@');
      userSubject = prepareSubject(at < 0 ? { login: u } : { login: u.slice(0, at), realm: u.slice(at + 1) });
    }
    if (filter.scope !== undefined && filter.scope !== '' && !isScope(filter.scope)) return [];
    return this.index.all
      .filter((p) => filter.includeInactive || p.active)
      .filter((p) => !names || names.size === 0 || names.has(p.name))
      .filter((p) => !filter.scope || p.scope === filter.scope)
      .filter((p) => !realmSubject || matchRealm(p.realmCond, realmSubject) !== NO)
      .filter((p) => !userSubject || matchUser(p.userCond, userSubject) !== NO)
      .filter((p) => !filter.action || policyValue(p, filter.action, isFlag(p.scope, filter.action)) !== undefined)
      .map(publicPolicy);
  }

  /**
   * Stored policies whose `action` (e.g. `sms_provider`) lists `name`, read from the
   * database rather than the cache so a policy another node just stored counts; see
   * usage.ts for the ones that cannot be told. Rejects when the policies cannot be read.
   */
  async policiesNaming(action: string, name: string): Promise<NameUsage> {
    return policiesNaming(await this.db.kysely.selectFrom('policies').select(['name', 'scope', 'action']).execute(), action, name);
  }

  /** Which policies match, the winner and value per action, and why the others lost. */
  simulate(input: SimulationInput): SimulationResult {
    return simulate(this.index.all, input, this.clock.now());
  }

  private checkLockout(after: readonly CompiledPolicy[], opts: WriteOptions): void {
    if (opts.enforce) return;
    const system = after.filter((p) => p.scope === 'system' && p.active);
    if (system.length === 0) return;
    // a write policy with an empty user field grants nobody
    const grants = system.some((p) => policyValue(p, 'write', true) === true && !p.userCond.none);
    if (!grants) {
      throw Errors.policyLockout();
    }
  }

  private async changed(): Promise<void> {
    await bumpRevision(this.db, 'policies');
    await this.load();
  }

  private reportConflict(scope: Scope, action: string, winner: string, others: string[]): void {
    const key = `${scope}\0${action}\0${winner}\0${others.join(',')}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.logger.warn(
      { scope, action, winner, conflicting: others },
      `policies ${[winner, ...others].join(', ')} are equally specific but set different values for ${scope}/${action}; '${winner}' wins by name order`,
    );
  }
}

/** The `policies` row of a policy: its public fields, `active` as 1/0. */
function toRow(p: CompiledPolicy) {
  return { ...publicPolicy(p), active: p.active ? 1 : 0 };
}

function publicPolicy(p: CompiledPolicy): Policy {
  return { name: p.name, scope: p.scope, action: p.action, realm: p.realm, user: p.user, client: p.client, time: p.time, active: p.active };
}

/** Throws `Errors.storedPolicyInvalid` naming every stored policy that does not validate; called once at server start. */
export function validateStoredPolicies(policies: { rejected: readonly { policy: string; problem: string }[] }): void {
  if (policies.rejected.length > 0) throw Errors.storedPolicyInvalid({ problems: policies.rejected.map((p) => `${p.policy}: ${p.problem}`).join('; ') });
}
