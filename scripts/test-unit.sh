#!/usr/bin/env bash
# Runs the unit tier: the files marked `unit` in scripts/test-tiers.txt (pure tests: no database,
# no child process, no socket), for fast feedback. No typecheck (`npm run typecheck`);
# `npm test` runs the whole suite. Arguments are passed on to node --test.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(awk '$1 == "unit" { print $2 }' scripts/test-tiers.txt)
exec node --import tsx --test --test-concurrency=2 --test-timeout=60000 "$@" "${files[@]}"
