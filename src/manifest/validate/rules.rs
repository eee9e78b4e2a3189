//! Checks of connection rules (src, times, locale), limits, JetStream,
//! default permissions and info fields.

use super::{KeyPath, Validator};
use crate::claims;
use crate::manifest::model::{Account, Operator, Permissions, Rules};
use crate::manifest::subject::has_wildcard_token;

/// The Go library's limit on description and info URL.
const MAX_INFO: usize = 8 * 1024;

impl Validator<'_> {
    /// `src`, `times` and `locale` of a user or a scoped role.
    pub(super) fn rules(&mut self, base: &KeyPath, addr: &str, rules: Rules<'_>) {
        for (i, cidr) in rules.src.iter().enumerate() {
            if claims::is_cidr(cidr) {
                continue;
            }
            let bare = cidr.parse::<std::net::IpAddr>().is_ok();
            let help = if bare {
                let bits = if cidr.contains(':') { 128 } else { 32 };
                format!("nats-server needs a network, not an address: write `{cidr}/{bits}` for this one address")
            } else {
                "write a network in CIDR notation, e.g. `10.0.0.0/8` or `192.168.1.7/32`"
                    .to_string()
            };
            self.err(
                &base.at("src").at(i),
                addr,
                format!("`{cidr}` in src is not a CIDR"),
                help,
            );
        }
        for (i, w) in rules.times.iter().enumerate() {
            for (which, value) in [("start", &w.start), ("end", &w.end)] {
                if !claims::is_go_clock(value) {
                    self.err(
                        &base.at("times").at(i).at(which),
                        addr,
                        format!("time window {which} `{value}` is not a time of day"),
                        "write hours, minutes and seconds, e.g. `start = \"08:00:00\"`, `end = \"17:30:00\"`",
                    );
                }
            }
        }
        if let Some(loc) = rules.locale {
            if !claims::is_location(loc) {
                self.err(
                    &base.at("locale"),
                    addr,
                    format!("locale `{loc}` is not an IANA time zone"),
                    "use a tz database name such as `Europe/Berlin`, `America/New_York` or `UTC`",
                );
            }
        }
    }

    /// Operator fields beyond keys and accounts.
    pub(super) fn operator_extras(&mut self, base: &KeyPath, addr: &str, op: &Operator) {
        if let Some(v) = &op.assert_server_version {
            let parts: Vec<&str> = v.split('.').collect();
            let ok = parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                self.err(
                    &base.at("assert_server_version"),
                    addr,
                    format!("assert_server_version `{v}` is not major.minor.patch"),
                    "write all three numbers, e.g. `2.10.0`",
                );
            }
        }
        let tags = op.tags.clone();
        self.tags_at(&base.at("tags"), addr, &tags);
    }

    /// Limits, JetStream, default permissions and info fields of an account.
    pub(super) fn account_extras(&mut self, base: &KeyPath, addr: &str, acc: &Account) {
        self.info(
            base,
            addr,
            acc.description.as_deref(),
            acc.info_url.as_deref(),
        );
        if let Some(p) = &acc.default_permissions {
            self.default_permissions(&base.at("default_permissions"), addr, p);
        }
        let limits = acc.limits.clone().unwrap_or_default().wire();
        if limits.imports >= 0 && acc.imports.len() as i64 > limits.imports {
            self.err(
                &base.at("limits").at("imports"),
                addr,
                format!(
                    "the account declares {} imports but limits.imports is {}",
                    acc.imports.len(),
                    limits.imports
                ),
                "raise limits.imports (or set it to `unlimited`), or remove imports",
            );
        }
        if limits.exports >= 0 && acc.exports.len() as i64 > limits.exports {
            self.err(
                &base.at("limits").at("exports"),
                addr,
                format!(
                    "the account declares {} exports but limits.exports is {}",
                    acc.exports.len(),
                    limits.exports
                ),
                "raise limits.exports (or set it to `unlimited`), or remove exports",
            );
        }
        if limits.exports >= 0 && !limits.wildcards {
            for (i, e) in acc.exports.iter().enumerate() {
                if has_wildcard_token(&e.subject) {
                    self.err(
                        &base.at("exports").at(i).at("subject"),
                        addr,
                        format!(
                            "export `{}` has wildcards but limits.wildcard_exports is false",
                            e.subject
                        ),
                        "export a literal subject, or allow wildcard exports",
                    );
                }
            }
        }
        if acc.jetstream.is_some() && !acc.jetstream_tiers.is_empty() {
            self.err(
                &base.at("jetstream_tiers"),
                addr,
                "JetStream limits are given both for all replicas (`jetstream`) and per tier (`jetstream_tiers`)",
                "NATS accepts one or the other: keep `jetstream`, or move its limits into tiers such as `R1` and `R3`",
            );
        }
        if let Some(js) = &acc.jetstream {
            if !js.has_storage() {
                self.err(
                    &base.at("jetstream"),
                    addr,
                    "the JetStream limits give no storage, so JetStream stays disabled",
                    "set `disk_storage` and/or `mem_storage`, e.g. `disk_storage = \"10GiB\"` or `\"unlimited\"`",
                );
            }
        }
        for (tier, js) in &acc.jetstream_tiers {
            let p = base.at("jetstream_tiers").at(tier);
            let well_formed = tier.strip_prefix('R').is_some_and(|n| {
                !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
            });
            if !well_formed {
                self.err(
                    &p,
                    addr,
                    format!("`{tier}` is not a JetStream tier"),
                    "tiers are named by replica count: `R1`, `R3`, `R5`",
                );
            } else if !js.has_storage() {
                self.err(
                    &p,
                    addr,
                    format!("tier `{tier}` gives no storage"),
                    "set `disk_storage` and/or `mem_storage`, or remove the tier",
                );
            }
        }
    }

    fn default_permissions(&mut self, base: &KeyPath, addr: &str, p: &Permissions) {
        let path: Vec<&str> = base.0.iter().map(String::as_str).collect();
        self.permissions(&path, addr, p.publish.as_ref(), p.subscribe.as_ref(), false);
        self.resp(&path, addr, p.resp.as_ref());
    }

    /// `description` and `info_url` as the Go library checks them.
    pub(super) fn info(
        &mut self,
        base: &KeyPath,
        addr: &str,
        description: Option<&str>,
        info_url: Option<&str>,
    ) {
        if description.is_some_and(|d| d.len() > MAX_INFO) {
            self.err(
                &base.at("description"),
                addr,
                "the description is longer than 8 KiB",
                "shorten it and link to the details with `info_url`",
            );
        }
        if let Some(url) = info_url {
            let host = url
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
            if url.len() > MAX_INFO || host.is_none_or(|h| h.is_empty()) {
                self.err(
                    &base.at("info_url"),
                    addr,
                    format!("info_url `{url}` is not a URL with a scheme and a host"),
                    "write e.g. `https://wiki.example.com/nats/orders`",
                );
            }
        }
    }
}
