#!/usr/bin/env bash
# Runs the fault suite: the files under test/faults/ (tier `faults` in scripts/test-tiers.txt),
# each a bounded load run while something breaks (databases stopped and started, SQLite's disk
# full, kill -9, the directory or a provider misbehaving, overload). Kept out of `npm test`;
# .ci/run calls it after `npm test`. All files together stay under 15 minutes on 2 cores.
# They need root (tmpfs mounts, private PostgreSQL/MariaDB run as their service users).
# Arguments replace the file list.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(test/faults/**/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
if [ "${#files[@]}" -eq 0 ]; then echo "no test files under test/faults/" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
