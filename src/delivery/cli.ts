import type { Command } from 'commander';
import { processOutput, runWith, type CliOutput } from '../cli/output.ts';
import { Errors } from '../errors.ts';
import type { DeliveryService } from './service.ts';

type Open = () => Promise<{ delivery: DeliveryService; close(): Promise<void> }>;

/**
 * `otpd provider test NAME --to DEST`: sends a real test message through one stored provider
 * now, as `/system/testProvider` does (no outbox, no send limits; recorded in the delivery log),
 * and prints the outcome. Exit code 0 when the provider accepted it, else 1.
 */
export function registerProviderCommands(program: Command, open: Open, io: CliOutput = processOutput): void {
  const provider = program.command('provider').description('SMS and e-mail providers');
  provider
    .command('test')
    .description('send a test message through a stored provider now; exit code 1 unless the provider accepted it')
    .argument('<name>', 'provider name')
    .requiredOption('--to <destination>', 'phone number (sms) or e-mail address (email)')
    .option('--type <type>', 'sms or email (needed only when both types have a provider of this name)')
    .option('--text <text>', 'message text', 'otpd test message')
    .action((name: string, opts: { to: string; type?: string; text: string }) =>
      runWith(open, io, async ({ delivery }) => {
        const stored = (await delivery.storedProviders()).filter((p) => p.name === name && (opts.type === undefined || p.type === opts.type));
        if (opts.type !== undefined && opts.type !== 'sms' && opts.type !== 'email') throw Errors.unknownProviderType({ type: opts.type });
        if (stored.length === 0) throw Errors.providerRefused({ reason: `Unknown provider! '${name}'` });
        if (stored.length > 1) throw Errors.invalidParameter({ name: 'type', why: `an sms and an email provider are both named ${name}: give --type sms or --type email` });
        const type = stored[0]!.type;
        const r = await delivery.testProvider(type, name, opts.to, opts.text);
        if (r.ok) io.out(`${type} provider ${name}: accepted${r.providerMessageId ? ` (message id ${r.providerMessageId})` : ''}\n`);
        else {
          io.out(`${type} provider ${name}: FAILED: ${r.error}\n`);
          io.failed(1);
        }
      }));
}
