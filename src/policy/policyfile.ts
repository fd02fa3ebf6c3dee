/**
 * The `policy.cfg` file of `/system/getPolicy?export=true` and
 * `/system/importPolicy`: LinOTP writes it with ConfigObj, one INI section per
 * policy. This reads the subset such files use (sections, `key = value`,
 * single/double/triple quoted values, `#` comments, unquoted comma lists)
 * and writes values always quoted, which ConfigObj reads back unchanged.
 */
import type { Policy, PolicyInput } from './match.ts';
import { PolicyDefinitionError } from './parse.ts';

const FIELDS = ['scope', 'action', 'realm', 'user', 'client', 'time', 'active'] as const;

function quote(value: string): string {
  if (!value.includes('"')) return `"${value}"`;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"""')) return `"""${value}"""`;
  return `'''${value}'''`;
}

/** Policies as a policy.cfg text. */
export function formatPolicyFile(policies: readonly Policy[]): string {
  const out: string[] = [];
  for (const p of policies) {
    out.push(`[${p.name}]`);
    for (const f of FIELDS) {
      const v = f === 'active' ? (p.active ? 'True' : 'False') : p[f];
      out.push(`${f} = ${quote(v)}`);
    }
    out.push('');
  }
  return out.join('\n');
}

function fail(line: number, why: string): PolicyDefinitionError {
  return new PolicyDefinitionError('file', `policy file line ${line}: ${why}`);
}

/** Reads one value: quoted (with optional trailing comment) or unquoted (comment stripped, comma lists joined). */
function readValue(raw: string, line: number): string {
  const v = raw.trim();
  for (const q of ['"""', "'''", '"', "'"]) {
    if (v.startsWith(q)) {
      const end = v.indexOf(q, q.length);
      if (end < 0) throw fail(line, `unterminated ${q} quote`);
      const rest = v.slice(end + q.length).trim();
      if (rest !== '' && !rest.startsWith('#')) {
        if (rest.startsWith(',')) throw fail(line, 'a list of quoted values; quote the whole value');
        throw fail(line, `text after the closing quote: ${rest}`);
      }
      return v.slice(q.length, end);
    }
  }
  const hash = v.search(/\s#/);
  const body = (hash >= 0 ? v.slice(0, hash) : v).trim();
  // ConfigObj turns an unquoted comma list into a list; LinOTP stores it joined again
  return body
    .split(',')
    .map((s) => s.trim())
    .filter((s, _i, all) => s !== '' || all.length === 1)
    .join(', ');
}

/** Parses a policy.cfg text into policy definitions (not yet validated). */
export function parsePolicyFile(text: string): PolicyInput[] {
  const policies: PolicyInput[] = [];
  let current: (PolicyInput & Record<string, unknown>) | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, i) => {
    const n = i + 1;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[\s*([^\]]*?)\s*\](\s*#.*)?$/.exec(line);
    if (section) {
      if (line.startsWith('[[')) throw fail(n, 'nested sections are not policies');
      const name = section[1];
      if (policies.some((p) => p.name === name)) throw fail(n, `policy '${name}' appears twice`);
      current = { name, scope: '', action: '' };
      policies.push(current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw fail(n, `expected 'key = value', got '${line}'`);
    if (!current) throw fail(n, 'a value before the first [policy] section');
    const key = line.slice(0, eq).trim();
    if (!(FIELDS as readonly string[]).includes(key) && key !== 'name') throw fail(n, `unknown policy field '${key}'`);
    if (key === 'name') return; // the section header names the policy
    current[key] = readValue(line.slice(eq + 1), n);
  });
  for (const p of policies) {
    if (!p.scope) throw new PolicyDefinitionError('file', `policy '${p.name}' has no scope`);
  }
  return policies;
}

/** LinOTP's import fills the condition fields a section leaves out with `*`. */
export function withImportDefaults(inputs: PolicyInput[]): PolicyInput[] {
  return inputs.map((i) => ({ ...i, realm: i.realm ?? '*', user: i.user ?? '*', client: i.client ?? '*', time: i.time ?? '*' }));
}
