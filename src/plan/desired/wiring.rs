//! What connects accounts, as typed claims: imports, exports, mappings and
//! auth callout, with manifest names resolved to public keys.

use std::collections::BTreeMap;

use super::activation::needs_activation;
use super::names::OperatorNames;
use crate::claims::{
    Export, ExportType, ExternalAuthorization, Import, SamplingRate, ServiceLatency,
    WeightedMapping,
};
use crate::manifest::model::{Account, ExportKind, Operator, Sampling};
use crate::plan::keyref::ACTIVATION_PLACEHOLDER;

/// The claims' spelling of a manifest export kind.
pub(super) fn export_type(kind: ExportKind) -> ExportType {
    match kind {
        ExportKind::Stream => ExportType::Stream,
        ExportKind::Service => ExportType::Service,
    }
}

/// `imports`, in manifest order (the index of an import is its index in
/// the manifest; encoding sorts them by subject, as Go does). The
/// exporter's key comes from `from` (an account of the same operator) or
/// `account`. An import by name of a *private* export holds
/// [`ACTIVATION_PLACEHOLDER`] as its token, for plans to show and compare:
/// apply issues the activation and puts it in that slot, which the
/// importer's [`crate::plan::keyref::ExpectedActivation`] names.
pub(super) fn imports(acc: &Account, op: &Operator, names: &OperatorNames) -> Vec<Import> {
    acc.imports
        .iter()
        .map(|imp| {
            let account = match (&imp.from, &imp.account) {
                (Some(from), _) => names.account_or_key(from),
                (None, Some(key)) => key.clone(),
                (None, None) => String::new(),
            };
            let exporter = imp.from.as_ref().and_then(|f| op.accounts.get(f));
            let token = match &imp.token {
                Some(token) => token.clone(),
                None if exporter.is_some_and(|e| needs_activation(e, imp.kind, &imp.subject)) => {
                    ACTIVATION_PLACEHOLDER.to_string()
                }
                None => String::new(),
            };
            Import {
                name: imp.name.clone().unwrap_or_default(),
                subject: imp.subject.clone(),
                account,
                token,
                to: String::new(),
                local_subject: imp.local_subject.clone().unwrap_or_default(),
                import_type: Some(export_type(imp.kind)),
                share: imp.share,
                allow_trace: imp.allow_trace,
            }
        })
        .collect()
}

/// `exports`, with durations in nanoseconds and revocation times in unix seconds.
pub(super) fn exports(acc: &Account, names: &OperatorNames) -> Vec<Export> {
    acc.exports
        .iter()
        .map(|e| Export {
            name: e.name.clone().unwrap_or_default(),
            subject: e.subject.clone(),
            export_type: Some(export_type(e.kind)),
            token_req: e.private,
            revocations: e
                .revocations
                .iter()
                .map(|(k, t)| (names.account_or_key(k), t.unix()))
                .collect(),
            response_type: e
                .response_type
                .map(|rt| rt.as_str().to_string())
                .unwrap_or_default(),
            response_threshold: e.response_threshold.map_or(0, |t| t.as_nanos()),
            latency: e.latency.as_ref().map(|l| ServiceLatency {
                sampling: SamplingRate(match l.sampling {
                    None => 100,
                    Some(Sampling::Percent(p)) => i64::from(p),
                    Some(Sampling::Headers(_)) => 0,
                }),
                results: l.results.clone(),
            }),
            account_token_position: e.account_token_position.map_or(0, u64::from),
            advertise: e.advertise,
            allow_trace: e.allow_trace,
            description: e.description.clone().unwrap_or_default(),
            info_url: e.info_url.clone().unwrap_or_default(),
        })
        .collect()
}

/// `mappings`: source → destinations with weight (omitted: 100) and cluster.
pub(super) fn mappings(acc: &Account) -> BTreeMap<String, Vec<WeightedMapping>> {
    acc.mappings
        .iter()
        .map(|(from, dests)| {
            let list = dests
                .iter()
                .map(|d| WeightedMapping {
                    subject: d.subject.clone(),
                    // Validation keeps weights within 1..=100.
                    weight: u8::try_from(d.weight.unwrap_or(100)).unwrap_or(u8::MAX),
                    cluster: d.cluster.clone().unwrap_or_default(),
                })
                .collect();
            (from.clone(), list)
        })
        .collect()
}

/// `authorization` (auth callout), with user and account names resolved.
pub(super) fn authorization(
    account: &str,
    acc: &Account,
    names: &OperatorNames,
) -> Option<ExternalAuthorization> {
    let auth = acc.authorization.as_ref()?;
    Some(ExternalAuthorization {
        auth_users: auth
            .auth_users
            .iter()
            .map(|u| names.user_or_key(account, u))
            .collect(),
        allowed_accounts: auth
            .allowed_accounts
            .iter()
            .map(|a| names.account_or_key(a))
            .collect(),
        xkey: auth.xkey.clone().unwrap_or_default(),
    })
}
