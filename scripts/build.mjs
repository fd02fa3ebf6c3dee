// Compiles src/ to dist/ (plain JavaScript, one file per source file, same layout), so that
// production starts without a TypeScript loader. esbuild transpiles each file without
// bundling: every import stays an import, relative `./x.ts` ones become `./x.js`. No type
// checking here (that is `npm run typecheck`). Files of src/ that are not TypeScript (the
// password worker) are copied. dist/ sits beside src/ at the same depth, so the paths code
// reads relative to its own URL (`../../web/`, `../../docs/`) stay the same.
//
// `node scripts/build.mjs` builds; bin/otpd.mjs calls ensureBuilt(), which rebuilds only when
// a source is newer than the last build (a few milliseconds of stat calls otherwise), so a
// source edit never runs stale JavaScript. Concurrent starts take a lock; the new tree is
// built beside dist/ and swapped in by rename, so a running process never sees half a build.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SRC = join(ROOT, 'src');
export const DIST = join(ROOT, 'dist');
const STAMP = '.build-stamp.json';
const LOCK = join(ROOT, '.dist.lock');
/** A lock older than this is left over from a killed build. */
const STALE_LOCK_MS = 60_000;
/** Files whose change means a rebuild besides the sources: how the build is made. */
const BUILD_INPUTS = [fileURLToPath(import.meta.url), join(ROOT, 'package.json')];

/** The files of src/ a build reads, relative to src/ (type declarations are not built). */
function sourceFiles() {
  return readdirSync(SRC, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith('.d.ts'))
    .map((e) => relative(SRC, join(e.parentPath ?? e.path, e.name)))
    .sort();
}

/**
 * Why dist/ is out of date, or null when it is current: missing, built from another set of
 * files (one added or deleted), or older than a source or a build input. Without src/ (an
 * installation of the build alone) a built dist/ is current.
 */
export function staleReason() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(DIST, STAMP), 'utf8'));
  } catch {
    return 'dist/ has not been built';
  }
  // an installation of the build alone (the Docker image ships dist/ without src/) is current
  if (!existsSync(SRC)) return null;
  const files = sourceFiles();
  if (files.length !== stamp.files?.length || files.some((f, i) => f !== stamp.files[i])) return 'files were added to or removed from src/';
  for (const f of files) if (statSync(join(SRC, f)).mtimeMs > stamp.builtAtMs) return `src/${f} changed`;
  for (const f of BUILD_INPUTS) if (existsSync(f) && statSync(f).mtimeMs > stamp.builtAtMs) return `${relative(ROOT, f)} changed`;
  return null;
}

/** Relative imports keep their place but point at the emitted `.js`; packages stay imports. */
const externals = {
  name: 'otpd-per-file',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (args.path.startsWith('.')) return { path: args.path.replace(/\.ts$/, '.js'), external: true };
      return { path: args.path, external: true };
    });
  },
};

/** Builds src/ into a fresh directory and swaps it in for dist/. @returns files built and milliseconds taken */
export async function build() {
  const started = Date.now();
  const { build: esbuild } = await import('esbuild');
  // the stamp's time is taken before reading any source: an edit during the build is newer
  const builtAtMs = Date.now();
  const files = sourceFiles();
  const next = `${DIST}.next-${process.pid}`;
  rmSync(next, { recursive: true, force: true });
  await esbuild({
    entryPoints: files.filter((f) => f.endsWith('.ts')).map((f) => join(SRC, f)),
    outdir: next,
    outbase: SRC,
    bundle: true,
    plugins: [externals],
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  for (const f of files.filter((f) => !f.endsWith('.ts'))) {
    mkdirSync(dirname(join(next, f)), { recursive: true });
    copyFileSync(join(SRC, f), join(next, f));
  }
  writeFileSync(join(next, STAMP), JSON.stringify({ builtAtMs, files }) + '\n');
  const old = `${DIST}.old-${process.pid}`;
  if (existsSync(DIST)) renameSync(DIST, old);
  renameSync(next, DIST);
  rmSync(old, { recursive: true, force: true });
  return { files: files.length, ms: Date.now() - started };
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Rebuilds dist/ when it is out of date (see staleReason), under a lock shared by processes
 * starting at the same time; the ones that waited find it current. Fails with a message
 * naming the fix when dist/ cannot be written (a read-only installation built elsewhere).
 * @param log where a rebuild is reported @default stderr
 */
export async function ensureBuilt(log = (line) => process.stderr.write(`${line}\n`)) {
  if (staleReason() === null) return;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw cannotBuild(e);
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch { /* another process removed it */ }
      await pause(50);
    }
  }
  try {
    const reason = staleReason();
    if (reason === null) return;
    const done = await build();
    log(`otpd: rebuilt dist/ (${reason}): ${done.files} files in ${done.ms} ms`);
  } catch (e) {
    throw cannotBuild(e);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

function cannotBuild(e) {
  return new Error(`dist/ is out of date and could not be rebuilt (${e.message}); run \`npm run build\` in ${ROOT}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const done = await build();
  process.stdout.write(`built dist/: ${done.files} files in ${done.ms} ms\n`);
}
