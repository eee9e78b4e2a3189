//! Checks of one account's exports, imports, mappings, revocations and
//! auth callout, in isolation (cross-account checks are in `graph.rs`).

use super::{KeyPath, Validator};
use crate::claims;
use crate::keys::{is_valid_public_key, KeyKind};
use crate::manifest::diagnostic::did_you_mean;
use crate::manifest::model::{Account, Export, ExportKind, Import, Operator, Sampling};
use crate::manifest::subject::{check_subject, has_wildcard_token};
use crate::manifest::subject_match::subjects_collide;

impl Validator<'_> {
    /// Syntax of a subject in field `path`; `wildcards` where NATS allows them.
    pub(super) fn subject(
        &mut self,
        path: &KeyPath,
        addr: &str,
        what: &str,
        s: &str,
        wildcards: bool,
    ) -> bool {
        match check_subject(s, wildcards) {
            Ok(()) => true,
            Err(e) => {
                self.err(path, addr, format!("{what}: {}", e.message), e.help);
                false
            }
        }
    }

    pub(super) fn exports(&mut self, base: &KeyPath, addr: &str, op: &Operator, acc: &Account) {
        for (i, e) in acc.exports.iter().enumerate() {
            let p = base.at("exports").at(i);
            self.export(&p, addr, op, e);
        }
        // Overlapping exports of one type leave it open which one an import
        // uses; the Go library refuses the contained ones.
        for (i, a) in acc.exports.iter().enumerate() {
            for (j, b) in acc.exports.iter().enumerate().skip(i + 1) {
                if a.kind == b.kind && subjects_collide(&a.subject, &b.subject) {
                    self.err(
                        &base.at("exports").at(j).at("subject"),
                        addr,
                        format!("{} export `{}` overlaps the {} export `{}` (exports[{i}])", b.kind.as_str(), b.subject, a.kind.as_str(), a.subject),
                        "export each subject once: merge the two into one export, or make their subjects disjoint",
                    );
                }
            }
        }
    }

    fn export(&mut self, p: &KeyPath, addr: &str, op: &Operator, e: &Export) {
        self.subject(&p.at("subject"), addr, "export subject", &e.subject, true);
        let service_only = |field: &str| {
            format!("`{field}` applies to service exports only; remove it or make the export `type = \"service\"`")
        };
        if e.kind == ExportKind::Stream {
            for (field, set) in [
                ("response_type", e.response_type.is_some()),
                ("response_threshold", e.response_threshold.is_some()),
                ("latency", e.latency.is_some()),
                ("allow_trace", e.allow_trace),
            ] {
                if set {
                    self.err(
                        &p.at(field),
                        addr,
                        format!("stream export `{}` sets {field}", e.subject),
                        service_only(field),
                    );
                }
            }
        }
        if let Some(l) = &e.latency {
            let lp = p.at("latency");
            self.subject(
                &lp.at("results"),
                addr,
                "latency results subject",
                &l.results,
                false,
            );
            if let Some(Sampling::Percent(n)) = l.sampling {
                if !(1..=100).contains(&n) {
                    self.err(
                        &lp.at("sampling"),
                        addr,
                        format!("latency sampling {n} is not a percentage"),
                        "write 1 to 100, or `headers` to let requesters opt in",
                    );
                }
            }
        }
        if let Some(pos) = e.account_token_position {
            let tokens: Vec<&str> = e.subject.split('.').collect();
            let ok = pos >= 1 && tokens.get(pos as usize - 1) == Some(&"*");
            if !ok {
                self.err(&p.at("account_token_position"), addr, format!("account_token_position {pos} does not point at a `*` token of `{}`", e.subject), "count tokens from 1 and point at the `*` that importers fill with their account key, e.g. 2 in `orders.*.>`");
            }
        }
        self.info(p, addr, e.description.as_deref(), e.info_url.as_deref());
        for key in e.revocations.keys() {
            let known = key == "*"
                || op.accounts.contains_key(key)
                || is_valid_public_key(KeyKind::Account, key);
            if !known {
                self.err(&p.at("revocations").at(key), addr, format!("`{key}` in export revocations is not an account"), "name an account of this operator, an account public key (`A…`), or `*` for all importers");
            }
        }
    }

    pub(super) fn imports(
        &mut self,
        base: &KeyPath,
        addr: &str,
        acc_name: &str,
        op: &Operator,
        acc: &Account,
    ) {
        for (i, imp) in acc.imports.iter().enumerate() {
            self.import(&base.at("imports").at(i), addr, acc_name, op, imp);
        }
        // nats-server 2.9 (jwt 2.3.0) refuses an account whose service
        // imports overlap locally, even from different accounts.
        for (i, a) in acc.imports.iter().enumerate() {
            for (j, b) in acc.imports.iter().enumerate().skip(i + 1) {
                let both = a.kind == ExportKind::Service && b.kind == ExportKind::Service;
                if both && subjects_collide(a.local(), b.local()) {
                    self.err(
                        &base.at("imports").at(j),
                        addr,
                        format!("service import `{}` overlaps service import `{}` (imports[{i}]) in this account", b.local(), a.local()),
                        "give one of them a distinct `local_subject`: nats-server routes a request to one import only, and 2.9 refuses the whole account",
                    );
                }
            }
        }
    }

    fn import(&mut self, p: &KeyPath, addr: &str, acc_name: &str, op: &Operator, imp: &Import) {
        self.subject(&p.at("subject"), addr, "import subject", &imp.subject, true);
        match (&imp.from, &imp.account) {
            (Some(_), Some(_)) => self.err(&p.at("account"), addr, "the import names both `from` and `account`", "use `from` for an account of this manifest, `account` (a public key) for one outside it"),
            (None, None) => self.err(p, addr, "the import does not say which account exports the subject", "add `from = \"<account name>\"`, or `account = \"A…\"` for an account outside this manifest"),
            (Some(from), None) => {
                if from == acc_name {
                    self.err(&p.at("from"), addr, "the account imports from itself", "subjects of the account itself need no import; remove it");
                } else if !op.accounts.contains_key(from) {
                    let names = op.accounts.keys().map(String::as_str);
                    let help = match did_you_mean(from, names) {
                        Some(c) => format!("did you mean `{c}`? `from` names an account of the same operator; use `account = \"A…\"` for others"),
                        None => format!("accounts of this operator: {}; use `account = \"A…\"` for others", op.accounts.keys().cloned().collect::<Vec<_>>().join(", ")),
                    };
                    self.err(&p.at("from"), addr, format!("unknown account `{from}`"), help);
                }
                if imp.token.is_some() {
                    self.err(&p.at("token"), addr, "`token` is given for an import by name", "natsform issues the activation token of an account it manages itself: remove `token`");
                }
            }
            (None, Some(key)) => {
                if !is_valid_public_key(KeyKind::Account, key) {
                    self.err(&p.at("account"), addr, format!("`{key}` is not an account public key"), "an account public key has 56 characters and starts with `A`; for an account of this manifest use `from = \"<name>\"`");
                }
            }
        }
        if let Some(token) = &imp.token {
            if token.split('.').count() != 3 {
                self.err(&p.at("token"), addr, "the activation token is not a JWT", "paste the token the exporter generated (`nsc generate activation`), three base64url parts joined by `.`");
            }
        }
        if let Some(local) = &imp.local_subject {
            let lp = p.at("local_subject");
            if self.subject(&lp, addr, "local_subject", local, true) {
                self.renaming(&lp, addr, local, &imp.subject);
            }
        }
        if imp.share && imp.kind != ExportKind::Service {
            self.err(
                &p.at("share"),
                addr,
                "`share` applies to service imports only",
                "remove it, or import a service",
            );
        }
        if imp.allow_trace && imp.kind != ExportKind::Stream {
            self.err(
                &p.at("allow_trace"),
                addr,
                "`allow_trace` applies to stream imports only",
                "remove it, or import a stream",
            );
        }
    }

    /// Go `RenamingSubject.Validate`: `$N` references every `*` of the
    /// subject, and `>` ends both or neither.
    fn renaming(&mut self, p: &KeyPath, addr: &str, local: &str, subject: &str) {
        let ends_gt = |s: &str| s == ">" || s.ends_with(".>");
        let stars = subject.split('.').filter(|t| *t == "*").count();
        let refs = local
            .split('.')
            .filter(|t| {
                *t == "*"
                    || (t.len() > 1
                        && t.starts_with('$')
                        && t[1..].parse::<usize>().is_ok_and(|n| n >= 1 && n <= stars))
            })
            .count();
        if ends_gt(local) != ends_gt(subject) || refs != stars {
            self.err(p, addr, format!("local_subject `{local}` does not map every wildcard of `{subject}`"), "use one `$1`, `$2`, … (or `*`) per `*` of the subject, and end both in `>` or neither, e.g. `orders.*` → `mine.$1`");
        }
    }

    pub(super) fn mappings(&mut self, base: &KeyPath, addr: &str, acc: &Account) {
        for (from, dests) in &acc.mappings {
            let p = base.at("mappings").at(from);
            self.subject(&p, addr, "mapping source", from, true);
            let mut total = 0u32;
            for (i, d) in dests.iter().enumerate() {
                let dp = p.at(i);
                self.mapping_destination(&dp.at("subject"), addr, &d.subject);
                let w = d.weight.unwrap_or(100);
                if !(1..=100).contains(&w) {
                    self.err(
                        &dp.at("weight"),
                        addr,
                        format!("mapping weight {w} is not a percentage"),
                        "write 1 to 100 (omit it for 100)",
                    );
                }
                total += w;
            }
            if total > 100 {
                self.err(&p, addr, format!("the weights of mapping `{from}` add up to {total}%"), "make them total at most 100; nats-server 2.9 adds the weights of every cluster together, so keep that sum within 100 too");
            }
        }
    }

    fn mapping_destination(&mut self, p: &KeyPath, addr: &str, dest: &str) {
        // `$1` and `{{wildcard(1)}}`-style functions are plain tokens here.
        let plain: String = dest
            .split('.')
            .map(|t| {
                if t.starts_with("{{") && t.ends_with("}}") {
                    "x"
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        if has_wildcard_token(&plain) {
            self.err(p, addr, format!("mapping destination `{dest}` contains a wildcard"), "reference the source's `*` tokens with `$1` or `{{wildcard(1)}}` instead: nats-server 2.9 refuses wildcard destinations");
        } else {
            self.subject(p, addr, "mapping destination", &plain, false);
        }
    }

    pub(super) fn revocations(&mut self, base: &KeyPath, addr: &str, acc: &Account) {
        for key in acc.revocations.keys() {
            if key != "*" && !is_valid_public_key(KeyKind::User, key) {
                self.err(&base.at("revocations").at(key), addr, format!("`{key}` in revocations is not a user public key"), "revoke a user by its public key (`U…`, in natsform.lock), or `*` for every user issued before the time");
            }
        }
    }

    pub(super) fn authorization(
        &mut self,
        base: &KeyPath,
        addr: &str,
        op: &Operator,
        acc: &Account,
    ) {
        let Some(auth) = &acc.authorization else {
            return;
        };
        let p = base.at("authorization");
        if auth.auth_users.is_empty() {
            self.err(
                &p.at("auth_users"),
                addr,
                "auth callout needs at least one auth user",
                "name the user the auth service connects as, e.g. `auth_users = [\"auth\"]`",
            );
        }
        for (i, u) in auth.auth_users.iter().enumerate() {
            if !acc.users.contains_key(u) && !is_valid_public_key(KeyKind::User, u) {
                let help = match did_you_mean(u, acc.users.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? Name a user of this account or give a user public key (`U…`)"),
                    None => "name a user of this account or give a user public key (`U…`)".to_string(),
                };
                self.err(
                    &p.at("auth_users").at(i),
                    addr,
                    format!(
                        "auth user `{u}` is neither a user of this account nor a user public key"
                    ),
                    help,
                );
            }
        }
        for (i, a) in auth.allowed_accounts.iter().enumerate() {
            if a == "*" {
                if auth.allowed_accounts.len() > 1 {
                    self.err(
                        &p.at("allowed_accounts").at(i),
                        addr,
                        "`*` is listed with other allowed accounts",
                        "write `*` alone (every account), or list accounts",
                    );
                }
            } else if !op.accounts.contains_key(a) && !is_valid_public_key(KeyKind::Account, a) {
                let help = match did_you_mean(a, op.accounts.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => {
                        "name an account of this operator, an account public key (`A…`), or `*`"
                            .to_string()
                    }
                };
                self.err(
                    &p.at("allowed_accounts").at(i),
                    addr,
                    format!("allowed account `{a}` is unknown"),
                    help,
                );
            }
        }
        if let Some(x) = &auth.xkey {
            if !claims::is_public_key(x, claims::KeyKind::Curve) {
                self.err(
                    &p.at("xkey"),
                    addr,
                    format!("`{x}` is not a curve (xkey) public key"),
                    "an xkey has 56 characters and starts with `X` (`nk -gen curve -pubout`)",
                );
            }
        }
    }
}
