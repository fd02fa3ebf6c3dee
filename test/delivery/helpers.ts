import pino from 'pino';
import { createHostPolicy, type HostPolicyOptions } from '../../src/delivery/net/hosts.ts';
import { validateConfig } from '../../src/delivery/config.ts';
import type { OutgoingMessage, Provider, ProviderContext, ProviderModule } from '../../src/delivery/types.ts';

export const silentLogger = pino({ level: 'silent' });

export function testContext(overrides: Partial<ProviderContext> & { hostOptions?: HostPolicyOptions } = {}): ProviderContext {
  const { hostOptions, ...rest } = overrides;
  return {
    logger: silentLogger,
    timeoutMs: 3000,
    connectTimeoutMs: 2000,
    hosts: createHostPolicy(hostOptions),
    templateRoot: '/nonexistent',
    ...rest,
  };
}

/** Validates the config against the module's schema (as setProvider does) and builds the provider. */
export function build(module: ProviderModule, config: Record<string, unknown>, ctx: Partial<ProviderContext> & { hostOptions?: HostPolicyOptions } = {}): Provider {
  validateConfig(module.schema, config, 'config');
  return module.create(config, testContext(ctx));
}

export function sms(to: string, text: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { channel: 'sms', to, text, ...extra };
}

export const never = () => new AbortController().signal;
