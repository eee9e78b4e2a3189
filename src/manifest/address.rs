//! Stable object addresses (`operator.O2`, `account.O2/A`,
//! `signing_key.O2/A/service`, `user.O2/A/U`) and key addresses
//! (`…#label`), as the plan, the lock and error messages show them.

/// `operator.<op>`
pub fn operator(op: &str) -> String {
    format!("operator.{op}")
}

/// `account.<op>/<acc>`
pub fn account(op: &str, acc: &str) -> String {
    format!("account.{op}/{acc}")
}

/// `signing_key.<op>/<acc>/<role>`
pub fn signing_key(op: &str, acc: &str, role: &str) -> String {
    format!("signing_key.{op}/{acc}/{role}")
}

/// `signing_key.<op>` — the operator's signing keys (labels follow `#`).
pub fn operator_signing_key(op: &str) -> String {
    format!("signing_key.{op}")
}

/// `user.<op>/<acc>/<user>`
pub fn user(op: &str, acc: &str, user: &str) -> String {
    format!("user.{op}/{acc}/{user}")
}

/// A key address: an object address and a key label, `<address>#<label>`.
pub fn key(object: &str, label: &str) -> String {
    format!("{object}#{label}")
}
