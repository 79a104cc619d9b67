//! `cargo ff-rust ...`: the same commands as `ff-rust`, as a cargo subcommand.

fn main() -> std::process::ExitCode {
    functions_framework_cli::run(std::env::args_os())
}
