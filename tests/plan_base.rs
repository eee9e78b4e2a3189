//! `plan --base REF [--head REF]`: the plan that merging a branch would
//! execute, read from git objects. The repository is built here with git2:
//! a base commit with the walkthrough applied (manifest, lock, store,
//! vault), and a head commit that edits the manifest without applying.

#![cfg(unix)]

mod support;

use std::fs;
use std::path::Path;

use git2::{IndexAddOption, Repository, Signature};
use support::cli::{Project, Run};

/// Pinned, so the revocation times in the plan are stable.
const NOW: (&str, &str) = ("NATSFORM_NOW", "1800000000");

/// Stages every file of the working tree (deletions too) and commits.
fn commit_all(repo: &Repository, message: &str) -> String {
    let mut index = repo.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    commit_index(repo, &mut index, message)
}

fn commit_index(repo: &Repository, index: &mut git2::Index, message: &str) -> String {
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = Signature::now("natsform test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo
        .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
    id.to_string()[..7].to_string()
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// The head's edits: role `team-service` (users pam and joe) gains a
/// subject, user `newbie` joins account A, user U leaves it.
fn edit_head(p: &Project) {
    edit(
        p,
        "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\"] }",
        "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\", \"{{account-name()}}.{{tag(team)}}.shared.>\"] }",
    );
    edit(
        p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "[operators.O2.accounts.A.users.newbie]\nsigner = \"main\"\n",
    );
}

/// A repository whose first commit is the applied walkthrough and whose
/// second (HEAD) edits the manifest, applying nothing. Returns the short
/// ids of base and head.
fn two_commits() -> (Project, Repository, String, String) {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let repo = Repository::init(p.path()).unwrap();
    p.apply();
    let base = commit_all(&repo, "base: the walkthrough, applied");
    edit_head(&p);
    let head = commit_all(&repo, "head: a role changed, a user added, a user deleted");
    (p, repo, base, head)
}

fn plan(p: &Project, args: &[&str]) -> Run {
    p.run_env(args, &[NOW])
}

/// Redacted with the lock of the working tree, which is the base's:
/// nothing was applied on the head.
fn shown(p: &Project, text: &str, ids: &[(&str, &str)]) -> String {
    let mut out = p.redact(text);
    for (id, name) in ids {
        out = out.replace(id, name);
    }
    out
}

#[test]
fn the_plan_of_a_merge_against_the_applied_base() {
    let (p, _repo, base, head) = two_commits();
    let before = p.files();
    let run = plan(&p, &["plan", "--base", "HEAD~1"]).success();
    assert_eq!(p.files(), before, "plan --base wrote something");
    let text = shown(&p, &run.stdout, &[(&base, "<base>"), (&head, "<head>")]);
    // The role change with each of its users, the new user, the deleted
    // user's revocation.
    for needle in [
        "# account.O2/sales will be updated",
        "user.O2/sales/pam: effective permissions change",
        "user.O2/sales/joe: effective permissions change",
        "sales.support.shared.>",
        "sales.leads.shared.>",
        "user.O2/A/newbie will be created",
        "user.O2/A/U will be deleted",
        "reason: revokes user.O2/A/U",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    insta::assert_snapshot!(text);
    // The same plan as the working tree's own, which holds the same files.
    let local = plan(&p, &["plan"]).success();
    assert!(run.stdout.ends_with(&local.stdout));
}

/// The same merge as a pull-request comment: the view a bot posts.
#[test]
fn the_plan_of_a_merge_as_a_markdown_comment() {
    let (p, _repo, base, head) = two_commits();
    let run = plan(&p, &["plan", "--base", "HEAD~1", "--format", "markdown"]).success();
    let project = p.path().display().to_string();
    let text = shown(
        &p,
        &run.stdout,
        &[
            (&base, "<base>"),
            (&head, "<head>"),
            (&project, "[PROJECT]"),
        ],
    );
    // The marker comes first (a bot finds its comment by it), then what
    // was compared, inside the comment's limit.
    assert!(
        text.starts_with("<!-- natsform plan: [PROJECT]/natsform.toml -->\nPlan of the merge: <code>natsform.toml</code> of the working tree against the lock, store and vault at <code>HEAD~1</code> (<code><base></code>).\n\n**natsform plan:**"),
        "{text}"
    );
    for needle in [
        "<!-- natsform plan: [PROJECT]/natsform.toml -->",
        "account.O2/sales",
        "user.O2/A/newbie",
        "user.O2/A/U",
        "revokes user\\.O2/A/U",
        "Role <code>team-service</code>",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn head_from_a_revision_and_detailed_exit_code() {
    let (p, _repo, base, head) = two_commits();
    // The working tree's manifest is not read with --head: break it.
    fs::write(&p.manifest, "not = [valid").unwrap();
    let run = plan(
        &p,
        &[
            "plan",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let text = shown(&p, &run.stdout, &[(&base, "<base>"), (&head, "<head>")]);
    let header = text.lines().next().unwrap();
    insta::assert_snapshot!(header, @"Plan of the merge: natsform.toml of HEAD (<head>) against the lock, store and vault at HEAD~1 (<base>).");
    assert!(text.contains("user.O2/A/newbie will be created"), "{text}");
    // The base against itself: nothing to do, exit 0.
    let run = plan(
        &p,
        &[
            "plan",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD~1",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    // A manifest error at the head names the file as `REV:path`.
    let run = plan(&p, &["plan", "--base", "HEAD~1", "--head", "HEAD~1"]);
    assert_eq!(run.code, 0);
    fs::write(&p.manifest, "[operators.O2\n").unwrap();
    let repo = Repository::open(p.path()).unwrap();
    commit_all(&repo, "broken");
    let run = plan(&p, &["plan", "--base", "HEAD~1", "--head", "HEAD"]).failure();
    assert!(run.stderr.contains("HEAD:natsform.toml:"), "{}", run.stderr);
}

#[test]
fn a_base_without_lock_or_store_creates_everything() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let repo = Repository::init(p.path()).unwrap();
    let manifest = fs::read_to_string(&p.manifest).unwrap();
    fs::remove_file(&p.manifest).unwrap();
    fs::write(p.path().join("README"), "nothing yet\n").unwrap();
    let base = commit_all(&repo, "base: no natsform");
    fs::write(&p.manifest, manifest).unwrap();
    let run = plan(&p, &["plan", "--base", "HEAD"]).success();
    let text = shown(&p, &run.stdout, &[(&base, "<base>")]);
    assert!(
        text.contains("Base HEAD (<base>) has no natsform.lock or store for this manifest: every object is created."),
        "{text}"
    );
    assert!(text.contains("Plan: 9 to create, 0 to update"), "{text}");
    insta::assert_snapshot!(text);
    // Below the header, exactly the plan of a fresh project.
    let fresh = Project::from_example("walkthrough", "natsform.toml");
    let local = plan(&fresh, &["plan"]).success();
    assert!(run.stdout.ends_with(&format!(
        "manifest: every object is created.\n\n{}",
        local.stdout
    )));
}

#[test]
fn json_keeps_stdout_one_document_and_out_saves_a_plan_apply_accepts_after_the_merge() {
    let (p, _repo, base, _head) = two_commits();
    let run = plan(&p, &["plan", "--base", "HEAD~1", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    // What was compared is part of the document.
    assert_eq!(
        doc["base"],
        serde_json::json!({
            "manifest": "natsform.toml",
            "head": null,
            "base": {"revision": "HEAD~1", "commit": base},
            "has_lock": true,
            "has_store": true,
        })
    );
    assert!(
        run.stderr
            .contains(&format!("store and vault at HEAD~1 ({base})")),
        "{}",
        run.stderr
    );
    // The inputs of the plan are the manifest of the working tree and the
    // lock and store of the base; here the working tree holds exactly
    // those (nothing was applied on the head), as the merge would: apply
    // accepts the saved plan.
    let saved = p.path().join("merge.plan");
    plan(
        &p,
        &["plan", "--base", "HEAD~1", "--out", saved.to_str().unwrap()],
    )
    .success();
    let run = p
        .run_env(&["apply", saved.to_str().unwrap()], &[NOW])
        .success();
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
}

#[test]
fn the_manifest_path_is_resolved_from_the_repository_root() {
    // The project lives in deploy/; natsform runs from deploy/ with a
    // relative -f, and from the root with an absolute one.
    let p = Project::from_example("walkthrough", "natsform.toml");
    let repo = Repository::init(p.path()).unwrap();
    let deploy = p.path().join("deploy");
    fs::create_dir(&deploy).unwrap();
    let sub = Project {
        dir: tempfile::tempdir().unwrap(),
        manifest: deploy.join("natsform.toml"),
    };
    fs::rename(&p.manifest, &sub.manifest).unwrap();
    sub.apply();
    commit_all(&repo, "base");
    fs::write(
        &sub.manifest,
        format!(
            "{}\n[operators.O2.accounts.A.users.newbie]\n",
            fs::read_to_string(&sub.manifest).unwrap()
        ),
    )
    .unwrap();
    let run = sub
        .natsform(&["plan", "--base", "HEAD"])
        .manifest_as("natsform.toml")
        .current_dir(&deploy)
        .without_identity()
        .run()
        .success();
    assert!(
        run.stdout
            .starts_with("Plan of the merge: deploy/natsform.toml of the working tree"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Plan: 1 to create, 0 to update"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_revision_is_named() {
    let (p, _repo, _base, _head) = two_commits();
    let run = plan(&p, &["plan", "--base", "no-such-branch"]).failure();
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    insta::assert_snapshot!(run.stderr, @r"
    error: unknown git revision `no-such-branch`: revspec 'no-such-branch' not found
      = help: name a branch, tag or commit of this repository (fetch it first if it is only on a remote)
    ");
    // A manifest path the head does not have.
    let run = plan(
        &p,
        &[
            "plan",
            "--base",
            "HEAD",
            "--head",
            "HEAD",
            "-f",
            "other.toml",
        ],
    )
    .failure();
    assert!(
        run.stderr
            .contains("error: cannot read the manifest: HEAD (")
            && run
                .stderr
                .contains(") has no file other.toml\n  --> HEAD:other.toml"),
        "{}",
        run.stderr
    );
    let run = plan(&p, &["plan", "--base", "HEAD", "--head", "HEAD~7"]).failure();
    assert!(
        run.stderr
            .starts_with("error: unknown git revision `HEAD~7`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_directory_outside_git_is_an_error() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let ceiling = p.path().parent().unwrap().to_str().unwrap().to_string();
    let run = p
        .run_env(
            &["plan", "--base", "main"],
            &[("GIT_CEILING_DIRECTORIES", &ceiling)],
        )
        .failure();
    assert_eq!(run.code, 1);
    let stderr = run.stderr.replace(
        &p.path().canonicalize().unwrap().display().to_string(),
        "[DIR]",
    );
    insta::assert_snapshot!(stderr, @r"
    error: [DIR] is not inside a git repository
      = help: --base compares with a git revision: run it in a clone of the repository that holds the manifest
    ");
}

/// Commits the tree of commit `base` with the entry at `path` replaced by
/// one of mode `mode` pointing at `id` (a directory there is dropped).
fn tamper(repo: &Repository, base: git2::Oid, path: &str, mode: u32, id: git2::Oid) {
    let mut index = repo.index().unwrap();
    index
        .read_tree(&repo.find_commit(base).unwrap().tree().unwrap())
        .unwrap();
    let mut entry = index.iter().find(|e| e.path == b"natsform.toml").unwrap();
    entry.path = path.as_bytes().to_vec();
    entry.mode = mode;
    entry.id = id;
    entry.file_size = 0;
    index.remove_path(Path::new(path)).ok();
    index.remove_dir(Path::new(path), 0).ok();
    index.add(&entry).unwrap();
    index.write().unwrap();
    commit_index(repo, &mut index, "tampered");
}

/// The walkthrough applied and committed; the commit's id.
fn applied_repo() -> (Project, Repository, git2::Oid) {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let repo = Repository::init(p.path()).unwrap();
    p.apply();
    commit_all(&repo, "base");
    let base = repo.head().unwrap().peel_to_commit().unwrap().id();
    (p, repo, base)
}

#[test]
fn a_link_committed_in_the_store_is_refused() {
    let (p, repo, base) = applied_repo();
    // The account's JWT becomes a link to a file outside, in git only: the
    // working tree keeps its real file.
    let target = repo.blob(b"/etc/passwd").unwrap();
    tamper(&repo, base, "store/O2/accounts/A/A.jwt", 0o120000, target);
    let run = plan(&p, &["plan", "--base", "HEAD"]).failure();
    insta::assert_snapshot!(run.stderr, @r"
    error: reading the store at HEAD:store
      caused by: HEAD:store/O2/accounts/A/A.jwt is a symbolic link; natsform does not follow links inside the project
      = help: replace the link by the directory or file itself (links could make natsform read, write or delete files outside the project)
    ");
    // The working tree itself plans fine.
    plan(&p, &["plan"]).success();
}

#[test]
fn links_and_submodules_anywhere_at_the_base_are_refused() {
    let (p, repo, base) = applied_repo();
    let link = repo.blob(b"../elsewhere").unwrap();
    let refused = |path: &str, mode: u32, id: git2::Oid, expected: &str| {
        tamper(&repo, base, path, mode, id);
        let run = plan(&p, &["plan", "--base", "HEAD"]).failure();
        assert!(
            run.stderr.contains(expected) || run.stdout.contains(expected),
            "{path}: no {expected:?} in\n{}\n{}",
            run.stdout,
            run.stderr
        );
    };
    // A user file that is a submodule (a commit entry).
    refused(
        "store/O2/accounts/A/users/evil.jwt",
        0o160000,
        base,
        "HEAD:store/O2/accounts/A/users/evil.jwt is a git submodule; natsform does not follow links",
    );
    // Directories and files on the way, at every level.
    for path in [
        "store",
        "store/O2",
        "store/O2/.nsc",
        "store/O2/O2.jwt",
        "store/O2/accounts",
        "store/O2/accounts/sales",
        "store/O2/accounts/sales/users",
        "store/O2/accounts/sales/users/pam.jwt",
        "natsform.lock",
        "vault",
    ] {
        refused(
            path,
            0o120000,
            link,
            &format!("HEAD:{path} is a symbolic link; natsform does not follow links"),
        );
    }
    // A seed file that is a link is a blocker, shown by the plan.
    let seed = repo
        .find_commit(base)
        .unwrap()
        .tree()
        .unwrap()
        .get_path(Path::new("vault"))
        .unwrap()
        .to_object(&repo)
        .unwrap()
        .peel_to_tree()
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .name()
        .unwrap()
        .to_string();
    refused(
        &format!("vault/{seed}"),
        0o120000,
        link,
        ".age is a symbolic link, and natsform does not follow links",
    );
    // An oversized lock is refused by the same limit as on disk.
    let big = repo.blob(&vec![b'#'; 64 * 1024 * 1024 + 1]).unwrap();
    refused(
        "natsform.lock",
        0o100644,
        big,
        "cannot read lock file HEAD:natsform.lock: the file is larger than 64 MiB",
    );
}

#[test]
fn store_names_no_manifest_could_declare_are_refused_at_the_base() {
    let (p, repo, base) = applied_repo();
    let jwt = repo.blob(b"a.b.c").unwrap();
    tamper(
        &repo,
        base,
        "store/O2/accounts/A/users/e\u{1b}[2Jvil.jwt",
        0o100644,
        jwt,
    );
    let run = plan(&p, &["plan", "--base", "HEAD"]).failure();
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    assert!(
        run.stderr
            .contains("`e\\u{1b}[2Jvil` is not a usable user name"),
        "{}",
        run.stderr
    );
}
