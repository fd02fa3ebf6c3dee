import { chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import bcrypt from 'bcryptjs';
import type { Services } from '../services.ts';
import { DEMO, type DemoDecision, type DemoObjectKind } from './mode.ts';

/**
 * The demo's objects (docs/demo.md), created through the same services the API uses, so
 * validation, autoenrollment, policies and the audit behave as with a real store:
 * - an SQL user store (`sqlresolver`) on an SQLite file in the data directory with alice
 *   (e-mail only) and bob (mobile only), password `demo`;
 * - the realm `demo` holding it (the default realm unless one is set);
 * - policies `autoenrollment=sms email` and `otppin=1` for that realm;
 * - the capture providers for SMS and e-mail as the default providers;
 * - a RADIUS client for 127.0.0.1 with the published secret.
 *
 * Each object is recorded in `demo_objects` when it is created, and created once: a later
 * start creates only what was never recorded, so an object the administrator deleted stays
 * deleted (the users file is the exception: the store needs it, it is written again when gone).
 */
export async function installDemo(services: Services): Promise<string[]> {
  const { db, clock } = services;
  const recorded = new Set((await db.kysely.selectFrom('demo_objects').select(['kind', 'name']).execute()).map((r) => `${r.kind}:${r.name}`));
  const created: string[] = [];
  const once = async (kind: DemoObjectKind, name: string, create: () => Promise<void>) => {
    if (recorded.has(`${kind}:${name}`)) return;
    await create();
    await db.kysely.insertInto('demo_objects').values({ kind, name, created_at: clock.now() }).execute();
    created.push(`${kind} ${name}`);
  };
  const usersFile = join(services.settings.dataDir, DEMO.usersFile);
  if (!existsSync(usersFile)) writeUsersFile(usersFile);
  await once('file', DEMO.usersFile, async () => {});
  await once('resolver', DEMO.resolver, () => services.users.setResolver(DEMO.resolver, 'sqlresolver', {
    Connect: `sqlite:///${usersFile}`,
    Table: DEMO.usersTable,
    Map: JSON.stringify({ userid: 'id', username: 'login', password: 'password', givenname: 'givenname', surname: 'surname', email: 'email', mobile: 'mobile' }),
  }));
  await once('realm', DEMO.realm, async () => {
    await services.users.setRealm(DEMO.realm, [DEMO.resolver]);
    if (!services.users.defaultRealm()) await services.users.setDefaultRealm(DEMO.realm);
  });
  for (const p of DEMO.policies) await once('policy', p.name, () => services.policies.set({ ...p }));
  for (const p of DEMO.providers) {
    await once('provider', `${p.type}:${p.name}`, () => services.delivery.setProvider({ type: p.type, name: p.name, className: p.className, config: '{}', timeout: '5', isDefault: true }));
  }
  const c = DEMO.radiusClient;
  await once('radius_client', c.name, async () => {
    await services.radiusClients.set({ name: c.name, address: c.address, secret: c.secret, realm: DEMO.realm, require_message_authenticator: true });
  });
  if (created.length > 0) {
    await services.audit.write({ action: 'demo/setup', success: true, realm: DEMO.realm, info: `demo mode: created ${created.join(', ')}` });
  }
  return created;
}

/** The users file: a table of the demo users with bcrypt hashes of the demo password (mode 0600). */
function writeUsersFile(path: string): void {
  const db = new Database(path);
  try {
    db.exec(`create table if not exists ${DEMO.usersTable} (id text primary key, login text not null unique, password text not null, givenname text, surname text, email text, mobile text)`);
    const insert = db.prepare(`insert or ignore into ${DEMO.usersTable} (id, login, password, givenname, surname, email, mobile) values (?, ?, ?, ?, ?, ?, ?)`);
    for (const u of DEMO.users) insert.run(u.id, u.login, bcrypt.hashSync(DEMO.password, 8), u.givenname, u.surname, u.email, u.mobile);
  } finally {
    db.close();
  }
  chmodSync(path, 0o600);
}

/**
 * Ends the demo (it is off at this start, and an earlier start had set it up): removes its
 * users (file, user store and their tokens), its capture providers and captured messages, its
 * RADIUS client (the secret is public) and its realm when no other user store is in it. Its
 * policies are removed when they are still as the demo made them; one an administrator
 * changed is theirs now and stays. Returns what was removed and what was kept.
 */
export async function removeDemo(services: Services, decision: DemoDecision & { on: false }): Promise<{ removed: string[]; kept: string[] }> {
  const { db, logger } = services;
  const rows = await db.kysely.selectFrom('demo_objects').select(['kind', 'name']).execute();
  const has = (kind: DemoObjectKind, name: string) => rows.some((r) => r.kind === kind && r.name === name);
  const removed: string[] = [];
  const kept: string[] = [];
  const forget = (kind: DemoObjectKind, name: string) => db.kysely.deleteFrom('demo_objects').where('kind', '=', kind).where('name', '=', name).execute();

  if (has('resolver', DEMO.resolver)) {
    const tokens = await db.kysely.selectFrom('tokens').select('id').where('resolver', '=', DEMO.resolver).execute();
    if (tokens.length > 0) removed.push(`${await services.tokens.repository.delete(tokens.map((t) => t.id))} token(s) of the demo users`);
    await db.kysely.deleteFrom('enrollment_claims').where('resolver', '=', DEMO.resolver).execute();
    for (const realm of services.users.realmsOfResolver(DEMO.resolver)) {
      const rest = services.users.resolversOfRealm(realm).filter((r) => r !== DEMO.resolver);
      if (rest.length > 0) {
        await services.users.setRealm(realm, rest);
        kept.push(`realm ${realm} (it holds ${rest.join(', ')})`);
      } else {
        await services.users.deleteRealm(realm);
        removed.push(`realm ${realm}`);
      }
    }
    if (await services.users.deleteResolver(DEMO.resolver)) removed.push(`user store ${DEMO.resolver}`);
  }
  await forget('resolver', DEMO.resolver);
  await forget('realm', DEMO.realm);
  if (has('file', DEMO.usersFile)) {
    rmSync(join(services.settings.dataDir, DEMO.usersFile), { force: true });
    removed.push(`file ${DEMO.usersFile}`);
    await forget('file', DEMO.usersFile);
  }
  for (const p of DEMO.policies) {
    if (!has('policy', p.name)) continue;
    const stored = services.policies.list({ name: p.name, includeInactive: true })[0];
    const unchanged = stored && stored.scope === p.scope && stored.action === p.action && stored.realm === p.realm && stored.user === p.user && stored.client === p.client && stored.active;
    if (unchanged) {
      await services.policies.delete([p.name]);
      removed.push(`policy ${p.name}`);
    } else if (stored) {
      kept.push(`policy ${p.name} (changed by an administrator)`);
    }
    await forget('policy', p.name);
  }
  for (const p of DEMO.providers) {
    const key = `${p.type}:${p.name}`;
    if (!has('provider', key)) continue;
    const result = await deleteProvider(services, p.type, p.name);
    if (result === true) removed.push(`provider ${key}`);
    else if (result) {
      kept.push(`provider ${key} (unusable outside demo mode: ${result})`);
      logger.warn({ provider: key }, `demo provider ${key} not removed: ${result}; it cannot send outside demo mode, remove it or the policies naming it`);
    }
    await forget('provider', key);
  }
  if (has('radius_client', DEMO.radiusClient.name)) {
    if (await services.radiusClients.remove(DEMO.radiusClient.name)) removed.push(`RADIUS client ${DEMO.radiusClient.name}`);
    await forget('radius_client', DEMO.radiusClient.name);
  }
  const messages = await db.kysely.deleteFrom('demo_messages').executeTakeFirst();
  if (Number(messages.numDeletedRows) > 0) removed.push(`${Number(messages.numDeletedRows)} captured message(s)`);
  await db.kysely.deleteFrom('demo_objects').execute();
  await services.audit.write({
    action: 'demo/remove', success: true,
    info: `demo mode off (${decision.reason}): removed ${removed.join(', ') || 'nothing'}${kept.length ? `; kept ${kept.join(', ')}` : ''}`,
  });
  return { removed, kept };
}

/** Deletes a demo provider; true, an explanation when it stays, or undefined when it was gone already. */
async function deleteProvider(services: Services, type: 'sms' | 'email', name: string): Promise<true | string | undefined> {
  const all = await services.delivery.listProviders(type);
  const mine = all.find((p) => p.name === name);
  if (!mine) return undefined;
  // the default with others left cannot be deleted: another one becomes the default first
  const other = all.find((p) => p.name !== name);
  if (mine.isDefault && other) await services.delivery.setDefaultProvider(type, other.name);
  const res = await services.delivery.deleteProvider(type, name);
  return res.ok ? true : res.message.replace(/\n/g, ' ');
}
