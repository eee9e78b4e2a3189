//! Semantic checks of a parsed manifest. Every problem is collected (not
//! just the first) and points at a line and an object address.

mod graph;
mod resolver;
pub use resolver::check_resolver_url;
mod rules;
mod wiring;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use super::address;
use super::diagnostic::{did_you_mean, Diagnostic, ManifestErrors};
use super::load::Loaded;
use super::model::{Account, Operator, ResponsePermission, SigningKey, SubjectPermission, User};
use super::subject::{check_permission_entry, Placeholder};
use super::units::Expiry;

/// Validates `loaded`; `Ok` means plan and apply can rely on the manifest.
pub fn validate(loaded: &Loaded) -> Result<(), ManifestErrors> {
    let mut v = Validator {
        placeholders: Default::default(),
        loaded,
        errors: Vec::new(),
    };
    v.manifest();
    v.secrets_anywhere();
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(ManifestErrors(v.errors))
    }
}

struct Validator<'a> {
    loaded: &'a Loaded,
    errors: Vec<Diagnostic>,
    /// The placeholders of each role permission entry (by text; `[pub,
    /// sub]`), `None` when it does not parse (reported with the role):
    /// every user of a role is checked against the same few entries, parsed
    /// once (100,000 users: 400,000 parses before).
    placeholders: [HashMap<String, Option<Rc<[Placeholder]>>>; 2],
}

/// A key path into the manifest (map keys and list indexes), for locating errors.
#[derive(Debug, Clone)]
struct KeyPath(Vec<String>);

impl KeyPath {
    fn new(parts: &[&str]) -> KeyPath {
        KeyPath(parts.iter().map(|s| s.to_string()).collect())
    }

    /// The path one level deeper.
    fn at(&self, key: impl ToString) -> KeyPath {
        let mut p = self.0.clone();
        p.push(key.to_string());
        KeyPath(p)
    }
}

impl<'a> Validator<'a> {
    /// [`Validator::error`] for a [`KeyPath`] and an object address.
    fn err(
        &mut self,
        path: &KeyPath,
        addr: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let p: Vec<&str> = path.0.iter().map(String::as_str).collect();
        self.error(&p, Some(addr.to_string()), message, help);
    }

    fn tags_at(&mut self, path: &KeyPath, addr: &str, tags: &[String]) {
        let p: Vec<&str> = path.0.iter().map(String::as_str).collect();
        self.tags(&p, addr, tags);
    }

    fn error(
        &mut self,
        path: &[&str],
        address: Option<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let help = help.into();
        let help = if help.is_empty() { None } else { Some(help) };
        let d = self.loaded.diagnostic(path, address, message, help);
        self.errors.push(d);
    }

    /// A seed or an age secret key on any line not already reported: in a
    /// free-text field (a description, a tag, a subject) it would be
    /// copied into a JWT, which is public.
    fn secrets_anywhere(&mut self) {
        let text = &self.loaded.text;
        if !crate::redact::contains_secret(text) {
            self.secrets_in_strings();
            return;
        }
        let reported: BTreeSet<usize> = self.errors.iter().filter_map(|d| d.line).collect();
        let file = self.loaded.path.display().to_string();
        for (i, line) in text.lines().enumerate() {
            if reported.contains(&(i + 1)) || !crate::redact::contains_secret(line) {
                continue;
            }
            self.errors.push(Diagnostic {
                file: file.clone(),
                line: Some(i + 1),
                source_line: Some(crate::redact::redact_secrets(line).into_owned()),
                address: None,
                message: "this line holds a secret (an nkey seed or an age secret key)".into(),
                help: Some("secrets never belong in the manifest (what it says may be copied into JWTs, which are public): remove it, and rotate the secret if this file was ever shared or committed".into()),
            });
        }
    }

