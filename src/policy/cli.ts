import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SCOPES, type Scope } from './catalogue.ts';
import { formatPolicyFile, parsePolicyFile, withImportDefaults } from './policyfile.ts';
import type { PolicyService } from './service.ts';
import { formatSimulation } from './simulate.ts';

type Open = () => Promise<{ policies: PolicyService; close(): Promise<void> }>;

function collectAttr(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new Error(`--attr expects key=value, got '${value}'`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

async function withPolicies<T>(open: Open, fn: (policies: PolicyService) => Promise<T> | T): Promise<T> {
  const handle = await open();
  try {
    return await fn(handle.policies);
  } finally {
    await handle.close();
  }
}

/**
 * `otpd policy …`: simulate, list, export, import. `open` gives a loaded
 * PolicyService on the configured database and a way to close it.
 * @param print where output goes @default process.stdout
 */
export function registerPolicyCommands(program: Command, open: Open, print: (text: string) => void = (text) => void process.stdout.write(text)): void {
  const policy = program.command('policy').description('inspect, simulate, export and import policies');

  policy
    .command('simulate')
    .description('which policies match a user/client, which one wins for each action, and why the others lost')
    .option('--user <login>', 'login, or login@realm')
    .option('--realm <realm>', 'realm of the user')
    .option('--client <ip>', 'client IP address of the request')
    .option('--scope <scope>', `only this scope (${SCOPES.join(', ')})`)
    .option('--action <action>', 'only this action')
    .option('--resolver <name>', "the user's resolver (for 'resolver:' conditions)")
    .option('--attr <key=value>', 'a user attribute for #attr conditions (repeatable)', collectAttr, {})
    .option('--at <time>', 'evaluate at this time (ISO 8601) instead of now')
    .option('--ignore-time', 'ignore time conditions, as autoenrollment and passOnNoToken checks do')
    .option('--json', 'print the full result as JSON')
    .action(async (opts: {
      user?: string;
      realm?: string;
      client?: string;
      scope?: string;
      action?: string;
      resolver?: string;
      attr: Record<string, string>;
      at?: string;
      ignoreTime?: boolean;
      json?: boolean;
    }) => {
      let at: number | undefined;
      if (opts.at !== undefined) {
        at = Date.parse(opts.at);
        if (Number.isNaN(at)) throw new Error(`--at: '${opts.at}' is not a date/time`);
      }
      const result = await withPolicies(open, (p) =>
        p.simulate({
          user: opts.user,
          realm: opts.realm,
          client: opts.client,
          scope: opts.scope as Scope | undefined,
          action: opts.action,
          resolver: opts.resolver,
          userInfo: Object.keys(opts.attr).length > 0 ? opts.attr : undefined,
          at,
          ignoreTime: opts.ignoreTime,
        }),
      );
      print(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatSimulation(result)}\n`);
    });

  policy
    .command('list')
    .description('list policies')
    .option('--scope <scope>', 'only this scope')
    .option('--all', 'include inactive policies')
    .option('--json', 'print JSON')
    .action(async (opts: { scope?: string; all?: boolean; json?: boolean }) => {
      const { list, unsupported } = await withPolicies(open, (p) => ({
        list: p.list({ scope: opts.scope, includeInactive: opts.all }),
        unsupported: p.unsupportedActions(),
      }));
      if (opts.json) {
        print(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      for (const p of list) {
        print(
          `${p.active ? ' ' : '-'} ${p.name} [${p.scope}] ${p.action} | realm ${p.realm} | user ${p.user || '(none)'} | client ${p.client || '(none)'}${p.time !== '* * * * * *;' ? ` | time ${p.time}` : ''}\n`,
        );
        const inert = unsupported.filter((u) => u.policy === p.name);
        if (inert.length > 0) print(`    ! NOT IN FORCE, not supported by otpd: ${inert.map((u) => u.item).join(', ')}\n`);
      }
      if (list.length === 0) print('(no policies)\n');
    });

  policy
    .command('export')
    .description('write all policies as a policy.cfg file (LinOTP format)')
    .argument('[file]', 'output file; standard output when omitted')
    .action(async (file?: string) => {
      const text = formatPolicyFile(await withPolicies(open, (p) => p.list({ includeInactive: true })));
      if (file) await writeFile(file, text);
      else print(text);
    });

  policy
    .command('import')
    .description('import a policy.cfg file (LinOTP format); all policies are validated first, then stored together')
    .argument('<file>', 'policy.cfg file')
    .option('--enforce', 'store even if no administrator may write the system configuration afterwards')
    .action(async (file: string, opts: { enforce?: boolean }) => {
      const inputs = withImportDefaults(parsePolicyFile(await readFile(file, 'utf8')));
      const names = await withPolicies(open, (p) => p.import(inputs, { enforce: opts.enforce }));
      print(`imported ${names.length} ${names.length === 1 ? 'policy' : 'policies'}: ${names.join(', ')}\n`);
    });
}
