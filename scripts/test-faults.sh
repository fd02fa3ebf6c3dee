#!/usr/bin/env bash
# Runs the fault suite: the long runs under test/faults/ (databases stopped and started, nodes
# killed, a PostgreSQL failover, all under load), one file at a time so each has the machine's
# cores to itself and its timing bounds mean something. Not part of `npm test`; `.ci/run` calls
# it after `npm test`. Arguments (test files) replace the default list.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(test/faults/**/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
if [ "${#files[@]}" -eq 0 ]; then echo "no test files under test/faults/" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
