//! A cluster of real `nats-server` processes on loopback, for the deploy
//! scenarios of issue 10, and a test PKI for TLS.
//!
//! - [`Cluster::start`] starts N nodes (3 by default) of one server binary,
//!   each with a client, a route and a monitoring port on 127.0.0.1, routes
//!   to every other node, and the same operator config on each: the output
//!   of `natsform server-config` (full resolver, `allow_delete: true`, a
//!   short sync `interval`), written next to each node's config and
//!   included. Each node runs in its own directory, so the include's
//!   `dir: "./jwt"` is that node's own resolver directory.
//! - [`Cluster::stop`] kills one node and keeps its directory;
//!   [`Cluster::restart`] starts it again on the same ports with the same
//!   directory (what it held before it stopped), and waits for its routes.
//! - [`Cluster::wait_routes`] polls each running node's `/routez` until it
//!   has a route to every other running node.
//! - [`TestPki`] makes a CA, server certificates for `127.0.0.1` and
//!   `localhost`, a client certificate, and a second, unrelated CA (the
//!   wrong one), with `rcgen`; [`ClusterOptions::tls`] turns TLS on for
//!   client connections (routes stay plain: the scenarios are about what a
//!   client such as natsform sees).
//!
//! Every wait is bounded (seconds); a node that does not start or a cluster
//! that does not form panics with every node's log.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::Project;

/// How long a node may take to accept clients after it is spawned.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the nodes may take to route to each other.
pub const ROUTES_TIMEOUT: Duration = Duration::from_secs(15);
/// The sync interval of the nodes' full resolvers (nsc's default is 2m).
pub const SYNC_INTERVAL: &str = "1s";

/// How a cluster is started.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes.
    pub nodes: usize,
    /// The `--interval` passed to `natsform server-config`.
    pub sync_interval: String,
    /// TLS for client connections, from this PKI's server certificate.
    pub tls: Option<TestPki>,
    /// With `tls`: require and verify a client certificate from the CA.
    pub verify_clients: bool,
    /// Extra `natsform server-config` flags (e.g. `--allow-delete false`).
    pub server_config_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            sync_interval: SYNC_INTERVAL.to_string(),
            tls: None,
            verify_clients: false,
            server_config_args: Vec::new(),
        }
    }
}

/// One node: its ports, its directory and, while it runs, its process.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub client_port: u16,
    pub route_port: u16,
    pub http_port: u16,
    child: Option<Child>,
    version: String,
    /// Logs of the node's earlier runs (before a restart).
    earlier_logs: String,
    dir: tempfile::TempDir,
}

