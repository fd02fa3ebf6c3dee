// The command line. Only commander and small modules load up front, so `otpd --help` and a
// mistyped command answer at once; each command imports what it needs when it runs: the
// settings schema (~0.2 s), the store (database, key file), or every service (`serve`, the
// policy commands; ~0.5 s more).
import { Command, Option } from 'commander';
import type { Settings } from './config/settings.ts';
import type { Store } from './cli/store.ts';
import { environmentHelp } from './config/environment.ts';
import { OTPD_VERSION } from './api/envelope.ts';
import { registerPolicyCommands } from './policy/cli.ts';
import { registerRadiusCommands } from './radius/cli.ts';
import { registerConfigCommands } from './declared/cli.ts';
import { registerResolverCommands } from './users/cli.ts';
import { registerProviderCommands } from './delivery/cli.ts';
import { registerBackupCommands } from './cli/backup.ts';
import { registerImportCommands } from './import/cli.ts';

let loadedSettings: Settings | undefined;

/** The settings (loaded once, on first use); invalid ones end the process with exit code 2. */
async function settingsOrExit(): Promise<Settings> {
  if (loadedSettings) return loadedSettings;
  const { loadSettings, SettingsError } = await import('./config/settings.ts');
  try {
    loadedSettings = loadSettings();
    return loadedSettings;
  } catch (e) {
    if (e instanceof SettingsError) {
      process.stderr.write(`otpd: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** Runs `fn` on the key file and the database of the configured instance (see cli/store.ts), then closes them. */
async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
  const settings = await settingsOrExit();
  const { openStore } = await import('./cli/store.ts');
  const store = await openStore(settings);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function admins(s: Store) {
  const { AdminService } = await import('./admins/service.ts');
  return new AdminService(s.db, s.keyring, s.clock);
}

async function readPassword(prompt: string): Promise<string> {
  return (await import('./cli/prompt.ts')).readPassword(prompt);
}

function fail(e: unknown): never {
  process.stderr.write(`otpd: ${(e as Error).message}\n`);
  process.exit(1);
}

const program = new Command();
program
  .name('otpd')
  .description('One-time-password authentication server with a LinOTP-compatible API.\nSettings: OTPD_* environment variables or a JSON config file (OTPD_CONFIG, default ./otpd.json); see docs/configuration.md.')
  .version(OTPD_VERSION)
  .addHelpText('after', environmentHelp())
  // every command works on the configured instance: its settings are loaded (and checked) first
  .hook('preAction', async () => void (await settingsOrExit()));

program
  .command('serve')
  .description('start the HTTP API (and the RADIUS listener when OTPD_RADIUS_PORT is set); creates the key file and database on first start')
  .action(async () => {
    const settings = await settingsOrExit();
    try {
      const { startServer } = await import('./server.ts');
      const running = await startServer(settings);
      const log = running.services.logger;
      const stop = async (signal: NodeJS.Signals) => {
        log.info({ signal, shutdownSeconds: settings.shutdownSeconds }, `${signal}: shutting down (requests and deliveries in flight finish, at most ${settings.shutdownSeconds} s)`);
        // a second signal does not wait
        process.once('SIGINT', () => process.exit(1));
        process.once('SIGTERM', () => process.exit(1));
        const deadline = setTimeout(() => {
          log.error(`shutdown took longer than OTPD_SHUTDOWN_SECONDS (${settings.shutdownSeconds} s): exiting with work unfinished`);
          process.exit(1);
        }, settings.shutdownSeconds * 1000);
        try {
          await running.stop();
        } catch (e) {
          log.error({ err: e }, 'shutdown failed');
          process.exit(1);
        }
        clearTimeout(deadline);
        log.info('shutdown complete');
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.on('SIGHUP', () => running.reload());
    } catch (e) {
      fail(e);
    }
  });

program
  .command('init')
  .description('create the key file (mode 0600) and the database, and apply migrations')
  .action(async () => {
    await withStore(async (s) => {
      process.stdout.write(`${s.keyCreated ? 'created' : 'kept existing'} key file ${s.settings.keyFile}\ndatabase ready: ${s.db.safeUrl}\n`);
    }).catch(fail);
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    await withStore(async (s) => {
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
    await withStore(async (s) => (await admins(s)).add(name, password)).catch(fail);
    process.stdout.write(`admin ${name} added\n`);
  });
admin
  .command('password')
  .description("set an administrator's password (stdin or prompt); ends its sessions and revokes its API keys")
  .argument('<name>', 'administrator name')
  .option('--keep-api-keys', "keep the administrator's API keys (routine rotation; do not use when the old password may be known to someone else)")
  .action(async (name: string, opts: { keepApiKeys?: boolean }) => {
    const password = await readPassword(`new password for ${name}: `);
    const res = await withStore(async (s) => (await admins(s)).setPassword(name, password, { keepApiKeys: opts.keepApiKeys })).catch(fail);
    process.stdout.write(`password of ${name} changed${res.revokedApiKeys ? `; revoked ${res.revokedApiKeys} API key(s)` : ''}\n`);
  });
admin
  .command('list')
  .description('list administrators')
  .action(async () => {
    const rows = await withStore(async (s) => (await admins(s)).list()).catch(fail);
    for (const r of rows) process.stdout.write(`${r.name}\tcreated ${new Date(r.created_at).toISOString()}\tapi keys ${r.apiKeys}\n`);
  });
admin
  .command('remove')
  .description('remove an administrator with its sessions and API keys')
  .argument('<name>', 'administrator name')
  .action(async (name: string) => {
    await withStore(async (s) => (await admins(s)).remove(name)).catch(fail);
    process.stdout.write(`admin ${name} removed\n`);
  });
const apikey = admin
  .command('apikey')
  .summary('create an API key (apikey NAME [--expires WHEN]), or list / revoke keys')
  .description('create an API key for scripts (Authorization: Bearer <key>); it is shown once, only its hash is stored.\nSubcommands list and revoke manage existing keys (for an admin named "list" or "revoke" use "apikey create <name>")')
  .argument('[name]', 'administrator the key acts as')
  .addOption(new Option('--label <label>', 'what the key is for').default(''))
  .option('--expires <when>', 'refuse the key from then on: a duration (30m, 12h, 90d, 8w), a date (2027-06-30, 00:00 UTC) or a date and time with zone (2027-06-30T18:00:00Z); default: never')
  .action(async (name: string | undefined, opts: ApiKeyCreateOptions) => {
    if (name === undefined) return apikey.help({ error: true });
    await createApiKeyCommand(name, opts);
  });
apikey
  .command('create')
  .description('create an API key (same as "apikey <name>")')
  .argument('<name>', 'administrator the key acts as')
  .addOption(new Option('--label <label>', 'what the key is for').default(''))
  .option('--expires <when>', 'as for "apikey <name>"')
  .action(createApiKeyCommand);
apikey
  .command('list')
  .description('list API keys (id, admin, label, state, created, expires, last used; never the key)')
  .argument('[name]', 'only the keys of this administrator')
  .action(async (name: string | undefined) => {
    const keys = await withStore(async (s) => (await admins(s)).listApiKeys(name)).catch(fail);
    const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
    process.stdout.write('ID\tADMIN\tLABEL\tSTATE\tCREATED\tEXPIRES\tLAST USED\tKEY\n');
    for (const k of keys) {
      process.stdout.write(`${k.id}\t${k.admin}\t${k.label || '-'}\t${k.state}\t${iso(k.createdAt)}\t${iso(k.expiresAt)}\t${iso(k.lastUsedAt)}\totpd_${k.prefix}_…\n`);
    }
  });
apikey
  .command('revoke')
  .description('revoke one API key by its id (see "apikey list"); it is refused from now on')
  .argument('<id>', 'key id')
  .action(async (id: string) => {
    if (!/^\d{1,15}$/.test(id)) fail(new Error(`invalid API key id '${id}': a number from "otpd admin apikey list"`));
    const res = await withStore(async (s) => (await admins(s)).revokeApiKey(Number(id))).catch(fail);
    process.stdout.write(`API key ${id} of ${res.admin} revoked\n`);
  });

interface ApiKeyCreateOptions {
  label: string;
  expires?: string;
}

async function createApiKeyCommand(name: string, opts: ApiKeyCreateOptions): Promise<void> {
  const made = await withStore(async (s) => {
    const { parseExpiry } = await import('./admins/expiry.ts');
    const expiresAt = opts.expires === undefined ? undefined : parseExpiry(opts.expires, s.clock.now());
    return (await admins(s)).issueApiKey(name, opts.label, { expiresAt });
  }).catch(fail);
  process.stdout.write(`${made.key}\n`);
  // on stderr, so that KEY=$(otpd admin apikey NAME) still captures only the key
  process.stderr.write(`API key ${made.id} for ${name}${made.expiresAt ? `, expires ${new Date(made.expiresAt).toISOString()}` : ', never expires'}\n`);
}

const audit = program.command('audit').description('audit log tools');
audit
  .command('verify')
  .description('check the keyed (HMAC) chain of the audit log, its head and this node\'s anchor; exit 1 when a row was altered, deleted or inserted, the newest rows were cut off or the head was rolled back')
  .action(async () => {
    const res = await withStore(async (s) => {
      const [{ verifyAuditChain }, { auditChainKey }] = await Promise.all([import('./audit/verify.ts'), import('./audit/writer.ts')]);
      return verifyAuditChain(s.db, auditChainKey(s.keyring, s.settings.dataDir));
    }).catch(fail);
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

/** Runs `fn` on every service of the configured instance (logging to stderr), then closes them. */
async function withServices<T>(fn: (s: Awaited<ReturnType<typeof openServices>>) => Promise<T>): Promise<T> {
  const services = await openServices();
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}

async function openServices() {
  const settings = await settingsOrExit();
  const { createLogger, createServices } = await import('./services.ts');
  return createServices({ settings, logger: createLogger(settings.logLevel, 2, settings.logFormat) });
}
async function openStoreForCli() {
  const { openStore } = await import('./cli/store.ts');
  return openStore(await settingsOrExit());
}
registerPolicyCommands(program, openServices);
registerRadiusCommands(program, openStoreForCli);
registerConfigCommands(program, openServices);
registerResolverCommands(program, openServices);
registerProviderCommands(program, openServices);
// backup and restore read the settings synchronously: the preAction hook has loaded them
registerBackupCommands(program, () => loadedSettings!);
registerImportCommands(program, withServices);

await program.parseAsync(process.argv);
