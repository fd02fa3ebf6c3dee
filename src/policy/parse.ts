import { Errors, OtpdError } from '../errors.ts';
import {
  type ActionSpec,
  type ActionValue,
  type Scope,
  SCOPES,
  STAR_ACTION_SCOPES,
  STAR_REFUSED,
  UNSUPPORTED_SCOPES,
  actionSpec,
  describeType,
  isScope,
  suggestAction,
} from './catalogue.ts';

/** A refused policy definition; `field` names the policy field that is wrong. */
export class PolicyDefinitionError extends OtpdError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    const { code, httpStatus, reason } = Errors.invalidPolicy({ problem: message });
    super(code, message, httpStatus, reason);
    this.name = 'PolicyDefinitionError';
  }
}

/** One item of an action string as written, before typing. */
export interface RawActionItem {
  name: string;
  /** `!name` / `-name` */
  negated: boolean;
  /** Text after `=` with quotes removed; undefined for a bare `name`. */
  value?: string;
}

/** The action `*` (every action); only in the scopes of `STAR_ACTION_SCOPES`. */
export const STAR = '*';

const QUOTES = new Set(['"', "'"]);

/**
 * Splits an action string into items (spec 3.1): comma-separated `name`,
 * `!name`, `name=value`; a value that starts with `'` or `"` runs to the
 * matching quote and may contain `,` and `=`. Contradicting duplicates
 * (`otppin=1, otppin=2`, `passthru, !passthru`) are an error; repeating an
 * item unchanged is not.
 */
export function parseActionString(action: string): RawActionItem[] {
  const pieces: string[] = [];
  let current = '';
  let quote: string | null = null;
  let seenEquals = false;
  let atValueStart = false;
  for (const ch of action) {
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
      continue;
    }
    if (ch === ',') {
      pieces.push(current);
      current = '';
      seenEquals = false;
      atValueStart = false;
      continue;
    }
    if (ch === '=' && !seenEquals) {
      seenEquals = true;
      atValueStart = true;
      current += ch;
      continue;
    }
    if (atValueStart && QUOTES.has(ch)) quote = ch;
    else if (atValueStart && /\s/.test(ch)) {
      current += ch;
      continue;
    }
    atValueStart = false;
    current += ch;
  }
  if (quote) throw new PolicyDefinitionError('action', `unterminated ${quote} quote in action '${action}'`);
  pieces.push(current);

  const items = new Map<string, RawActionItem>();
  for (const piece of pieces) {
    const trimmed = piece.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    let name = (eq < 0 ? trimmed : trimmed.slice(0, eq)).trim();
    let value = eq < 0 ? undefined : trimmed.slice(eq + 1).trim();
    let negated = false;
    if (name.startsWith('!') || name.startsWith('-')) {
      negated = true;
      name = name.slice(1).trim();
    }
    if (name === '') throw new PolicyDefinitionError('action', `action item '${trimmed}' has no name`);
    if (!/^[A-Za-z0-9_*.-]+$/.test(name)) {
      throw new PolicyDefinitionError('action', `action name '${name}' contains characters that are not allowed`);
    }
    if (value !== undefined && value.length > 0 && QUOTES.has(value[0])) {
      const q = value[0];
      const close = value.indexOf(q, 1);
      if (close !== value.length - 1) {
        throw new PolicyDefinitionError('action', `action '${name}': text after the closing quote in ${value}`);
      }
      value = value.slice(1, -1);
    }
    if (negated && value !== undefined) {
      throw new PolicyDefinitionError('action', `action '!${name}' is a negation and takes no value`);
    }
    const item: RawActionItem = { name, negated, value };
    const previous = items.get(name);
    if (previous) {
      if (previous.negated !== negated || previous.value !== value) {
        throw new PolicyDefinitionError(
          'action',
          `action '${name}' is given twice with different values (${show(previous)} and ${show(item)})`,
        );
      }
      continue;
    }
    items.set(name, item);
  }
  return [...items.values()];
}

function show(item: RawActionItem): string {
  if (item.negated) return `!${item.name}`;
  return item.value === undefined ? item.name : `${item.name}=${item.value}`;
}

/** The typed actions of one policy: action name → value (`*` → true). */
export type ActionMap = ReadonlyMap<string, ActionValue>;

/** Checks a scope name (spec 3.1 scopes). */
export function parseScope(scope: string): Scope {
  const s = scope.trim();
  if (isScope(s)) return s;
  throw new PolicyDefinitionError('scope', `unknown scope '${scope}' (one of ${SCOPES.join(', ')})`);
}

/** An action of a stored policy that otpd does not support, and why. */
export interface UnsupportedAction {
  /** the item as written, e.g. `tokentype=hmac` or `!setOTPPIN` */
  item: string;
  action: string;
  reason: string;
}

export interface ParseActionsOptions {
  /**
   * Called for each unsupported action instead of refusing the whole
   * string; the action is left out of the result. Only for loading policies
   * that were stored before otpd refused the action, never for new ones.
   * @default undefined (unsupported actions are refused)
   */
  onUnsupported?: (u: UnsupportedAction) => void;
}

/** The refusal of an action otpd does not act on (error 2012). */
export function unsupportedActionError(scope: Scope, action: string, reason: string): PolicyDefinitionError {
  return new PolicyDefinitionError('action', `action '${action}' (scope ${scope}) is not supported by otpd: ${reason}`);
}

/**
 * Parses and types an action string against the catalogue: unknown
 * actions, unsupported ones and values of the wrong type are refused with a
 * message naming the action. The result maps each action to its typed value.
 */
