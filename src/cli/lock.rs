//! `--lock-timeout` and taking the project's run lock for a command.

use std::path::Path;
use std::time::Duration;

use super::Output;
use crate::runlock::{self, Mode, RunLock};

/// The lock flags every command that reads the store shares.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// How long to wait while another natsform run holds this project's lock
    /// (e.g. 30s, 5m); 0s fails at once.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = parse_timeout,
        env = "NATSFORM_LOCK_TIMEOUT"
    )]
    pub lock_timeout: Duration,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = crate::manifest::duration::Duration::parse(text)?;
    Ok(Duration::from_nanos(d.as_nanos().max(0) as u64))
}

/// Takes the lock on the manifest's directory in `mode`, noting on stderr
/// when it has to wait.
pub fn take(manifest: &Path, mode: Mode, args: &LockArgs, out: &Output) -> anyhow::Result<RunLock> {
    let dir = runlock::project_dir(manifest);
    Ok(runlock::acquire(
        &dir,
        mode,
        args.lock_timeout,
        &mut |note| out.note(note),
    )?)
}

/// Removes temporary files an interrupted run left in `dirs` (each with how
/// deep to look), noting each one; failures are notes, not errors.
pub fn sweep(dirs: &[(&Path, usize)], out: &Output) {
    for (dir, depth) in dirs {
        for result in crate::fsutil::remove_stale_temp_files(dir, *depth) {
            match result {
                Ok(path) => out.note(&format!(
                    "Removed {}, a temporary file left by an interrupted run.",
                    path.display()
                )),
                Err(e) => out.note(&format!(
                    "Warning: could not remove a temporary file left by an interrupted run in {}: {e}",
                    dir.display()
                )),
            }
        }
    }
}
