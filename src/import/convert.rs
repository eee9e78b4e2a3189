//! Decoded nsc JWTs → manifest model, lock and seeds.
//!
//! Each claim field maps to the manifest field that makes natsform write
//! it back the same (`plan::desired` is the inverse): `-1` limits are left
//! out (natsform's default is unlimited), zero counts are kept (zero means
//! none), and a field the manifest has no way to say is refused, naming the
//! object and the field.

use std::collections::{BTreeMap, BTreeSet};

use super::{err, shown, Decoded, Found, ImportError, Imported, Keystore, Result};
use crate::claims::{
    self, AccountClaims, AnyClaims, OperatorClaims, UserClaims, UserPermissionLimits,
};
use crate::keys::Lock;
use crate::manifest::address;
use crate::manifest::duration::Duration;
use crate::manifest::model::{
    self as m, AccountLimits, ConnectionType, ExportKind, JetStream, Manifest, Permissions,
    ResponsePermission, ResponseType, Sampling, SubjectPermission, TimeWindow, UserLimits,
};
use crate::manifest::units::{Expiry, Limit, Size, Timestamp, UNLIMITED};
use crate::tree::ObjectId;

const LABEL: &str = m::DEFAULT_KEY_LABEL;

/// Collects keys, seeds and notes while the model is built.
struct Keys<'a> {
    store: &'a Keystore,
    lock: Lock,
    seeds: BTreeMap<String, nkeys::KeyPair>,
    missing: Vec<String>,
}

impl Keys<'_> {
    /// Binds `addr` to `public_key` and picks up its seed; returns whether
    /// the seed was found.
    fn bind(&mut self, addr: String, public_key: &str, bind: bool) -> Result<bool> {
        let found = match self.store.find(public_key)? {
            Found::Seed(kp) => {
                self.seeds.insert(public_key.to_string(), *kp);
                true
            }
            Found::Missing => {
                self.missing.push(format!("{addr} ({public_key})"));
                false
            }
        };
        if bind {
            self.lock
                .insert(addr, public_key)
                .map_err(|e| ImportError(e.to_string()))?;
        }
        Ok(found)
    }
}

