// The production build (scripts/build.mjs): dist/ holds one JavaScript file per source file with
// relative imports pointing at .js, non-TypeScript files copied; a source edit, an added or a
// removed file makes it stale and the next start rebuilds it (never stale code); processes
// starting at once rebuild it once; a dist/ that cannot be written fails with the fix named.
// Each test builds a small copy of the layout (scripts/build.mjs, package.json, src/) in a
// temporary directory, so the checkout's own dist/ is never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testTmpDir } from '../helpers/tmp.ts';

const REPO = join(import.meta.dirname, '../..');

function project(): string {
  const dir = testTmpDir('otpd-build-');
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(join(REPO, 'scripts/build.mjs'), join(dir, 'scripts/build.mjs'));
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(dir, 'src/util'), { recursive: true });
  writeFileSync(join(dir, 'src/main.ts'), "import { greet } from './util/greet.ts';\nimport type { Name } from './util/types.ts';\nconst who: Name = 'otpd';\nconsole.log(greet(who), new URL('./util/worker.mjs', import.meta.url).pathname.endsWith('/dist/util/worker.mjs'));\n");
  writeFileSync(join(dir, 'src/util/greet.ts'), "export const greet = (name: string): string => `hello ${name}`;\n");
  writeFileSync(join(dir, 'src/util/types.ts'), 'export type Name = string;\n');
  writeFileSync(join(dir, 'src/util/worker.mjs'), '// copied as is\n');
  writeFileSync(join(dir, 'src/util/ambient.d.ts'), "declare module 'nothing' {}\n");
  return dir;
}

/** Runs `code` (an ES module) in `dir` with node; stdout, stderr and exit code. */
function node(dir: string, code: string) {
  return run(process.execPath, ['--input-type=module', '-e', code], dir);
}

function run(command: string, args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const START = "import { ensureBuilt } from './scripts/build.mjs'; await ensureBuilt(); await import('./dist/main.js');";

/** Sets a file's modification time `seconds` from now (0: now; a build stamp is compared by mtime). */
function touch(path: string, seconds: number): void {
  const t = new Date(Date.now() + seconds * 1000);
  utimesSync(path, t, t);
}

test('a build emits one .js per source with .js imports, copies other files, skips declarations', async () => {
  const dir = project();
  try {
    const r = await node(dir, START);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello otpd true\n');
    assert.match(r.stderr, /rebuilt dist\/ \(dist\/ has not been built\): 4 files/);
    const main = readFileSync(join(dir, 'dist/main.js'), 'utf8');
    assert.match(main, /from "\.\/util\/greet\.js"/);
    assert.doesNotMatch(main, /types/, 'a type-only import leaves nothing behind');
    assert.ok(existsSync(join(dir, 'dist/util/worker.mjs')));
    assert.ok(!existsSync(join(dir, 'dist/util/ambient.d.ts')) && !existsSync(join(dir, 'dist/util/ambient.js')));
    const again = await node(dir, START);
    assert.equal(again.stderr, '', 'a current build is not rebuilt');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an edited, added or removed source, or a changed build script, rebuilds before start', async () => {
  const dir = project();
  try {
    assert.equal((await node(dir, START)).status, 0);
    writeFileSync(join(dir, 'src/util/greet.ts'), "export const greet = (name: string): string => `hi ${name}`;\n");
    const edited = await node(dir, START);
    assert.equal(edited.stdout, 'hi otpd true\n');
    assert.match(edited.stderr, /src\/util\/greet\.ts changed/);

    writeFileSync(join(dir, 'src/extra.ts'), 'export {};\n');
    touch(join(dir, 'src/extra.ts'), -3600); // an old file copied in still counts: the file set changed
    const added = await node(dir, START);
    assert.match(added.stderr, /files were added to or removed from src\//);
    assert.ok(existsSync(join(dir, 'dist/extra.js')));

    rmSync(join(dir, 'src/extra.ts'));
    const removed = await node(dir, START);
    assert.match(removed.stderr, /added to or removed/);
    assert.ok(!existsSync(join(dir, 'dist/extra.js')), 'a removed source leaves no JavaScript behind');

    touch(join(dir, 'scripts/build.mjs'), 0);
    assert.match((await node(dir, START)).stderr, /scripts\/build\.mjs changed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an installation of dist/ without src/ (the Docker image) runs it as it is', async () => {
  const dir = project();
  try {
    assert.equal((await node(dir, START)).status, 0);
    rmSync(join(dir, 'src'), { recursive: true });
    const r = await node(dir, START);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello otpd true\n');
    assert.equal(r.stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('processes starting together on a stale build rebuild it once and all run the new code', async () => {
  const dir = project();
  try {
    const runs = await Promise.all(Array.from({ length: 4 }, () => node(dir, START)));
    for (const r of runs) assert.equal(r.stdout, 'hello otpd true\n', r.stderr);
    assert.equal(runs.filter((r) => /rebuilt/.test(r.stderr)).length, 1, runs.map((r) => r.stderr).join(''));
    assert.ok(!existsSync(join(dir, '.dist.lock')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Runs `code` in `dir` mounted read-only, as a read-only installation sees it: as root through a
 * read-only bind mount in a private mount namespace (unshare), else with the directory's write
 * bits taken away. Undefined when neither is possible here.
 */
async function nodeReadOnly(dir: string, code: string) {
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555);
    try {
      return await node(dir, code);
    } finally {
      chmodSync(dir, 0o755);
    }
  }
  if (spawnSync('unshare', ['-m', 'true']).status !== 0) return undefined;
  const script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && cd "$1" && exec "$2" --input-type=module -e "$3"';
  return run('unshare', ['-m', 'sh', '-c', script, 'sh', dir, process.execPath, code], dir);
}

test('a stale build that cannot be rewritten fails naming `npm run build`; a current one runs read-only', async (t) => {
  const dir = project();
  try {
    assert.equal((await node(dir, START)).status, 0);
    const current = await nodeReadOnly(dir, START);
    if (current === undefined) return t.skip('no way to make a directory read-only here');
    assert.equal(current.status, 0, current.stderr);
    assert.equal(current.stdout, 'hello otpd true\n');
    touch(join(dir, 'src/util/greet.ts'), 0);
    const stale = await nodeReadOnly(dir, START);
    assert.equal(stale?.status, 1);
    assert.match(stale!.stderr, /dist\/ is out of date and could not be rebuilt \(.*read-only file system.*\); run `npm run build`/i);
    assert.equal(stale!.stdout, '', 'nothing stale ran');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the compiled build checks crypt passwords in its worker thread (plain node, no TypeScript loader)', () => {
  // the worker is a copied .mjs: from dist/ it must load the compiled passwords.js
  assert.equal(spawnSync(process.execPath, [join(REPO, 'bin/otpd.mjs'), '--version']).status, 0, 'dist/ is current');
  const stored = spawnSync('openssl', ['passwd', '-6', '-salt', 'otpdtest', 'demo-password'], { encoding: 'utf8' }).stdout.trim();
  assert.match(stored, /^\$6\$otpdtest\$/);
  const code = `import { verifyPassword } from ${JSON.stringify(join(REPO, 'dist/users/passwords.js'))};
    console.log(await verifyPassword('demo-password', ${JSON.stringify(stored)}), await verifyPassword('wrong', ${JSON.stringify(stored)}));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'true false\n');
});
