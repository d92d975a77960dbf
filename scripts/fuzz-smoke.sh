#!/usr/bin/env bash
# Bounded fuzz smoke run: every cargo-fuzz target for N seconds (default 60), one after the
# other. Skips with a message (exit 0) when no nightly toolchain is installed.
#
#   scripts/fuzz-smoke.sh        # 60 s per target
#   scripts/fuzz-smoke.sh 30     # CI budget
#   scripts/fuzz-smoke.sh 3600   # a longer run; corpora persist in <crate>/fuzz/corpus/<target>
#
# With `cargo fuzz` installed (cargo install cargo-fuzz) it is used (with AddressSanitizer);
# otherwise each target is built by hand with libFuzzer's coverage flags (no sanitizer; set
# FUZZ_ASAN=1 to add AddressSanitizer). A crash leaves its input in
# <crate>/fuzz/artifacts/<target>/ and makes this script fail: turn it into a regression test.
set -euo pipefail

secs="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
triple="$(rustc -vV | sed -n 's/^host: //p')"

if ! RUSTUP_AUTO_INSTALL=0 timeout 20 rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi

# crate-dir target [dictionary]
targets=(
    "protocol/fuzz request_decoder"
    "protocol/fuzz frame_decoder"
    "server/fuzz command server/fuzz/command.dict"
)

flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
    flags="$flags -Zsanitizer=address"
fi

for spec in "${targets[@]}"; do
    read -r dir name dict <<<"$spec"
    corpus="$root/$dir/corpus/$name"
    artifacts="$root/$dir/artifacts/$name/"
    mkdir -p "$corpus" "$artifacts"
    args=(-max_total_time="$secs" -artifact_prefix="$artifacts" -rss_limit_mb=2048 -print_final_stats=1)
    if [ -n "${dict:-}" ]; then
        args+=(-dict="$root/$dict")
    fi
    echo "fuzz-smoke: $dir $name for ${secs}s"
    if cargo fuzz --version >/dev/null 2>&1; then
        (cd "$root/$dir/.." && cargo +nightly fuzz run --fuzz-dir "$root/$dir" "$name" "$corpus" -- "${args[@]}")
    else
        (cd "$root/$dir" && RUSTFLAGS="$flags" cargo +nightly build --quiet --release \
            --target "$triple" --bin "$name")
        "$root/$dir/target/$triple/release/$name" "${args[@]}" "$corpus"
    fi
done
echo "fuzz-smoke: no crash in ${#targets[@]} targets x ${secs}s"