    /// A secret no line shows but a parsed string holds: written with
    /// escapes (`"\u0053U…"`) or joined across lines (a TOML line-ending
    /// backslash, a YAML double-quoted continuation). JSON writes every
    /// base32 character as itself, so one scan of the model as JSON sees
    /// every string and key as parsed. The error names the key, and never
    /// quotes its line (most of the secret is plain there).
    fn secrets_in_strings(&mut self) {
        // Every way to hide one (TOML `\u`/`\U` escapes and line-ending
        // backslashes, YAML double-quoted escapes and continuations) needs
        // a backslash: without one, the line scan saw every string.
        if !self.loaded.text.contains('\\') {
            return;
        }
        let Ok(json) = serde_json::to_string(&self.loaded.manifest) else {
            return;
        };
        if !crate::redact::contains_secret(&json) {
            return;
        }
        let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let path = secret_path(&value).unwrap_or_default();
        let line = self.loaded.spans().line_of(&path);
        // Other errors may quote a line that holds the rest of it (an
        // escaped first character, half a joined string): none is quoted.
        for d in &mut self.errors {
            d.source_line = None;
        }
        self.errors.push(Diagnostic {
            file: self.loaded.path.display().to_string(),
            line,
            source_line: None,
            address: None,
            message: format!(
                "`{}` holds a secret (an nkey seed or an age secret key) written with escapes or across lines (the line is not shown)",
                match path.is_empty() {
                    true => "a string".to_string(),
                    false => crate::redact::redact_secrets(&path.join(".")).into_owned(),
                }
            ),
            help: Some("secrets never belong in the manifest (what it says may be copied into JWTs, which are public): remove it, and rotate the secret if this file was ever shared or committed".into()),
        });
    }

    fn manifest(&mut self) {
        let m = &self.loaded.manifest;
        if m.operators.is_empty() {
            self.error(
                &["operators"],
                None,
                "the manifest declares no operator",
                "add an `operators.<NAME>` table; `natsform init` writes a starting point",
            );
        }
        for (i, r) in m.secrets.recipients.iter().enumerate() {
            if let Err(e) = crate::keys::Recipients::parse(std::slice::from_ref(r)) {
                let idx = i.to_string();
                let reason = e.to_string();
                let reason = reason.lines().next().unwrap_or_default().to_string();
                self.error(&["secrets", "recipients", &idx], None, reason, "use an age public key (`age1…`, print it with `age-keygen -y KEYFILE`) or an SSH public key (`ssh-ed25519 AAAA…`)");
            }
        }
        self.project_dirs();
        let mut public_keys: BTreeMap<String, String> = BTreeMap::new();
        let mut lowered: BTreeMap<String, &str> = BTreeMap::new();
        for (name, op) in &m.operators {
            if let Some(prev) = lowered.insert(name.to_lowercase(), name) {
                self.error(
                    &["operators", name],
                    Some(address::operator(name)),
                    format!("operator `{name}` differs from `{prev}` only in case"),
                    "store directories would collide on case-insensitive file systems; rename one",
                );
            }
            self.operator(name, op, &mut public_keys);
        }
        self.relative_expiries();
    }

    /// `store` and `vault` are relative paths inside the manifest's directory.
    fn project_dirs(&mut self) {
        let m = &self.loaded.manifest;
        let dirs = [("store", m.store.clone()), ("vault", m.vault.clone())];
        for (key, value) in dirs {
            let Some(value) = value else { continue };
            if let Some(problem) = crate::safepath::project_dir_problem(&value) {
                self.error(
                    &[key],
                    None,
                    format!("`{key}` {problem}: natsform only writes inside the manifest's directory"),
                    format!("give a relative path below the manifest's directory, e.g. `{key} = \"{key}\"`"),
                );
            }
        }
        // Deleting an account removes its store directory with everything
        // in it: a vault inside the store would lose its seeds.
        let store = m
            .store
            .as_deref()
            .unwrap_or(crate::workspace::DEFAULT_STORE_DIR);
        let vault = m
            .vault
            .as_deref()
            .unwrap_or(crate::workspace::DEFAULT_VAULT_DIR);
        if let Some(problem) = crate::safepath::store_vault_overlap(store, vault) {
            let key = if m.vault.is_some() { "vault" } else { "store" };
            self.error(
                &[key],
                None,
                problem,
                "keep `store` and `vault` apart, neither inside the other (the defaults are `store` and `vault`)",
            );
        }
    }

