//! Fuzz target: see `mc_fuzz::stored_commit`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_fuzz::stored_commit(data));
