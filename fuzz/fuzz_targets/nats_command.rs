//! Fuzz target: see `mc_fuzz::nats_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_fuzz::nats_command(data));
