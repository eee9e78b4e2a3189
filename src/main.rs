//! The natsform binary: everything happens in the library's `cli` module.

// mimalloc: about 13% faster than the system allocator on a 100,000-user
// plan (benches/plan.rs), with the same peak memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    natsform::cli::main()
}
