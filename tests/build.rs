//! rstest's `#[files]` glob is expanded when the test crate compiles; rebuild it whenever the
//! scenarios directory changes, so a new scenario file is a new test on the next `cargo test`.
//! The same holds for the broken-input corpus under `bad-input`.
fn main() {
    println!("cargo:rerun-if-changed=../scenarios");
    println!("cargo:rerun-if-changed=bad-input");
}
