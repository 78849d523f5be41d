#!/usr/bin/env bash
# Smoke-fuzz every target briefly on stable Rust (no sanitizer).
#
#   bash fuzz/smoke.sh                  # 10 s per target
#   FUZZ_SECONDS=60 bash fuzz/smoke.sh  # longer hunt
#
# Builds all targets once, then runs each from a fresh working corpus seeded with the
# committed fuzz/seeds/<target>/ files (the seeds themselves are never modified), with
# the vocabulary in fuzz/dicts/rotor.dict.
# Fails on the first crash, leak, timeout or OOM; libFuzzer leaves the input in
# fuzz/artifacts/<target>/. Replay one with
#   cargo fuzz run -s none <target> artifacts/<target>/<file>
# and add it to fuzz/seeds/<target>/ once fixed (tests/it/fuzz_regressions.rs replays it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${FUZZ_SECONDS:-10}"
targets=(filter_compile filter_vm_vs_reference cel_translate_vs_interp cel_native_vs_crate client_command protobuf_command api_request jwt_parse ws_frames stream_request)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building ${#targets[@]} targets"
cargo fuzz build -s none

for t in "${targets[@]}"; do
    echo "== $t (${seconds}s)"
    rm -rf "corpus/$t"
    mkdir -p "corpus/$t" "artifacts/$t"
    cp seeds/"$t"/* "corpus/$t/"
    cargo fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -dict=dicts/rotor.dict -print_final_stats=1
done

echo "== all ${#targets[@]} targets ran ${seconds}s without a crash"
