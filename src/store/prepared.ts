import type { CompiledQuery, Compilable, Kysely, QueryResult } from 'kysely';

/** What a placeholder stands for in the compiled parameters: a named value, or a constant of the query. */
type Slot = { name: string } | { value: unknown };

interface Compiled {
  sql: string;
  slots: Slot[];
  names: Set<string>;
  /** The compiled query's operation node and id, as Kysely built them (with the placeholders in the node). */
  query: CompiledQuery['query'];
  queryId: CompiledQuery['queryId'];
}

const MARK = '\u0000otpd-param:';

/** Executors whose compiled queries may bypass Kysely's executor (see {@link runDirectly}). */
const direct = new WeakMap<object, (q: CompiledQuery) => Promise<QueryResult<any>>>();

/**
 * Lets prepared queries on `kysely` (a database's own Kysely, not a transaction of it) go straight
 * to `execute`, past Kysely's executor: its connection provider, result transform and their
 * promises were about a tenth of a successful `/validate/check` on SQLite, whose driver needs
 * none of them (one connection; no plugins are installed on otpd's Kysely).
 */
export function runDirectly(kysely: Kysely<any>, execute: (q: CompiledQuery) => Promise<QueryResult<any>>): void {
  direct.set(kysely, execute);
}

/**
 * A query of fixed shape on the hot path, built and compiled by Kysely once per SQL dialect and
 * then run with new values: each run costs the statement and not the query builder's immutable
 * node copies and the compiler's visit, which were about a sixth of the CPU of a successful
 * `/validate/check` (bench/cpu-ab.ts). The SQL is exactly what Kysely compiles for the query;
 * only the parameter values are swapped.
 *
 * `build` receives an object whose every property is a placeholder (a marker string) and uses
 * them where the query takes values: `(k, p) => k.updateTable('tokens').set({ counter: p.next })
 * .where('id', '=', p.id)`. A placeholder must reach the query as one bound parameter: used in
 * `sql.lit`, in an `in` list, inside a string or to decide the query's shape, it fails at the first
 * run (the check below), so a shape that depends on values needs one prepared query per shape.
 * Each run must give every value `build` used; `undefined` is refused (Kysely would have left
 * the column out, a different shape).
 */
export class PreparedQuery<P extends Record<string, unknown>, R = unknown> {
  private readonly byDialect = new Map<string, Compiled>();

  constructor(private readonly build: (kysely: Kysely<any>, p: P) => Compilable<R>) {}

  /**
   * Runs the query on `executor` (the database's Kysely, or a transaction of it) with `values`.
   * @param dialect the database's dialect name: the compiled SQL is cached per dialect
   */
  async run(executor: Kysely<any>, dialect: string, values: P): Promise<QueryResult<R>> {
    const compiled = this.bind(executor, dialect, values);
    const fast = direct.get(executor);
    return fast ? (fast(compiled) as Promise<QueryResult<R>>) : executor.executeQuery<R>(compiled);
  }

  /** The compiled query with `values` in it, for a caller that executes it itself (see run). */
  bind(executor: Kysely<any>, dialect: string, values: P): CompiledQuery<R> {
    let compiled = this.byDialect.get(dialect);
    if (!compiled) {
      compiled = this.compile(executor);
      this.byDialect.set(dialect, compiled);
    }
    const parameters = compiled.slots.map((s) => {
      if (!('name' in s)) return s.value;
      const v = values[s.name];
      if (v === undefined) throw new Error(`prepared query: no value for ${s.name}`);
      return v;
    });
    return { sql: compiled.sql, parameters, query: compiled.query, queryId: compiled.queryId };
  }

  private compile(executor: Kysely<any>): Compiled {
    const names = new Set<string>();
    const placeholders = new Proxy({} as P, {
      get: (_, name) => {
        if (typeof name !== 'string') return undefined;
        names.add(name);
        return `${MARK}${name}\u0000`;
      },
    });
    const compiled = this.build(executor, placeholders).compile();
    const seen = new Set<string>();
    const slots = compiled.parameters.map((v): Slot => {
      if (typeof v === 'string' && v.includes(MARK)) {
        const m = /^\u0000otpd-param:([^\u0000]*)\u0000$/.exec(v);
        if (!m) throw new Error(`prepared query: a placeholder is part of a value (${JSON.stringify(v)}): ${compiled.sql}`);
        seen.add(m[1]);
        return { name: m[1] };
      }
      return { value: v };
    });
    if (compiled.sql.includes(MARK)) throw new Error(`prepared query: a placeholder is in the SQL text (sql.lit?): ${compiled.sql}`);
    for (const n of names) if (!seen.has(n)) throw new Error(`prepared query: placeholder ${n} is not a bound parameter: ${compiled.sql}`);
    return { sql: compiled.sql, slots, names, query: compiled.query, queryId: compiled.queryId };
  }
}
