#!/usr/bin/env bash
# Runs the whole test suite: typecheck, then every test file under test/ with node:test, except
# the long fault runs in test/faults/ (`npm run test:faults`, scripts/test-faults.sh).
# Node 20's runner does not find .ts files by itself, so bash expands the glob.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
npx tsc -p . --noEmit
files=()
for f in test/**/*.test.ts; do [[ $f == test/faults/* ]] || files+=("$f"); done
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
