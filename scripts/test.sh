#!/usr/bin/env bash
# Runs the whole test suite: typecheck, then every test file under test/ with node:test.
# Node 20's runner does not find .ts files by itself, so bash expands the glob.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
npx tsc -p . --noEmit
files=(test/**/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
