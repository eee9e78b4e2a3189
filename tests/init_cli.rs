//! `natsform init` writes a manifest that validates and plans, and a real
//! age identity that decrypts what apply stores.

mod support;

use std::fs;
use std::process::Command;

fn natsform(dir: &std::path::Path, args: &[&str], identity: &std::path::Path) -> support::cli::Run {
    let out = Command::new(env!("CARGO_BIN_EXE_natsform"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("NATSFORM_AGE_IDENTITY", identity)
        .env_remove("NATSFORM_AGE_KEY")
        .env_remove("NATSFORM_MANIFEST")
        .output()
        .unwrap();
    support::cli::Run::from(out)
}

#[test]
fn init_creates_an_identity_and_a_manifest_that_applies() {
    for format in ["toml", "yaml"] {
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("config/natsform/identity.txt");
        let run = natsform(dir.path(), &["init", "--format", format], &identity).success();
        assert!(run.stdout.contains("Back it up"), "{}", run.stdout);
        assert!(
            run.stdout.contains(identity.to_str().unwrap()),
            "{}",
            run.stdout
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let manifest = format!("natsform.{format}");
        natsform(dir.path(), &["validate"], &identity).success();
        natsform(dir.path(), &["apply", "--auto-approve"], &identity).success();
        let creds = natsform(dir.path(), &["creds", "app/app"], &identity)
            .success()
            .stdout;
        assert!(creds.contains("BEGIN USER NKEY SEED"));
        // A second init refuses to overwrite the manifest.
        let again = natsform(dir.path(), &["init", "--format", format], &identity).failure();
        assert!(again.stderr.contains("already exists"), "{}", again.stderr);
        assert!(dir.path().join(&manifest).exists());
    }
}
