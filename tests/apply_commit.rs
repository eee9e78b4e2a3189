//! `apply --commit`: one commit on HEAD with exactly the store, lock and
//! vault files the apply changed; no commit when nothing changed; refused,
//! with nothing changed, when those paths hold uncommitted changes; other
//! files (staged or not) left alone; a clear error outside git.

#![cfg(unix)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Repository, Signature, Status, StatusOptions};
use support::cli::{Natsform, Project, Run};

/// A git repository around the walkthrough project, its manifest committed
/// (nothing applied), with an author in its config and no global config.
struct Git {
    p: Project,
    repo: Repository,
    home: tempfile::TempDir,
}

impl Git {
    fn new() -> Git {
        Git::at(Project::from_example("walkthrough", "natsform.toml"), None)
    }

    /// The project `p`, in a repository at `p.path()`; with `sub`, the
    /// manifest moved to that subdirectory.
    fn at(mut p: Project, sub: Option<&str>) -> Git {
        if let Some(sub) = sub {
            let dir = p.path().join(sub);
            fs::create_dir_all(&dir).unwrap();
            let moved = dir.join("natsform.toml");
            fs::rename(&p.manifest, &moved).unwrap();
            p.manifest = moved;
        }
        let repo = Repository::init(p.path()).unwrap();
        {
            let mut config = repo.config().unwrap();
            config.set_str("user.name", "Config Person").unwrap();
            config.set_str("user.email", "config@example.com").unwrap();
        }
        let home = tempfile::tempdir().unwrap();
        let git = Git { p, repo, home };
        git.commit_all("the manifest");
        git
    }

    /// natsform with HOME elsewhere: no global git config of this machine.
    fn natsform(&self, args: &[&str]) -> Natsform<'_> {
        self.p
            .natsform(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_AUTHOR_NAME")
            .env_remove("GIT_AUTHOR_EMAIL")
            .env_remove("GIT_COMMITTER_NAME")
            .env_remove("GIT_COMMITTER_EMAIL")
    }

    fn run(&self, args: &[&str]) -> Run {
        self.natsform(args).run()
    }

    /// Stages every file (deletions too) and commits.
    fn commit_all(&self, message: &str) -> git2::Oid {
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("test", "test@example.com").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    fn head(&self) -> git2::Oid {
        self.repo.head().unwrap().target().unwrap()
    }

    /// The paths a commit changed against its first parent.
    fn touched(&self, id: git2::Oid) -> BTreeSet<String> {
        let c = self.repo.find_commit(id).unwrap();
        let parent = c.parent(0).unwrap().tree().unwrap();
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&parent), Some(&c.tree().unwrap()), None)
            .unwrap();
        diff.deltas()
            .map(|d| {
                let f = d.new_file().path().or(d.old_file().path()).unwrap();
                f.to_str().unwrap().to_string()
            })
            .collect()
    }

    /// `git status`, path → status (ignoring the run lock, which is not
    /// left behind anyway).
    fn status(&self) -> Vec<(String, Status)> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        self.repo
            .statuses(Some(&mut opts))
            .unwrap()
            .iter()
            .map(|e| (e.path().unwrap().to_string(), e.status()))
            .collect()
    }

    /// Every file of the working tree and the git directory, with its
    /// bytes: what "nothing changed" compares.
    fn snapshot_all(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.p.files()
    }

    /// A run's stderr with the project filters, the commit ids hidden, and
    /// without the warning about the demo identity's permissions (which
    /// depend on the checkout and name its path).
    fn shown(&self, text: &str) -> String {
        let mut kept = Vec::new();
        let mut skip_help = false;
        for line in text.lines() {
            if line.starts_with("warning: identity file ") {
                skip_help = true;
                continue;
            }
            if skip_help && line.starts_with("  = help: run `chmod 600") {
                continue;
            }
            skip_help = false;
            kept.push(line);
        }
        let mut out = self.p.filter(&(kept.join("\n") + "\n"));
        for id in self.ids() {
            out = out.replace(&id, "[COMMIT]").replace(&id[..7], "[COMMIT]");
        }
        out
    }

    fn ids(&self) -> Vec<String> {
        let mut walk = self.repo.revwalk().unwrap();
        walk.push_head().unwrap();
        walk.map(|id| id.unwrap().to_string()).collect()
    }

    fn message(&self, id: git2::Oid) -> String {
        let c = self.repo.find_commit(id).unwrap();
        self.p.redact(c.message().unwrap())
    }
}

