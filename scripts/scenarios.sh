#!/usr/bin/env bash
# Runs the standard load scenarios (1→1, 1→4, 4→4, 10k subscriptions with mixed filters, a slow
# consumer) against the switchyard core and the naive baseline broker, interleaved (A B A B), and
# prints one table with delivered/s, p99 latency, drops and the switchyard/naive ratio.
#
# Usage: scripts/scenarios.sh [--scenario-duration 2s] [--repeat 3] [--seed N]
# Extra arguments go to `switchyard load --scenarios`. Build is release: debug figures mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p switchyard-tui
exec ./target/release/switchyard load --scenarios "$@"
