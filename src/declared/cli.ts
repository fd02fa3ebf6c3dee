import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { describeError, processOutput, runWith, type CliOutput } from '../cli/output.ts';
import type { DeclaredDeps } from './plan.ts';

type Open = () => Promise<DeclaredDeps & { close(): Promise<void> }>;

/**
 * A refusal as one line; a plan's refusals carry each object's code in the message already.
 * The plan module (with the schema and YAML libraries, ~0.8 s) loads only when a command runs,
 * so `otpd --help` does not wait for it.
 */
async function describer(): Promise<(e: unknown) => string> {
  const { PlanRefused } = await import('./plan.ts');
  return (e) => (e instanceof PlanRefused ? e.message : describeError(e));
}

/**
 * `otpd config apply FILE` and `otpd config export [FILE]` (docs/config-as-code.md).
 * `open` gives the services of the configured instance and a way to close them.
 */
export function registerConfigCommands(program: Command, open: Open, io: CliOutput = processOutput): void {
  const config = program.command('config').description('configuration as code: apply or export resolvers, realms, providers, policies, RADIUS clients and config keys (docs/config-as-code.md)');

  config
    .command('apply')
    .description('show what FILE (YAML, or JSON by its .json name) changes and apply it; every object is checked first, so a refused file changes nothing. Secrets come from {env: NAME} / {file: PATH} references')
    .argument('<file>', 'declarative configuration file')
    .option('--dry-run', 'show the changes only')
    .option('--prune', 'also remove stored objects of the sections in the file that the file does not name')
    .option('--enforce', 'store policies even if no administrator may write the system configuration afterwards')
    .action(async (file: string, opts: { dryRun?: boolean; prune?: boolean; enforce?: boolean }) => {
      const { applyDeclaredFile } = await import('./apply.ts');
      return runWith(open, io, async (deps) => {
        const { plan, diff } = await applyDeclaredFile(file, deps, opts);
        io.out(diff);
        if (plan.changes.length > 0) io.out(opts.dryRun ? 'dry run: nothing written\n' : 'applied\n');
      }, { describe: await describer(), footer: 'nothing was changed\n' });
    });

  config
    .command('export')
    .description('write the stored configuration as a declarative file; each secret becomes an {env: OTPD_SECRET_…} reference, never its value')
    .argument('[file]', 'output file (YAML, or JSON by its .json name); standard output when omitted')
    .option('--format <format>', 'yaml or json (default: by the file name, else yaml)')
    .action(async (file: string | undefined, opts: { format?: string }) => {
      const [{ exportState }, { formatDeclaredFile, isJsonName }] = await Promise.all([import('./export.ts'), import('./file.ts')]);
      return runWith(open, io, async (deps) => {
        const format = opts.format ?? (file && isJsonName(file) ? 'json' : 'yaml');
        if (format !== 'yaml' && format !== 'json') throw new Error(`--format: '${format}' is not yaml or json`);
        const { file: state, notes } = await exportState(deps);
        const text = formatDeclaredFile(state, format);
        for (const n of notes) io.err(`note: ${n}\n`);
        if (file) await writeFile(file, text, { mode: 0o600 });
        else io.out(text);
      }, { describe: await describer() });
    });
}
