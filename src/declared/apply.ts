import type { Logger } from 'pino';
import { readDeclaredFile } from './file.ts';
import { applyPlan, formatPlan, planFile, type DeclaredDeps, type Plan } from './plan.ts';

export interface ApplyOptions {
  /** Show the diff only. @default false */
  dryRun?: boolean;
  /** Remove what the file's sections do not name. @default false */
  prune?: boolean;
  /** Store policies that leave no administrator with system/write. @default false */
  enforce?: boolean;
  /** Where `{env: NAME}` references are read. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads, checks and (unless `dryRun`) applies a declarative file: every object is checked
 * before the first write, so a refused file changes nothing. Returns the plan and its diff
 * text (secrets shown as `(secret)`). Throws the catalogue's errors (2707 for the file itself,
 * PlanRefused with each object's error).
 */
export async function applyDeclaredFile(path: string, deps: DeclaredDeps, opts: ApplyOptions = {}): Promise<{ plan: Plan; diff: string }> {
  const { file, source } = readDeclaredFile(path, opts.env ?? process.env);
  const plan = await planFile(file, source, deps, { prune: opts.prune, enforce: opts.enforce, fileName: path });
  if (!opts.dryRun) await applyPlan(plan);
  return { plan, diff: formatPlan(plan, { prune: opts.prune }) };
}

/**
 * `OTPD_APPLY_FILE` at `serve`: applied before the server listens; a refused file stops the
 * start (the error names the object and why). When a write fails because another node applied
 * the same file at the same moment, the file is planned and applied once more against what
 * that node wrote. The changes are logged by object (secrets never: the diff shows none).
 */
export async function applyAtStart(path: string, deps: DeclaredDeps, opts: { prune: boolean; logger: Logger }): Promise<void> {
  const { file, source } = readDeclaredFile(path);
  let plan = await planFile(file, source, deps, { prune: opts.prune, fileName: path });
  try {
    await applyPlan(plan);
  } catch (e) {
    // a concurrent start may have written first: a fresh plan decides (and reports a real refusal)
    opts.logger.warn({ file: path, err: e }, 'config file: a write failed; planning again against what is stored now');
    plan = await planFile(file, source, deps, { prune: opts.prune, fileName: path });
    await applyPlan(plan);
  }
  opts.logger.info(
    { file: path, changes: plan.changes.map((c) => `${c.kind} ${c.label}`), kept: plan.kept, notes: plan.notes },
    plan.changes.length === 0 ? 'config file applied: no changes' : `config file applied: ${plan.changes.length} change(s)`,
  );
}
