//! Desired user claims.

use super::common::{finish, permission_limits, permissions};
use crate::claims::{User as UserNats, UserClaims};
use crate::manifest::model::User;
use crate::plan::keyref::KeyRef;

pub(super) fn user_claims(
    name: &str,
    user: &User,
    key: &KeyRef,
    issuer_account: Option<String>,
    scoped: bool,
) -> UserClaims {
    // A scoped user must carry no permissions or limits at all.
    let permission_limits = if scoped {
        Default::default()
    } else {
        permission_limits(
            permissions(
                user.publish.as_ref(),
                user.subscribe.as_ref(),
                user.resp.as_ref(),
            ),
            user.rules(),
        )
    };
    let nats = UserNats {
        permission_limits,
        issuer_account: issuer_account.unwrap_or_default(),
        generic: Default::default(),
    };
    finish(name, key, nats, &user.tags, user.expires)
}
