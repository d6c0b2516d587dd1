//! `mission-control`: the one binary. Thin: parse flags, set up logging, call the library.

mod api_client;
mod auth_args;
mod backup;
mod bench;
mod cli;
mod drill;
mod events;
mod fanout;
mod heartbeats;
mod nats;
mod pricing;
mod progress;
mod telemetry;
mod tokens;

/// mimalloc instead of glibc's malloc: after a burst of concurrent reads glibc kept the freed
/// memory (RSS 21 MB → 563 MB, and it stayed), mimalloc hands it back. Measured in
/// BENCHMARKS.md, "Memory under concurrent reads". Set in the binary, not in a library, so
/// fuzzers and tools that link the libraries keep their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
