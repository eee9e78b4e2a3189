//! Running the real `natsform` binary against temporary project directories.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

impl Project {
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs natsform with `-f <manifest>` and the demo identity in the environment.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs natsform like [`Project::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsform"));
        cmd.arg("-f")
            .arg(&self.manifest)
            .args(args)
            .current_dir(self.path());
        cmd.env_remove("NATSFORM_AGE_KEY")
            .env_remove("NATSFORM_MANIFEST")
            .env("NO_COLOR", "1");
        cmd.env("NATSFORM_AGE_IDENTITY", demo_identity());
        cmd.envs(env.iter().copied());
        Run::from(cmd.output().expect("running natsform")).no_secrets_shown(args)
    }

    /// Runs natsform without any identity available.
    pub fn run_without_identity(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsform"));
        cmd.arg("-f")
            .arg(&self.manifest)
            .args(args)
            .current_dir(self.path());
        cmd.env_remove("NATSFORM_AGE_KEY")
            .env_remove("NATSFORM_AGE_IDENTITY")
            .env_remove("NATSFORM_MANIFEST")
            .env("NO_COLOR", "1");
        Run::from(cmd.output().expect("running natsform")).no_secrets_shown(args)
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
    /// Replaces every public key of the lock in `text` by `<address>`, other
    /// public keys by `<KEY>`, and unix times by `<TIME>`, so snapshots of
    /// plans over random keys are stable.
    pub fn redact(&self, text: &str) -> String {
        let lock = fs::read_to_string(self.path().join("natsform.lock")).unwrap_or_default();
        let mut out = text.to_string();
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
