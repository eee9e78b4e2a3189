//! Desired user claims.

use serde_json::{json, Map, Value};

use super::common::{finish, permissions, rules_into};
use crate::manifest::model::User;
use crate::plan::keyref::KeyRef;

pub(super) fn user_claims(
    name: &str,
    user: &User,
    key: &KeyRef,
    issuer_account: Option<String>,
    scoped: bool,
) -> Value {
    let mut nats = if scoped {
        // A scoped user must carry no permissions or limits at all.
        let mut m = Map::new();
        m.insert("pub".into(), json!({}));
        m.insert("sub".into(), json!({}));
        m
    } else {
        let mut m = permissions(
            user.publish.as_ref(),
            user.subscribe.as_ref(),
            user.resp.as_ref(),
        );
        rules_into(&mut m, user.rules());
        m
    };
    if let Some(acc) = issuer_account {
        nats.insert("issuer_account".into(), json!(acc));
    }
    finish(name, key, nats, "user", &user.tags, user.expires)
}
