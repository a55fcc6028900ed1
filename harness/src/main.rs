//! `harness`: a thin entry point; all the work is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    harness::cli::main()
}
