import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import type { RadiusClientService, RadiusClientView } from './clients.ts';
import { processOutput, type CliOutput } from '../cli/output.ts';

type Open = () => Promise<{ db: Db; keyring: KeyRing; close(): Promise<void> }>;

export type { CliOutput } from '../cli/output.ts';

interface AddOptions {
  address: string;
  secret?: string;
  secretStdin?: boolean;
  realm?: string;
  messageAuthenticator: boolean;
  update?: boolean;
}

/**
 * `otpd radius client add|list|remove`. `open` gives the database and key ring of the
 * configured instance. Secrets never appear in listings; a generated secret is shown once.
 */
export function registerRadiusCommands(program: Command, open: Open, io: CliOutput = processOutput): void {
  const radius = program.command('radius').description('built-in RADIUS server');
  const client = radius.command('client').description('RADIUS clients (NAS) allowed to send Access-Requests');

  client
    .command('add')
    .description('add a RADIUS client; without --secret/--secret-stdin a random secret is generated and printed once')
    .argument('<name>', 'client name (letters, digits, _ . -)')
    .requiredOption('--address <ip-or-cidr>', 'source address or network, e.g. 192.0.2.7, 10.0.0.0/8, 2001:db8::/32')
    .option('--secret <secret>', 'shared secret (visible in the process list; prefer --secret-stdin)')
    .option('--secret-stdin', 'read the shared secret from the first line of stdin')
    .option('--realm <realm>', 'default realm for users of this client')
    .option('--no-message-authenticator', 'accept requests without Message-Authenticator (BlastRADIUS risk; only for clients that cannot send it)')
    .option('--update', 'update the client if the name exists (without a secret option the stored secret is kept)')
    .action(guard(io, async (name: string, opts: AddOptions) => {
      let secret = opts.secret;
      let generated = false;
      if (opts.secretStdin) secret = await readFirstLine();
      if (secret === undefined && opts.update) secret = (await import('./clients.ts')).CENSORED; // an update without a secret keeps the stored one
      if (secret === undefined) {
        secret = randomBytes(18).toString('base64url');
        generated = true;
      }
      await withService(open, async (service) => {
        const input = { name, address: opts.address, secret: secret as string, realm: opts.realm, require_message_authenticator: opts.messageAuthenticator };
        if (opts.update) await service.set(input);
        else await service.add(input);
      });
      io.out(`RADIUS client ${name} saved\n`);
      if (generated) io.out(`shared secret (shown once): ${secret}\n`);
      if (!opts.messageAuthenticator) {
        io.err(`warning: ${name} does not require Message-Authenticator; its requests are open to BlastRADIUS (CVE-2024-3596) forgery\n`);
      }
    }));

  client
    .command('list')
    .description('list RADIUS clients (secrets are not shown)')
    .option('--json', 'print JSON')
    .action(guard(io, async (opts: { json?: boolean }) => {
      const clients = await withService(open, (service) => service.list());
      io.out(opts.json ? `${JSON.stringify(clients, null, 2)}\n` : table(clients));
    }));

  client
    .command('remove')
    .description('remove a RADIUS client')
    .argument('<name>', 'client name')
    .action(guard(io, async (name: string) => {
      const removed = await withService(open, (service) => service.remove(name));
      if (!removed) {
        io.err(`otpd: no RADIUS client named ${name}\n`);
        io.failed(1);
        return;
      }
      io.out(`RADIUS client ${name} removed\n`);
    }));
}

/** Errors (bad address, duplicate name, database down) end the command with a message and exit code 1. */
function guard<A extends unknown[]>(io: CliOutput, action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (e) {
      io.err(`otpd: ${(e as Error).message}\n`);
      io.failed(1);
    }
  };
}

async function withService<T>(open: Open, fn: (service: RadiusClientService) => Promise<T>): Promise<T> {
  const handle = await open();
  try {
    const { RadiusClientService } = await import('./clients.ts');
    return await fn(new RadiusClientService({ db: handle.db, keyring: handle.keyring }));
  } finally {
    await handle.close();
  }
}

function table(clients: RadiusClientView[]): string {
  if (clients.length === 0) return 'no RADIUS clients\n';
  const header = ['NAME', 'ADDRESS', 'REALM', 'MESSAGE-AUTHENTICATOR', 'SOURCE'];
  const rows = clients.map((c) => [c.name, c.address, c.realm || '-', c.require_message_authenticator ? 'required' : 'NOT REQUIRED', c.source]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

async function readFirstLine(): Promise<string> {
  let data = '';
  for await (const chunk of process.stdin) {
    data += String(chunk);
    if (data.includes('\n')) break;
  }
  return data.split(/\r?\n/)[0];
}
