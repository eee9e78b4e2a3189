//! Running the real `natsform` binary against temporary project directories.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The demo identity shipped with the examples.
pub fn demo_identity() -> PathBuf {
    repo_root().join("examples/demo-identity.txt")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary project: a directory holding a manifest copied from
/// `examples/<name>/` (or written by the test).
pub struct Project {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
}

/// A small project: operator `demo` with its system account (user
/// `admin`) and account `app` with users `alice` and `bob`, sealed to the
/// demo identity.
pub const DEMO_MANIFEST: &str = r#"
[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.demo]
system_account = "SYS"

[operators.demo.accounts.SYS.users.admin]

[operators.demo.accounts.app.users.alice]

[operators.demo.accounts.app.users.bob]
"#;

impl Project {
    /// A generated project of `users` users spread over four accounts
    /// (`A0`…`A3` of operator `O`, plus its system account with one user).
    pub fn generated(users: usize) -> Project {
        let mut text = String::from(
            "[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n\n\
             [operators.O]\nsystem_account = \"SYS\"\n\n[operators.O.accounts.SYS.users.sys]\n",
        );
        for u in 0..users {
            text.push_str(&format!("[operators.O.accounts.A{}.users.u{u}]\n", u % 4));
        }
        Project::with_manifest("natsform.toml", &text)
    }

    /// Copies `examples/<example>/<file>` into a fresh temporary directory.
    pub fn from_example(example: &str, file: &str) -> Project {
        let text = fs::read_to_string(repo_root().join("examples").join(example).join(file))
            .expect("example exists");
        Project::with_manifest(file, &text)
    }

    /// A project whose manifest `file` holds `text`.
    pub fn with_manifest(file: &str, text: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join(file);
        fs::write(&manifest, text).expect("writing manifest");
        Project { dir, manifest }
    }

    /// An empty temporary directory (for `init`, `schema`…); its manifest
    /// path, `natsform.toml`, does not exist yet.
    pub fn empty() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = dir.path().join("natsform.toml");
        Project { dir, manifest }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `XDG_CACHE_HOME` of every run (natsform's verified-signature
    /// cache): a directory beside the project, not in it (a plan writes
    /// nothing into the project), removed with the project.
    pub fn cache_home(&self) -> PathBuf {
        let mut name = self.dir.path().as_os_str().to_owned();
        name.push(".cache-home");
        PathBuf::from(name)
    }

    /// The verified-signature cache file of this project under
    /// [`Project::cache_home`].
    pub fn verified_cache_file(&self) -> PathBuf {
        let dir = self
            .project_dir()
            .canonicalize()
            .unwrap_or_else(|_| self.project_dir().to_path_buf());
        natsform::verified::Cache::at(&self.cache_home(), &dir)
            .path()
            .to_path_buf()
    }

    /// The directory holding the manifest (the project directory; the same
    /// as [`Project::path`] unless a test put the manifest deeper).
    pub fn project_dir(&self) -> &Path {
        self.manifest
            .parent()
            .expect("the manifest is in a directory")
    }

    /// A natsform invocation on this project: `-f <manifest>` (absolute),
    /// run in [`Project::path`], with the demo identity in the environment,
    /// `NO_COLOR`, and no other natsform variable inherited. Change any of
    /// that with the builder methods of [`Natsform`], then `run()` it or
    /// snapshot it with [`natsform_snapshot!`].
    pub fn natsform(&self, args: &[&str]) -> Natsform<'_> {
        Natsform {
            project: self,
            args: args.iter().map(|a| a.to_string()).collect(),
            manifest: ManifestArg::Absolute,
            identity: true,
            env: Vec::new(),
            current_dir: None,
        }
    }

    /// Runs natsform with `-f <manifest>` and the demo identity in the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.natsform(args).run()
    }

    /// Runs natsform like [`Project::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.natsform(args);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    }

    /// Runs natsform without any identity available.
    pub fn run_without_identity(&self, args: &[&str]) -> Run {
        self.natsform(args).without_identity().run()
    }

    /// `apply --auto-approve`, asserting success.
    pub fn apply(&self) -> Run {
        self.run(&["apply", "--auto-approve"]).success()
    }

    /// The creds of `ACCOUNT/USER`, asserting success.
    pub fn creds(&self, user: &str) -> String {
        self.run(&["creds", user]).success().stdout
    }

    /// The JWT the store holds for `<op>/<account>/<user>` or an account.
    pub fn store_file(&self, relative: &str) -> String {
        fs::read_to_string(self.path().join("store").join(relative)).expect("store file")
    }

    /// Every file under the project (relative path → bytes), sorted.
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let home = self.cache_home();
        // A test may have put a file there (a cache that cannot be written).
        let _ = fs::remove_dir_all(&home).or_else(|_| fs::remove_file(&home));
    }
}

