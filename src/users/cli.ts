import type { Command } from 'commander';
import { processOutput, runWith, type CliOutput } from '../cli/output.ts';
import type { UserDirectory } from './directory.ts';
import type { UserInfo } from './types.ts';

type Open = () => Promise<{ users: UserDirectory; close(): Promise<void> }>;

const attributes = (u: UserInfo): string =>
  Object.entries(u).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`).join(' ');

/**
 * `otpd resolver test NAME [--user LOGIN]`: the test of `/system/testResolver` (connect, bind,
 * count, one sample user; with `--user` that user looked up) on a stored resolver, as plain
 * lines. Exit code 0 when the store answers (and the user is found), else 1.
 */
export function registerResolverCommands(program: Command, open: Open, io: CliOutput = processOutput): void {
  const resolver = program.command('resolver').description('user stores (resolvers)');
  resolver
    .command('test')
    .description('connect to a stored resolver, bind, count users and show one; with --user, look that login up. Exit code 1 when it fails')
    .argument('<name>', 'resolver name')
    .option('--user <login>', 'also look up this login')
    .option('--json', 'print the result as JSON (the value of /system/testResolver)')
    .action((name: string, opts: { user?: string; json?: boolean }) =>
      runWith(open, io, async ({ users }) => {
        const r = await users.testResolver(name, undefined, undefined, opts.user);
        const userMissing = opts.user !== undefined && (r.user === null || r.lookupError !== undefined);
        if (opts.json) io.out(`${JSON.stringify(r, null, 2)}\n`);
        else {
          io.out(`resolver ${name}: ${r.ok ? 'ok' : 'FAILED'}\n`);
          for (const step of r.steps) io.out(`  ${step}\n`);
          if (r.error) io.out(`  error: ${r.error}\n`);
          if (r.userCount !== undefined) io.out(`  users: ${r.userCount}\n`);
          if (r.sample) io.out(`  sample user: ${attributes(r.sample)}\n`);
          if (opts.user !== undefined && r.ok) {
            if (r.lookupError) io.out(`  user ${opts.user}: lookup failed: ${r.lookupError}\n`);
            else if (r.user) io.out(`  user ${opts.user}: found: ${attributes(r.user)}\n`);
            else io.out(`  user ${opts.user}: not found\n`);
          }
        }
        if (!r.ok || userMissing) io.failed(1);
      }));
}
