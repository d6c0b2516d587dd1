#!/usr/bin/env bash
# Fuzz the decoders of outside input (fuzz/): every target for SECONDS each (default 20).
#   scripts/fuzz.sh [seconds]
# With a nightly toolchain: cargo-fuzz (installed when missing), libFuzzer + AddressSanitizer,
# a debug build (overflow checks on; MC_FUZZ_RELEASE=1 for an optimised, faster build).
# Without nightly (and none installable, e.g. offline): says so and runs the same target
# bodies on mutated seeds on stable. Exits non-zero when a target crashes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
seconds="${1:-20}"
targets=(telemetry_wire nats_command stored_commit)

have_nightly() { rustup run nightly rustc --version >/dev/null 2>&1; }
have_cargo_fuzz() { cargo fuzz --version >/dev/null 2>&1; }

if command -v rustup >/dev/null 2>&1 && ! have_nightly; then
    echo "fuzz: no nightly toolchain, trying: rustup toolchain install nightly --profile minimal" >&2
    timeout 600 rustup toolchain install nightly --profile minimal >&2 ||
        echo "fuzz: cannot install nightly" >&2
fi
if command -v rustup >/dev/null 2>&1 && have_nightly && ! have_cargo_fuzz; then
    echo "fuzz: installing cargo-fuzz" >&2
    timeout 900 cargo install cargo-fuzz --locked >&2 || echo "fuzz: cannot install cargo-fuzz" >&2
fi

if command -v rustup >/dev/null 2>&1 && have_nightly && have_cargo_fuzz; then
    profile=(--dev)
    [[ "${MC_FUZZ_RELEASE:-}" == 1 ]] && profile=(-O)
    for t in "${targets[@]}"; do
        mkdir -p "corpus/$t"
        echo "fuzz: $t for ${seconds} s (cargo fuzz, libFuzzer)" >&2
        cargo +nightly fuzz run "${profile[@]}" "$t" "corpus/$t" "seeds/$t" -- \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    done
else
    echo "fuzz: nightly or cargo-fuzz unavailable; running the stable fallback instead:" \
        "the same targets on mutated seeds, ${seconds} s each (not coverage-guided)" >&2
    MC_FUZZ_SECONDS="$seconds" cargo test --no-default-features -- --nocapture
fi
