//! The desired state: every object's claims from the manifest and the
//! lock, with the activations importers need and the revocations that
//! deleted users (and the lock's record) require.

use std::collections::BTreeMap;

use super::desired::{self, DesiredObject};
use super::existing::Existing;
use super::keyref::{self, KeyBook, KeyRef};
use super::reasons::Reason;
use super::revocations;
use crate::keys::Revocations;
use crate::manifest::Manifest;
use crate::tree::ObjectId;

/// Desired claims of every object, with reconciled revocations.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub objects: BTreeMap<ObjectId, DesiredObject>,
    /// Why an account's revocations change, per account.
    pub revocation_reasons: BTreeMap<ObjectId, Vec<Reason>>,
    /// Every desired account's revocations, as the lock must record them.
    pub revocations: Revocations,
    /// Per account, the entries only the lock's record holds (key, time).
    pub restored_revocations: BTreeMap<ObjectId, Vec<(String, i64)>>,
}

/// Computes the desired state: claims from the manifest and key bindings,
/// plus the revocations that deleted users require.
pub fn desired_state(
    manifest: &Manifest,
    keys: &KeyBook,
    existing: &BTreeMap<ObjectId, Existing>,
    recorded: &Revocations,
) -> DesiredState {
    complete_state(
        desired::desired(manifest, keys),
        manifest,
        keys,
        existing,
        recorded,
    )
}

/// [`desired_state`] from objects already computed by [`desired`] with the
/// same manifest and keys: adds activations and reconciled revocations.
pub fn complete_state(
    mut objects: BTreeMap<ObjectId, DesiredObject>,
    manifest: &Manifest,
    keys: &KeyBook,
    existing: &BTreeMap<ObjectId, Existing>,
    recorded: &Revocations,
) -> DesiredState {
    for need in desired::activation::activations_needed(manifest) {
        let (Some(importer), Some(exporter)) =
            (objects.get(&need.importer), objects.get(&need.exporter))
        else {
            continue;
        };
        let signer = activation_signer(manifest, keys, &need.exporter)
            .unwrap_or_else(|| exporter.subject.clone());
        let expected = keyref::ExpectedActivation {
            import: need.import_index,
            subject: need.subject.clone(),
            kind: need.kind.as_str().to_string(),
            importer: importer.subject.clone(),
            exporter: exporter.subject.clone(),
            signer,
        };
        if let Some(o) = objects.get_mut(&need.importer) {
            o.activations.push(expected);
        }
    }
    let mut revocation_reasons = BTreeMap::new();
    let mut all_revocations = Revocations::new();
    let mut restored_revocations = BTreeMap::new();
    for (id, revs) in revocations::reconcile(&objects, existing, recorded) {
        if !revs.restored.is_empty() {
            restored_revocations.insert(id.clone(), revs.restored.clone());
        }
        if !revs.entries.is_empty() {
            all_revocations.insert(id.address(), revs.entries.clone());
        }
        if let Some(account) = objects.get_mut(&id).and_then(|o| o.claims.account_mut()) {
            account.nats.revocations = revs.entries.clone();
        }
        if !revs.reasons.is_empty() {
            revocation_reasons.insert(id, revs.reasons);
        }
    }
    DesiredState {
        objects,
        revocation_reasons,
        revocations: all_revocations,
        restored_revocations,
    }
}

/// Under strict signing key usage the exporter's identity key is not a
/// trusted signer, so its first signing key (by role name) signs
/// activations; otherwise the identity key does, as nsc does.
fn activation_signer(manifest: &Manifest, keys: &KeyBook, exporter: &ObjectId) -> Option<KeyRef> {
    let op = manifest.operators.get(&exporter.operator)?;
    if !op.strict_signing_key_usage {
        return None;
    }
    let acc_name = exporter.account.as_deref()?;
    let (role, sk) = op.accounts.get(acc_name)?.signing_keys.iter().next()?;
    let address = crate::manifest::address::key(
        &crate::manifest::address::signing_key(&exporter.operator, acc_name, role),
        sk.keys.first()?,
    );
    Some(KeyRef {
        public: keys.get(&address).cloned(),
        address,
        kind: crate::keys::KeyKind::Account,
    })
}