impl Node {
    /// `nats://127.0.0.1:<client port>` (`tls://…` when TLS is on).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The node's directory (config, log, and its resolver's `jwt/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node's full-resolver directory.
    pub fn jwt_dir(&self) -> PathBuf {
        self.dir.path().join("jwt")
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Every line the node has logged, over all its runs.
    pub fn log(&self) -> String {
        format!(
            "{}{}",
            self.earlier_logs,
            fs::read_to_string(self.log_path()).unwrap_or_default()
        )
    }

    /// Connects the test client with a `.creds` text (plain connections only).
    pub fn connect(&self, creds: &str) -> Result<super::nats::Client, String> {
        super::nats::Client::connect(self.client_port, creds)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running cluster; every node is killed when it is dropped.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    binary: PathBuf,
    /// What `natsform server-config` printed (included by every node).
    include: String,
}

enum Spawn {
    Ready(String),
    PortTaken,
    Failed(String),
}

impl Cluster {
    /// Starts a cluster of `binary` trusting the project's only operator
    /// (applied already): the nodes include `natsform server-config
    /// --resolver full --allow-delete true --interval <sync interval>`.
    pub fn start(project: &Project, binary: &Path, options: &ClusterOptions) -> Cluster {
        let mut args: Vec<String> = [
            "server-config",
            "--resolver",
            "full",
            "--allow-delete",
            "true",
            "--interval",
        ]
        .map(String::from)
        .to_vec();
        args.push(options.sync_interval.clone());
        args.extend(options.server_config_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = project.natsform(&args).without_identity().run().success();
        Cluster::start_with_include(binary, &run.stdout, options)
    }

    /// Starts a cluster whose nodes include `include` (an operator config).
    pub fn start_with_include(binary: &Path, include: &str, options: &ClusterOptions) -> Cluster {
        assert!(options.nodes >= 1, "a cluster has nodes");
        for _ in 0..3 {
            let ports = free_ports(options.nodes * 3);
            let nodes: Vec<Node> = (0..options.nodes)
                .map(|i| Node {
                    name: format!("n{}", i + 1),
                    client_port: ports[i * 3],
                    route_port: ports[i * 3 + 1],
                    http_port: ports[i * 3 + 2],
                    child: None,
                    version: String::new(),
                    earlier_logs: String::new(),
                    dir: tempfile::Builder::new()
                        .prefix("natsform-cluster-node-")
                        .tempdir()
                        .expect("creating a node directory"),
                })
                .collect();
            let mut cluster = Cluster {
                nodes,
                binary: binary.to_path_buf(),
                include: include.to_string(),
            };
            for i in 0..cluster.nodes.len() {
                let config = cluster.config(i, options);
                let node = &cluster.nodes[i];
                fs::write(node.dir().join("natsform.conf"), include).expect("writing the include");
                fs::write(node.config_path(), config).expect("writing the node config");
                if let Some(pki) = &options.tls {
                    pki.write_server_files(node.dir());
                }
            }
            // Spawn all, then wait for each: a node's routes retry until
            // the others listen.
            let mut taken = false;
            for i in 0..cluster.nodes.len() {
                cluster.spawn(i);
            }
            for i in 0..cluster.nodes.len() {
                match cluster.wait_ready(i) {
                    Spawn::Ready(version) => cluster.nodes[i].version = version,
                    Spawn::PortTaken => taken = true,
                    Spawn::Failed(why) => {
                        cluster.fail(&format!("node n{} did not start: {why}", i + 1))
                    }
                }
            }
            if taken {
                // Another process took a port between our probe and the
                // server's bind: start over on fresh ports.
                drop(cluster);
                continue;
            }
            cluster.wait_routes();
            return cluster;
        }
        panic!("nats-server cluster: no free ports after 3 attempts");
    }

    /// The config of node `i`: name, ports, routes to the others, TLS, and
    /// the operator include.
    fn config(&self, i: usize, options: &ClusterOptions) -> String {
        let node = &self.nodes[i];
        let routes: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.name != node.name)
            .map(|n| format!("nats-route://127.0.0.1:{}", n.route_port))
            .collect();
        let mut config = format!(
            "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
             cluster {{\n  name: natsform-test\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n",
            name = node.name,
            client = node.client_port,
            http = node.http_port,
            route = node.route_port,
            routes = routes.join(", "),
        );
        if options.tls.is_some() {
            config.push_str(&format!(
                "tls {{\n  cert_file: \"server-cert.pem\"\n  key_file: \"server-key.pem\"\n  ca_file: \"ca.pem\"\n  verify: {}\n  timeout: 5\n}}\n",
                options.verify_clients
            ));
        }
        config.push_str("include natsform.conf\n");
        config
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = fs::File::create(node.log_path()).expect("creating the node log");
        let log_err = log.try_clone().expect("cloning the log handle");
        // Run in the node's directory: `dir: "./jwt"` and the TLS files
        // are relative to it.
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(node.config_path())
            .current_dir(node.dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.binary.display()));
        node.child = Some(child);
    }

    /// Waits until node `i` logs that it listens on its client port and
    /// has finished starting.
    fn wait_ready(&mut self, i: usize) -> Spawn {
        let node = &mut self.nodes[i];
        let listening = format!(
            "Listening for client connections on 127.0.0.1:{}",
            node.client_port
        );
        let deadline = Instant::now() + NODE_START_TIMEOUT;
        loop {
            let log = fs::read_to_string(node.log_path()).unwrap_or_default();
            let exited = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                node.child = None;
                if log.contains("address already in use") {
                    return Spawn::PortTaken;
                }
                return Spawn::Failed(format!("exited with {status}"));
            }
            if log.contains(&listening) && log.contains("Server is ready") {
                let version = log
                    .lines()
                    .find_map(|l| l.split_once("Version:").map(|(_, v)| v.trim().to_string()))
                    .unwrap_or_default();
                return Spawn::Ready(version);
            }
            if Instant::now() >= deadline {
                return Spawn::Failed(format!("not ready after {NODE_START_TIMEOUT:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics with `why` and every node's config and log.
    fn fail(&self, why: &str) -> ! {
        let mut text = format!("{why}\n");
        for node in &self.nodes {
            text.push_str(&format!(
                "--- {} config ---\n{}\n--- {} log ---\n{}\n",
                node.name,
                fs::read_to_string(node.config_path()).unwrap_or_default(),
                node.name,
                node.log()
            ));
        }
        panic!("{text}");
    }

    /// The version of the server binary (from the first node's log).
    pub fn version(&self) -> &str {
        &self.nodes[0].version
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// What `natsform server-config` printed, as every node includes it.
    pub fn include(&self) -> &str {
        &self.include
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Every running node's client URL (for `--push`).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(Node::url)
            .collect()
    }

    /// Kills node `name`; its directory (and resolver store) is kept. Waits
    /// until the other running nodes no longer route to it.
    pub fn stop(&mut self, name: &str) {
        let i = self.index(name);
        self.nodes[i].kill();
        self.wait_routes();
    }

    /// Starts node `name` again on its ports, with what its directory holds,
    /// and waits for its routes to every other running node.
    pub fn restart(&mut self, name: &str) {
        let i = self.index(name);
        assert!(!self.nodes[i].is_running(), "{name} is running");
        let node = &mut self.nodes[i];
        node.earlier_logs
            .push_str(&fs::read_to_string(node.log_path()).unwrap_or_default());
        node.earlier_logs.push_str("--- restarted ---\n");
        self.spawn(i);
        match self.wait_ready(i) {
            Spawn::Ready(version) => self.nodes[i].version = version,
            Spawn::PortTaken => self.fail(&format!("{name}: its port was taken while it was down")),
            Spawn::Failed(why) => self.fail(&format!("{name} did not restart: {why}")),
        }
        self.wait_routes();
    }

    /// Waits until every running node routes to every other running node
    /// (by the distinct remote server ids of its `/routez`: servers from
    /// 2.10 on open a pool of several routes per peer).
    pub fn wait_routes(&self) {
        let running: Vec<&Node> = self.nodes.iter().filter(|n| n.is_running()).collect();
        let want = running.len().saturating_sub(1);
        let deadline = Instant::now() + ROUTES_TIMEOUT;
        loop {
            let counts: Vec<Result<usize, String>> = running
                .iter()
                .map(|n| {
                    monitor(n.http_port, "/routez").map(|routez| {
                        let mut ids: Vec<&str> = routez["routes"]
                            .as_array()
                            .map(|r| r.iter().filter_map(|r| r["remote_id"].as_str()).collect())
                            .unwrap_or_default();
                        ids.sort_unstable();
                        ids.dedup();
                        ids.len()
                    })
                })
                .collect();
            if counts.iter().all(|c| c.as_ref().is_ok_and(|c| *c == want)) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "routes not formed after {ROUTES_TIMEOUT:?}: want {want} peers each, have {counts:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `check` every 50 ms until it returns `Some`, or panics with
    /// `what` and the nodes' logs after `timeout`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("{what}: not within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The account public keys node `name`'s full resolver holds on disk
    /// (`<pub>.jwt`, not those renamed `.jwt.deleted`), sorted.
    pub fn stored_accounts(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.node(name).jwt_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter_map(|f| f.strip_suffix(".jwt").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "--- nats-server {} node {} log ({}) ---\n{}--- end of log ---",
                    node.version,
                    node.name,
                    node.dir().display(),
                    node.log()
                );
            }
        }
    }
}

/// `count` distinct ports of 127.0.0.1 that were free a moment ago (all
/// probed at once, so they differ).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// GETs `path` from a node's monitoring port; the JSON body. Bounded: 2 s
/// to connect and read, 16 MiB at most.
pub fn monitor(port: u16, path: &str) -> Result<Value, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(16 << 20)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| format!("no HTTP body from {path}"))?;
    serde_json::from_str(body).map_err(|e| format!("{path}: {e}: {body}"))
}

/// Certificates for TLS tests, made fresh: a CA, a server certificate
/// (`127.0.0.1`, `localhost`) and a client certificate signed by it, and a
/// second CA that signed neither (the wrong one). PEM text.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    pub wrong_ca_cert: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate().expect("CA key");
            let cert = params.self_signed(&key).expect("CA certificate");
            (cert.pem(), Issuer::new(params, key))
        };
        let (ca_cert, issuer) = ca("natsform test CA");
        let (wrong_ca_cert, _) = ca("natsform wrong CA");
        let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "nats-server",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["natsform".into()],
            "natsform",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        TestPki {
            ca_cert,
            server_cert,
            server_key,
            client_cert,
            client_key,
            wrong_ca_cert,
        }
    }

    /// Writes `ca.pem`, `server-cert.pem` and `server-key.pem` into `dir`.
    fn write_server_files(&self, dir: &Path) {
        for (name, text) in [
            ("ca.pem", &self.ca_cert),
            ("server-cert.pem", &self.server_cert),
            ("server-key.pem", &self.server_key),
        ] {
            fs::write(dir.join(name), text).expect("writing a TLS file");
        }
    }

    /// Writes the client side into `dir`: `ca.pem`, `client-cert.pem`,
    /// `client-key.pem` and `wrong-ca.pem`; returns `dir`.
    pub fn write_client_files(&self, dir: &Path) -> PathBuf {
        for (name, text) in [
            ("ca.pem", &self.ca_cert),
            ("client-cert.pem", &self.client_cert),
            ("client-key.pem", &self.client_key),
            ("wrong-ca.pem", &self.wrong_ca_cert),
        ] {
            fs::write(dir.join(name), text).expect("writing a TLS file");
        }
        dir.to_path_buf()
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
