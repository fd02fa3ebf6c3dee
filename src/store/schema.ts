import type { Generated } from 'kysely';

/**
 * Table types of the whole database. Each area adds its tables here and a
 * migration under `migrations/`. Times are integer milliseconds since the epoch.
 */
export interface TokenTable {
  id: Generated<number>;
  serial: string;
  type: string; // 'hmac' | 'totp' | 'spass' | 'pw' | 'sms' | 'email'
  description: string;
  /** Seed (or static password for `pw`) sealed with the key ring's seed key. */
  key_enc: string;
  otplen: number;
  hashlib: string;
  /** HOTP: next counter to accept. TOTP: next time step to accept (last accepted + 1). */
  counter: number;
  count_window: number;
  sync_window: number;
  max_fail: number;
  fail_count: number;
  active: number; // 0 | 1
  /** Keyed hash of salt + PIN; '' = no PIN set. */
  pin_hash: string;
  pin_salt: string;
  user_id: string;
  resolver: string;
  resolver_class: string;
  /** JSON object: phone, email_address, timeStep, timeWindow, timeShift, … */
  token_info: string;
  created_at: number;
  last_auth_success: number | null;
  last_auth_match: number | null;
  count_auth: number;
  count_auth_success: number;
}

export interface TokenRealmTable {
  token_id: number;
  realm: string;
}

export interface ChallengeTable {
  id: Generated<number>;
  transaction_id: string;
  token_id: number;
  serial: string;
  /** login@realm the challenge was created for; '' for serial-only requests. */
  subject: string;
  /** Keyed hash of the one-time code for out-of-band tokens; '' otherwise. */
  otp_hash: string;
  /** HOTP counter the code belongs to (sms/email), -1 when not bound to one. */
  counter: number;
  status: string; // 'open' | 'closed'
  received_count: number;
  valid_tan: number;
  /** Failed answers to this challenge; capped per challenge. */
  fail_count: number;
  message: string;
  client: string;
  created_at: number;
  expires_at: number;
  data: string;
}

export interface ConfigTable {
  key: string;
  value: string;
  type: string; // '' | 'password' | 'int' | 'bool' | 'text'
  description: string;
}

/** Change counters so that every node notices when another one changed shared state. */
export interface RevisionTable {
  name: string;
  rev: number;
}

export interface AdminTable {
  name: string;
  password_hash: string;
  created_at: number;
}

export interface ApiKeyTable {
  id: Generated<number>;
  admin: string;
  label: string;
  prefix: string;
  key_hash: string;
  created_at: number;
  /** Recorded at most once a minute per key (migration 0620). */
  last_used_at: number | null;
  /** Refused from this time on; null = never expires (migration 0620). */
  expires_at: number | null;
  /** Set by revocation (one key, or all of an admin's keys on a password change). */
  revoked_at: number | null;
}

/**
 * /admin/login throttle state, one row per admin name (keyed hash) or client source
 * (`client:<address or IPv6 /64>`), shared by all nodes. `failures` counts reserved
 * attempts since the last success; at the threshold each reservation opens a refusal
 * window of `delay_ms` (doubling to a cap) ending at `blocked_until`.
 */
export interface AdminLoginThrottleTable {
  key: string;
  failures: number;
  delay_ms: number;
  blocked_until: number;
  last_failure_at: number;
}

/** Admin sessions from /admin/login (cookie + CSRF token), shared by all nodes. */
export interface SessionTable {
  id: string; // keyed hash of the cookie value
  admin: string;
  csrf: string;
  created_at: number;
  expires_at: number;
}

/** Self-service sessions from /userservice/login (cookie `user_selfservice`), shared by all nodes. */
export interface UserSessionTable {
  id: string; // keyed hash of the cookie value
  realm: string;
  resolver: string;
  user_id: string;
  login: string;
  created_at: number;
  expires_at: number;
  /** 'credentials_verified' | 'challenge_triggered' | 'authenticated' (migration 0661). */
  state: Generated<string>;
  /** 1 when the session was opened with a second factor. */
  mfa: Generated<number>;
  /** The open challenge of a `challenge_triggered` login ('' otherwise). */
  transaction_id: Generated<string>;
}

export interface AuditTable {
  id: Generated<number>;
  ts: string;
  action: string;
  success: string;
  serial: string;
  token_type: string;
  user: string;
  realm: string;
  administrator: string;
  action_detail: string;
  info: string;
  server: string;
  client: string;
  log_level: string;
  clearance_level: number;
  /** Why it ended so: a validation reason code or an error's catalogue key; '' before migration 0640. */
  reason: Generated<string>;
  /** 0 for rows of the unkeyed SHA-256 chain (before migration 0610), then 1, 2, … (HMAC chain). */
  seq: Generated<number>;
  prev_hash: string;
  hash: string;
  /** The HTTP request that wrote the row (`reqId` in the log); '' outside a request (migration 0630). */
  request_id: Generated<string>;
}

/** One row (id = 1) holding the hash of the newest audit row; its row lock orders writers. */
export interface AuditHeadTable {
  id: number;
  last_id: number;
  last_hash: string;
  /** Sequence of the newest row (0 while the chain is unkeyed). */
  seq: Generated<number>;
  /** HMAC over (seq, last_id, last_hash) under the audit key; '' while unkeyed. */
  mac: Generated<string>;
}

/** RADIUS clients (NAS): matched by source address (IP or CIDR). */
export interface RadiusClientTable {
  name: string;
  /** IP address or CIDR network, e.g. `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`. */
  address: string;
  /** Shared secret sealed with the key ring's config key. */
  secret_enc: string;
  /** Default realm for users of this client; '' = none. */
  realm: string;
  require_message_authenticator: number; // 0 | 1
  source: string; // 'api' | 'config'
  created_at: number;
  updated_at: number;
}

