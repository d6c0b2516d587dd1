//! Fuzz target: see `mc_fuzz::telemetry_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_fuzz::telemetry_wire(data));
