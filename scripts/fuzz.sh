#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a while each and says whether any crashed, ran out
# of memory or hung. Not part of CI (it needs nightly and takes minutes per target).
#
#   scripts/fuzz.sh                      # every target, 10 minutes each, one at a time
#   MINUTES=1 scripts/fuzz.sh engine hep # the named targets only
#   PARALLEL=2 scripts/fuzz.sh           # two targets at once (each uses one core)
#
# Each target starts from the committed seeds (fuzz/corpus-seed/<target>/) and writes what it
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

echo "building ${#targets[@]} target(s)..." >&2
nice -n 10 cargo +nightly fuzz build >&2
bin_dir="$root/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

# One target's run; its log is $work/logs/<target>.log, its verdict $work/logs/<target>.result.
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
    local result=ok
    if grep -q 'ERROR: libFuzzer: out-of-memory' "$work/logs/$t.log"; then
        result=OOM
    elif grep -q 'ERROR: libFuzzer: timeout' "$work/logs/$t.log"; then
        result=timeout
    elif [ "$rc" -ne 0 ]; then
        result=crash
    fi
    local execs cov
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/logs/$t.log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$work/logs/$t.log" | tail -1 | sed 's/cov: //')
    local artifact
    artifact=$(grep -o "Test unit written to [^ ]*" "$work/logs/$t.log" | tail -1 | sed 's/Test unit written to //')
    echo "$t|$minutes|${execs:-?}|${cov:-?}|$result${artifact:+ ($artifact)}" >"$work/logs/$t.result"
}

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
for t in "${targets[@]}"; do
    IFS='|' read -r name mins execs cov result <"$work/logs/$t.result"
    echo "| $name | $mins | $execs | $cov | $result |"
    [[ $result == ok ]] || failed=1
done
if [ "$failed" -ne 0 ]; then
    echo >&2
    echo "some targets failed: the inputs are under $work/artifacts/; see FUZZING.md" >&2
fi
exit "$failed"
