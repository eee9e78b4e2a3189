//! Account exports and imports, mirroring `jwt/v2/exports.go` and `imports.go`.

use super::gojson::{is_false, is_zero, nullable};
use super::jwt::{decode, AnyClaims};
use super::validate::{
    check_info, check_renaming_subject, check_subject, has_wildcards, is_contained_in, Issues,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// `stream` or `service`. Go's "unknown" (0) is `None` where the type is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportType {
    /// Messages flow from exporter to importer.
    Stream,
    /// Requests flow from importer to exporter.
    Service,
}

impl ExportType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportType::Stream => "stream",
            ExportType::Service => "service",
        }
    }
}

fn type_str(t: Option<ExportType>) -> &'static str {
    t.map_or("unknown", ExportType::as_str)
}

/// Latency sampling percentage; 0 means "headers" (the requester decides)
/// and is written as the string `"headers"`, like Go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplingRate(pub i64);

impl Serialize for SamplingRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            s.serialize_str("headers")
        } else {
            // Go refuses to encode values outside 1..=100; validation reports them.
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SamplingRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(SamplingRate(n)),
            Raw::Text(t) if t.eq_ignore_ascii_case("headers") => Ok(SamplingRate(0)),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "invalid sampling rate {t:?}"
            ))),
        }
    }
}

/// Service latency tracking. Both fields are always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceLatency {
    /// Percentage sampled, or 0 for "headers".
    pub sampling: SamplingRate,
    /// Subject latency results are published to; no wildcards.
    #[serde(deserialize_with = "nullable")]
    pub results: String,
}

/// One export. Key order: `name, subject, type, token_req, revocations,
/// response_type, response_threshold, service_latency,
/// account_token_position, advertise, allow_trace, description, info_url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Export {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Display name.
    pub name: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// The exported subject (may contain wildcards).
    pub subject: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    /// `type`: required by validation.
    pub export_type: Option<ExportType>,
    /// Private export: importers need an activation token.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    pub token_req: bool,
    /// Importer account → unix seconds; activations with `iat <=` it are revoked.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub revocations: BTreeMap<String, i64>,
    /// `Singleton` (or empty), `Stream`, `Chunked`; services only.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub response_type: String,
    /// Nanoseconds (Go `time.Duration`); services only.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    pub response_threshold: i64,
    #[serde(rename = "service_latency", skip_serializing_if = "Option::is_none")]
    /// Latency tracking; services only.
    pub latency: Option<ServiceLatency>,
    /// 1-based token that must equal the importer's account key.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "nullable")]
    pub account_token_position: u64,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// List the export publicly.
    pub advertise: bool,
    /// Services only; jwt >= 2.5.4, server >= 2.11.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    pub allow_trace: bool,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Free text, at most 8 KiB.
    pub description: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// A URL with scheme and host, at most 8 KiB.
    pub info_url: String,
}

/// One import. Key order: `name, subject, account, token, to,
/// local_subject, type, share, allow_trace`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Import {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// Display name.
    pub name: String,
    /// The exporter's subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    /// The exported subject (may contain wildcards).
    pub subject: String,
    /// The exporter's account public key.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub account: String,
    /// Inline activation JWT for private exports.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub token: String,
    /// Deprecated; excludes `local_subject`.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub to: String,
    /// Subject in the importing account; may use `$1`… for `*` tokens.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub local_subject: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    /// `type`: required by validation.
    pub import_type: Option<ExportType>,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    /// Share latency data with the exporter; services only.
    pub share: bool,
    /// Streams only; jwt >= 2.5.4.
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nullable")]
    pub allow_trace: bool,
}