    /// A validity no longer than the re-issue window would be re-issued by
    /// every plan.
    fn relative_expiries(&mut self) {
        let m = &self.loaded.manifest;
        let window = reissue_window_secs(m);
        let mut found: Vec<(Vec<String>, String, i64)> = Vec::new();
        for (op_name, op) in &m.operators {
            let base = vec!["operators".to_string(), op_name.clone()];
            found.extend(
                op.expires
                    .and_then(Expiry::valid_for_secs)
                    .map(|v| (base.clone(), address::operator(op_name), v)),
            );
            for (acc_name, acc) in &op.accounts {
                let mut p = base.clone();
                p.extend(["accounts".to_string(), acc_name.clone()]);
                found.extend(
                    acc.expires
                        .and_then(Expiry::valid_for_secs)
                        .map(|v| (p.clone(), address::account(op_name, acc_name), v)),
                );
                for (user_name, user) in &acc.users {
                    let mut up = p.clone();
                    up.extend(["users".to_string(), user_name.clone()]);
                    found.extend(
                        user.expires
                            .and_then(Expiry::valid_for_secs)
                            .map(|v| (up, address::user(op_name, acc_name, user_name), v)),
                    );
                }
            }
        }
        for (mut path, addr, secs) in found {
            if secs <= window {
                path.push("expires".into());
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                self.error(&p, Some(addr), {
                    let d = |s: i64| super::duration::Duration::from_nanos(s * 1_000_000_000);
                    format!("expires {} after issue, within the re-issue window of {}", d(secs), d(window))
                }, "every plan would re-issue it: make `expires` longer than `reissue_before` (default 30d), or lower `reissue_before`");
            }
        }
    }

    fn name(&mut self, path: &[&str], addr: &str, kind: &str, name: &str) {
        // The same rule the store applies to names it reads.
        if !crate::safepath::is_safe_name(name) {
            let shown = crate::safepath::escape_controls(name);
            self.error(path, Some(addr.to_string()), format!("`{shown}` is not a usable {kind} name"), "names become file names in the store: no `/`, `\\`, control characters or direction overrides, no leading `.` or surrounding spaces");
        } else if name.len() > MAX_NAME_BYTES {
            let shown: String = name.chars().take(20).collect();
            self.error(
                path,
                Some(addr.to_string()),
                format!("{kind} name `{shown}…` is {} bytes long, more than the {MAX_NAME_BYTES} allowed", name.len()),
                format!("names become file names in the store (`<name>.jwt`, `<name>.creds`), and file systems allow 255 bytes; use a name of at most {MAX_NAME_BYTES} bytes"),
            );
        }
    }

    /// `resp.max` must be a count of responses.
    fn resp(&mut self, base: &[&str], addr: &str, resp: Option<&ResponsePermission>) {
        if let Some(max) = resp.and_then(|r| r.max) {
            if max < 1 {
                self.error(
                    &[base, &["resp", "max"]].concat(),
                    Some(addr.to_string()),
                    format!("resp max = {max} is not a number of responses"),
                    "write 1 or more (how many replies may be sent to each request), or leave `max` out for 1",
                );
            }
        }
    }

