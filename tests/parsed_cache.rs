//! The parsed-manifest cache (`src/manifest/remembered.rs`): `plan` reads
//! back the model it parsed from the exact same manifest text; an edit is
//! parsed again; only `plan` uses it, so an entry that lies can mislead a
//! plan but never what apply signs, and `apply` and `plan --verify-all`
//! replace it with their own parse.
//! `NATSFORM_DEBUG_MANIFEST=1` makes plan say where its model came from.

mod support;

use std::fs;

use natsform::manifest::remembered::ParsedCache;
use natsform::manifest::Manifest;
use support::cli::{Project, Run};

/// `plan` with the debug line; the run (without it) and where the model
/// came from ("parsed" or "remembered").
fn plan(p: &Project, args: &[&str]) -> (Run, String) {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    let mut run = p
        .natsform(&all)
        .env("NATSFORM_DEBUG_MANIFEST", "1")
        .run()
        .success();
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("natsform: manifest: "))
        .unwrap_or_else(|| panic!("no manifest line:\n{}", run.stderr))
        .to_string();
    run.stderr = run.stderr.replace(&format!("{line}\n"), "");
    (run, line["natsform: manifest: ".len()..].to_string())
}

fn entry(p: &Project) -> ParsedCache {
    ParsedCache::at(&p.cache_home(), &p.manifest.canonicalize().unwrap())
}

/// Replaces the model of the entry natsform wrote with `model`, keeping
/// its header (magic and key: what an entry is found by): what someone who
/// can write the user's cache directory could do. `true` when it changed.
fn lie_in_entry(p: &Project, model: &Manifest) -> bool {
    const HEADER_LEN: usize = 8 + 32;
    let file = entry(p).path().to_path_buf();
    let genuine = fs::read(&file).unwrap();
    let mut lie = genuine[..HEADER_LEN].to_vec();
    lie.extend(serde_json::to_vec(model).unwrap());
    fs::write(&file, &lie).unwrap();
    lie != genuine
}

fn walkthrough() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    p
}

#[test]
fn a_second_plan_reads_the_model_back_and_an_edit_is_parsed_again() {
    let p = walkthrough();
    // apply parsed the manifest and remembered its model.
    let file = entry(&p).path().to_path_buf();
    let written = fs::metadata(&file).unwrap().modified().unwrap();
    let (first, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert!(first.stdout.contains("No changes"), "{}", first.stdout);
    fs::remove_file(&file).unwrap();
    let (parsed, from) = plan(&p, &[]);
    assert_eq!(from, "parsed");
    assert_eq!(parsed.stdout, first.stdout);
    let written = {
        let again = fs::metadata(&file).unwrap().modified().unwrap();
        assert!(again >= written);
        again
    };
    let (second, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert_eq!(second.stdout, first.stdout);
    // Unchanged: not written again.
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), written);

    let text = fs::read_to_string(&p.manifest).unwrap();
    fs::write(
        &p.manifest,
        format!("{text}\n[operators.O2.accounts.sales.users.newbie]\nsigner = \"team-service\"\ntags = [\"team:new\"]\n"),
    )
    .unwrap();
    let (edited, from) = plan(&p, &[]);
    assert_eq!(from, "parsed");
    assert!(edited.stdout.contains("newbie"), "{}", edited.stdout);
    let (again, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert_eq!(again.stdout, edited.stdout);
    // apply of that manifest parses it again and finds the entry holding
    // its model already: not written again.
    let before = fs::read(&file).unwrap();
    let written = fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    p.run(&["apply", "--auto-approve"]).success();
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), written);
    assert_eq!(fs::read(&file).unwrap(), before);
}

#[test]
fn a_lying_entry_misleads_only_plan_and_verify_all_replaces_it() {
    let p = walkthrough();
    let _ = plan(&p, &[]);
    // Someone who can write the user's cache directory remembers, for the
    // manifest's exact text, a model without user `joe`.
    let text = fs::read_to_string(&p.manifest).unwrap();
    let without_joe = text.replace(
        "[operators.O2.accounts.sales.users.joe]\nsigner = \"team-service\"\ntags = [\"team:leads\"]\n",
        "",
    );
    assert_ne!(without_joe, text);
    let lie: Manifest = toml::from_str(&without_joe).unwrap();
    assert!(lie_in_entry(&p, &lie));

    // plan believes it (the documented limit of the cache's trust) …
    let (lied, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert!(lied.stdout.contains("joe"), "{}", lied.stdout);
    // … apply parses the manifest: it deletes nothing and signs nothing.
    let joe = p.store_file("O2/accounts/sales/users/joe.jwt");
    let applied = p.run(&["apply", "--auto-approve"]).success();
    assert!(applied.stdout.contains("No changes"), "{}", applied.stdout);
    assert_eq!(p.store_file("O2/accounts/sales/users/joe.jwt"), joe);
    // And `creds` never reads the entry.
    assert!(p.creds("O2/sales/joe").contains("USER JWT"));
    // apply replaced the entry with its own parse (though it had nothing
    // to do): the next plan reads the truth back.
    let (after_apply, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert!(
        after_apply.stdout.contains("No changes"),
        "{}",
        after_apply.stdout
    );

    // plan --verify-all takes nothing remembered, and remembers the truth.
    assert!(lie_in_entry(&p, &lie));
    let (truth, from) = plan(&p, &["--verify-all"]);
    assert_eq!(from, "parsed");
    assert!(truth.stdout.contains("No changes"), "{}", truth.stdout);
    let (after, from) = plan(&p, &[]);
    assert_eq!(from, "remembered");
    assert_eq!(after.stdout, truth.stdout);
}

#[test]
fn an_entry_that_is_a_link_or_damaged_is_ignored_with_a_note() {
    let p = walkthrough();
    let _ = plan(&p, &[]);
    let file = entry(&p).path().to_path_buf();
    let mut bytes = fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 2);
    fs::write(&file, &bytes).unwrap();
    let (run, from) = plan(&p, &[]);
    assert_eq!(from, "parsed");
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
    assert!(
        run.stderr.contains("ignored the parsed-manifest cache") && run.stderr.contains("damaged"),
        "{}",
        run.stderr
    );
    // Written again from the parse: the next plan reads it back.
    assert_eq!(plan(&p, &[]).1, "remembered");

    let elsewhere = p.cache_home().join("elsewhere");
    fs::rename(&file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let (run, from) = plan(&p, &[]);
    assert_eq!(from, "parsed");
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
}
