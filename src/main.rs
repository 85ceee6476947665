//! The `versile` command: serve demo objects, call remote objects, run
//! benchmarks. Everything lives in [`cli`]; see `versile --help`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