/// The store, lock and vault files under `dir` (repository-relative
/// prefix `prefix`).
fn state_files(dir: &Path, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    for sub in ["store", "vault"] {
        walk(dir, &dir.join(sub), &mut out);
    }
    out.insert("natsform.lock".to_string());
    out.into_iter().map(|f| format!("{prefix}{f}")).collect()
}

fn in_scope(path: &str, prefix: &str) -> bool {
    path == format!("{prefix}natsform.lock")
        || path.starts_with(&format!("{prefix}store/"))
        || path.starts_with(&format!("{prefix}vault/"))
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// User U of account A leaves; user `newbie` joins.
fn replace_user(p: &Project) {
    edit(
        p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "[operators.O2.accounts.A.users.newbie]\nsigner = \"main\"\n",
    );
}

#[test]
fn apply_commit_records_exactly_what_apply_wrote_then_nothing() {
    let g = Git::new();
    let before = g.head();
    let run = g.run(&["apply", "--auto-approve", "--commit"]).success();
    let first = g.head();
    assert_ne!(first, before, "a commit was made");
    assert_eq!(
        g.repo.find_commit(first).unwrap().parent_id(0).unwrap(),
        before
    );
    // Exactly the state files, every one of them (all new), nothing else.
    let touched = g.touched(first);
    assert!(touched.iter().all(|f| in_scope(f, "")), "{touched:?}");
    assert_eq!(touched, state_files(g.p.path(), ""));
    // The author from git config; hooks are not run (none exist anyway).
    let c = g.repo.find_commit(first).unwrap();
    assert_eq!(c.author().name().ok(), Some("Config Person"));
    assert_eq!(c.committer().email().ok(), Some("config@example.com"));
    // Nothing left over: the index and working tree match the commit.
    assert_eq!(g.status(), vec![], "git status is clean");
    insta::assert_snapshot!("first_commit_message", g.message(first));
    insta::assert_snapshot!("first_commit_stderr", g.shown(&run.stderr));

    // Again: nothing to do, no commit. An interrupted write's temporary
    // file is neither refused nor committed (the apply sweeps it).
    let temp = g.p.path().join("vault/.natsform-Ab12.tmp");
    fs::write(&temp, "partial").unwrap();
    let again = g.run(&["apply", "--auto-approve", "--commit"]).success();
    assert_eq!(g.head(), first, "no commit when nothing changed");
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert!(!temp.exists(), "swept");

    // A user replaced: modified and deleted files are committed; the edited
    // manifest is not (it is not the apply's to commit).
    replace_user(&g.p);
    let run = g
        .run(&["apply", "--auto-approve", "--commit", "--json"])
        .success();
    let second = g.head();
    assert_ne!(second, first);
    let touched = g.touched(second);
    assert!(touched.iter().all(|f| in_scope(f, "")), "{touched:?}");
    assert!(
        touched.contains("store/O2/accounts/A/users/U.jwt"),
        "{touched:?}"
    );
    assert!(!g.p.path().join("store/O2/accounts/A/users/U.jwt").exists());
    assert!(touched.contains("store/O2/accounts/A/users/newbie.jwt"));
    assert!(touched.contains("natsform.lock"));
    assert_eq!(
        g.status(),
        vec![("natsform.toml".to_string(), Status::WT_MODIFIED)]
    );
    insta::assert_snapshot!("second_commit_message", g.message(second));
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["commit"], second.to_string());

    // Nothing to do with --json: the commit is null.
    let run = g
        .run(&["apply", "--auto-approve", "--commit", "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["commit"], serde_json::Value::Null);
    assert_eq!(g.head(), second);
    // Without --commit the document keeps its shape.
    let run = g.run(&["apply", "--auto-approve", "--json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(doc.get("commit").is_none());
}

#[test]
fn uncommitted_changes_in_the_store_lock_or_vault_are_refused_with_nothing_changed() {
    let g = Git::new();
    g.run(&["apply", "--auto-approve", "--commit"]).success();
    let head = g.head();
    // The apply refused would have work to do.
    replace_user(&g.p);
    let jwt = "store/O2/accounts/A/users/U.jwt";
    // The seed file of the system account (named by its public key).
    let lock = fs::read_to_string(g.p.path().join("natsform.lock")).unwrap();
    let sys_key = lock
        .lines()
        .find_map(|l| l.strip_prefix("\"account.O2/SYS#v1\" = "))
        .expect("the lock binds the system account")
        .trim_matches('"');
    let vault_file = g.p.path().join(format!("vault/{sys_key}.age"));
    assert!(vault_file.exists());
    type Dirty<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Dirty)> = vec![
        (
            "modified",
            Box::new(|| {
                let path = g.p.path().join(jwt);
                let text = fs::read_to_string(&path).unwrap();
                fs::write(&path, format!("{text}\n")).unwrap();
            }),
        ),
        (
            "untracked",
            Box::new(|| fs::write(g.p.path().join("vault/notes.txt"), "hello").unwrap()),
        ),
        (
            "staged",
            Box::new(|| {
                let path = g.p.path().join("natsform.lock");
                let text = fs::read_to_string(&path).unwrap();
                fs::write(&path, format!("# edited\n{text}")).unwrap();
                let mut index = g.repo.index().unwrap();
                index.add_path(Path::new("natsform.lock")).unwrap();
                index.write().unwrap();
            }),
        ),
        (
            "deleted",
            Box::new(|| fs::remove_file(&vault_file).unwrap()),
        ),
    ];
    for (name, dirty) in cases {
        // A clean start for each case: back to HEAD, the manifest edited.
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        g.repo
            .reset(
                g.repo.find_commit(head).unwrap().as_object(),
                git2::ResetType::Hard,
                Some(&mut checkout),
            )
            .unwrap();
        let _ = fs::remove_file(g.p.path().join("vault/notes.txt"));
        assert_eq!(g.status(), vec![], "{name}: a clean start");
        replace_user(&g.p);
        dirty();
        let files = g.snapshot_all();
        let status = g.status();
        let (snapshot, run) = g
            .natsform(&["apply", "--auto-approve", "--commit"])
            .snapshot();
        run.failure();
        insta::assert_snapshot!(format!("refused_{name}"), g.shown(&snapshot));
        assert_eq!(g.snapshot_all(), files, "{name}: nothing changed");
        assert_eq!(g.status(), status, "{name}: git status unchanged");
        assert_eq!(g.head(), head, "{name}: no commit");
    }
}

#[test]
fn unrelated_changes_elsewhere_are_left_alone_and_not_committed() {
    let g = Git::new();
    // Staged and unstaged changes outside the store, lock and vault.
    fs::write(g.p.path().join("README.txt"), "v1\n").unwrap();
    g.commit_all("a readme");
    fs::write(g.p.path().join("README.txt"), "v2, staged\n").unwrap();
    let mut index = g.repo.index().unwrap();
    index.add_path(Path::new("README.txt")).unwrap();
    index.write().unwrap();
    fs::write(g.p.path().join("README.txt"), "v3, not staged\n").unwrap();
    fs::write(g.p.path().join("scratch.txt"), "untracked\n").unwrap();
    let staged_blob = g
        .repo
        .index()
        .unwrap()
        .get_path(Path::new("README.txt"), 0)
        .unwrap()
        .id;
    g.run(&["apply", "--auto-approve", "--commit"]).success();
    let touched = g.touched(g.head());
    assert!(touched.iter().all(|f| in_scope(f, "")), "{touched:?}");
    assert_eq!(touched, state_files(g.p.path(), ""));
    // Still staged (the same blob), still modified, still untracked.
    let index = g.repo.index().unwrap();
    assert_eq!(
        index.get_path(Path::new("README.txt"), 0).unwrap().id,
        staged_blob
    );
    assert_eq!(
        g.status(),
        vec![
            (
                "README.txt".to_string(),
                Status::INDEX_MODIFIED | Status::WT_MODIFIED
            ),
            ("scratch.txt".to_string(), Status::WT_NEW),
        ]
    );
    assert_eq!(
        fs::read_to_string(g.p.path().join("README.txt")).unwrap(),
        "v3, not staged\n"
    );
}

#[test]
fn a_manifest_in_a_subdirectory_commits_its_paths_and_author_comes_from_the_flag() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let g = Git::at(p, Some("infra/nats"));
    g.run(&[
        "apply",
        "--auto-approve",
        "--commit",
        "--author",
        "Flag Person <flag@example.com>",
    ])
    .success();
    let c = g.repo.find_commit(g.head()).unwrap();
    assert_eq!(c.author().name().ok(), Some("Flag Person"));
    assert_eq!(c.author().email().ok(), Some("flag@example.com"));
    assert_eq!(c.committer().name().ok(), Some("Config Person"));
    let touched = g.touched(g.head());
    assert!(
        touched.iter().all(|f| in_scope(f, "infra/nats/")),
        "{touched:?}"
    );
    assert_eq!(
        touched,
        state_files(&g.p.path().join("infra/nats"), "infra/nats/")
    );
    assert_eq!(g.status(), vec![]);
}

#[test]
fn no_author_or_a_bad_author_is_refused_before_anything_is_written() {
    let g = Git::new();
    let files = g.snapshot_all();
    let run = g
        .run(&["apply", "--auto-approve", "--commit", "--author", "nobody"])
        .failure();
    insta::assert_snapshot!("bad_author", g.shown(&run.stderr));
    assert_eq!(g.snapshot_all(), files);
    g.repo.config().unwrap().remove("user.name").unwrap();
    g.repo.config().unwrap().remove("user.email").unwrap();
    let files = g.snapshot_all();
    let run = g.run(&["apply", "--auto-approve", "--commit"]).failure();
    insta::assert_snapshot!("no_author", g.shown(&run.stderr));
    assert_eq!(g.snapshot_all(), files);
}

#[test]
fn outside_git_is_a_clear_error_and_changes_nothing() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    let files = p.files();
    let ceiling = p.path().parent().unwrap().to_str().unwrap().to_string();
    let (snapshot, run) = p
        .natsform(&["apply", "--auto-approve", "--commit"])
        .env("GIT_CEILING_DIRECTORIES", &ceiling)
        .env_remove("GIT_DIR")
        .snapshot();
    run.failure();
    insta::assert_snapshot!(snapshot);
    assert_eq!(p.files(), files);
}

#[test]
fn the_commit_message_says_what_changed_in_the_vault_without_a_jwt_changing() {
    let g = Git::new();
    g.run(&["apply", "--auto-approve", "--commit"]).success();
    let first = g.head();
    // A second recipient: every seed re-sealed, no JWT changes.
    let other = age::x25519::Identity::generate().to_public().to_string();
    edit(
        &g.p,
        "recipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]",
        &format!(
            "recipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\", \"{other}\"]"
        ),
    );
    g.run(&["apply", "--auto-approve", "--commit"]).success();
    let resealed = g.head();
    assert_ne!(resealed, first, "the re-sealed vault is committed");
    let message = g.message(resealed);
    let subject = message.lines().next().unwrap();
    assert_eq!(
        subject,
        "natsform apply: the lock and vault brought up to date"
    );
    assert_eq!(
        message.lines().nth(1),
        Some(""),
        "a blank line after the subject"
    );
    let line = message.lines().nth(2).unwrap();
    assert!(
        line.ends_with("seeds re-sealed to the manifest's recipients"),
        "{message}"
    );
    let n: usize = line.split(' ').next().unwrap().parse().unwrap();
    let touched = g.touched(resealed);
    assert_eq!(
        n,
        touched
            .iter()
            .filter(|f| f.starts_with("vault/") && f.ends_with(".age"))
            .count(),
        "one per re-sealed vault file: {touched:?}"
    );

    // An account deleted: its seed files leave the vault, and the message
    // counts them as the commit removes them.
    let text = fs::read_to_string(&g.p.manifest).unwrap();
    let start = text.find("[operators.O2.accounts.sales.").unwrap();
    fs::write(&g.p.manifest, &text[..start]).unwrap();
    g.run(&["apply", "--auto-approve", "--allow-destroy", "--commit"])
        .success();
    let message = g.message(g.head());
    let line = message
        .lines()
        .find(|l| l.ends_with("unused seed files removed from the vault"))
        .unwrap_or_else(|| panic!("{message}"));
    let n: usize = line.split(' ').next().unwrap().parse().unwrap();
    let removed = g
        .touched(g.head())
        .into_iter()
        // (a bundle's public index `.users.keys` goes with its bundle)
        .filter(|f| f.starts_with("vault/") && f.ends_with(".age"))
        .filter(|f| !g.p.path().join(f).exists())
        .count();
    assert_eq!(n, removed, "{message}");
}
