//! Checks of an operator's `resolver` table: where apply deploys.

use super::{KeyPath, Validator};
use crate::manifest::model::Resolver;

/// The longest wait a resolver timeout may ask for.
const MAX_TIMEOUT_SECS: i64 = 600;

/// The most acknowledgements a push may wait for (a cluster's size).
pub const MAX_ACKS: u32 = 1000;

/// The most URLs a resolver may list.
const MAX_URLS: usize = 100;

impl Validator<'_> {
    /// `resolver.urls`, the timeouts, `acks` and the TLS files.
    pub(super) fn resolver(&mut self, base: &KeyPath, addr: &str, r: &Resolver) {
        if r.urls.is_empty() {
            self.err(
                &base.at("urls"),
                addr,
                "the resolver lists no server URL",
                "add `urls = [\"nats://host:4222\"]` (one server of a cluster is enough)",
            );
        }
        if r.urls.len() > MAX_URLS {
            self.err(
                &base.at("urls"),
                addr,
                format!(
                    "the resolver lists {} URLs, more than {MAX_URLS}",
                    r.urls.len()
                ),
                "one server of a cluster is enough: the others are reached through it",
            );
        }
        for (i, url) in r.urls.iter().enumerate() {
            if let Err(msg) = check_resolver_url(url) {
                let shown = crate::safepath::escape_controls(url);
                self.err(
                    &base.at("urls").at(i),
                    addr,
                    format!("resolver URL `{shown}` {msg}"),
                    "write `nats://host:4222` or `tls://host:4222`; credentials come from the vault or `--creds`, never from the URL",
                );
            }
        }
        for (key, value) in [
            ("connect_timeout", r.connect_timeout),
            ("request_timeout", r.request_timeout),
        ] {
            let Some(d) = value else { continue };
            let nanos = d.as_nanos();
            if nanos <= 0 || nanos > MAX_TIMEOUT_SECS * 1_000_000_000 {
                self.err(
                    &base.at(key),
                    addr,
                    format!("{key} = {d} is not a usable wait"),
                    format!(
                        "write a duration above zero and at most {MAX_TIMEOUT_SECS}s, e.g. `5s`"
                    ),
                );
            }
        }
        if let Some(acks) = r.acks {
            if acks == 0 || acks > MAX_ACKS {
                self.err(
                    &base.at("acks"),
                    addr,
                    format!("acks = {acks} is not a number of servers"),
                    format!("write how many servers must acknowledge each account (1 to {MAX_ACKS}), or leave `acks` out to wait for every server that answers"),
                );
            }
        }
        if let Some(tls) = &r.tls {
            for (key, value) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                let Some(value) = value else { continue };
                if let Some(problem) = crate::safepath::project_dir_problem(value) {
                    self.err(
                        &base.at("tls").at(key),
                        addr,
                        format!("`tls.{key}` {problem}: natsform reads only files inside the manifest's directory"),
                        format!("give a path relative to the manifest, below its directory, e.g. `{key} = \"tls/{key}.pem\"`; a file elsewhere can be passed on the command line with `--tls-{key}`"),
                    );
                }
            }
            if tls.cert.is_some() != tls.key.is_some() {
                let missing = if tls.cert.is_some() { "key" } else { "cert" };
                self.err(
                    &base.at("tls"),
                    addr,
                    format!("`tls` has a client {} without its {missing}", if missing == "key" { "certificate" } else { "key" }),
                    "give both `cert` and `key` (the client certificate and its private key), or neither",
                );
            }
        }
    }
}

/// A resolver URL: `nats://` or `tls://`, a host and an optional port, no
/// user, no path.
pub fn check_resolver_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains spaces or control characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("has no scheme");
    };
    if !matches!(scheme, "nats" | "tls") {
        return Err("has a scheme other than nats or tls");
    }
    if rest.contains('@') {
        return Err("must not carry a user or password");
    }
    let host_port = rest.trim_end_matches('/');
    if host_port.contains('/') || host_port.contains('?') || host_port.contains('#') {
        return Err("must not have a path");
    }
    if host_port.is_empty() || host_port.starts_with(':') {
        return Err("has no host");
    }
    if let Some((host, port)) = host_port.rsplit_once(':') {
        let bracketed_v6 = host.starts_with('[') && host.ends_with(']');
        if (!host.contains(':') || bracketed_v6) && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("has a port that is not a number from 1 to 65535");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_resolver_url;

    #[test]
    fn resolver_urls() {
        for ok in [
            "nats://127.0.0.1:4222",
            "tls://nats.example.com:4222",
            "nats://host",
            "nats://[::1]:4222",
        ] {
            assert_eq!(check_resolver_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "127.0.0.1:4222",
            "ws://host:4222",
            "nats://u:p@host:4222",
            "nats://host:4222/x",
            "nats://",
            "nats://host:0",
            "nats://host:99999",
            "nats://ho st:1",
        ] {
            assert!(check_resolver_url(bad).is_err(), "{bad}");
        }
    }
}
