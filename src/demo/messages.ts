import type { KeyRing } from '../crypto/keyring.ts';
import type { CapturedMessage } from '../delivery/types.ts';
import type { Db } from '../store/db.ts';
import type { Clock } from '../util/clock.ts';

/** One captured message as `/demo/messages.json` lists it. `time` is ISO 8601 (UTC). */
export interface DemoMessageView {
  channel: 'sms' | 'email';
  to: string;
  text: string;
  time: string;
  /** E-mail only. */
  subject?: string;
}

/** How many messages the demo keeps; older ones are dropped as new ones arrive. */
export const DEMO_MESSAGES_KEPT = 200;

/**
 * The messages the demo's capture providers kept instead of sending (table `demo_messages`).
 * The text holds the one-time code, so it is sealed with the key ring like the outbox payload;
 * the demo shows it on purpose, at `/demo/messages` on loopback only.
 */
export class CapturedMessages {
  constructor(private readonly deps: { db: Db; keyring: KeyRing; clock: Clock }) {}

  /** Keeps one message (the capture providers' sink); drops the oldest beyond DEMO_MESSAGES_KEPT. */
  readonly add = async (message: CapturedMessage): Promise<void> => {
    const { db, keyring, clock } = this.deps;
    const sealed = keyring.encrypt('config', JSON.stringify({ text: message.text, ...(message.subject !== undefined ? { subject: message.subject } : {}) }));
    await db.kysely.insertInto('demo_messages').values({ channel: message.channel, recipient: message.to, text_enc: sealed, created_at: clock.now() }).execute();
    const cut = await db.kysely.selectFrom('demo_messages').select('id').orderBy('id', 'desc').offset(DEMO_MESSAGES_KEPT).limit(1).executeTakeFirst();
    if (cut) await db.kysely.deleteFrom('demo_messages').where('id', '<=', cut.id).execute();
  };

  /** Newest first, at most `limit`. A row that cannot be opened (other key file) shows as such. */
  async list(limit = DEMO_MESSAGES_KEPT): Promise<DemoMessageView[]> {
    const rows = await this.deps.db.kysely.selectFrom('demo_messages').selectAll().orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => {
      let body: { text: string; subject?: string };
      try {
        body = JSON.parse(this.deps.keyring.decryptString('config', r.text_enc)) as { text: string; subject?: string };
      } catch {
        body = { text: '(cannot be decrypted with this key file)' };
      }
      return {
        channel: r.channel === 'email' ? 'email' : 'sms',
        to: r.recipient,
        text: body.text,
        time: new Date(Number(r.created_at)).toISOString(),
        ...(body.subject !== undefined ? { subject: body.subject } : {}),
      };
    });
  }

  /** Removes every captured message (when the demo ends). */
  async clear(): Promise<number> {
    const res = await this.deps.db.kysely.deleteFrom('demo_messages').executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
