//! Every manifest under tests/bad/ has exactly one flaw. natsform must refuse
//! it with an error that names the file, line, object and fix (snapshotted,
//! the whole run), and must write nothing — not with validate, plan or apply.

mod support;

use std::fs;
use std::path::Path;

use support::cli::Project;

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
        let manifest = format!("natsform.{ext}");
        let p = Project::with_manifest(&manifest, &fs::read_to_string(&path).unwrap());

        let run = natsform_snapshot!(name = stem, p.natsform(&["validate"]).manifest_by_name());
        assert_eq!(run.code, 1, "{file_name}: validate should fail");
        assert!(run.stdout.is_empty(), "{file_name}: {}", run.stdout);
        assert!(
            run.stderr.contains(&format!("--> {manifest}:")),
            "{file_name}: error names no line:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("help:"),
            "{file_name}: error gives no fix:\n{}",
            run.stderr
        );

        for args in [&["plan"][..], &["apply", "--auto-approve"]] {
            let again = p.natsform(args).manifest_by_name().run();
            assert_eq!(again.code, 1, "{file_name}: {args:?} should fail");
            assert_eq!(
                (again.stdout.as_str(), again.stderr.as_str()),
                ("", run.stderr.as_str()),
                "{file_name}: {args:?} reports the same error"
            );
        }
        let left: Vec<_> = fs::read_dir(p.path())
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
