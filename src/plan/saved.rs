//! Saved plans (`plan --out FILE`, `apply FILE`): the JSON document plus a
//! fingerprint of the inputs it was computed from, so apply can refuse a
//! plan that no longer describes the manifest, lock and store.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::views::json::{self, FORMAT_VERSION as JSON_FORMAT_VERSION};
use super::Plan;

/// What apply reads back from a saved plan.
#[derive(Debug, Clone, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedPlanError {
    #[error("the file is not a natsform plan: {0}")]
    NotAPlan(String),
    #[error("the plan has format version {0}; this natsform reads version {JSON_FORMAT_VERSION}")]
    Version(u32),
    #[error("the plan was saved without a fingerprint (use `natsform plan --out FILE`)")]
    NoFingerprint,
    #[error("the plan is stale: the manifest, lock or store changed since it was made; run `natsform plan --out` again")]
    Stale,
}

/// Hash of everything a plan depends on: named byte strings, in order.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in parts {
        // Length-prefixed, so no two different inputs hash the same stream.
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("sha256:{}", data_encoding::HEXLOWER.encode(&h.finalize()))
}

/// The saved form of `plan`.
pub fn save(plan: &Plan, fingerprint: &str) -> String {
    json::document(plan, Some(fingerprint))
}

/// Checks that `saved` (file text) is the plan `current` computed from
/// inputs with fingerprint `now_fingerprint`.
pub fn check(saved: &str, current: &Plan, now_fingerprint: &str) -> Result<(), SavedPlanError> {
    let doc: SavedPlan =
        serde_json::from_str(saved).map_err(|e| SavedPlanError::NotAPlan(e.to_string()))?;
    if doc.format_version != JSON_FORMAT_VERSION {
        return Err(SavedPlanError::Version(doc.format_version));
    }
    let fp = doc.fingerprint.ok_or(SavedPlanError::NoFingerprint)?;
    if fp != now_fingerprint || save(current, &fp) != saved {
        return Err(SavedPlanError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_their_parts() {
        let a = fingerprint([("x", &b"ab"[..]), ("y", &b"c"[..])]);
        let b = fingerprint([("x", &b"a"[..]), ("y", &b"bc"[..])]);
        assert_ne!(a, b);
        assert_eq!(a, fingerprint([("x", &b"ab"[..]), ("y", &b"c"[..])]));
    }

    #[test]
    fn a_saved_plan_checks_against_the_same_inputs_only() {
        let plan = Plan::default();
        let text = save(&plan, "sha256:1");
        assert_eq!(check(&text, &plan, "sha256:1"), Ok(()));
        assert_eq!(check(&text, &plan, "sha256:2"), Err(SavedPlanError::Stale));
        assert!(matches!(
            check("{}", &plan, "sha256:1"),
            Err(SavedPlanError::NotAPlan(_))
        ));
        assert_eq!(
            check(&json::json(&plan), &plan, "sha256:1"),
            Err(SavedPlanError::NoFingerprint)
        );
    }
}