    fn labels(&mut self, path: &[&str], addr: &str, labels: &[String]) {
        let mut seen = BTreeSet::new();
        for (i, label) in labels.iter().enumerate() {
            let idx = i.to_string();
            let mut p = path.to_vec();
            p.push(&idx);
            if label.is_empty()
                || !label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                self.error(
                    &p,
                    Some(addr.to_string()),
                    format!("key label `{label}` is not valid"),
                    "labels use letters, digits, `.`, `_` and `-`, e.g. `v2` or `ops-2026-11`",
                );
            }
            if !seen.insert(label.as_str()) {
                self.error(
                    &p,
                    Some(addr.to_string()),
                    format!("key label `{label}` is listed twice"),
                    "each label names one key; remove the duplicate",
                );
            }
        }
    }

    fn operator(&mut self, name: &str, op: &Operator, public_keys: &mut BTreeMap<String, String>) {
        let addr = address::operator(name);
        let base = ["operators", name];
        self.name(&base, &addr, "operator", name);
        self.labels(
            &[&base[..], &["key"]].concat(),
            &addr,
            std::slice::from_ref(&op.key),
        );
        self.labels(
            &[&base[..], &["signing_keys"]].concat(),
            &addr,
            &op.signing_keys,
        );
        if op.strict_signing_key_usage && op.signing_keys.is_empty() {
            self.error(&[&base[..], &["strict_signing_key_usage"]].concat(), Some(addr.clone()), "strict signing key usage needs at least one operator signing key", "add `signing_keys = [\"ops\"]` to the operator, or turn strict_signing_key_usage off");
        }
        match &op.system_account {
            None => self.error(&base, Some(addr.clone()), "the operator has no system account", "declare an account (e.g. `SYS`) and set `system_account = \"SYS\"`: servers need it to push and monitor accounts"),
            Some(sys) if !op.accounts.contains_key(sys) => {
                let hint = match did_you_mean(sys, op.accounts.keys().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? The system account must be declared under `accounts`"),
                    None => format!("declare an account named `{sys}` under this operator's `accounts`"),
                };
                self.error(&[&base[..], &["system_account"]].concat(), Some(addr.clone()), format!("system account `{sys}` is not declared"), hint);
            }
            Some(_) => {}
        }
        for (i, url) in op.service_urls.iter().enumerate() {
            if let Err(msg) = check_service_url(url) {
                let idx = i.to_string();
                self.error(
                    &[&base[..], &["service_urls", &idx]].concat(),
                    Some(addr.clone()),
                    format!("service URL `{url}` {msg}"),
                    "write `nats://host:4222` or `tls://host:4222`",
                );
            }
        }
        if let Some(url) = &op.account_server_url {
            if !url.contains("://") {
                self.error(
                    &[&base[..], &["account_server_url"]].concat(),
                    Some(addr.clone()),
                    format!("account server URL `{url}` has no scheme"),
                    "write e.g. `nats://host:4222`",
                );
            }
        }
        if let Some(resolver) = &op.resolver {
            self.resolver(&KeyPath::new(&base).at("resolver"), &addr, resolver);
        }
        self.operator_extras(&KeyPath::new(&base), &addr, op);
        let mut lowered: BTreeMap<String, &str> = BTreeMap::new();
        for (acc_name, acc) in &op.accounts {
            if let Some(prev) = lowered.insert(acc_name.to_lowercase(), acc_name) {
                self.error(
                    &[&base[..], &["accounts", acc_name]].concat(),
                    Some(address::account(name, acc_name)),
                    format!("account `{acc_name}` differs from `{prev}` only in case"),
                    "store directories would collide on case-insensitive file systems; rename one",
                );
            }
            self.account(name, op, acc_name, acc, public_keys);
        }
        self.import_graph(name, op);
    }

    fn account(
        &mut self,
        op_name: &str,
        op: &Operator,
        name: &str,
        acc: &Account,
        public_keys: &mut BTreeMap<String, String>,
    ) {
        let addr = address::account(op_name, name);
        let base = ["operators", op_name, "accounts", name];
        self.name(&base, &addr, "account", name);
        self.labels(
            &[&base[..], &["key"]].concat(),
            &addr,
            std::slice::from_ref(&acc.key),
        );
        self.tags(&[&base[..], &["tags"]].concat(), &addr, &acc.tags);
        let kp = KeyPath::new(&base);
        self.account_extras(&kp, &addr, acc);
        self.exports(&kp, &addr, op, acc);
        self.imports(&kp, &addr, name, op, acc);
        self.mappings(&kp, &addr, acc);
        self.revocations(&kp, &addr, acc);
        self.authorization(&kp, &addr, op, acc);
        for (role, sk) in &acc.signing_keys {
            let sk_addr = address::signing_key(op_name, name, role);
            let p = [&base[..], &["signing_keys", role]].concat();
            self.name(&p, &sk_addr, "signing key role", role);
            self.labels(&[&p[..], &["keys"]].concat(), &sk_addr, &sk.keys);
            if sk.keys.is_empty() {
                self.error(
                    &p,
                    Some(sk_addr.clone()),
                    "the role lists no key labels",
                    "give it at least one label, e.g. `keys = [\"v1\"]`, or remove the role",
                );
            }
            self.permissions(
                &p,
                &sk_addr,
                sk.publish.as_ref(),
                sk.subscribe.as_ref(),
                true,
            );
            self.rules(&KeyPath::new(&p), &sk_addr, sk.rules());
            self.resp(&p, &sk_addr, sk.resp.as_ref());
        }
        let mut lowered: BTreeMap<String, &str> = BTreeMap::new();
        for (user_name, user) in &acc.users {
            if let Some(prev) = lowered.insert(user_name.to_lowercase(), user_name) {
                self.error(
                    &[&base[..], &["users", user_name]].concat(),
                    Some(address::user(op_name, name, user_name)),
                    format!("user `{user_name}` differs from `{prev}` only in case"),
                    "store files would collide on case-insensitive file systems; rename one",
                );
            }
            self.user(op_name, op, name, acc, user_name, user, public_keys);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn user(
        &mut self,
        op_name: &str,
        op: &Operator,
        acc_name: &str,
        acc: &Account,
        name: &str,
        user: &User,
        public_keys: &mut BTreeMap<String, String>,
    ) {
        let addr = address::user(op_name, acc_name, name);
        let base = ["operators", op_name, "accounts", acc_name, "users", name];
        self.name(&base, &addr, "user", name);
        self.labels(
            &[&base[..], &["key"]].concat(),
            &addr,
            std::slice::from_ref(&user.key),
        );
        self.tags(&[&base[..], &["tags"]].concat(), &addr, &user.tags);
        if let Some(pk) = &user.public_key {
            let p = [&base[..], &["public_key"]].concat();
            if !crate::keys::is_valid_public_key(crate::keys::KeyKind::User, pk) {
                self.error(&p, Some(addr.clone()), format!("`{pk}` is not a user public key"), "a user public key has 56 characters and starts with `U` (`nk -gen user -pubout`, `nsc describe user`)");
            } else if let Some(other) = public_keys.insert(pk.clone(), addr.clone()) {
                self.error(
                    &p,
                    Some(addr.clone()),
                    format!("public key is already used by {other}"),
                    "every user needs its own key",
                );
            }
        }
        let role = match &user.signer {
            None => {
                if op.strict_signing_key_usage {
                    let roles: Vec<&str> = acc.signing_keys.keys().map(String::as_str).collect();
                    let help = if roles.is_empty() {
                        "add a signing key role to the account and set `signer` on the user"
                            .to_string()
                    } else {
                        format!("set `signer` to one of: {}", roles.join(", "))
                    };
                    self.error(&base, Some(addr.clone()), "under strict signing key usage a user must be signed by an account signing key", help);
                }
                None
            }
            Some(signer) => match acc.signing_keys.get(signer) {
                Some(sk) => Some((signer.as_str(), sk)),
                None => {
                    let roles: Vec<&str> = acc.signing_keys.keys().map(String::as_str).collect();
                    let list = if roles.is_empty() {
                        "this account declares no signing keys".to_string()
                    } else {
                        format!("signing keys of account `{acc_name}`: {}", roles.join(", "))
                    };
                    let help = match did_you_mean(signer, roles.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? {list}; omit `signer` to sign with the account key"),
                        None => format!("{list}; omit `signer` to sign with the account key"),
                    };
                    self.error(
                        &[&base[..], &["signer"]].concat(),
                        Some(addr.clone()),
                        format!("unknown signer `{signer}`"),
                        help,
                    );
                    None
                }
            },
        };
        let scoped = role.filter(|(_, sk)| sk.is_scoped());
        if let Some((role_name, sk)) = scoped {
            if let Some(field) = user.own_permission_field() {
                self.error(&[&base[..], &[field]].concat(), Some(addr.clone()), format!("the user has its own permissions but is signed by the scoped role `{role_name}`"), format!("nats-server rejects such users: move the permissions into role `{role_name}`, or sign the user with an unscoped key"));
            }
            self.template_use(&base, &addr, acc, name, user, role_name, sk);
        } else {
            self.permissions(
                &base,
                &addr,
                user.publish.as_ref(),
                user.subscribe.as_ref(),
                false,
            );
            self.rules(&KeyPath::new(&base), &addr, user.rules());
        }
        self.resp(&base, &addr, user.resp.as_ref());
    }

    fn tags(&mut self, path: &[&str], addr: &str, tags: &[String]) {
        for (i, tag) in tags.iter().enumerate() {
            let idx = i.to_string();
            let p = [path, &[&idx]].concat();
            if tag.trim().is_empty() || tag.contains(char::is_whitespace) {
                self.error(
                    &p,
                    Some(addr.to_string()),
                    format!("tag `{tag}` is empty or contains whitespace"),
                    "write tags as `key:value`, e.g. `team:support`",
                );
            }
        }
    }

    fn permissions(
        &mut self,
        base: &[&str],
        addr: &str,
        publish: Option<&SubjectPermission>,
        subscribe: Option<&SubjectPermission>,
        templates: bool,
    ) {
        for (dir, perm, queue) in [("pub", publish, false), ("sub", subscribe, true)] {
            let Some(perm) = perm else { continue };
            for (list, entries) in [("allow", &perm.allow), ("deny", &perm.deny)] {
                for (i, entry) in entries.iter().enumerate() {
                    if let Err(e) = check_permission_entry(entry, queue, templates) {
                        let idx = i.to_string();
                        self.error(
                            &[base, &[dir, list, &idx]].concat(),
                            Some(addr.to_string()),
                            format!("{dir}.{list}: {}", e.message),
                            e.help,
                        );
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn template_use(
        &mut self,
        base: &[&str],
        addr: &str,
        acc: &Account,
        name: &str,
        user: &User,
        role_name: &str,
        sk: &SigningKey,
    ) {
        let user_tags = tag_keys(&user.tags);
        let account_tags = tag_keys(&acc.tags);
        for (dir, perm) in [("pub", sk.publish.as_ref()), ("sub", sk.subscribe.as_ref())] {
            let Some(perm) = perm else { continue };
            let queue = dir == "sub";
            for (list, entries) in [("allow", &perm.allow), ("deny", &perm.deny)] {
                for entry in entries {
                    let known = &mut self.placeholders[usize::from(queue)];
                    let found = match known.get(entry.as_str()) {
                        Some(found) => found.clone(),
                        None => {
                            let found = check_permission_entry(entry, queue, true)
                                .ok()
                                .map(Rc::from);
                            known.insert(entry.clone(), found.clone());
                            found
                        }
                    };
                    let Some(found) = found else {
                        continue;
                    };
                    for ph in found.iter() {
                        match ph {
                            Placeholder::Tag(key) if !user_tags.contains(key) => {
                                self.error(&[base, &["tags"]].concat(), Some(addr.to_string()), format!("role `{role_name}` uses {{{{tag({key})}}}} in {dir}.{list} `{entry}`, but user `{name}` has no `{key}:` tag"), format!("add a tag such as `{key}:<value>` to the user: without it nats-server drops the permission (allow) or refuses the connection (deny)"));
                            }
                            Placeholder::AccountTag(key) if !account_tags.contains(key) => {
                                self.error(&[base, &["signer"]].concat(), Some(addr.to_string()), format!("role `{role_name}` uses {{{{account-tag({key})}}}} in {dir}.{list} `{entry}`, but the account has no `{key}:` tag"), format!("add a tag such as `{key}:<value>` to the account's `tags`"));
                            }
                            Placeholder::Name if !is_single_token(name) => {
                                self.error(base, Some(addr.to_string()), format!("role `{role_name}` uses {{{{name()}}}} in `{entry}`, but user name `{name}` is not a single subject token"), "rename the user without `.`, `*`, `>` or spaces, or drop {{name()}} from the role");
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

/// The keys of `key:value` tags, lower-cased as nats-server compares them.
fn tag_keys(tags: &[String]) -> BTreeSet<String> {
    tags.iter()
        .filter_map(|t| t.split_once(':'))
        .map(|(k, _)| k.trim().to_lowercase())
        .collect()
}

fn is_single_token(name: &str) -> bool {
    !name.is_empty() && !name.contains(['.', '*', '>', ' ', '\t'])
}

fn check_service_url(url: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("has no scheme");
    };
    if !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
        return Err("has a scheme other than nats, tls, ws or wss");
    }
    if rest.contains('@') {
        return Err("must not carry a user");
    }
    if rest.trim_end_matches('/').contains('/') {
        return Err("must not have a path");
    }
    if rest.is_empty() {
        return Err("has no host");
    }
    Ok(())
}

/// The longest name (in bytes, UTF-8) of an operator, account, user or
/// signing key role. Names become file name components in the store
/// (`<name>.jwt`, `users/<name>.creds`, and the temporary files beside
/// them); Linux and macOS allow 255 bytes per component, and the margin
/// leaves room for suffixes.
pub const MAX_NAME_BYTES: usize = 200;

/// The re-issue window of relative expiries, in seconds (default 30 days).
pub fn reissue_window_secs(m: &super::model::Manifest) -> i64 {
    m.reissue_before
        .map(|d| d.as_nanos() / 1_000_000_000)
        .unwrap_or(30 * 86_400)
}

/// The key path of the first string (or map key) in `v` that holds a
/// secret.
fn secret_path(v: &serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value;
    match v {
        Value::String(s) => crate::redact::contains_secret(s).then(Vec::new),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let mut p = secret_path(item)?;
            p.insert(0, i.to_string());
            Some(p)
        }),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if crate::redact::contains_secret(k) {
                return Some(vec![k.clone()]);
            }
            let mut p = secret_path(item)?;
            p.insert(0, k.clone());
            Some(p)
        }),
        _ => None,
    }
}
