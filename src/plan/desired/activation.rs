//! Activation tokens the manifest implies: every import by name (`from`) of
//! a private export needs one, signed by the exporter for the importer.

use crate::manifest::model::{Account, ExportKind, Manifest};
use crate::manifest::subject_match::is_contained_in;
use crate::tree::ObjectId;

/// One activation token apply must issue and embed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActivationNeed {
    /// The importing account (the token's `sub`).
    pub importer: ObjectId,
    /// Index of the import in the importer's manifest `imports` list.
    pub import_index: usize,
    /// The exporting account (signs the token; its key is the import's `account`).
    pub exporter: ObjectId,
    /// The subject granted: the import's `subject`.
    pub subject: String,
    /// `stream` or `service` (the token's `kind`).
    pub kind: ExportKind,
}

/// Every activation the manifest needs, in manifest order. An import whose
/// exporter or export cannot be found is skipped (validation reports it).
pub fn activations_needed(manifest: &Manifest) -> Vec<ActivationNeed> {
    let mut out = Vec::new();
    for (op_name, op) in &manifest.operators {
        for (acc_name, acc) in &op.accounts {
            for (i, imp) in acc.imports.iter().enumerate() {
                let Some(from) = &imp.from else { continue };
                let Some(exporter) = op.accounts.get(from) else {
                    continue;
                };
                if needs_activation(exporter, imp.kind, &imp.subject) {
                    out.push(ActivationNeed {
                        importer: ObjectId::account(op_name, acc_name),
                        import_index: i,
                        exporter: ObjectId::account(op_name, from),
                        subject: imp.subject.clone(),
                        kind: imp.kind,
                    });
                }
            }
        }
    }
    out
}

/// Whether importing `subject` as `kind` from `exporter` needs an
/// activation token: a private export of that kind covers it.
pub(super) fn needs_activation(exporter: &Account, kind: ExportKind, subject: &str) -> bool {
    exporter
        .exports
        .iter()
        .any(|e| e.kind == kind && e.private && is_contained_in(subject, &e.subject))
}
