import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readPassword } from '../cli/prompt.ts';
import type { ImportServices } from './linotp/apply.ts';

/** Runs `fn` with the services of the configured database, closing them after. */
type WithServices = <T>(fn: (s: ImportServices) => Promise<T>) => Promise<T>;

/**
 * `otpd import linotp` (a LinOTP database and its encKey) and `otpd tokens import` (a seed file).
 * The importers (~0.5 s of modules) load when their command runs, not for every `otpd` call.
 * @param print where output goes @default process.stdout
 * @param fail what a refusal does @default `otpd: <message>` on stderr, exit code 1
 */
export function registerImportCommands(
  program: Command, withServices: WithServices,
  print: (text: string) => void = (text) => void process.stdout.write(text),
  fail: (e: Error) => void = (e) => {
    process.stderr.write(`otpd: ${e.message}\n`);
    process.exitCode = 1;
  },
): void {
  const guarded = <A extends unknown[]>(fn: (...args: A) => Promise<void>) => async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
    }
  };
  const imp = program.command('import').description('bring tokens and configuration over from another system');
  imp
    .command('linotp')
    .description("import resolvers, realms, policies, providers, system config and tokens (seeds, counters, PINs) from a LinOTP 2.x/3.x database; see docs/migration.md. Prints what was imported and every refused item with the reason; never a secret. Running it again changes nothing new")
    .requiredOption('--db <url>', "LinOTP's database: sqlite:<path>, postgres://user@host/db or mysql://user@host/db")
    .requiredOption('--enckey <file>', "LinOTP's encKey file (its SECRET_FILE)")
    .option('--dry-run', 'check everything and print what would be imported; store nothing')
    .option('--json', 'print the report as JSON')
    .action(guarded(async (opts: { db: string; enckey: string; dryRun?: boolean; json?: boolean }) => {
      const { importLinotp, formatLinotpReport } = await import('./linotp/apply.ts');
      const report = await withServices((s) => importLinotp(s, { dbUrl: opts.db, encKeyFile: opts.enckey, dryRun: opts.dryRun === true }));
      print(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatLinotpReport(report));
    }));

  const tokens = program.commands.find((c) => c.name() === 'tokens') ?? program.command('tokens').description('token tools');
  tokens
    .command('import')
    .description('import a seed file: PSKC (RFC 6030: plain, pre-shared key, password/PBKDF2) or OATH CSV (serial, seed hex, type, otplen, time step). The whole file or nothing; tokens are unassigned')
    .argument('<file>', 'the seed file')
    .requiredOption('--format <format>', 'pskc | oathcsv | linotp')
    .option('--psk <hex>', 'pre-shared AES key of an encrypted PSKC file (hex)')
    .option('--password', 'the PSKC file is password-protected: read the password from stdin (first line) or a prompt')
    .option('--realm <realms>', 'token realms (comma list)')
    .action(guarded(async (file: string, opts: { format: string; psk?: string; password?: boolean; realm?: string }) => {
      if (opts.format === 'linotp') {
        throw new Error("--format linotp: LinOTP's tokens are imported from its database with 'otpd import linotp' (the LinOTP specification names no token file format of its own)");
      }
      if (opts.psk !== undefined && !/^([0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64})$/.test(opts.psk)) throw new Error('--psk: expected an AES key of 16, 24 or 32 bytes in hex');
      const text = readFileSync(file, 'utf8');
      const password = opts.password ? await readPassword('PSKC password: ') : undefined;
      const realms = (opts.realm ?? '').split(',').map((r) => r.trim().toLowerCase()).filter(Boolean);
      const { TokenImporter } = await import('./tokens.ts');
      const result = await withServices((s) => new TokenImporter({ tokens: s.tokens, keyring: s.keyring, config: s.config, clock: s.clock })
        .importSeedFile(opts.format, text, { psk: opts.psk === undefined ? undefined : Buffer.from(opts.psk, 'hex'), password }, { realms, scope: { realms: '*' } }));
      print(`imported ${result.created.length} token(s)${result.created.length ? `: ${result.created.join(', ')}` : ''}\n`);
      if (result.kept.length) print(`already present with the same seed, kept: ${result.kept.join(', ')}\n`);
    }));
}