/// Go `RenamingSubject.ToSubject`: `$N` tokens become `*`.
fn renaming_to_subject(s: &str) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    s.split('.')
        .map(|tk| {
            if tk.len() > 1 && tk.starts_with('$') && tk[1..].parse::<i64>().is_ok() {
                "*"
            } else {
                tk
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Go `Export.Validate` for each export plus `Exports.Validate`'s containment check.
pub(crate) fn validate_exports(exports: &[Export], issues: &mut Issues) {
    let mut services = Vec::new();
    let mut streams = Vec::new();
    for (i, e) in exports.iter().enumerate() {
        let path = format!("nats.exports[{i}]");
        validate_export(e, &path, issues);
        if e.export_type == Some(ExportType::Service) {
            services.push(e.subject.as_str());
        } else {
            streams.push(e.subject.as_str());
        }
    }
    contained(ExportType::Service, &services, issues);
    contained(ExportType::Stream, &streams, issues);
}

fn contained(kind: ExportType, subjects: &[&str], issues: &mut Issues) {
    let mut found: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, ns) in subjects.iter().enumerate() {
        for (j, s) in subjects.iter().enumerate() {
            if i != j && is_contained_in(ns, s) {
                found.entry(s).or_insert(ns);
            }
        }
    }
    for (k, v) in found {
        issues.add(
            "nats.exports",
            format!(
                "{} export subject {k:?} already exports {v:?}",
                kind.as_str()
            ),
        );
    }
}

fn validate_export(e: &Export, path: &str, issues: &mut Issues) {
    let is_service = e.export_type == Some(ExportType::Service);
    let is_stream = e.export_type == Some(ExportType::Stream);
    if !is_service && !is_stream {
        issues.add(&format!("{path}.type"), "invalid export type: \"unknown\"");
    }
    if is_service
        && !matches!(
            e.response_type.as_str(),
            "" | "Singleton" | "Stream" | "Chunked"
        )
    {
        issues.add(
            &format!("{path}.response_type"),
            format!("invalid response type for service: {:?}", e.response_type),
        );
    }
    if is_stream {
        if !e.response_type.is_empty() {
            issues.add(
                &format!("{path}.response_type"),
                format!("invalid response type for stream: {:?}", e.response_type),
            );
        }
        if e.allow_trace {
            issues.add(
                &format!("{path}.allow_trace"),
                "AllowTrace only valid for service export",
            );
        }
    }
    if let Some(l) = &e.latency {
        let lp = format!("{path}.service_latency");
        if !is_service {
            issues.add(&lp, "latency tracking only permitted for services");
        }
        if l.sampling.0 != 0 && !(1..=100).contains(&l.sampling.0) {
            issues.add(
                &format!("{lp}.sampling"),
                "sampling percentage needs to be between 1-100",
            );
        }
        check_subject(issues, &format!("{lp}.results"), &l.results);
        if has_wildcards(&l.results) {
            issues.add(
                &format!("{lp}.results"),
                "results subject can not contain wildcards",
            );
        }
    }
    if e.response_threshold < 0 {
        issues.add(
            &format!("{path}.response_threshold"),
            "negative response threshold is invalid",
        );
    }
    if e.response_threshold > 0 && !is_service {
        issues.add(
            &format!("{path}.response_threshold"),
            "response threshold only valid for services",
        );
    }
    check_subject(issues, &format!("{path}.subject"), &e.subject);
    if e.account_token_position > 0 {
        let p = format!("{path}.account_token_position");
        let pos = e.account_token_position;
        if !has_wildcards(&e.subject) {
            issues.add(
                &p,
                format!(
                    "Account Token Position can only be used with wildcard subjects: {}",
                    e.subject
                ),
            );
        } else {
            let tokens: Vec<&str> = e.subject.split('.').collect();
            if pos > tokens.len() as u64 {
                issues.add(
                    &p,
                    format!(
                        "Account Token Position {pos} exceeds length of subject '{}'",
                        e.subject
                    ),
                );
            } else if tokens[(pos - 1) as usize] != "*" {
                issues.add(
                    &p,
                    format!(
                        "Account Token Position {pos} matches '{}' but must match a * in: {}",
                        tokens[(pos - 1) as usize],
                        e.subject
                    ),
                );
            }
        }
    }
    check_info(issues, path, &e.description, &e.info_url);
}

/// Go `Imports.Validate` (HEAD: service-import overlap only within one
/// exporting account) and `Import.Validate` for each import of the account
/// whose public key is `account`.
pub(crate) fn validate_imports(imports: &[Import], account: &str, issues: &mut Issues) {
    let mut by_account: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (i, imp) in imports.iter().enumerate() {
        let path = format!("nats.imports[{i}]");
        if imp.import_type == Some(ExportType::Service) {
            let sub = service_import_local(imp);
            let seen = by_account.entry(imp.account.as_str()).or_default();
            for other in seen.iter() {
                if is_contained_in(&sub, other) || is_contained_in(other, &sub) {
                    issues.add(
                        &path,
                        format!(
                            "overlapping subject namespace for {sub:?} and {other:?} in same account {:?}",
                            imp.account
                        ),
                    );
                }
            }
            seen.insert(sub);
        }
        validate_import(imp, account, &path, issues);
    }
}

/// The subject a service import occupies in the importing account.
pub(crate) fn service_import_local(imp: &Import) -> String {
    if !imp.to.is_empty() {
        imp.to.clone()
    } else if !imp.local_subject.is_empty() {
        renaming_to_subject(&imp.local_subject)
    } else {
        imp.subject.clone()
    }
}

fn validate_import(imp: &Import, account: &str, path: &str, issues: &mut Issues) {
    let is_service = imp.import_type == Some(ExportType::Service);
    let is_stream = imp.import_type == Some(ExportType::Stream);
    if !is_service && !is_stream {
        issues.add(&format!("{path}.type"), "invalid import type: \"unknown\"");
    }
    if imp.allow_trace && !is_stream {
        issues.add(
            &format!("{path}.allow_trace"),
            "AllowTrace only valid for stream import",
        );
    }
    if imp.account.is_empty() {
        issues.add(
            &format!("{path}.account"),
            "account to import from is not specified",
        );
    }
    check_subject(issues, &format!("{path}.subject"), &imp.subject);
    if !imp.local_subject.is_empty() {
        let lp = format!("{path}.local_subject");
        check_renaming_subject(issues, &lp, &imp.local_subject, &imp.subject);
        if !imp.to.is_empty() {
            issues.add(&lp, "Local Subject replaces To");
        }
    }
    if imp.share && !is_service {
        issues.add(
            &format!("{path}.share"),
            format!(
                "sharing information (for latency tracking) is only valid for services: {:?}",
                imp.subject
            ),
        );
    }
    if !imp.token.is_empty() {
        validate_import_token(imp, account, &format!("{path}.token"), issues);
    }
}

fn validate_import_token(imp: &Import, account: &str, path: &str, issues: &mut Issues) {
    let act = match decode(&imp.token).map(|d| d.claims) {
        Ok(AnyClaims::Activation(a)) => a,
        _ => {
            issues.add(
                path,
                format!(
                    "import {:?} contains an invalid activation token",
                    imp.subject
                ),
            );
            return;
        }
    };
    if act.data.iss != imp.account && act.nats.issuer_account != imp.account {
        issues.add(
            path,
            format!(
                "activation token doesn't match account for import {:?}",
                imp.subject
            ),
        );
    }
    if act.data.sub != account {
        issues.add(
            path,
            format!(
                "activation token doesn't match account it is being included in, {:?}",
                imp.subject
            ),
        );
    }
    if act.nats.kind != imp.import_type {
        issues.add(
            path,
            format!(
                "mismatch between token import type {} and type of import {}",
                type_str(act.nats.kind),
                type_str(imp.import_type)
            ),
        );
    }
    let mut inner = Issues::default();
    super::activation::validate_activation_payload(&act.nats, path, &mut inner);
    issues.0.extend(inner.0);
    let subj = if imp.import_type == Some(ExportType::Service) && !imp.to.is_empty() {
        &imp.to
    } else {
        &imp.subject
    };
    if !is_contained_in(subj, &act.nats.subject) {
        issues.add(
            path,
            format!(
                "activation token import subject {:?} doesn't match import {:?}",
                act.nats.subject, imp.subject
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::gojson::to_string;

    #[test]
    fn latency_sampling_zero_is_written_as_headers() {
        let l = ServiceLatency {
            sampling: SamplingRate(0),
            results: "lat".into(),
        };
        assert_eq!(to_string(&l), r#"{"sampling":"headers","results":"lat"}"#);
        let back: ServiceLatency =
            serde_json::from_str(r#"{"sampling":"HEADERS","results":"x"}"#).unwrap();
        assert_eq!(back.sampling, SamplingRate(0));
        let back: ServiceLatency =
            serde_json::from_str(r#"{"sampling":50,"results":"x"}"#).unwrap();
        assert_eq!(back.sampling, SamplingRate(50));
    }

    #[test]
    fn export_keys_follow_go_order() {
        let e = Export {
            name: "n".into(),
            subject: "s.*".into(),
            export_type: Some(ExportType::Service),
            token_req: true,
            revocations: [("A".to_string(), 5)].into(),
            response_type: "Stream".into(),
            response_threshold: 7,
            latency: Some(ServiceLatency {
                sampling: SamplingRate(10),
                results: "r".into(),
            }),
            account_token_position: 2,
            advertise: true,
            allow_trace: true,
            description: "d".into(),
            info_url: "https://x".into(),
        };
        assert_eq!(
            to_string(&e),
            concat!(
                r#"{"name":"n","subject":"s.*","type":"service","token_req":true,"revocations":{"A":5},"#,
                r#""response_type":"Stream","response_threshold":7,"service_latency":{"sampling":10,"results":"r"},"#,
                r#""account_token_position":2,"advertise":true,"allow_trace":true,"description":"d","info_url":"https://x"}"#
            )
        );
    }

    #[test]
    fn service_imports_overlap_only_within_one_account() {
        let imp = |acct: &str, subj: &str| Import {
            subject: subj.into(),
            account: acct.into(),
            import_type: Some(ExportType::Service),
            ..Default::default()
        };
        let mut issues = Issues::default();
        validate_imports(&[imp("A1", "a.>"), imp("A2", "a.b")], "X", &mut issues);
        assert!(issues.0.is_empty(), "{:?}", issues.0);
        validate_imports(&[imp("A1", "a.>"), imp("A1", "a.b")], "X", &mut issues);
        assert_eq!(issues.0.len(), 1);
    }

    #[test]
    fn renaming_references_become_wildcards() {
        assert_eq!(renaming_to_subject("x.$1.y.$2"), "x.*.y.*");
        assert_eq!(renaming_to_subject("x.$.y"), "x.$.y");
    }
}
