import { parseActions, parseScope } from './parse.ts';

/** Which stored policies list a name in a names-valued action, and which cannot be told. */
export interface NameUsage {
  /** Policies (active or not, any scope) whose `action` value lists the name. */
  naming: string[];
  /** Stored policies that mention the action but do not parse: they may name it. */
  unreadable: string[];
}

/**
 * Finds the stored policies whose `action` (a names action such as `sms_provider`)
 * lists `name`, by parsing each action string as policies are loaded (quotes, `!`,
 * duplicates). A policy that does not parse cannot be answered for: when its text
 * mentions the action at all, it is reported as unreadable, so a caller that must
 * not break a policy (deleting a provider) can fail closed.
 */
export function policiesNaming(rows: readonly { name: string; scope: string; action: string }[], action: string, name: string): NameUsage {
  const naming: string[] = [];
  const unreadable: string[] = [];
  for (const row of rows) {
    let value;
    try {
      value = parseActions(parseScope(row.scope), row.action, { onUnsupported: () => undefined }).get(action);
    } catch {
      if (row.action.toLowerCase().includes(action.toLowerCase())) unreadable.push(row.name);
      continue;
    }
    if (typeof value === 'string' && value.split(/\s+/).includes(name)) naming.push(row.name);
  }
  return { naming: naming.sort(), unreadable: unreadable.sort() };
}
