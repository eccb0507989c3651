#!/usr/bin/env bash
# A/B of one criterion bench of the core between another revision (A, default `main`) and this
# working tree (B), in the same run, interleaved: A B A B ... Prints, for every benchmark id, B's
# speed over A's (A's time / B's time: above 1 means B is faster) as the median over the rounds with
# its min and max. The only comparison that means anything on a shared, noisy machine.
#
# Usage:
#   scripts/bench-ab.sh [--base REV] [--bench NAME | --example NAME] [--rounds N] [--full] [-- FILTER]
#     --base REV      the revision to compare against (default: main)
#     --bench NAME    the bench target (default: throughput)
#     --example NAME  instead of a bench, this tree's example NAME, built in both trees (copied into
#                     A's): it prints `id time` lines, such as plain_path_cpu's CPU time per message,
#                     which a busy machine disturbs far less than criterion's wall time
#     --rounds N      A/B pairs (default: 5)
#     --full          criterion's full measurement times (default: SWITCHYARD_BENCH_QUICK=1)
#     FILTER          a criterion filter (a regex on benchmark ids), e.g. 'single_thread_1to1'
#
# A is built from a detached worktree of REV under ${TMPDIR:-/tmp}, kept for the next run (remove it
# with `git worktree remove`), into the same target directory (so dependencies are built once). The
# raw times ("side round id ns") are kept in target/bench-ab.txt. Needs: cargo, jq, awk.
set -euo pipefail

cd "$(dirname "$0")/.."

base=main
bench=throughput
example=
rounds=5
quick=1
filter=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base="$2"; shift ;;
        --bench) bench="$2"; shift ;;
        --example) example="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --full) quick=0 ;;
        --) shift; filter=("$@"); break ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "bench-ab: unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench-ab: --rounds must be a positive whole number, got '$rounds'" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-ab: jq is needed to find the bench executables" >&2; exit 2; }

rev=$(git rev-parse --verify --quiet "$base^{commit}") || { echo "bench-ab: no such revision: $base" >&2; exit 2; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
worktree="${TMPDIR:-/tmp}/switchyard-ab-${rev:0:12}"
if [[ ! -d "$worktree" ]]; then
    git worktree add --detach "$worktree" "$rev" >/dev/null
fi

# The path of the bench (or example) executable built in directory $1.
build() {
    if [[ -n "$example" ]]; then
        (cd "$1" && CARGO_TARGET_DIR="$target" cargo build --release -p switchyard --example "$example" \
            --message-format=json 2>/dev/null) |
            jq -r 'select(.reason == "compiler-artifact" and .target.kind == ["example"]) | .executable' |
            tail -n 1
    else
        (cd "$1" && CARGO_TARGET_DIR="$target" cargo bench -p switchyard --bench "$bench" --no-run \
            --message-format=json 2>/dev/null) |
            jq -r 'select(.reason == "compiler-artifact" and .target.kind == ["bench"]) | .executable' |
            tail -n 1
    fi
}
if [[ -n "$example" ]]; then
    [[ -f "examples/$example.rs" ]] || { echo "bench-ab: no example examples/$example.rs in this tree" >&2; exit 2; }
    cp "examples/$example.rs" "$worktree/examples/$example.rs"
fi
echo "bench-ab: building A ($base, ${rev:0:12}) and B (this tree)" >&2
exe_a=$(build "$worktree")
exe_b=$(build "$PWD")
[[ -x "$exe_a" && -x "$exe_b" ]] || { echo "bench-ab: a bench executable is missing (A: '$exe_a', B: '$exe_b')" >&2; exit 1; }

results="$target/bench-ab.txt"
: >"$results"
# One run of executable $2 as side $1, round $3: "side round id time" lines (from criterion's bencher
# format, or the example's own `id time` lines).
run() {
    if [[ -n "$example" ]]; then
        "$2" | awk -v side="$1" -v round="$3" 'NF == 2 && $2 + 0 > 0 { print side, round, $1, $2 }'
    else
        SWITCHYARD_BENCH_QUICK=$quick SWITCHYARD_BENCH_REPS=1 "$2" --bench --noplot --output-format bencher \
            "${filter[@]}" 2>/dev/null |
            awk -v side="$1" -v round="$3" '/^test .* bench:/ { gsub(",", "", $5); print side, round, $2, $5 }'
    fi
}
for round in $(seq 1 "$rounds"); do
    echo "bench-ab: round $round of $rounds" >&2
    run A "$exe_a" "$round" >>"$results"
    run B "$exe_b" "$round" >>"$results"
done

echo "B ($(git rev-parse --short HEAD)+worktree) over A ($base): A's time / B's time, median [min-max] over $rounds rounds"
awk '
    { t[$1, $2, $3] = $4; ids[$3] = 1; if ($2 > rounds) rounds = $2 }
    END {
        for (id in ids) {
            n = 0
            for (r = 1; r <= rounds; r++)
                if ((("A", r, id) in t) && (("B", r, id) in t) && t["B", r, id] > 0)
                    ratio[++n] = t["A", r, id] / t["B", r, id]
            if (n == 0) continue
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (ratio[j] < ratio[i]) { x = ratio[i]; ratio[i] = ratio[j]; ratio[j] = x }
            median = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
            printf "%-60s %.3f [%.3f-%.3f]\n", id, median, ratio[1], ratio[n]
        }
    }' "$results" | sort
