#!/usr/bin/env bash
# Runs the core's criterion benches and prints switchyard's figures as ratios against the baselines
# measured in the same run (the only figures that mean anything on a shared, noisy machine).
#
# Usage:
#   scripts/bench-ratios.sh                 full run (about 8-10 minutes on 2 cores), then the report
#   scripts/bench-ratios.sh --quick         short warm-up and measurement (about 3-4 minutes)
#   scripts/bench-ratios.sh --report-only   only read target/criterion/** from an earlier run
#   scripts/bench-ratios.sh --reps N        repetitions of each group (default 3)
#   scripts/bench-ratios.sh --bench NAME    only one bench target (throughput, routing, acked or contention)
#   scripts/bench-ratios.sh --plots         keep criterion's HTML plots (slow: off by default)
#   scripts/bench-ratios.sh -- FILTER       passed to criterion (a regex on benchmark ids)
#
# Each bench runs every contender once per repetition, interleaved (A B C A B C ...), as
# <group>/<contender>/r<rep>. For each ratio this script divides criterion's median time per
# iteration (target/criterion/<group>/<contender>/r<rep>/new/estimates.json) repetition by repetition,
# and prints the median ratio over the repetitions with its min and max.
#
# Needs: cargo, jq, awk.
set -euo pipefail

cd "$(dirname "$0")/.."

quick=0
report_only=0
reps=3
benches=(--bench throughput --bench routing --bench acked --bench contention)
criterion_args=()
plots=(--noplot)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --plots) plots=() ;;
        --report-only) report_only=1 ;;
        --reps) reps="$2"; shift ;;
        --bench) benches=(--bench "$2"); shift ;;
        --) shift; criterion_args=("$@"); break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

command -v jq >/dev/null || { echo "bench-ratios: jq is needed to read criterion's estimates" >&2; exit 2; }

criterion_dir="${CARGO_TARGET_DIR:-target}/criterion"
log="${CARGO_TARGET_DIR:-target}/bench-ratios.log"

if [[ $report_only == 0 ]]; then
    mkdir -p "$(dirname "$log")"
    echo "bench-ratios: running benches (quick=$quick, reps=$reps); output in $log" >&2
    SWITCHYARD_BENCH_QUICK=$quick SWITCHYARD_BENCH_REPS=$reps \
        cargo bench -p switchyard "${benches[@]}" -- "${plots[@]}" "${criterion_args[@]}" 2>&1 | tee "$log" \
        | grep -E '^(routing setup|routing teardown|churn achieved|bench failed|bench stalled)|time:' >&2 || true
    if grep -qE '^(bench failed|bench stalled)|^error' "$log"; then
        echo "bench-ratios: a bench failed, see $log" >&2
        exit 1
    fi
fi

# median time (ns) of one repetition, or nothing when absent
estimate() { # group function rep
    local f="$criterion_dir/$1/$2/$3/new/estimates.json"
    [[ -f $f ]] && jq -r '.median.point_estimate' "$f"
}

reps_of() { # group function: the repetitions on disk, r0 r1 ...
    local d="$criterion_dir/$1/$2"
    [[ -d $d ]] && find "$d" -mindepth 1 -maxdepth 1 -type d -name 'r[0-9]*' -printf '%f\n' | sort -V
}

# Summarises numbers on stdin: "median min max count".
summarise() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit;
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "%s %s %s %d\n", m, v[1], v[NR], NR }'
}

verdict() { # value op target
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        ok = (op == ">=") ? (v >= t) : (v <= t);
        printf "%s", ok ? "hit" : "MISS" }'
}

printf '\n%-58s %9s %9s %9s  %-10s %s\n' "ratio (per repetition, then median over repetitions)" median min max target verdict
printf '%s\n' "------------------------------------------------------------------------------------------------------"

