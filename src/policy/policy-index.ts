import type { Scope } from './catalogue.ts';
import { type Candidate, isFlag } from './evaluate.ts';
import { type CompiledPolicy, NO, matchRealm, policyValue, prepareSubject } from './match.ts';
import { STAR } from './parse.ts';

/**
 * Compiled policies sorted by name, with the active ones that can answer a
 * (scope, action) question precomputed on first use.
 */
export class PolicyIndex {
  readonly all: readonly CompiledPolicy[];
  private readonly byScope = new Map<Scope, CompiledPolicy[]>();
  private readonly byAction = new Map<Scope, Map<string, CompiledPolicy[]>>();
  /** scope → action → lower-case realm → candidates */
  private readonly byRealm = new Map<Scope, Map<string, Map<string, Candidate[]>>>();
  private realmMemoSize = 0;

  constructor(policies: CompiledPolicy[]) {
    this.all = [...policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const p of this.all) {
      if (!p.active) continue;
      let list = this.byScope.get(p.scope);
      if (!list) this.byScope.set(p.scope, (list = []));
      list.push(p);
    }
  }

  activeInScope(scope: Scope): readonly CompiledPolicy[] {
    return this.byScope.get(scope) ?? [];
  }

  /** Active policies of the scope that give the action a value (explicitly, or `*` for flags). */
  candidates(scope: Scope, action: string): readonly CompiledPolicy[] {
    let inScope = this.byAction.get(scope);
    if (!inScope) this.byAction.set(scope, (inScope = new Map()));
    let list = inScope.get(action);
    if (!list) {
      const flag = isFlag(scope, action);
      list = this.activeInScope(scope).filter((p) => p.actions.has(action) || (flag && p.actions.has(STAR)));
      // unknown action names come from code, not from requests; still, keep the memo bounded
      if (inScope.size < 1000) inScope.set(action, list);
    }
    return list;
  }

  /**
   * Candidates for a request in `realm`: policies whose realm condition
   * passes, with their typed value and realm match class, memoised per realm.
   */
  forRealm(scope: Scope, action: string, realm: string | undefined): readonly Candidate[] {
    const key = realm === undefined ? '\0' : realm.toLowerCase();
    let byAction = this.byRealm.get(scope);
    if (!byAction) this.byRealm.set(scope, (byAction = new Map()));
    let byRealm = byAction.get(action);
    if (!byRealm) byAction.set(action, (byRealm = new Map()));
    let list = byRealm.get(key);
    if (list) return list;
    const flag = isFlag(scope, action);
    const subject = prepareSubject({ realm });
    list = [];
    for (const p of this.candidates(scope, action)) {
      const cls = matchRealm(p.realmCond, subject);
      if (cls === NO) continue;
      list.push({ policy: p, value: policyValue(p, action, flag)!, realm: cls });
    }
    // realm names come from requests: bound the memo
    if (this.realmMemoSize < 50_000) {
      byRealm.set(key, list);
      this.realmMemoSize++;
    }
    return list;
  }
}
