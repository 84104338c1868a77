//! The `ocs-harness` command line: test scenarios, plan a stack, build the offline images,
//! compare image sets, clean up. It lives in the library (`ocs_harness::cli`), so that it can use
//! the library's internals without making them public; this file only starts it.

fn main() -> std::process::ExitCode {
    ocs_harness::cli::main()
}