# ratio LABEL GROUP_A FUNC_A GROUP_B FUNC_B OP TARGET: value = time(A) / time(B), rep by rep.
ratio() {
    local label=$1 ga=$2 fa=$3 gb=$4 fb=$5 op=$6 target=$7 values=() a b r
    for r in $(reps_of "$ga" "$fa"); do
        a=$(estimate "$ga" "$fa" "$r") || continue
        b=$(estimate "$gb" "$fb" "$r") || continue
        values+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6g\n", a / b }')")
    done
    if [[ ${#values[@]} -eq 0 ]]; then
        printf '%-58s %9s\n' "$label" "(no data)"
        return
    fi
    read -r med min max n < <(printf '%s\n' "${values[@]}" | summarise)
    local target_text="" v=""
    if [[ $op != "-" ]]; then
        target_text="$op $target"
        v=$(verdict "$med" "$op" "$target")
    fi
    printf '%-58s %9.3f %9.3f %9.3f  %-10s %s\n' "$label" "$med" "$min" "$max" "$target_text" "$v"
}

# absolute LABEL GROUP FUNC OP TARGET_NS: the median over repetitions of the median time.
absolute() {
    local label=$1 g=$2 f=$3 op=$4 target=$5 values=() r t
    for r in $(reps_of "$g" "$f"); do
        t=$(estimate "$g" "$f" "$r") && values+=("$t")
    done
    if [[ ${#values[@]} -eq 0 ]]; then
        printf '%-58s %9s\n' "$label" "(no data)"
        return
    fi
    read -r med min max n < <(printf '%s\n' "${values[@]}" | summarise)
    printf '%-58s %9.1f %9.1f %9.1f  %-10s %s\n' "$label" "$med" "$min" "$max" "$op $target" \
        "$(verdict "$med" "$op" "$target")"
}

echo "delivered messages/s, switchyard / baseline (cross-thread, same run; targets of issue 11):"
contenders=(switchyard_publisher switchyard_publisher_batch switchyard_publish switchyard_publisher_credit)
for fan in 1 4; do
    g=throughput_1to$fan
    for sy in "${contenders[@]}"; do
        ratio "  1->$fan $sy / arrayqueue" $g arrayqueue $g $sy - -
    done
    for base in broadcast naive; do
        # 1->1: >= 3x the naive broker and tokio broadcast; 1->4: >= 2x the naive broker.
        target=-
        [[ $fan == 1 ]] && target=3
        [[ $fan == 4 && $base == naive ]] && target=2
        for sy in "${contenders[@]}"; do
            ratio "  1->$fan $sy / $base" $g $base $g $sy "$([[ $target == - ]] && echo - || echo '>=')" "$target"
        done
    done
done
echo "single thread (publish 64 then take 64), switchyard / arrayqueue (target: at most 3x the raw pair's time):"
for fan in 1 4; do
    for sy in switchyard_publisher switchyard_publisher_batch switchyard_publish; do
        ratio "  1->$fan $sy / arrayqueue" single_thread_1to$fan arrayqueue single_thread_1to$fan $sy ">=" 0.333
    done
done
echo "publish rate under 10k subscribe+unsubscribe pairs/s, churn / quiet:"
ratio "  Broker::publish" churn publish_quiet churn publish_churn ">=" 0.8
ratio "  Publisher::publish" churn publisher_quiet churn publisher_churn ">=" 0.8
echo "acknowledged delivery (issue 20), acked / plain or naive, messages/s:"
ratio "  1->1 acked, batch acks / plain" acked_1to1 plain acked_1to1 acked_batch ">=" 0.8
ratio "  1->1 acked, one ack per message / plain" acked_1to1 plain acked_1to1 acked_each ">=" 0.5
ratio "  1->1 acked, drain_into + ack_batch / plain" acked_1to1 plain acked_1to1 acked_drain ">=" 0.8
ratio "  1->1 acked, drain_into + ack_batch / plain drain_into" acked_1to1 plain_drain acked_1to1 acked_drain - -
ratio "  4 competing: switchyard acked / naive acked" acked_competing_4 naive_acked acked_competing_4 switchyard_acked ">=" 3
ratio "  4 competing: switchyard acked / switchyard plain" acked_competing_4 switchyard_plain acked_competing_4 switchyard_acked - -
ratio "  4 competing in batches: drain_into + ack_batch / naive batched" acked_competing_4 naive_acked_batch acked_competing_4 switchyard_acked_drain ">=" 3
ratio "  4 competing: the design by hand (floor) / naive acked" acked_competing_4 naive_acked acked_competing_4 floor_acked - -
ratio "  4 competing: switchyard acked / the floor" acked_competing_4 floor_acked acked_competing_4 switchyard_acked - -
echo "publishers to disjoint topics (issue 19, item 7), per-publisher messages per CPU second, two at once / one alone:"
ratio "  Publisher handles" contention_handle 1_publishers contention_handle 2_publishers ">=" 0.9
ratio "  Broker::publish by topic" contention_topic 1_publishers contention_topic 2_publishers ">=" 0.9
echo "routing:"
ratio "  match time trie@1M / trie@1k" routing_1000000 match_trie routing_1000 match_trie "<=" 2
ratio "  match time linear@1k / trie@1k (trie speed-up)" routing_1000 match_linear routing_1000 match_trie - -
ratio "  match time linear@100k / trie@100k (trie speed-up)" routing_100000 match_linear routing_100000 match_trie - -
ratio "  subscribe naive@100k / broker@100k" routing_100000 naive_subscribe routing_100000 broker_subscribe - -
ratio "  unsubscribe naive@100k / broker@100k" routing_100000 naive_unsubscribe routing_100000 broker_unsubscribe - -
ratio "  subscribe broker@1M / broker@1k" routing_1000000 broker_subscribe routing_1000 broker_subscribe - -
ratio "  unsubscribe broker@1M / broker@1k" routing_1000000 broker_unsubscribe routing_1000 broker_unsubscribe - -
echo "absolute times in ns (noisy; for the targets stated in absolute terms):"
absolute "  match_trie@1M" routing_1000000 match_trie "<=" 1000
absolute "  broker_subscribe@1M" routing_1000000 broker_subscribe "<=" 50000
absolute "  broker_unsubscribe@1M" routing_1000000 broker_unsubscribe "<=" 50000
absolute "  broker_unsubscribe_cold@1M" routing_1000000 broker_unsubscribe_cold "<=" 50000
absolute "  trie_insert_remove@1M" routing_1000000 trie_insert_remove "<=" 50000

if [[ -f $log ]]; then
    echo "from the log ($log):"
    grep -E '^(churn achieved|routing setup|routing teardown)' "$log" | sed 's/^/  /' || true
fi
