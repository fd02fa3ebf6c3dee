/**
 * Invariant: src/ follows the dependency rules of the design ("Dependency rules"):
 * no import cycle anywhere (type-only imports count: a type cycle is still a cycle
 * for a reader), and no forbidden edge between areas. Every `import … from`,
 * `export … from` and dynamic `import('…')` with a relative path is an edge.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Module specifiers of static imports/re-exports and dynamic imports (comments stripped first). */
export function specifiers(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

/** src-relative path → src-relative paths it imports (only otpd's own modules). */
function buildGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    const edges = new Set<string>();
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      assert.ok(existsSync(target), `${from} imports ${spec}, which does not exist`);
      edges.add(relative(SRC, target));
    }
    graph.set(from, [...edges].sort());
  }
  return graph;
}

/** Every elementary cycle found by a depth-first search (one per back edge), as a path. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const s = state.get(m);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

const inArea = (path: string, ...areas: string[]): boolean => areas.some((a) => path === a || path.startsWith(`${a}/`));
/** Helpers anyone may use. */
const HELPERS = ['errors.ts', 'util'];

/** The delivery modules that hold repositories (src/services.ts wires them). */
const DELIVERY_SERVICES = ['dispatcher', 'outbox', 'outcomes', 'receipts', 'health', 'limits', 'log', 'provider-admin', 'service'].map((m) => `delivery/${m}.ts`);

interface Rule { name: string; from: (p: string) => boolean; forbidden: (to: string, from: string) => boolean }

const RULES: Rule[] = [
  { name: 'otp/ imports nothing of otpd', from: (p) => inArea(p, 'otp'), forbidden: (to) => !inArea(to, 'otp') },
  {
    // One exception, by file: the repository of the token rows reads and writes through
    // store/ (the picture draws store/ below tokens/). Token types and their helpers stay pure.
    name: 'tokens/ uses only otp/, crypto/, helpers and itself',
    from: (p) => inArea(p, 'tokens'),
    forbidden: (to, from) => !inArea(to, 'tokens', 'otp', 'crypto', ...HELPERS) && !(from === 'tokens/repository.ts' && inArea(to, 'store')),
  },
  {
    name: 'tokens/, policy/, users/ know no transport (api/, radius/)',
    from: (p) => inArea(p, 'tokens', 'policy', 'users'), forbidden: (to) => inArea(to, 'api', 'radius'),
  },
  { name: 'api/ does not import radius/', from: (p) => inArea(p, 'api'), forbidden: (to) => inArea(to, 'radius') },
  { name: 'radius/ does not import api/', from: (p) => inArea(p, 'radius'), forbidden: (to) => inArea(to, 'api') },
  {
    name: 'store/ serves and never decides: it imports no domain module',
    from: (p) => inArea(p, 'store'), forbidden: (to) => !inArea(to, 'store', ...HELPERS),
  },
  {
    name: 'provider modules (delivery/sms/*, delivery/email/*) never see the database',
    from: (p) => inArea(p, 'delivery/sms', 'delivery/email'), forbidden: (to) => inArea(to, 'store'),
  },
  {
    // Only the dispatcher records outbox rows and attempts: the provider modules and their
    // transports reach neither a delivery repository nor a module that holds one.
    name: 'provider modules (delivery/sms/*, delivery/email/*, delivery/net/*) reach no delivery repository or service',
    from: (p) => inArea(p, 'delivery/sms', 'delivery/email', 'delivery/net'),
    forbidden: (to) => /^delivery\/([\w-]+-)?repository\.ts$/.test(to) || DELIVERY_SERVICES.includes(to),
  },
  {
    // The web faces (/manage, /selfservice, later /demo) sit beside api/: only the app that
    // composes the faces (api/app.ts) registers them; no service depends on a page.
    name: 'only api/app.ts imports web/',
    from: (p) => !inArea(p, 'web') && p !== 'api/app.ts', forbidden: (to) => inArea(to, 'web'),
  },
  {
    // Pages change state only by calling the API's declared routes (api/route.ts invokeRoute,
    // invokeUserRoute), so a rule is never implemented twice: no SQL, no RADIUS, no service
    // internals. api/auth.ts and api/user-auth.ts tell a page whose session it serves.
    name: 'web/ reaches the API routes, not the store, RADIUS or the services behind them',
    from: (p) => inArea(p, 'web'),
    forbidden: (to) => inArea(to, 'store', 'radius', 'validation', 'delivery', 'enrollment', 'admins', 'audit') || (inArea(to, 'api') && !['api/route.ts', 'api/auth.ts', 'api/user-auth.ts'].includes(to)),
  },
];

export function violations(graph: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) for (const r of RULES) if (r.from(from) && r.forbidden(to, from)) out.push(`${r.name}: ${from} → ${to}`);
  }
  return out.sort();
}

test('the checker itself finds a cycle and a forbidden edge', () => {
  const g = new Map([['a/x.ts', ['b/y.ts']], ['b/y.ts', ['a/x.ts']], ['tokens/t.ts', ['validation/v.ts']], ['api/a.ts', ['radius/r.ts']]]);
  assert.deepEqual(findCycles(g), [['a/x.ts', 'b/y.ts', 'a/x.ts']]);
  assert.deepEqual(violations(g), [
    'api/ does not import radius/: api/a.ts → radius/r.ts',
    'tokens/ uses only otp/, crypto/, helpers and itself: tokens/t.ts → validation/v.ts',
  ]);
  assert.deepEqual(specifiers("import type { A } from './a.ts';\nexport { b } from \"../b.ts\";\nimport './c.ts';\nconst d = await import('./d.ts');\n// import x from './nope.ts'"), ['./a.ts', '../b.ts', './c.ts', './d.ts']);
});

test('the checker finds a provider module that reaches the outbox', () => {
  const g = new Map([['delivery/sms/x.ts', ['delivery/outbox-repository.ts', 'delivery/repository.ts', 'delivery/dispatcher.ts', 'delivery/types.ts', 'delivery/config.ts']]]);
  const rule = 'provider modules (delivery/sms/*, delivery/email/*, delivery/net/*) reach no delivery repository or service';
  assert.deepEqual(violations(g), [`${rule}: delivery/sms/x.ts → delivery/dispatcher.ts`, `${rule}: delivery/sms/x.ts → delivery/outbox-repository.ts`, `${rule}: delivery/sms/x.ts → delivery/repository.ts`]);
});

test('src/ has no import cycle', () => {
  const graph = buildGraph();
  assert.ok(graph.size > 50, `only ${graph.size} modules found under src/`);
  assert.deepEqual(findCycles(graph).map((c) => c.join(' → ')), []);
});

test('src/ has no forbidden edge (DESIGN.md, "Dependency rules")', () => {
  assert.deepEqual(violations(buildGraph()), []);
});

