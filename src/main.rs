//! The natsform binary: everything happens in the library's `cli` module.

// mimalloc: about 13% faster than the system allocator on a 100,000-user
// plan (benches/plan.rs), with the same peak memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // From the mimalloc library the allocator above links in (mimalloc.h).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3): the
/// 16th option, after the 15 before it (`show_errors` … `eager_commit_delay`).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // No transparent huge pages for this process: mimalloc asks for them
    // (madvise), and the kernel then zeroes 2 MiB at each first touch and
    // again after each purge below. No-change plan at 100,000 users, run
    // alternately under load: system time 1.2 s instead of 2.0 s, wall
    // 3.1 s instead of 3.8 s, peak 442 MB instead of 452 MB.
    // MIMALLOC_ALLOW_THP, when set, decides instead (as mimalloc's own
    // option does).
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        let (on, zero): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: prctl with integer arguments (unsigned long, as the
        // kernel reads them) changes only this process's (and its
        // children's) use of huge pages; no memory is touched. A kernel
        // that refuses leaves things as they were.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, on, zero, zero, zero);
        }
    }
    // Memory a phase frees goes back to the OS at once, not after 10 ms:
    // the TOML parser's ~250 MiB of a 100,000-user manifest is then gone
    // before the store's and the desired objects' peak (no-change plan at
    // 100,000 users: 475-515 MB -> 448-450 MB peak, time within noise).
    // MIMALLOC_PURGE_DELAY, when set, still decides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no allocation
        // depends on its value.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    natsform::cli::main()
}