pub(super) fn convert(
    decoded: &BTreeMap<ObjectId, Decoded>,
    keystore: &Keystore,
) -> Result<Imported> {
    let mut keys = Keys {
        store: keystore,
        lock: Lock::new(),
        seeds: BTreeMap::new(),
        missing: Vec::new(),
    };
    let mut manifest = Manifest::default();
    let mut jwts = BTreeMap::new();
    let mut notes = Vec::new();
    let mut revocations = BTreeMap::new();
    let mut counts = (0, 0, 0);
    // Every account key of the store → (operator, account name).
    let mut account_names: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (id, d) in decoded {
        if let (Some(acc), None, AnyClaims::Account(c)) = (&id.account, &id.user, &d.claims) {
            account_names.insert(c.data.sub.clone(), (id.operator.clone(), acc.clone()));
        }
    }
    for (op_id, op_jwt) in decoded.iter().filter(|(id, _)| id.account.is_none()) {
        let op_name = &op_id.operator;
        let AnyClaims::Operator(op_claims) = &op_jwt.claims else {
            return not_a(
                op_jwt,
                "an operator",
                "the operator JWT at <operator>/<operator>.jwt",
            );
        };
        check_name(op_jwt, op_name)?;
        let accounts: Vec<(&ObjectId, &Decoded)> = decoded
            .iter()
            .filter(|(id, _)| id.operator == *op_name && id.account.is_some() && id.user.is_none())
            .collect();
        let (mut op, signers) = operator(op_name, op_jwt, op_claims, &accounts)?;
        keys.bind(
            address::key(&address::operator(op_name), LABEL),
            &op_claims.data.sub,
            true,
        )?;
        for (label, key) in &signers {
            keys.bind(
                address::key(&address::operator_signing_key(op_name), label),
                key,
                true,
            )?;
        }
        jwts.insert(op_id.clone(), op_jwt.token.clone());
        counts.0 += 1;
        for (acc_id, acc_jwt) in accounts {
            let acc_name = acc_id.account.as_deref().unwrap_or_default();
            let AnyClaims::Account(ac) = &acc_jwt.claims else {
                return not_a(
                    acc_jwt,
                    "an account",
                    "account JWTs at accounts/<account>/<account>.jwt",
                );
            };
            check_name(acc_jwt, acc_name)?;
            let trusted = op_claims.data.sub == ac.data.iss
                || op_claims.nats.signing_keys.contains(&ac.data.iss);
            if !trusted {
                return err(format!(
                    "{}: account `{acc_name}` is signed by {}, which is neither operator `{op_name}`'s key nor one of its signing keys\n  = help: re-sign the account with nsc, or remove it from a copy of the store",
                    shown(&acc_jwt.path),
                    ac.data.iss
                ));
            }
            let users: Vec<(&ObjectId, &Decoded)> = decoded
                .iter()
                .filter(|(id, _)| {
                    id.operator == *op_name
                        && id.account.as_deref() == Some(acc_name)
                        && id.user.is_some()
                })
                .collect();
            let (acc, roles) = account(op_name, acc_name, acc_jwt, ac, &account_names, &users)?;
            keys.bind(
                address::key(&address::account(op_name, acc_name), LABEL),
                &ac.data.sub,
                true,
            )?;
            for (key, role) in &roles {
                keys.bind(
                    address::key(&address::signing_key(op_name, acc_name, role), LABEL),
                    key,
                    true,
                )?;
            }
            if !ac.nats.revocations.is_empty() {
                revocations.insert(
                    address::account(op_name, acc_name),
                    ac.nats.revocations.clone(),
                );
            }
            jwts.insert(acc_id.clone(), acc_jwt.token.clone());
            counts.1 += 1;
            let mut acc = acc;
            for (user_id, user_jwt) in users {
                let user_name = user_id.user.as_deref().unwrap_or_default();
                let AnyClaims::User(uc) = &user_jwt.claims else {
                    return not_a(
                        user_jwt,
                        "a user",
                        "user JWTs at accounts/<account>/users/<user>.jwt",
                    );
                };
                check_name(user_jwt, user_name)?;
                if ac.is_revoked(&uc.data.sub, uc.data.iat) {
                    // Importing it as a user would issue it again, after the
                    // revocation: the user would come back.
                    notes.push(format!(
                        "user {}/{}/{user_name} is revoked by its account: imported as the account's revocation only (no user, no JWT)",
                        op_name, acc_name
                    ));
                    continue;
                }
                let addr = address::user(op_name, acc_name, user_name);
                let mut user = user(&addr, user_jwt, uc, ac, &roles)?;
                let has_seed = keys.bind(address::key(&addr, LABEL), &uc.data.sub, false)?;
                if has_seed {
                    keys.lock
                        .insert(address::key(&addr, LABEL), uc.data.sub.clone())
                        .map_err(|e| ImportError(e.to_string()))?;
                } else {
                    user.public_key = Some(uc.data.sub.clone());
                }
                acc.users.insert(user_name.to_string(), user);
                jwts.insert(user_id.clone(), user_jwt.token.clone());
                counts.2 += 1;
            }
            op.accounts.insert(acc_name.to_string(), acc);
        }
        let sys = &op_claims.nats.system_account;
        if sys.is_empty() {
            return err(format!(
                "{}: operator `{op_name}` has no system account, which natsform requires (servers need it to push and monitor accounts)\n  = help: add one with nsc (`nsc add account SYS`, then `nsc edit operator --system-account SYS`) and import again",
                shown(&op_jwt.path)
            ));
        }
        {
            match account_names.get(sys) {
                Some((o, a)) if o == op_name => op.system_account = Some(a.clone()),
                _ => {
                    return err(format!(
                        "{}: operator `{op_name}`'s system account {sys} is not in the store\n  = help: natsform names the system account by one of the operator's accounts; add it to the store (nsc add account) first",
                        shown(&op_jwt.path)
                    ))
                }
            }
        }
        manifest.operators.insert(op_name.clone(), op);
    }
    if keys.seeds.is_empty() {
        return err(format!(
            "the nsc keystore {} holds no seed for any key of the store\n  = help: pass the keystore that belongs to this store with --keys (nsc's is ~/.local/share/nats/nsc/keys, or $NKEYS_PATH)",
            shown(&keystore.root)
        ));
    }
    for k in &keys.missing {
        notes.push(format!(
            "{k}: no seed in the keystore, imported public-key-only (natsform cannot sign with it)"
        ));
    }
    keys.lock.set_revocations(revocations);
    Ok(Imported {
        manifest,
        lock: keys.lock,
        jwts,
        seeds: keys.seeds.into_values().collect(),
        notes,
        counts,
    })
}

