#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a while each and says whether any crashed, ran out
# of memory or hung. Not part of CI (it needs nightly and takes minutes per target).
#
#   scripts/fuzz.sh                      # every target, 10 minutes each, one at a time
#   MINUTES=1 scripts/fuzz.sh engine hep # the named targets only
#   PARALLEL=2 scripts/fuzz.sh           # two targets at once (each uses one core)
#
# Each target starts from seeds cut from ../shared/pcaps by scripts/fuzz-seeds.py (made here
# before the run, never committed: the captures' licences do not all allow copying them into the
# project; without ../shared the targets start from an empty corpus) and writes what it
# finds into a scratch corpus ($FUZZ_WORK/corpus/<target>/, default /tmp/earshot-fuzz), which a
# later run reuses. Crashes, OOMs and timeouts are saved under $FUZZ_WORK/artifacts/<target>/;
# FUZZING.md says what to do with one. Exits 1 if any target failed, and prints a table
# (target, minutes, executions, coverage, result) to paste into FUZZING.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${MINUTES:-10}
parallel=${PARALLEL:-1}
work=${FUZZ_WORK:-/tmp/earshot-fuzz}
# A hostile input may use at most this much memory, and take at most this long.
rss_limit_mb=${RSS_LIMIT_MB:-2048}
timeout_s=${TIMEOUT_S:-10}

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: install it with 'cargo install cargo-fuzz' (needs a nightly toolchain)" >&2
    exit 2
}
if [ -d "$root/../shared/pcaps" ]; then
    python3 "$root/scripts/fuzz-seeds.py" "$root/../shared/pcaps" >&2
else
    echo "note: ../shared/pcaps is missing, so the targets start without seeds" >&2
fi
cd "$root/fuzz"
mapfile -t all < <(cargo +nightly fuzz list)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    printf '%s\n' "${all[@]}" | grep -qx "$t" || {
        echo "no fuzz target named '$t'; the targets are: ${all[*]}" >&2
        exit 2
    }
done

# One target's run: its log is $work/logs/<target>.log, its exit status <target>.rc.
run_one() {
    local t=$1
    local seeds="$root/fuzz/corpus-seed/$t"
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/logs" "$seeds"
    echo "fuzzing $t for $minutes min" >&2
    local rc=0
    nice -n 10 "$bin_dir/$t" "$work/corpus/$t" "$seeds" \
        -max_total_time=$((minutes * 60)) -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_s" \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
        >"$work/logs/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$work/logs/$t.rc"
}

# One table row from a target's log: minutes, executions, coverage, and what ended the run.
summarize() {
    local t=$1 log="$work/logs/$t.log"
    local rc result execs cov artifact secs
    if [ ! -f "$log" ]; then
        echo "| $t | 0 | 0 | - | not run |"
        return 1
    fi
    rc=$(cat "$work/logs/$t.rc" 2>/dev/null || echo 0)
    if grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
        result=OOM
    elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
        result=timeout
    elif [ "$rc" -ne 0 ] || grep -q 'ERROR: libFuzzer\|ERROR: AddressSanitizer' "$log"; then
        result=crash
    elif grep -q '^Done [0-9]* runs' "$log"; then
        result=ok
    else
        result="did not finish"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //' || true)
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //' || true)
    # The time libFuzzer reports having run, which a crash cuts short.
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1 || true)
    local mins=${secs:+$(awk "BEGIN { printf \"%.1f\", $secs / 60 }")}
    echo "| $t | ${mins:-<$minutes} | ${execs:-?} | ${cov:-?} | $result${artifact:+ ($artifact)} |"
    [ "$result" = ok ]
}

if [ "${SUMMARY_ONLY:-}" = 1 ]; then
    # Only the table, from the logs of an earlier run (e.g. one that was interrupted).
    failed=0
    echo "| target | minutes | executions | coverage (cov) | result |"
    echo "|---|---|---|---|---|"
    for t in "${targets[@]}"; do summarize "$t" || failed=1; done
    exit "$failed"
fi

echo "building ${#targets[@]} target(s)..." >&2
nice -n 10 cargo +nightly fuzz build >&2
bin_dir="$root/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

failed=0
echo
echo "| target | minutes | executions | coverage (cov) | result |"
echo "|---|---|---|---|---|"
for t in "${targets[@]}"; do summarize "$t" || failed=1; done
if [ "$failed" -ne 0 ]; then
    echo >&2
    echo "some targets failed: the inputs are under $work/artifacts/; see FUZZING.md" >&2
fi
exit "$failed"
