//! Expiry the planner cannot fix: JWTs with a fixed `expires` inside the
//! re-issue window. (A relative expiry is re-issued instead; see
//! [`super::Reason::Expiring`].)

use super::reasons::Warning;
use super::Inputs;

/// JWTs with a fixed `expires` that fall inside the window: re-issuing would
/// not help, so the reviewer is told to move the date.
pub(super) fn fixed_expiry_warnings(inputs: &Inputs) -> Vec<Warning> {
    let mut out = Vec::new();
    for (id, want) in &inputs.state.objects {
        let Some(Ok(d)) = inputs.existing.get(id).map(|e| &e.decoded) else {
            continue;
        };
        // Cheap checks first: reading every user's claims would cost.
        if want.valid_for.is_some()
            || d.expires <= 0
            || d.expires - inputs.now > inputs.reissue_before
        {
            continue;
        }
        let exp = want.claims.exp();
        if exp > 0 && d.expires == exp {
            out.push(Warning::FixedExpiry {
                address: id.address(),
                expires: exp,
                now: inputs.now,
            });
        }
    }
    out
}