/// The error for a JWT of the wrong kind: `what` ("an account") and where
/// nsc keeps such JWTs (`where_`: "account JWTs at …").
fn not_a<T>(d: &Decoded, what: &str, where_: &str) -> Result<T> {
    err(format!(
        "{}: not {what} JWT\n  = help: nsc keeps {where_}",
        shown(&d.path)
    ))
}

/// nsc names every file after the JWT's `name`; natsform writes the name
/// from the manifest, so the two must agree.
fn check_name(d: &Decoded, name: &str) -> Result<()> {
    let claimed = d.claims.data().name;
    if claimed != name {
        return err(format!(
            "{}: the JWT's name is {:?}, but its file is named `{name}`\n  = help: nsc names files after the JWT's name; rename the file (in a copy of the store) or re-issue the JWT",
            shown(&d.path),
            crate::safepath::escape_controls(&claimed)
        ));
    }
    Ok(())
}

fn unsupported<T>(d: &Decoded, object: &str, what: &str) -> Result<T> {
    err(format!(
        "{}: {object} uses {what}, which natsform does not model; importing it would drop it\n  = help: remove it with nsc (in a copy of the store) if you can do without it, or keep managing this operator with nsc",
        shown(&d.path)
    ))
}

fn expiry(exp: i64) -> Option<Expiry> {
    (exp > 0).then_some(Expiry::At(Timestamp(exp)))
}

fn opt_limit(v: i64) -> Option<Limit> {
    (v != UNLIMITED).then_some(Limit(v))
}

fn opt_size(v: i64) -> Option<Size> {
    (v != UNLIMITED).then_some(Size(v))
}