/** RADIUS State values of open Access-Challenges (keyed hash of the State), shared by all nodes. */
export interface RadiusStateTable {
  state_hash: string;
  transaction_id: string;
  user_name: string;
  client_name: string;
  created_at: number;
  expires_at: number;
}

/** Policies (spec 3.2); `active` is 0 | 1. Cached by src/policy/service.ts. */
export interface PolicyTable {
  name: string;
  scope: string;
  action: string;
  realm: string;
  user: string;
  client: string;
  time: string;
  active: number;
}

/** Configured SMS/e-mail providers (`/system/setProvider`); config JSON sealed with the key ring. */
export interface DeliveryProviderTable {
  id: Generated<number>;
  type: string; // 'sms' | 'email'
  name: string;
  class_name: string;
  config_enc: string;
  /** Seconds, or LinOTP's "connect,read". */
  timeout: string;
  is_default: number; // 0 | 1
  /** Keyed hash of the `managed` password; '' = not managed. */
  managed_hash: string;
  created_at: number;
  updated_at: number;
}

/** One message: the outbox while it is being sent, the delivery log afterwards. */
export interface DeliveryOutboxTable {
  id: Generated<number>;
  idempotency_key: string;
  channel: string; // 'sms' | 'email'
  destination_masked: string;
  /** Keyed hash of the normalised destination. */
  destination_hash: string;
  /** Sealed JSON of the message (it holds the code); '' once the message is final. */
  payload_enc: string;
  /** JSON list of provider names as enqueued; [] = the default provider. */
  providers: string;
  /** JSON list of providers that refused this message for good. */
  refused: string;
  status: string; // queued | sending | retry | accepted | delivered | failed | expired | refused
  attempts: number;
  next_attempt_at: number;
  lease_owner: string;
  lease_until: number;
  provider: string;
  provider_message_id: string;
  error: string;
  user_name: string;
  realm: string;
  serial: string;
  client: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  finished_at: number | null;
}

/** One send attempt of a message to one provider; `attempt_key` makes each attempt happen once. */
export interface DeliveryAttemptTable {
  id: Generated<number>;
  outbox_id: number;
  attempt_no: number;
  attempt_key: string;
  provider: string;
  status: string; // sending | accepted | transient | permanent | delivered | failed
  provider_message_id: string;
  error: string;
  started_at: number;
  finished_at: number | null;
}

/** Fixed-window send-limit counters, shared by all nodes. */
export interface DeliveryCounterTable {
  scope: string;
  bucket: string;
  window_start: number;
  count: number;
  expires_at: number;
}

/** Provider health shared by all nodes: back-off after failures. */
export interface DeliveryHealthTable {
  provider_key: string;
  failures: number;
  down_until: number;
  last_error: string;
  updated_at: number;
}

/** A user store (spec 7). `config` is JSON; secret values are sealed with the key ring ('config'). */
export interface ResolverTable {
  name: string;
  type: string; // 'ldapresolver' | 'sqlresolver' | 'passwdresolver'
  config: string;
  created_at: number;
  updated_at: number;
}

/** A realm: lower-case name and its resolver names (JSON array) in lookup order. */
export interface RealmTable {
  name: string;
  resolvers: string;
  created_at: number;
}

/** Autoenrollment claims (one per directory user); see migrations/0500_enrollment.ts. */
export interface EnrollmentClaimTable {
  resolver: string;
  user_id: string;
  token_id: number;
  created_at: number;
}

export interface AccountAttemptTable {
  realm: string;
  /** `<resolver>/<user id>`: stable across renames and case. */
  user_key: string;
  login: string;
  fail_count: number;
  delay_ms: number;
  /** Attempts reserved and not yet settled (in flight), as of pending_at. */
  pending: number;
  pending_at: number;
  /** Refused while window_start + delay_ms > now. */
  window_start: number;
  last_attempt: number;
}

/** Demo mode: a message a capture provider kept instead of sending (text sealed with the key ring). */
export interface DemoMessageTable {
  id: Generated<number>;
  channel: string; // 'sms' | 'email'
  recipient: string;
  text_enc: string;
  created_at: number;
}

/** Demo mode: what the demo created (kind resolver | realm | policy | provider | radius_client | file), removed when it ends. */
export interface DemoObjectTable {
  kind: string;
  name: string;
  created_at: number;
}

export interface Database {
  tokens: TokenTable;
  token_realms: TokenRealmTable;
  challenges: ChallengeTable;
  config: ConfigTable;
  revisions: RevisionTable;
  admins: AdminTable;
  api_keys: ApiKeyTable;
  sessions: SessionTable;
  user_sessions: UserSessionTable;
  admin_login_throttle: AdminLoginThrottleTable;
  audit: AuditTable;
  audit_head: AuditHeadTable;
  radius_clients: RadiusClientTable;
  radius_states: RadiusStateTable;
  policies: PolicyTable;
  resolvers: ResolverTable;
  realms: RealmTable;
  delivery_providers: DeliveryProviderTable;
  delivery_outbox: DeliveryOutboxTable;
  delivery_attempts: DeliveryAttemptTable;
  delivery_counters: DeliveryCounterTable;
  delivery_health: DeliveryHealthTable;
  enrollment_claims: EnrollmentClaimTable;
  account_attempts: AccountAttemptTable;
  demo_messages: DemoMessageTable;
  demo_objects: DemoObjectTable;
}
