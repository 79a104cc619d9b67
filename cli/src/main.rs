//! `ff-rust`: see the crate's documentation.

fn main() -> std::process::ExitCode {
    functions_framework_cli::run(std::env::args_os())
}
