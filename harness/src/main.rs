//! The `ocs-harness` command line: test scenarios, plan a stack, build the offline images,
//! compare image sets, clean up. Everything is in `cli/`; this file only starts it.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
