//! Every manifest under tests/bad/ has exactly one flaw. natsform must refuse
//! it with an error that names the file, line, object and fix (snapshotted),
//! and must write nothing — not with validate, plan or apply.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

fn run(dir: &Path, file: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_natsform"))
        .args(["-f", file])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("NATSFORM_AGE_IDENTITY", support::cli::demo_identity())
        .output()
        .unwrap();
    let run = support::cli::Run::from(out).no_secrets_shown(args);
    (run.code, run.stderr)
}

#[test]
fn every_bad_manifest_is_refused_with_a_located_error_and_nothing_is_written() {
    let bad_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut names: Vec<_> = fs::read_dir(&bad_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 30, "expected the catalogue of bad manifests");
    for path in names {
        let file_name = path.file_name().unwrap().to_str().unwrap().to_string();
        let ext = path.extension().unwrap().to_str().unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!("natsform.{ext}");
        fs::copy(&path, dir.path().join(&manifest)).unwrap();

        let (code, stderr) = run(dir.path(), &manifest, &["validate"]);
        assert_eq!(code, 1, "{file_name}: validate should fail:\n{stderr}");
        assert!(
            stderr.contains(&format!("--> {manifest}:")),
            "{file_name}: error names no line:\n{stderr}"
        );
        assert!(
            stderr.contains("help:"),
            "{file_name}: error gives no fix:\n{stderr}"
        );
        insta::assert_snapshot!(stem, stderr);

        for args in [&["plan"][..], &["apply", "--auto-approve"]] {
            let (code, again) = run(dir.path(), &manifest, args);
            assert_eq!(code, 1, "{file_name}: {args:?} should fail");
            assert_eq!(
                again, stderr,
                "{file_name}: {args:?} reports the same error"
            );
        }
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from(&manifest)],
            "{file_name}: something was written"
        );
    }
}