/// How an invocation names the manifest.
#[derive(Debug, Clone)]
enum ManifestArg {
    /// `-f <absolute path>`.
    Absolute,
    /// `-f <this text>`, as a user would type it (relative to the directory
    /// the command runs in).
    Given(String),
    /// No `-f`: natsform looks for the manifest itself.
    None,
}

/// One natsform invocation being built; see [`Project::natsform`]. Every
/// run through it passes the secret guard ([`Run::no_secrets_shown`]).
#[derive(Clone)]
pub struct Natsform<'p> {
    project: &'p Project,
    args: Vec<String>,
    manifest: ManifestArg,
    identity: bool,
    /// Set (`Some`) or removed (`None`), after the defaults.
    env: Vec<(String, Option<String>)>,
    current_dir: Option<PathBuf>,
}

impl Natsform<'_> {
    /// No identity in the environment (plan, validate and show need none).
    pub fn without_identity(mut self) -> Self {
        self.identity = false;
        self
    }

    /// Sets an environment variable (after the defaults, so it wins).
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        let value = value.as_ref().to_str().expect("UTF-8 value").to_string();
        self.env.push((key.to_string(), Some(value)));
        self
    }

    /// Removes an environment variable the defaults would set.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_string(), None));
        self
    }

    /// Runs in `dir` instead of the project's directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Passes the manifest as the file name alone (`-f natsform.toml`), so
    /// messages quote it as a user who typed it would see it.
    pub fn manifest_by_name(mut self) -> Self {
        let name = self
            .project
            .manifest
            .file_name()
            .expect("manifest file name");
        self.manifest = ManifestArg::Given(name.to_str().expect("UTF-8 name").to_string());
        if self.current_dir.is_none() {
            self.current_dir = Some(self.project.project_dir().to_path_buf());
        }
        self
    }

    /// Passes the manifest as `-f <text>`, exactly as given (relative to
    /// the directory the command runs in, the project's unless changed).
    pub fn manifest_as(mut self, text: &str) -> Self {
        self.manifest = ManifestArg::Given(text.to_string());
        self
    }

    /// Passes no `-f` at all.
    pub fn without_manifest_flag(mut self) -> Self {
        self.manifest = ManifestArg::None;
        self
    }

    /// The arguments after the manifest flag.
    pub fn args(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The process to run, for tests that start it themselves (in the
    /// background); finish it with [`Run::from_child`].
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsform"));
        match &self.manifest {
            ManifestArg::Absolute => {
                cmd.arg("-f").arg(&self.project.manifest);
            }
            ManifestArg::Given(text) => {
                cmd.arg("-f").arg(text);
            }
            ManifestArg::None => {}
        }
        cmd.args(&self.args).current_dir(
            self.current_dir
                .as_deref()
                .unwrap_or_else(|| self.project.path()),
        );
        for var in [
            "NATSFORM_AGE_KEY",
            "NATSFORM_AGE_IDENTITY",
            "NATSFORM_MANIFEST",
            "NATSFORM_LOCK_TIMEOUT",
            "NATSFORM_NOW",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_KEY",
        ] {
            cmd.env_remove(var);
        }
        // natsform looks for identity files under the home directory: a
        // home that does not exist, so that the machine's own identity
        // (~/.config/natsform, ~/.config/sops) is never found by a test.
        let home = self.project.path().join(".no-home");
        cmd.env("HOME", &home);
        cmd.env("XDG_CONFIG_HOME", home.join(".config"));
        cmd.env("XDG_CACHE_HOME", self.project.cache_home());
        cmd.env_remove("NATSFORM_DEBUG_VERIFY");
        cmd.env("NO_COLOR", "1");
        if self.identity {
            cmd.env("NATSFORM_AGE_IDENTITY", demo_identity());
        }
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs natsform to completion, through the secret guard.
    pub fn run(&self) -> Run {
        let out = self.command().output().expect("running natsform");
        Run::from(out).no_secrets_shown(&self.args())
    }

    /// Starts natsform in the background, stdout and stderr captured.
    pub fn spawn(&self) -> Child {
        self.command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting natsform")
    }

    /// Runs natsform and returns the whole-run snapshot text (see
    /// [`Run::snapshot`]) with the project's filters applied, and the run.
    pub fn snapshot(&self) -> (String, Run) {
        let run = self.run();
        (run.snapshot(self.project), run)
    }
}

/// Asserts an insta snapshot of one whole natsform run: success, exit code,
/// stdout and stderr, through the shared filters ([`Project::filter`]), and
/// returns the [`Run`] for further checks. Every run passes the secret
/// guard. Forms:
///
/// ```ignore
/// natsform_snapshot!(project, ["plan"]);                   // named after the test
/// natsform_snapshot!(project, ["plan"], @"…");             // inline
/// natsform_snapshot!(project.natsform(&["plan"]).without_identity());
/// natsform_snapshot!(name = "bad_case", project, ["validate"]);
/// natsform_snapshot!(name = "bad_case", project.natsform(&["validate"]).manifest_by_name());
/// ```
#[macro_export]
macro_rules! natsform_snapshot {
    (name = $name:expr, $project:expr, [$($arg:expr),* $(,)?]) => {
        $crate::natsform_snapshot!(name = $name, $project.natsform(&[$($arg),*]))
    };
    (name = $name:expr, $invocation:expr) => {{
        let (snapshot, run) = $invocation.snapshot();
        ::insta::assert_snapshot!($name, snapshot);
        run
    }};
    ($project:expr, [$($arg:expr),* $(,)?] $(, @$inline:literal)?) => {
        $crate::natsform_snapshot!($project.natsform(&[$($arg),*]) $(, @$inline)?)
    };
    ($invocation:expr, @$inline:literal) => {{
        let (snapshot, run) = $invocation.snapshot();
        ::insta::assert_snapshot!(snapshot, @$inline);
        run
    }};
    ($invocation:expr) => {{
        let (snapshot, run) = $invocation.snapshot();
        ::insta::assert_snapshot!(snapshot);
        run
    }};
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push((
                p.strip_prefix(root).unwrap().to_path_buf(),
                fs::read(&p).unwrap(),
            ));
        }
    }
}

