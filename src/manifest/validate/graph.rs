//! Cross-account checks within one operator: every import by name must be
//! covered by an export of the named account, and imports must not form
//! cycles (nats-server refuses an import that leads back to the importer).

use std::collections::BTreeSet;

use super::{KeyPath, Validator};
use crate::manifest::model::{ExportKind, Operator};
use crate::manifest::subject_match::{is_contained_in, subjects_collide};

impl Validator<'_> {
    pub(super) fn import_graph(&mut self, op_name: &str, op: &Operator) {
        for (acc_name, acc) in &op.accounts {
            let addr = crate::manifest::address::account(op_name, acc_name);
            let base = KeyPath::new(&["operators", op_name, "accounts", acc_name]);
            for (i, imp) in acc.imports.iter().enumerate() {
                let Some(from) = &imp.from else { continue };
                let Some(exporter) = op.accounts.get(from) else {
                    continue;
                };
                if from == acc_name {
                    continue;
                }
                let p = base.at("imports").at(i);
                let covering = exporter
                    .exports
                    .iter()
                    .find(|e| is_contained_in(&imp.subject, &e.subject));
                match covering {
                    Some(e) if e.kind == imp.kind => {}
                    Some(e) => self.err(
                        &p.at("type"),
                        &addr,
                        format!(
                            "`{}` is imported as a {} but account `{from}` exports `{}` as a {}",
                            imp.subject,
                            imp.kind.as_str(),
                            e.subject,
                            e.kind.as_str()
                        ),
                        format!("write `type = \"{}\"`", e.kind.as_str()),
                    ),
                    None => {
                        let offered: Vec<String> = exporter
                            .exports
                            .iter()
                            .filter(|e| e.kind == imp.kind)
                            .map(|e| format!("`{}`", e.subject))
                            .collect();
                        let help = if offered.is_empty() {
                            format!(
                                "account `{from}` exports no {}; add an export of `{}` to it first",
                                kind_plural(imp.kind),
                                imp.subject
                            )
                        } else {
                            format!("{} exports of account `{from}`: {}; import one of them (or a subject they contain), or export `{}` from `{from}`", imp.kind.as_str(), offered.join(", "), imp.subject)
                        };
                        self.err(
                            &p.at("subject"),
                            &addr,
                            format!("account `{from}` does not export `{}`", imp.subject),
                            help,
                        );
                    }
                }
                if let Some(cycle) = cycle_from(op, acc_name, from, &imp.subject, imp.kind) {
                    // Report each cycle once, at the account that sorts first in it.
                    if cycle.iter().all(|a| a.as_str() >= acc_name.as_str()) {
                        self.err(
                            &p,
                            &addr,
                            format!("{} import `{}` forms a cycle: {}", imp.kind.as_str(), imp.subject, cycle.join(" → ")),
                            "nats-server refuses an import whose subject is imported back by the importer; break the cycle by removing or narrowing one of the imports",
                        );
                    }
                }
            }
        }
    }
}

fn kind_plural(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Stream => "streams",
        ExportKind::Service => "services",
    }
}

/// Follows imports of `kind` from account `exporter` whose local subject
/// collides with `subject`; returns the account path if it reaches `importer`.
fn cycle_from(
    op: &Operator,
    importer: &str,
    exporter: &str,
    subject: &str,
    kind: ExportKind,
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut path = vec![importer.to_string(), exporter.to_string()];
    if walk(op, importer, exporter, subject, kind, &mut seen, &mut path) {
        Some(path)
    } else {
        None
    }
}

fn walk(
    op: &Operator,
    importer: &str,
    current: &str,
    subject: &str,
    kind: ExportKind,
    seen: &mut BTreeSet<(String, String)>,
    path: &mut Vec<String>,
) -> bool {
    if !seen.insert((current.to_string(), subject.to_string())) {
        return false;
    }
    let Some(acc) = op.accounts.get(current) else {
        return false;
    };
    for imp in &acc.imports {
        let Some(next) = &imp.from else { continue };
        if imp.kind != kind || !subjects_collide(imp.local(), subject) {
            continue;
        }
        path.push(next.clone());
        if next == importer || walk(op, importer, next, &imp.subject, kind, seen, path) {
            return true;
        }
        path.pop();
    }
    false
}
