//! `mission-control`: the one binary. Thin: parse flags, set up logging, call the library.

mod bench;
mod cli;
mod telemetry;

fn main() -> std::process::ExitCode {
    cli::main()
}
