import { type Kysely, sql } from 'kysely';
import { key, millis, text, withId } from './util.ts';

export async function up(db: Kysely<any>): Promise<void> {
  await withId(db, db.schema.createTable('tokens'))
    .addColumn('serial', key, (c) => c.notNull().unique())
    .addColumn('type', 'varchar(32)', (c) => c.notNull())
    .addColumn('description', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('key_enc', text, (c) => c.notNull())
    .addColumn('otplen', 'integer', (c) => c.notNull())
    .addColumn('hashlib', 'varchar(16)', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('count_window', 'integer', (c) => c.notNull())
    .addColumn('sync_window', 'integer', (c) => c.notNull())
    .addColumn('max_fail', 'integer', (c) => c.notNull())
    .addColumn('fail_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('pin_hash', 'varchar(128)', (c) => c.notNull().defaultTo(''))
    .addColumn('pin_salt', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('user_id', key, (c) => c.notNull().defaultTo(''))
    .addColumn('resolver', key, (c) => c.notNull().defaultTo(''))
    .addColumn('resolver_class', key, (c) => c.notNull().defaultTo(''))
    .addColumn('token_info', text, (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('last_auth_success', millis)
    .addColumn('last_auth_match', millis)
    .addColumn('count_auth', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('count_auth_success', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('tokens_owner').on('tokens').columns(['resolver', 'user_id']).execute();

  await db.schema
    .createTable('token_realms')
    .addColumn('token_id', 'integer', (c) => c.notNull().references('tokens.id').onDelete('cascade'))
    .addColumn('realm', key, (c) => c.notNull())
    .addPrimaryKeyConstraint('token_realms_pk', ['token_id', 'realm'])
    .execute();

  await withId(db, db.schema.createTable('challenges'))
    .addColumn('transaction_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('token_id', 'integer', (c) => c.notNull().references('tokens.id').onDelete('cascade'))
    .addColumn('serial', key, (c) => c.notNull())
    .addColumn('subject', key, (c) => c.notNull().defaultTo(''))
    .addColumn('otp_hash', 'varchar(128)', (c) => c.notNull().defaultTo(''))
    .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(-1))
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('received_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('valid_tan', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('fail_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('message', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('client', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('expires_at', millis, (c) => c.notNull())
    .addColumn('data', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('challenges_token').on('challenges').columns(['token_id', 'status']).execute();

  await db.schema
    .createTable('config')
    .addColumn('key', key, (c) => c.primaryKey())
    .addColumn('value', text, (c) => c.notNull())
    .addColumn('type', 'varchar(32)', (c) => c.notNull().defaultTo(''))
    .addColumn('description', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .execute();

  await db.schema
    .createTable('revisions')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('rev', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('admins')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .execute();

  await withId(db, db.schema.createTable('api_keys'))
    .addColumn('admin', key, (c) => c.notNull())
    .addColumn('label', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('prefix', 'varchar(32)', (c) => c.notNull())
    .addColumn('key_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('last_used_at', millis)
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('admin', key, (c) => c.notNull())
    .addColumn('csrf', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', millis, (c) => c.notNull())
    .addColumn('expires_at', millis, (c) => c.notNull())
    .execute();

  await withId(db, db.schema.createTable('audit'))
    .addColumn('ts', 'varchar(40)', (c) => c.notNull())
    .addColumn('action', 'varchar(128)', (c) => c.notNull())
    .addColumn('success', 'varchar(2)', (c) => c.notNull())
    .addColumn('serial', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('token_type', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('user', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('realm', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('administrator', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('action_detail', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('info', 'varchar(512)', (c) => c.notNull().defaultTo(''))
    .addColumn('server', 'varchar(255)', (c) => c.notNull().defaultTo(''))
    .addColumn('client', 'varchar(64)', (c) => c.notNull().defaultTo(''))
    .addColumn('log_level', 'varchar(16)', (c) => c.notNull().defaultTo('INFO'))
    .addColumn('clearance_level', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('hash', 'varchar(64)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('audit_head')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_id', 'bigint', (c) => c.notNull())
    .addColumn('last_hash', 'varchar(64)', (c) => c.notNull())
    .execute();
  await db.insertInto('audit_head').values({ id: 1, last_id: 0, last_hash: '0'.repeat(64) }).execute();
  void sql;
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['audit_head', 'audit', 'api_keys', 'sessions', 'admins', 'revisions', 'config', 'challenges', 'token_realms', 'tokens']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