/// What one run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Waits for a natsform started with [`Natsform::spawn`], through the
    /// secret guard in its strict form (no seed on stdout either, as for
    /// any command but `creds`).
    pub fn from_child(child: Child) -> Run {
        Run::from(child.wait_with_output().expect("natsform ran")).no_secrets_shown(&[])
    }

    /// The whole run as one text, with `project`'s filters applied:
    ///
    /// ```text
    /// success: false
    /// exit_code: 1
    /// ----- stdout -----
    /// …
    /// ----- stderr -----
    /// …
    /// ```
    ///
    /// Output that does not end in a newline is marked, so that a missing
    /// newline shows in the snapshot.
    pub fn snapshot(&self, project: &Project) -> String {
        let mut out = format!("success: {}\nexit_code: {}\n", self.code == 0, self.code);
        for (title, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            out.push_str(&format!("----- {title} -----\n"));
            out.push_str(&project.filter(text));
            if !text.is_empty() && !text.ends_with('\n') {
                out.push_str("\n[no newline at the end]\n");
            }
        }
        out
    }

    pub fn success(self) -> Self {
        assert_eq!(
            self.code, 0,
            "natsform failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn failure(self) -> Self {
        assert_ne!(
            self.code, 0,
            "natsform unexpectedly succeeded:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Run {
    /// The guard every run through this helper passes: no seed and no age
    /// secret key on stderr, ever; none on stdout either, except the one
    /// seed line of a creds file that `creds` prints (the line after
    /// `-----BEGIN USER NKEY SEED-----`). This makes every error path the
    /// tests exercise a secret scan.
    pub fn no_secrets_shown(self, args: &[&str]) -> Self {
        let err = find_secrets(&self.stderr);
        assert!(
            err.is_empty(),
            "natsform {args:?} printed a secret on stderr:\n{}",
            self.stderr
        );
        let subcommand = args.iter().find(|a| !a.starts_with('-'));
        let stdout = if subcommand == Some(&"creds") {
            without_creds_seed_lines(&self.stdout)
        } else {
            self.stdout.clone()
        };
        let out = find_secrets(&stdout);
        assert!(
            out.is_empty(),
            "natsform {args:?} printed a secret on stdout:\n{}",
            self.stdout
        );
        self
    }
}

/// `text` without the line after each `-----BEGIN USER NKEY SEED-----`.
fn without_creds_seed_lines(text: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in text.lines() {
        if !std::mem::take(&mut skip) {
            out.push_str(line);
            out.push('\n');
        }
        skip = line.trim() == "-----BEGIN USER NKEY SEED-----";
    }
    out
}

/// Every nkey seed and age secret key in `text`.
pub fn find_secrets(text: &str) -> Vec<String> {
    let mut out = find_seeds(text.as_bytes());
    let upper = text.to_ascii_uppercase();
    let mut from = 0;
    while let Some(i) = upper[from..].find("AGE-SECRET-KEY-1") {
        let start = from + i;
        let end = start
            + 16
            + upper[start + 16..]
                .bytes()
                .take_while(u8::is_ascii_alphanumeric)
                .count();
        // The prefix alone (in help texts: `AGE-SECRET-KEY-1…`) is no secret.
        if end - start > 16 + 8 {
            out.push(text[start..end].to_string());
        }
        from = end;
    }
    out
}

/// Every substring that looks like a plaintext nkey seed (`S` + `O`, `A`,
/// `U`, `N`, `C`, `X` or `P`, 58 base32 chars).
pub fn find_seeds(bytes: &[u8]) -> Vec<String> {
    let is_b32 = |b: u8| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 58 <= bytes.len() {
        if bytes[i] == b'S'
            && matches!(bytes[i + 1], b'O' | b'A' | b'U' | b'N' | b'C' | b'X' | b'P')
            && bytes[i..i + 58].iter().all(|b| is_b32(*b))
        {
            out.push(String::from_utf8_lossy(&bytes[i..i + 58]).into_owned());
            i += 58;
        } else {
            i += 1;
        }
    }
    out
}

impl Project {
    /// The shared filters of whole-run snapshots: this machine's paths
    /// (the project directory → `[PROJECT]`, the temporary directory around
    /// it → `[TEMP]`, the binary → `[NATSFORM]`), `natsform <version>` →
    /// `natsform [VERSION]`, the process id in a run-lock message
    /// (`(pid 1234)`) → `(pid [PID])`, then [`Project::redact`]: the lock's
    /// public keys → `<address>`, other public keys → `<KEY>`, unix times →
    /// `<TIME>`, RFC 3339 times → `<DATE>`.
    pub fn filter(&self, text: &str) -> String {
        redact_dates(&self.filter_keeping_dates(text))
    }

    /// [`Project::filter`] without `<DATE>`: for text whose dates do not
    /// depend on the clock (a fixed `NATSFORM_NOW`, a fixture's JWTs).
    pub fn filter_keeping_dates(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut paths: Vec<(PathBuf, &str)> = Vec::new();
        for (dir, name) in [
            (self.verified_cache_file().as_path(), "[VERIFIED_CACHE]"),
            (self.cache_home().as_path(), "[CACHE_HOME]"),
            (self.project_dir(), "[PROJECT]"),
            (self.path(), "[TEMP]"),
            (Path::new(env!("CARGO_BIN_EXE_natsform")), "[NATSFORM]"),
        ] {
            paths.push((dir.to_path_buf(), name));
            if let Ok(real) = dir.canonicalize() {
                paths.push((real, name));
            }
        }
        // Longest first: the project directory lies inside the temporary one.
        paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
        for (path, name) in paths {
            out = out.replace(path.to_str().expect("UTF-8 path"), name);
        }
        out = out.replace(
            concat!("natsform ", env!("CARGO_PKG_VERSION")),
            "natsform [VERSION]",
        );
        let mut from = 0;
        while let Some(i) = out[from..].find("(pid ").map(|i| i + from) {
            let digits = out[i + 5..].bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && out[i + 5 + digits..].starts_with(')') {
                out.replace_range(i..i + 5 + digits + 1, "(pid [PID])");
            }
            from = i + 1;
        }
        self.redact_keeping_dates(&out)
    }

    /// Replaces every JWT in `text` by `<JWT>`, every public key of the
    /// lock by `<address>`, other public keys by `<KEY>`, unix times by
    /// `<TIME>` and RFC 3339 times (`2027-01-01T00:00:00Z`) by `<DATE>`,
    /// so snapshots of plans over random keys and the real clock are
    /// stable.
    pub fn redact(&self, text: &str) -> String {
        redact_dates(&self.redact_keeping_dates(text))
    }

    /// [`Project::redact`] without `<DATE>`: for runs whose clock is fixed
    /// (`NATSFORM_NOW` for every apply and plan), whose dates are stable.
    pub fn redact_keeping_dates(&self, text: &str) -> String {
        let lock = fs::read_to_string(self.project_dir().join("natsform.lock")).unwrap_or_default();
        let mut out = redact_jwts(text);
        for line in lock.lines() {
            if let Some((addr, key)) = line.split_once(" = ") {
                let (addr, key) = (addr.trim_matches('"'), key.trim_matches('"'));
                if key.len() != 56 {
                    continue;
                }
                out = out.replace(key, &format!("<{addr}>"));
                out = out.replace(
                    &format!("{}…", &key[..12.min(key.len())]),
                    &format!("<{addr}>"),
                );
            }
        }
        redact_keys_and_times(&out)
    }
}

/// `text` with every compact JWT (`eyJ…` base64url header, payload and
/// signature) replaced by `<JWT>`.
fn redact_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
        let len = rest[i..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .count();
        let token = &rest[i..i + len];
        out.push_str(&rest[..i]);
        if boundary && token.split('.').count() == 3 && token.split('.').all(|p| !p.is_empty()) {
            out.push_str("<JWT>");
        } else {
            out.push_str(token);
        }
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    out
}

/// `text` with every RFC 3339 UTC time as natsform prints it
/// (`2027-01-01T00:00:00Z`) replaced by `<DATE>`, but the epoch, which
/// messages name as a fixed limit.
fn redact_dates(text: &str) -> String {
    const EPOCH: &str = "1970-01-01T00:00:00Z";
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut from = 0;
    while i + SHAPE.len() <= bytes.len() {
        let fits = SHAPE.iter().zip(&bytes[i..]).all(|(s, b)| match s {
            b'd' => b.is_ascii_digit(),
            s => s == b,
        });
        if fits
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && &text[i..i + SHAPE.len()] != EPOCH
        {
            out.push_str(&text[from..i]);
            out.push_str("<DATE>");
            i += SHAPE.len();
            from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[from..]);
    out
}

fn redact_keys_and_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_b32 = |b: u8| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if boundary
            && matches!(b, b'O' | b'A' | b'U')
            && i + 56 <= bytes.len()
            && bytes[i..i + 56].iter().all(|c| is_b32(*c))
        {
            out.push_str("<KEY>");
            i += 56;
        } else if boundary
            && b == b'1'
            && i + 10 <= bytes.len()
            && bytes[i..i + 10].iter().all(u8::is_ascii_digit)
            && bytes.get(i + 10).is_none_or(|c| !c.is_ascii_digit())
        {
            out.push_str("<TIME>");
            i += 10;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

impl Project {
    /// A nats-server config body trusting operator `op` of the applied
    /// store, with every account preloaded into the memory resolver.
    /// A full-resolver server config (see [`super::nats::full_resolver_config`])
    /// for operator `op` of the store, its JWT directory under `dir`.
    pub fn full_resolver_config(
        &self,
        op: &str,
        name: &str,
        dir: &Path,
        allow_delete: bool,
    ) -> String {
        let store = self.path().join("store").join(op);
        let operator = fs::read_to_string(store.join(format!("{op}.jwt"))).expect("operator JWT");
        let sys = super::nats::jwt_claims(&operator)["nats"]["system_account"]
            .as_str()
            .expect("operator has a system account")
            .to_string();
        let mut sys_jwt = None;
        for entry in fs::read_dir(store.join("accounts")).expect("accounts dir") {
            let name = entry.expect("entry").file_name().into_string().unwrap();
            let jwt = fs::read_to_string(store.join(format!("accounts/{name}/{name}.jwt")))
                .expect("account JWT");
            if super::nats::jwt_subject(&jwt) == sys {
                sys_jwt = Some(jwt);
            }
        }
        let jwt_dir = dir.join("jwt");
        fs::create_dir_all(&jwt_dir).expect("resolver dir");
        super::nats::full_resolver_config(
            name,
            &operator,
            &sys,
            &sys_jwt.expect("the system account's JWT is in the store"),
            &jwt_dir,
            allow_delete,
        )
    }

    pub fn memory_resolver_config(&self, op: &str) -> String {
        let store = self.path().join("store").join(op);
        let operator = fs::read_to_string(store.join(format!("{op}.jwt"))).expect("operator JWT");
        let operator_claims = super::nats::jwt_claims(&operator);
        let sys = operator_claims["nats"]["system_account"]
            .as_str()
            .expect("operator has a system account")
            .to_string();
        let mut accounts = Vec::new();
        for entry in fs::read_dir(store.join("accounts")).expect("accounts dir") {
            let name = entry.expect("entry").file_name().into_string().unwrap();
            let jwt = fs::read_to_string(store.join(format!("accounts/{name}/{name}.jwt")))
                .expect("account JWT");
            accounts.push((super::nats::jwt_subject(&jwt), jwt));
        }
        accounts.sort();
        super::nats::memory_resolver_config(&operator, &sys, &accounts)
    }
}
