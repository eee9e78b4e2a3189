//! Account signing keys: plain keys and scoped (`user_scope`) keys,
//! mirroring `jwt/v2/signingkeys.go`.
//!
//! On the wire: an array whose elements are either a public key string or
//! `{"kind":"user_scope","key":…,"role":…,"template":{…}[,"description":…]}`.
//! In memory: a map key → optional scope, written sorted by key (jwt >=
//! 2.5.1 behaviour; 2.3.0 wrote Go map order, i.e. random).

use super::permissions::{UserPermissionLimits, NO_LIMIT};
use serde::de::Error as _;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A scoped signing key's role and permission template. The key itself is
/// the map key in [`SigningKeys`], so the two can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScope {
    /// Always written (Go has no omitempty on it).
    pub role: String,
    /// Applied by the server to every user this key signs. Always written.
    pub template: UserPermissionLimits,
    /// jwt >= 2.5.6 always writes it; 2.3.0 does not know it. `None` omits
    /// the key, `Some("")` writes `"description":""` as newer Go does.
    pub description: Option<String>,
}

impl UserScope {
    /// Go `NewUserScope`: template limits `-1`, no permissions.
    pub fn new(role: impl Into<String>) -> Self {
        UserScope {
            role: role.into(),
            template: UserPermissionLimits::unlimited(),
            description: None,
        }
    }
}

/// Signing keys of an account: key → `None` (plain) or `Some(scope)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigningKeys(pub BTreeMap<String, Option<UserScope>>);

impl SigningKeys {
    /// True when there are no signing keys (the field is then omitted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Serialize)]
struct ScopeOut<'a> {
    kind: &'static str,
    key: &'a str,
    role: &'a str,
    template: &'a UserPermissionLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ElementOut<'a> {
    Plain(&'a str),
    Scoped(ScopeOut<'a>),
}

impl Serialize for SigningKeys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (key, scope) in &self.0 {
            let el = match scope {
                None => ElementOut::Plain(key),
                Some(sc) => ElementOut::Scoped(ScopeOut {
                    kind: "user_scope",
                    key,
                    role: &sc.role,
                    template: &sc.template,
                    description: &sc.description,
                }),
            };
            seq.serialize_element(&el)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for SigningKeys {
    /// Go `SigningKeys.UnmarshalJSON`: strings are plain keys; objects must
    /// have `kind: "user_scope"` (anything else is an error); other element
    /// types are ignored. A scope's template starts from `NewUserScope`, so
    /// missing `subs`/`data`/`payload` mean `-1`, unlike in a user JWT.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        let elements = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
        let mut out = BTreeMap::new();
        for el in elements {
            match el {
                Value::String(k) => {
                    out.insert(k, None);
                }
                Value::Object(mut obj) => {
                    if obj.get("kind").and_then(Value::as_str) != Some("user_scope") {
                        return Err(D::Error::custom(format!(
                            "unknown signing key scope {:?}",
                            obj.get("kind").cloned().unwrap_or(Value::Null)
                        )));
                    }
                    let key = string_field(&obj, "key").map_err(D::Error::custom)?;
                    let role = string_field(&obj, "role").map_err(D::Error::custom)?;
                    let description = match obj.get("description") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(_) => {
                            return Err(D::Error::custom("scope description must be a string"))
                        }
                    };
                    let template =
                        scope_template(obj.remove("template")).map_err(D::Error::custom)?;
                    out.insert(
                        key,
                        Some(UserScope {
                            role,
                            template,
                            description,
                        }),
                    );
                }
                _ => {}
            }
        }
        Ok(SigningKeys(out))
    }
}

fn string_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<String, String> {
    match obj.get(name) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("scope {name} must be a string")),
    }
}

fn scope_template(raw: Option<serde_json::Value>) -> Result<UserPermissionLimits, String> {
    let mut obj = match raw {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(o)) => o,
        Some(_) => return Err("scope template must be an object".into()),
    };
    for field in ["subs", "data", "payload"] {
        if matches!(obj.get(field), None | Some(serde_json::Value::Null)) {
            obj.insert(field.into(), NO_LIMIT.into());
        }
    }
    serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::gojson::to_string;

    #[test]
    fn plain_and_scoped_keys_are_written_sorted_by_key() {
        let mut sk = SigningKeys::default();
        sk.0.insert("B".into(), None);
        sk.0.insert("A".into(), Some(UserScope::new("r")));
        assert_eq!(
            to_string(&sk),
            r#"[{"kind":"user_scope","key":"A","role":"r","template":{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1}},"B"]"#
        );
    }

    #[test]
    fn a_template_without_limits_is_unlimited() {
        let sk: SigningKeys = serde_json::from_str(
            r#"[{"kind":"user_scope","key":"K","role":"r","template":{"subs":5}}]"#,
        )
        .unwrap();
        let t = &sk.0["K"].as_ref().unwrap().template;
        assert_eq!(
            (
                t.nats_limits.subs,
                t.nats_limits.data,
                t.nats_limits.payload
            ),
            (5, -1, -1)
        );
        let sk: SigningKeys = serde_json::from_str(r#"[{"kind":"user_scope","key":"K"}]"#).unwrap();
        assert_eq!(
            sk.0["K"].as_ref().unwrap().template,
            UserPermissionLimits::unlimited()
        );
    }

    #[test]
    fn unknown_scope_kinds_are_refused_and_other_elements_ignored() {
        assert!(serde_json::from_str::<SigningKeys>(r#"[{"kind":"other","key":"K"}]"#).is_err());
        let sk: SigningKeys = serde_json::from_str(r#"[1, "K", null]"#).unwrap();
        assert_eq!(sk.0.len(), 1);
    }

    #[test]
    fn description_round_trips_including_empty() {
        let raw = r#"[{"kind":"user_scope","key":"K","role":"r","template":{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1},"description":""}]"#;
        let sk: SigningKeys = serde_json::from_str(raw).unwrap();
        assert_eq!(to_string(&sk), raw);
    }
}
