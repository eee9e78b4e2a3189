//! The natsform binary: everything happens in the library's `cli` module.

fn main() -> std::process::ExitCode {
    natsform::cli::main()
}