fn opt_str(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The operator, and its signing keys in label order (`v1` first: the key
/// that signed most accounts, since natsform signs with the first).
fn operator(
    name: &str,
    d: &Decoded,
    c: &OperatorClaims,
    accounts: &[(&ObjectId, &Decoded)],
) -> Result<(m::Operator, Vec<(String, String)>)> {
    if c.data.iss != c.data.sub {
        return err(format!(
            "{}: operator `{name}`'s JWT is not signed by the operator's own key\n  = help: natsform (like nsc) signs the operator JWT with the operator key; re-sign it with nsc",
            shown(&d.path)
        ));
    }
    let mut uses: BTreeMap<&str, usize> = c
        .nats
        .signing_keys
        .iter()
        .map(|k| (k.as_str(), 0))
        .collect();
    for (_, a) in accounts {
        if let Some(n) = uses.get_mut(a.claims.data().iss.as_str()) {
            *n += 1;
        }
    }
    let mut order: Vec<(&str, usize)> = uses.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let signers: Vec<(String, String)> = order
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (format!("v{}", i + 1), k.to_string()))
        .collect();
    let n = &c.nats;
    let op = m::Operator {
        key: LABEL.to_string(),
        signing_keys: signers.iter().map(|(l, _)| l.clone()).collect(),
        system_account: None,
        strict_signing_key_usage: n.strict_signing_key_usage,
        service_urls: n.operator_service_urls.clone(),
        account_server_url: opt_str(&n.account_server_url),
        assert_server_version: opt_str(&n.assert_server_version),
        tags: n.generic.tags.clone(),
        expires: expiry(c.data.exp),
        // nsc keeps no resolver settings in its store: add them by hand.
        resolver: None,
        accounts: BTreeMap::new(),
    };
    Ok((op, signers))
}

/// A role name for each signing key: a scoped key's role (made unique), or
/// `signer` (`signer-2`, … for more plain keys).
fn role_names(ac: &AccountClaims) -> BTreeMap<String, String> {
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut unique = |base: &str| {
        let base = if base.is_empty() { "scoped" } else { base };
        let mut name = base.to_string();
        let mut i = 2;
        while used.contains(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        used.insert(name.clone());
        name
    };
    // Scoped roles keep their names first; plain keys fill in after.
    for (key, scope) in &ac.nats.signing_keys.0 {
        if let Some(s) = scope {
            out.insert(key.clone(), unique(&s.role));
        }
    }
    for (key, scope) in &ac.nats.signing_keys.0 {
        if scope.is_none() {
            out.insert(key.clone(), unique("signer"));
        }
    }
    out
}

fn subject_permission(p: &claims::Permission) -> Option<SubjectPermission> {
    (!p.is_empty()).then(|| SubjectPermission {
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    })
}

fn response(r: &Option<claims::ResponsePermission>) -> Option<ResponsePermission> {
    r.as_ref().map(|r| ResponsePermission {
        max: Some(r.max),
        ttl: (r.ttl != 0).then(|| Duration::from_nanos(r.ttl)),
    })
}

/// The permissions, limits and rules of a user or a scope template, as the
/// manifest says them.
struct Rules {
    publish: Option<SubjectPermission>,
    subscribe: Option<SubjectPermission>,
    resp: Option<ResponsePermission>,
    src: Vec<String>,
    times: Vec<TimeWindow>,
    locale: Option<String>,
    limits: Option<UserLimits>,
    bearer_token: bool,
    allowed_connection_types: Vec<ConnectionType>,
}

fn rules(d: &Decoded, object: &str, p: &UserPermissionLimits) -> Result<Rules> {
    if p.proxy_required {
        return unsupported(d, object, "`proxy_required`");
    }
    let mut types = Vec::new();
    for t in &p.allowed_connection_types {
        let parsed: std::result::Result<ConnectionType, _> =
            serde_json::from_value(serde_json::Value::String(t.clone()));
        match parsed {
            Ok(ct) => types.push(ct),
            Err(_) => {
                return unsupported(
                    d,
                    object,
                    &format!(
                        "the connection type {:?}",
                        crate::safepath::escape_controls(t)
                    ),
                )
            }
        }
    }
    let l = &p.nats_limits;
    let limits = UserLimits {
        subs: opt_limit(l.subs),
        data: opt_size(l.data),
        payload: opt_size(l.payload),
    };
    Ok(Rules {
        publish: subject_permission(&p.permissions.publish),
        subscribe: subject_permission(&p.permissions.subscribe),
        resp: response(&p.permissions.resp),
        src: p.limits.src.clone(),
        times: p
            .limits
            .times
            .iter()
            .map(|t| TimeWindow {
                start: t.start.clone(),
                end: t.end.clone(),
            })
            .collect(),
        locale: opt_str(&p.limits.times_location),
        limits: (limits != UserLimits::default()).then_some(limits),
        bearer_token: p.bearer_token,
        allowed_connection_types: types,
    })
}

fn jetstream(js: &claims::JetStreamLimits) -> JetStream {
    let size0 = |v: i64| (v != 0).then_some(Size(v));
    JetStream {
        mem_storage: size0(js.memory_storage),
        disk_storage: size0(js.disk_storage),
        streams: opt_limit(js.streams),
        consumer: opt_limit(js.consumer),
        max_ack_pending: opt_limit(js.max_ack_pending),
        max_bytes_required: js.max_bytes_required,
        mem_max_stream_bytes: size0(js.mem_max_stream_bytes),
        disk_max_stream_bytes: size0(js.disk_max_stream_bytes),
    }
}

/// The account (without users) and its signing keys' role names (key → role).
fn account(
    op_name: &str,
    acc_name: &str,
    d: &Decoded,
    c: &AccountClaims,
    account_names: &BTreeMap<String, (String, String)>,
    users: &[(&ObjectId, &Decoded)],
) -> Result<(m::Account, BTreeMap<String, String>)> {
    let object = format!("account `{op_name}/{acc_name}`");
    let n = &c.nats;
    if n.trace.is_some() {
        return unsupported(d, &object, "message tracing (`trace`)");
    }
    if !n.cluster_traffic.is_empty() {
        return unsupported(d, &object, "`cluster_traffic`");
    }
    let roles = role_names(c);
    let mut signing_keys = BTreeMap::new();
    for (key, scope) in &n.signing_keys.0 {
        let role = roles[key].clone();
        let sk = match scope {
            None => m::SigningKey {
                keys: vec![LABEL.to_string()],
                scoped: false,
                description: None,
                publish: None,
                subscribe: None,
                resp: None,
                src: Vec::new(),
                times: Vec::new(),
                locale: None,
                limits: None,
                bearer_token: false,
                allowed_connection_types: Vec::new(),
            },
            Some(s) => {
                let r = rules(d, &format!("role `{role}` of {object}"), &s.template)?;
                let mut sk = m::SigningKey {
                    keys: vec![LABEL.to_string()],
                    scoped: false,
                    description: s.description.clone().filter(|d| !d.is_empty()),
                    publish: r.publish,
                    subscribe: r.subscribe,
                    resp: r.resp,
                    src: r.src,
                    times: r.times,
                    locale: r.locale,
                    limits: r.limits,
                    bearer_token: r.bearer_token,
                    allowed_connection_types: r.allowed_connection_types,
                };
                sk.scoped = !sk.is_scoped();
                sk
            }
        };
        signing_keys.insert(role, sk);
    }
    let l = &n.limits;
    let limits = AccountLimits {
        subs: opt_limit(l.nats.subs),
        data: opt_size(l.nats.data),
        payload: opt_size(l.nats.payload),
        conn: opt_limit(l.account.conn),
        leaf: opt_limit(l.account.leaf_node_conn),
        imports: opt_limit(l.account.imports),
        exports: opt_limit(l.account.exports),
        wildcard_exports: (!l.account.wildcard_exports).then_some(false),
        disallow_bearer: l.account.disallow_bearer,
    };
    let js = jetstream(&l.jetstream);
    let defaults = Permissions {
        publish: subject_permission(&n.default_permissions.publish),
        subscribe: subject_permission(&n.default_permissions.subscribe),
        resp: response(&n.default_permissions.resp),
    };
    let mut exports = Vec::new();
    for e in &n.exports {
        let Some(kind) = e.export_type.map(export_kind) else {
            return unsupported(d, &object, "an export without a type");
        };
        let response_type = match e.response_type.as_str() {
            "" => None,
            "Singleton" => Some(ResponseType::Singleton),
            "Stream" => Some(ResponseType::Stream),
            "Chunked" => Some(ResponseType::Chunked),
            other => {
                return unsupported(
                    d,
                    &object,
                    &format!(
                        "the response type {:?}",
                        crate::safepath::escape_controls(other)
                    ),
                )
            }
        };
        exports.push(m::Export {
            name: opt_str(&e.name),
            subject: e.subject.clone(),
            kind,
            private: e.token_req,
            response_type,
            response_threshold: (e.response_threshold != 0)
                .then(|| Duration::from_nanos(e.response_threshold)),
            latency: e.latency.as_ref().map(|l| m::Latency {
                sampling: Some(if l.sampling.0 == 0 {
                    Sampling::Headers(m::HeadersWord::Headers)
                } else {
                    Sampling::Percent(u32::try_from(l.sampling.0).unwrap_or(100))
                }),
                results: l.results.clone(),
            }),
            account_token_position: (e.account_token_position != 0)
                .then(|| u32::try_from(e.account_token_position).unwrap_or(u32::MAX)),
            advertise: e.advertise,
            allow_trace: e.allow_trace,
            description: opt_str(&e.description),
            info_url: opt_str(&e.info_url),
            revocations: e
                .revocations
                .iter()
                .map(|(k, t)| (k.clone(), Timestamp(*t)))
                .collect(),
        });
    }
    let mut imports = Vec::new();
    for i in &n.imports {
        if !i.to.is_empty() {
            return unsupported(d, &object, "an import with the legacy `to` field");
        }
        let Some(kind) = i.import_type.map(export_kind) else {
            return unsupported(d, &object, "an import without a type");
        };
        // By name when the exporter is an account of the same operator:
        // natsform then issues (and compares) the activation itself.
        let from = account_names
            .get(&i.account)
            .filter(|(o, _)| o == op_name)
            .map(|(_, a)| a.clone());
        imports.push(m::Import {
            name: opt_str(&i.name),
            subject: i.subject.clone(),
            account: from.is_none().then(|| i.account.clone()),
            token: if from.is_none() {
                opt_str(&i.token)
            } else {
                None
            },
            from,
            local_subject: opt_str(&i.local_subject),
            kind,
            share: i.share,
            allow_trace: i.allow_trace,
        });
    }
    let authorization = match &n.authorization {
        Some(a) if *a != claims::ExternalAuthorization::default() => {
            let user_names: BTreeMap<String, String> = users
                .iter()
                .filter_map(|(id, u)| Some((u.claims.data().sub, id.user.clone()?)))
                .collect();
            Some(m::Authorization {
                auth_users: a
                    .auth_users
                    .iter()
                    .map(|k| user_names.get(k).cloned().unwrap_or_else(|| k.clone()))
                    .collect(),
                allowed_accounts: a
                    .allowed_accounts
                    .iter()
                    .map(|k| match account_names.get(k) {
                        Some((o, a)) if o == op_name => a.clone(),
                        _ => k.clone(),
                    })
                    .collect(),
                xkey: opt_str(&a.xkey),
            })
        }
        _ => None,
    };
    let acc = m::Account {
        key: LABEL.to_string(),
        signing_keys,
        tags: n.generic.tags.clone(),
        description: opt_str(&n.description),
        info_url: opt_str(&n.info_url),
        expires: expiry(c.data.exp),
        limits: (limits != AccountLimits::default()).then_some(limits),
        // Without storage JetStream is off, and natsform writes no limits.
        jetstream: js.has_storage().then_some(js),
        jetstream_tiers: l
            .tiered
            .iter()
            .map(|(t, js)| (t.clone(), jetstream(js)))
            .filter(|(_, js)| *js != JetStream::default())
            .collect(),
        default_permissions: (defaults != Permissions::default()).then_some(defaults),
        mappings: n
            .mappings
            .iter()
            .map(|(from, to)| {
                (
                    from.clone(),
                    to.iter()
                        .map(|w| m::Mapping {
                            subject: w.subject.clone(),
                            weight: (w.weight != 0).then_some(u32::from(w.weight)),
                            cluster: opt_str(&w.cluster),
                        })
                        .collect(),
                )
            })
            .collect(),
        exports,
        imports,
        revocations: n
            .revocations
            .iter()
            .map(|(k, t)| (k.clone(), Timestamp(*t)))
            .collect(),
        authorization,
        users: BTreeMap::new(),
    };
    Ok((acc, roles))
}

fn export_kind(t: claims::ExportType) -> ExportKind {
    match t {
        claims::ExportType::Stream => ExportKind::Stream,
        claims::ExportType::Service => ExportKind::Service,
    }
}

fn user(
    addr: &str,
    d: &Decoded,
    c: &UserClaims,
    ac: &AccountClaims,
    roles: &BTreeMap<String, String>,
) -> Result<m::User> {
    let object = format!("user `{}`", addr.trim_start_matches("user."));
    let signed_by_account = c.data.iss == ac.data.sub;
    let signer = if signed_by_account {
        None
    } else {
        match roles.get(&c.data.iss) {
            Some(role) if c.nats.issuer_account == ac.data.sub => Some(role.clone()),
            _ => {
                return err(format!(
                    "{}: {object} is signed by {}, which is neither its account's key nor one of its signing keys\n  = help: re-issue the user with nsc, or remove it from a copy of the store",
                    shown(&d.path),
                    c.data.iss
                ))
            }
        }
    };
    let scoped = ac
        .nats
        .signing_keys
        .0
        .get(&c.data.iss)
        .is_some_and(|s| s.is_some());
    if scoped && !c.nats.permission_limits.is_empty() {
        return err(format!(
            "{}: {object} is signed by the scoped role `{}` but carries permissions or limits of its own, which nats-server refuses (the user cannot connect)\n  = help: re-issue the user with nsc without its own permissions, or remove it from a copy of the store",
            shown(&d.path),
            signer.as_deref().unwrap_or_default()
        ));
    }
    let r = if scoped {
        // The server ignores a scoped user's own permissions; natsform
        // writes none (and the plan re-issues one that carries some).
        Rules {
            publish: None,
            subscribe: None,
            resp: None,
            src: Vec::new(),
            times: Vec::new(),
            locale: None,
            limits: None,
            bearer_token: false,
            allowed_connection_types: Vec::new(),
        }
    } else {
        rules(d, &object, &c.nats.permission_limits)?
    };
    Ok(m::User {
        key: LABEL.to_string(),
        public_key: None,
        signer,
        tags: c.nats.generic.tags.clone(),
        publish: r.publish,
        subscribe: r.subscribe,
        resp: r.resp,
        src: r.src,
        times: r.times,
        locale: r.locale,
        limits: r.limits,
        bearer_token: r.bearer_token,
        allowed_connection_types: r.allowed_connection_types,
        expires: expiry(c.data.exp),
    })
}