export function parseActions(scope: Scope, action: string, opts: ParseActionsOptions = {}): ActionMap {
  const items = parseActionString(action);
  if (items.length === 0) throw new PolicyDefinitionError('action', 'the policy has no action');
  const out = new Map<string, ActionValue>();
  const refuse = (item: RawActionItem, reason: string) => {
    if (!opts.onUnsupported) throw unsupportedActionError(scope, item.name, reason);
    opts.onUnsupported({ item: show(item), action: item.name, reason });
  };
  for (const item of items) {
    if (item.name === STAR) {
      if (item.negated || item.value !== undefined) {
        throw new PolicyDefinitionError('action', "action '*' takes no value and cannot be negated");
      }
      const scopeReason = UNSUPPORTED_SCOPES[scope] ?? STAR_REFUSED[scope];
      if (scopeReason) {
        refuse(item, scopeReason);
        continue;
      }
      if (!STAR_ACTION_SCOPES.has(scope)) {
        throw new PolicyDefinitionError(
          'action',
          `action '*' (every action) is only allowed in the scopes ${[...STAR_ACTION_SCOPES].join(', ')}; in scope '${scope}' name the actions`,
        );
      }
      out.set(STAR, true);
      continue;
    }
    const spec = actionSpec(scope, item.name);
    if (!spec) throw unknownAction(scope, item.name);
    if (spec.status === 'unsupported') {
      refuse(item, spec.note ?? 'otpd does not act on it');
      continue;
    }
    out.set(item.name, typeValue(spec, item));
  }
  return out;
}

function unknownAction(scope: Scope, name: string): PolicyDefinitionError {
  const hints: string[] = [];
  const spelt = suggestAction(scope, name);
  if (spelt) hints.push(`did you mean '${spelt}'?`);
  else {
    const elsewhere = SCOPES.filter((s) => s !== scope && actionSpec(s, name));
    if (elsewhere.length) hints.push(`it belongs to scope ${elsewhere.join(', ')}`);
  }
  return new PolicyDefinitionError(
    'action',
    `unknown action '${name}' in scope '${scope}'${hints.length ? ` (${hints.join('; ')})` : ''}`,
  );
}

const TRUE_WORDS = new Set(['true', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', 'no', 'off']);

/** Converts one item to the action's type, or throws naming the action and the expected type. */
export function typeValue(spec: ActionSpec, item: RawActionItem): ActionValue {
  const name = item.name;
  const expected = describeType(spec.type);
  const wrong = (why: string) =>
    new PolicyDefinitionError('action', `action '${name}' (scope ${spec.scope}) ${why}; expected ${expected}`);
  const type = spec.type;

  if (type.kind === 'bool') {
    if (item.value === undefined) return !item.negated;
    const v = item.value.trim().toLowerCase();
    if (TRUE_WORDS.has(v)) return true;
    if (FALSE_WORDS.has(v)) return false;
    if (/^-?\d+$/.test(v)) return Number(v) > 0;
    throw wrong(`has the value '${item.value}'`);
  }

  if (item.negated) throw wrong('cannot be negated');
  if (item.value === undefined) throw wrong(`needs a value (${name}=...)`);
  const raw = item.value;

  switch (type.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw wrong(`has the value '${raw}'`);
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n)) throw wrong(`has the value '${raw}'`);
      if ((type.min !== undefined && n < type.min) || (type.max !== undefined && n > type.max)) {
        throw wrong(`has the value ${n}, out of range`);
      }
      return n;
    }
    case 'string': {
      const v = type.lowercase ? raw.toLowerCase() : raw;
      if (type.check) {
        const why = type.check(v);
        if (why) throw wrong(`has the value '${raw}': ${why}`);
      }
      return v;
    }
    case 'set': {
      const v = raw.trim().toLowerCase();
      if (!type.values.includes(v)) throw wrong(`has the value '${raw}'`);
      return type.canonical?.[v] ?? v;
    }
    case 'list': {
      const parts = raw.trim().toLowerCase().split(/\s+/).filter(Boolean);
      if (parts.length === 0) throw wrong('is empty');
      const seen = new Set<string>();
      for (const p of parts) {
        if (!type.items.includes(p)) throw wrong(`lists '${p}'`);
        if (seen.has(p)) throw wrong(`lists '${p}' twice`);
        seen.add(p);
      }
      const joined = parts.join(' ');
      if (type.combos && !type.combos.includes(joined)) throw wrong(`has the value '${raw}'`);
      return joined;
    }
    case 'names': {
      const parts = raw.trim().split(/\s+/).filter(Boolean);
      if (parts.length === 0) throw wrong('is empty');
      const seen = new Set<string>();
      for (const p of parts) {
        if (!/^[A-Za-z0-9_.-]+$/.test(p)) throw wrong(`has the name '${p}' (letters, digits, _ . - only)`);
        if (seen.has(p)) throw wrong(`lists '${p}' twice`);
        seen.add(p);
      }
      return parts.join(' ');
    }
  }
  throw wrong('has an unknown type');
}

/** Policy names as LinOTP allows them: letters, digits and `_`, not empty. */
export function parsePolicyName(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new PolicyDefinitionError('name', `invalid policy name '${name}': use letters, digits and _ only`);
  }
  if (name.length > 200) throw new PolicyDefinitionError('name', 'policy name longer than 200 characters');
  return name;
}

/** `active`: True/False in any case, 1/0, yes/no; missing or empty = true (spec 3.2). */
export function parseActive(active: string | boolean | undefined): boolean {
  if (active === undefined || active === '') return true;
  if (typeof active === 'boolean') return active;
  const v = active.trim().toLowerCase();
  if (TRUE_WORDS.has(v) || v === '1') return true;
  if (FALSE_WORDS.has(v) || v === '0') return false;
  throw new PolicyDefinitionError('active', `active must be True or False, not '${active}'`);
}
