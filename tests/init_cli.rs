//! `natsform init` writes a manifest that validates and plans, and a real
//! age identity that decrypts what apply stores.

mod support;

use std::fs;
use std::path::Path;

use support::cli::{Project, Run};

/// natsform in the project's directory, finding the manifest itself, with
/// its configuration directory (where init puts the identity) inside it.
fn natsform(p: &Project, args: &[&str], identity: &Path) -> Run {
    p.natsform(args)
        .without_manifest_flag()
        .env("XDG_CONFIG_HOME", p.path().join("config"))
        .env("NATSFORM_AGE_IDENTITY", identity)
        .run()
}

#[test]
fn init_creates_an_identity_and_a_manifest_that_applies() {
    for format in ["toml", "yaml"] {
        let dir = Project::empty();
        let identity = dir.path().join("config/natsform/identity.txt");
        let run = natsform(&dir, &["init", "--format", format], &identity).success();
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
        natsform(&dir, &["validate"], &identity).success();
        natsform(&dir, &["apply", "--auto-approve"], &identity).success();
        let creds = natsform(&dir, &["creds", "app/app"], &identity)
            .success()
            .stdout;
        assert!(creds.contains("BEGIN USER NKEY SEED"));
        // A second init refuses to overwrite the manifest.
        let again = natsform(&dir, &["init", "--format", format], &identity).failure();
        assert!(again.stderr.contains("already exists"), "{}", again.stderr);
        assert!(dir.path().join(&manifest).exists());
    }
}
