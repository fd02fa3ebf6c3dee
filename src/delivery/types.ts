import type { Static, TSchema } from 'typebox';
import type { Logger } from 'pino';
import type { HostPolicy } from '../util/net.ts';

/**
 * One message to send. This is the contract between the token code (which
 * builds the text) and the delivery layer (which gets it to the user).
 */
export interface OutgoingMessage {
  channel: 'sms' | 'email';
  /** Phone number (sms) or e-mail address (email). */
  to: string;
  /** The text to send; for SMS the code is already in it. */
  text: string;
  subject?: string;
  user?: string;
  realm?: string;
  /** Client IP of the request that caused the message (send limits). */
  client?: string;
  serial?: string;
  /** Owner's user-store fields for `${givenname}`-style e-mail templates. */
  userInfo?: Record<string, string | undefined>;
  /**
   * The one-time code, when the text still has an `<otp>` tag or an e-mail
   * template needs `${otp}`. Optional: token code that put the code into
   * `text` already leaves it out.
   */
  otp?: string;
}

/** What a provider reports for one send. */
export type SendResult =
  | { kind: 'accepted'; providerMessageId?: string }
  /** Timeout, connection error, 5xx, throttling: fail over now, retry later. */
  | { kind: 'transient'; reason: string }
  /**
   * An explicit refusal: final for this provider and this message.
   * `providerFault` marks refusals that say the provider itself is unusable
   * (RETURN_* check failed, authentication refused), so its health drops too;
   * a refused number does not.
   */
  | { kind: 'permanent'; reason: string; providerFault?: boolean };

/** A delivery receipt (SMPP `deliver_sm`) for an earlier accepted message. */
export interface DeliveryReceipt {
  providerMessageId: string;
  status: 'delivered' | 'failed';
  detail: string;
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** A configured provider instance. It never sees the database. */
export interface Provider {
  send(message: OutgoingMessage, signal: AbortSignal): Promise<SendResult>;
  /** Cheap reachability check used to bring an unhealthy provider back. */
  probe?(signal: AbortSignal): Promise<ProbeResult>;
  /** Receipts arriving later (SMPP); the dispatcher records them. */
  onReceipt?(listener: (receipt: DeliveryReceipt) => void): void;
  /** Releases sockets (SMPP session, SMTP pool). */
  close?(): Promise<void>;
}

/** A message a demo capture provider keeps instead of sending it (demo mode, docs/demo.md). */
export interface CapturedMessage {
  channel: ChannelType;
  /** The destination as the message had it (E.164 number or e-mail address). */
  to: string;
  /** What the user would have received, code included. */
  text: string;
  /** E-mail only. */
  subject?: string;
}

/** Where the capture providers put a message; the composition root gives one only in demo mode. */
export type CaptureSink = (message: CapturedMessage) => Promise<void>;

export interface ProviderContext {
  logger: Logger;
  /** Provider-level timeout (`Timeout` of setProvider) in milliseconds. */
  timeoutMs: number;
  /** Connect timeout in milliseconds (`"conn,read"` timeouts give it separately). */
  connectTimeoutMs: number;
  hosts: HostPolicy;
  /** Directory for `TEMPLATE: "file://<name>"` e-mail templates. */
  templateRoot: string;
  /** Demo mode only: where the capture providers keep messages. @default undefined (no demo) */
  capture?: CaptureSink;
}

export type ChannelType = 'sms' | 'email';

/** What a provider module declares (see `defineProvider` in config.ts). */
export interface ProviderDefinition<S extends TSchema = TSchema> {
  /** Short LinOTP class name, e.g. `HttpSMSProvider`. */
  className: string;
  /** Other identifiers LinOTP accepts for this class (spec 6.1). */
  aliases: string[];
  type: ChannelType;
  displayName: string;
  /** Offered only in demo mode (the capture providers); hidden from `/system/getProviderDef` otherwise. @default false */
  demoOnly?: boolean;
  /**
   * TypeBox schema of the `config` JSON. Fields marked `secret: true` are censored in
   * answers and redacted in logs (the whole config is stored encrypted).
   */
  schema: S;
  /** Builds an instance from a config that passed `schema`; throws ConfigValidationError for what the schema cannot check. */
  create(config: Static<S>, ctx: ProviderContext): Provider;
}

/** One provider class: its LinOTP names, config schema and metadata, with the config type erased for the registry. */
export interface ProviderModule extends Omit<ProviderDefinition, 'create'> {
  /** Config paths holding secrets, derived from the schema's `secret: true` annotations. */
  readonly secretKeys: readonly string[];
  /** Checks `config` against `schema` (ConfigValidationError naming `config.<key>`), then builds an instance from the typed config. */
  create(config: unknown, ctx: ProviderContext): Provider;
}
