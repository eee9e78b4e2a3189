//! Wire JSON of what connects accounts: imports, exports, mappings and
//! auth callout, with manifest names resolved to public keys.

use serde_json::{json, Map, Value};

use super::activation::needs_activation;
use super::names::OperatorNames;
use crate::manifest::model::{Account, Operator, Sampling};
use crate::plan::keyref::ACTIVATION_PLACEHOLDER;

/// `imports`: the exporter's key comes from `from` (an account of the same
/// operator) or `account`. An import by name of a *private* export carries
/// [`ACTIVATION_PLACEHOLDER`] as its token: apply issues the activation
/// and fills it in (see [`super::activation::activations_needed`]).
pub(super) fn imports(acc: &Account, op: &Operator, names: &OperatorNames) -> Vec<Value> {
    acc.imports
        .iter()
        .map(|imp| {
            let mut m = Map::new();
            if let Some(n) = &imp.name {
                m.insert("name".into(), json!(n));
            }
            m.insert("subject".into(), json!(imp.subject));
            let account = match (&imp.from, &imp.account) {
                (Some(from), _) => names.account_or_key(from),
                (None, Some(key)) => key.clone(),
                (None, None) => String::new(),
            };
            m.insert("account".into(), json!(account));
            let exporter = imp.from.as_ref().and_then(|f| op.accounts.get(f));
            if let Some(token) = &imp.token {
                m.insert("token".into(), json!(token));
            } else if exporter.is_some_and(|e| needs_activation(e, imp.kind, &imp.subject)) {
                m.insert("token".into(), json!(ACTIVATION_PLACEHOLDER));
            }
            if let Some(local) = &imp.local_subject {
                m.insert("local_subject".into(), json!(local));
            }
            m.insert("type".into(), json!(imp.kind.as_str()));
            if imp.share {
                m.insert("share".into(), json!(true));
            }
            if imp.allow_trace {
                m.insert("allow_trace".into(), json!(true));
            }
            Value::Object(m)
        })
        .collect()
}

/// `exports`, with durations in nanoseconds and revocation times in unix seconds.
pub(super) fn exports(acc: &Account, names: &OperatorNames) -> Vec<Value> {
    acc.exports
        .iter()
        .map(|e| {
            let mut m = Map::new();
            if let Some(n) = &e.name {
                m.insert("name".into(), json!(n));
            }
            m.insert("subject".into(), json!(e.subject));
            m.insert("type".into(), json!(e.kind.as_str()));
            if e.private {
                m.insert("token_req".into(), json!(true));
            }
            if !e.revocations.is_empty() {
                let revs: Map<String, Value> = e
                    .revocations
                    .iter()
                    .map(|(k, t)| (names.account_or_key(k), json!(t.unix())))
                    .collect();
                m.insert("revocations".into(), Value::Object(revs));
            }
            if let Some(rt) = e.response_type {
                m.insert("response_type".into(), json!(rt.as_str()));
            }
            if let Some(t) = e.response_threshold {
                m.insert("response_threshold".into(), json!(t.as_nanos()));
            }
            if let Some(l) = &e.latency {
                let sampling = match l.sampling {
                    None => json!(100),
                    Some(Sampling::Percent(p)) => json!(p),
                    Some(Sampling::Headers(_)) => json!("headers"),
                };
                m.insert(
                    "service_latency".into(),
                    json!({"sampling": sampling, "results": l.results}),
                );
            }
            if let Some(p) = e.account_token_position {
                m.insert("account_token_position".into(), json!(p));
            }
            if e.advertise {
                m.insert("advertise".into(), json!(true));
            }
            if e.allow_trace {
                m.insert("allow_trace".into(), json!(true));
            }
            if let Some(d) = &e.description {
                m.insert("description".into(), json!(d));
            }
            if let Some(u) = &e.info_url {
                m.insert("info_url".into(), json!(u));
            }
            Value::Object(m)
        })
        .collect()
}

/// `mappings`: source → destinations with weight (omitted: 100) and cluster.
pub(super) fn mappings(acc: &Account) -> Map<String, Value> {
    acc.mappings
        .iter()
        .map(|(from, dests)| {
            let list: Vec<Value> = dests
                .iter()
                .map(|d| {
                    let mut m = Map::new();
                    m.insert("subject".into(), json!(d.subject));
                    m.insert("weight".into(), json!(d.weight.unwrap_or(100)));
                    if let Some(c) = &d.cluster {
                        m.insert("cluster".into(), json!(c));
                    }
                    Value::Object(m)
                })
                .collect();
            (from.clone(), Value::Array(list))
        })
        .collect()
}

/// `authorization` (auth callout), with user and account names resolved.
pub(super) fn authorization(account: &str, acc: &Account, names: &OperatorNames) -> Option<Value> {
    let auth = acc.authorization.as_ref()?;
    let mut m = Map::new();
    let users: Vec<String> = auth
        .auth_users
        .iter()
        .map(|u| names.user_or_key(account, u))
        .collect();
    m.insert("auth_users".into(), json!(users));
    if !auth.allowed_accounts.is_empty() {
        let accounts: Vec<String> = auth
            .allowed_accounts
            .iter()
            .map(|a| names.account_or_key(a))
            .collect();
        m.insert("allowed_accounts".into(), json!(accounts));
    }
    if let Some(x) = &auth.xkey {
        m.insert("xkey".into(), json!(x));
    }
    Some(Value::Object(m))
}
