import { Command, Option } from 'commander';
import { loadSettings, SettingsError, type Settings } from './config/settings.ts';
import { readPassword } from './cli/prompt.ts';
import { createLogger, createServices } from './services.ts';
import { startServer } from './server.ts';
import { auditChainKey, verifyAuditChain } from './audit/writer.ts';
import { OTPD_VERSION } from './api/envelope.ts';
import { registerPolicyCommands } from './policy/cli.ts';
import { registerRadiusCommands } from './radius/cli.ts';

function settingsOrExit(): Settings {
  try {
    return loadSettings();
  } catch (e) {
    if (e instanceof SettingsError) {
      process.stderr.write(`otpd: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

async function withServices<T>(fn: (s: Awaited<ReturnType<typeof createServices>>) => Promise<T>): Promise<T> {
  const settings = settingsOrExit();
  const services = await createServices({ settings, logger: createLogger(settings.logLevel, 2) });
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

function fail(e: unknown): never {
  process.stderr.write(`otpd: ${(e as Error).message}\n`);
  process.exit(1);
}

const program = new Command();
program
  .name('otpd')
  .description('One-time-password authentication server with a LinOTP-compatible API.\nSettings: OTPD_* environment variables or a JSON config file (OTPD_CONFIG, default ./otpd.json); see docs/configuration.md.')
  .version(OTPD_VERSION);

program
  .command('serve')
  .description('start the HTTP API (and the RADIUS listener when OTPD_RADIUS_PORT is set); creates the key file and database on first start')
  .action(async () => {
    const settings = settingsOrExit();
    try {
      const running = await startServer(settings);
      const stop = async () => {
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    } catch (e) {
      fail(e);
    }
  });

program
  .command('init')
  .description('create the key file (mode 0600) and the database, and apply migrations')
  .action(async () => {
    await withServices(async (s) => {
      process.stdout.write(`${s.keyCreated ? 'created' : 'kept existing'} key file ${s.settings.keyFile}\ndatabase ready: ${s.db.safeUrl}\n`);
    }).catch(fail);
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    await withServices(async (s) => {
      process.stdout.write(`migrations applied on ${s.db.safeUrl}\n`);
    }).catch(fail);
  });

const admin = program.command('admin').description('manage local administrators (never depend on the user directory)');
admin
  .command('add')
  .description('add an administrator; the password is read from stdin (first line) or prompted')
  .argument('<name>', 'administrator name')
  .action(async (name: string) => {
    const password = await readPassword(`password for ${name}: `);
    await withServices((s) => s.admins.add(name, password)).catch(fail);
    process.stdout.write(`admin ${name} added\n`);
  });
admin
  .command('password')
  .description("set an administrator's password (stdin or prompt); ends its sessions")
  .argument('<name>', 'administrator name')
  .action(async (name: string) => {
    const password = await readPassword(`new password for ${name}: `);
    await withServices((s) => s.admins.setPassword(name, password)).catch(fail);
    process.stdout.write(`password of ${name} changed\n`);
  });
admin
  .command('list')
  .description('list administrators')
  .action(async () => {
    const rows = await withServices((s) => s.admins.list()).catch(fail);
    for (const r of rows) process.stdout.write(`${r.name}\tcreated ${new Date(r.created_at).toISOString()}\tapi keys ${r.apiKeys}\n`);
  });
admin
  .command('remove')
  .description('remove an administrator with its sessions and API keys')
  .argument('<name>', 'administrator name')
  .action(async (name: string) => {
    await withServices((s) => s.admins.remove(name)).catch(fail);
    process.stdout.write(`admin ${name} removed\n`);
  });
admin
  .command('apikey')
  .description('create an API key for scripts (Authorization: Bearer <key>); it is shown once, only its hash is stored')
  .argument('<name>', 'administrator the key acts as')
  .addOption(new Option('--label <label>', 'what the key is for').default(''))
  .action(async (name: string, opts: { label: string }) => {
    const key = await withServices((s) => s.admins.createApiKey(name, opts.label)).catch(fail);
    process.stdout.write(`${key}\n`);
  });

const audit = program.command('audit').description('audit log tools');
audit
  .command('verify')
  .description('check the keyed (HMAC) chain of the audit log, its head and this node\'s anchor; exit 1 when a row was altered, deleted or inserted, the newest rows were cut off or the head was rolled back')
  .action(async () => {
    const res = await withServices((s) => verifyAuditChain(s.db, auditChainKey(s.keyring, s.settings.dataDir))).catch(fail);
    const notes = res.notes.map((n) => `  note: ${n}\n`).join('');
    if (res.ok) process.stdout.write(`audit chain intact: ${res.rows} rows\n${notes}`);
    else {
      const first = res.firstBroken!;
      const where = first.id !== null
        ? `id ${first.id}${first.seq !== null ? ` (sequence ${first.seq})` : ''}`
        : first.seq !== null ? `sequence ${first.seq} (row gone)` : 'audit head';
      process.stdout.write(`audit chain BROKEN (${res.rows} rows)\nfirst broken row: ${where}: ${first.reason}\n${res.problems.map((p) => `  ${p}`).join('\n')}\n${notes}`);
      process.exitCode = 1;
    }
  });

async function openServices() {
  const settings = settingsOrExit();
  const services = await createServices({ settings, logger: createLogger(settings.logLevel, 2) });
  return { db: services.db, keyring: services.keyring, policies: services.policies, close: () => services.close() };
}
registerPolicyCommands(program, openServices);
registerRadiusCommands(program, openServices);

await program.parseAsync(process.argv);
