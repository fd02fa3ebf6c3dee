import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { Type, type Static } from 'typebox';
import { ConfigValidationError, defineProvider } from '../config.ts';
import type { Provider, ProviderContext, SendResult } from '../types.ts';
import { commonSmsKeys, messageText, preparePhone } from './common.ts';

/** DeviceSMSProvider config (spec 6.7): a phone or modem driven by gnokii. */
export const deviceSmsSchema = Type.Object(
  {
    CONFIGFILE: Type.String({ minLength: 1, description: 'gnokii config file naming the device' }),
    SMSC: Type.Optional(Type.String({ pattern: '^\\+?[0-9]{3,20}$', description: 'message centre number, passed as --smsc' })),
    ...commonSmsKeys,
  },
  { additionalProperties: false },
);

export type DeviceSmsConfig = Static<typeof deviceSmsSchema>;

/**
 * The gnokii binary. Not configurable through the provider config on
 * purpose: an admin API that chooses which program runs would be remote code
 * execution. `OTPD_GNOKII` (environment) overrides it for unusual installs.
 */
export const gnokiiBinary = (): string => process.env.OTPD_GNOKII || 'gnokii';

function lastLine(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/Cannot open logfile/i.test(l));
  return (lines.at(-1) ?? '').slice(0, 200);
}

function create(config: DeviceSmsConfig, ctx: ProviderContext): Provider {
  const configFile = config.CONFIGFILE;
  try {
    accessSync(configFile, constants.R_OK);
  } catch {
    throw new ConfigValidationError([`config.CONFIGFILE: cannot read ${configFile}`]);
  }
  // One modem serves one command at a time.
  let queue: Promise<unknown> = Promise.resolve();

  const run = (phone: string, text: string, signal: AbortSignal): Promise<SendResult> =>
    new Promise<SendResult>((resolve) => {
      const args = ['--config', configFile, '--sendsms', phone];
      if (config.SMSC) args.push('--smsc', config.SMSC);
      const child = spawn(gnokiiBinary(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      let killedBy: string | undefined;
      const collect = (b: Buffer) => {
        if (output.length < 16384) output += b.toString('utf8');
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const kill = (why: string) => {
        if (killedBy) return;
        killedBy = why;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 1000).unref();
      };
      const timer = setTimeout(() => kill(`gnokii did not finish within ${ctx.timeoutMs} ms`), ctx.timeoutMs);
      const onAbort = () => kill('gnokii send aborted (timeout)');
      signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve({ kind: 'permanent', reason: `cannot run gnokii: ${e.code ?? e.message}`, providerFault: true });
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (killedBy) return resolve({ kind: 'transient', reason: killedBy });
        if (code === 0) {
          const ref = /reference\s+(-?\d+)/i.exec(output)?.[1];
          return resolve({ kind: 'accepted', ...(ref !== undefined && ref !== '-1' ? { providerMessageId: `gnokii-${ref}` } : {}) });
        }
        resolve({ kind: 'permanent', reason: `gnokii exited ${code ?? sig}: ${lastLine(output)}`, providerFault: true });
      });
      child.stdin.on('error', () => undefined); // gnokii may exit before reading the text
      child.stdin.end(text);
    });

  return {
    send(message, signal) {
      const phone = preparePhone(message.to, config);
      // The number is a separate argv entry (no shell); it must not look like an option.
      if (!/^\+?[0-9]{3,20}$/.test(phone)) return Promise.resolve({ kind: 'permanent', reason: 'number unusable for gnokii' });
      const next = queue.then(() => run(phone, messageText(message), signal));
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

export const deviceSmsProvider = defineProvider({
  className: 'DeviceSMSProvider',
  aliases: [
    'linotp.provider.smsprovider.DeviceSMSProvider',
    'smsprovider.DeviceSMSProvider.DeviceSMSProvider',
    'smsprovider.DeviceSMSProvider',
    'linotp.provider.smsprovider.DeviceSMSProvider.DeviceSMSProvider',
  ],
  type: 'sms',
  displayName: 'Phone or modem through gnokii',
  schema: deviceSmsSchema,
  create,
});
