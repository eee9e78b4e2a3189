//! What apply does to the vault besides storing new seeds: seeds sealed to
//! another recipient set than `secrets.recipients` declares are re-sealed,
//! and seeds no lock entry names are removed. Pure: the caller reads the
//! age headers (no identity) and passes what it found.

use std::collections::BTreeMap;

use crate::keys::Sealed;

/// The vault part of a plan, as data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultPlan {
    /// Seeds apply re-encrypts to the declared recipients, in key address
    /// order.
    pub reseal: Vec<Reseal>,
    /// Seed files of keys no lock entry the manifest keeps names: apply
    /// removes them. Those the lock still names (leaving it in this apply)
    /// first, by address; then the rest by public key.
    pub orphans: Vec<Orphan>,
}

/// A seed file apply removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub public_key: String,
    /// The address the lock binds it to now, when it still does.
    pub was: Option<String>,
}

/// One seed to re-seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    pub address: String,
    pub public_key: String,
    /// Whether the seed is still sealed to a recipient the manifest no
    /// longer lists (then git history keeps a copy that recipient opens).
    pub removes_recipient: bool,
}

impl VaultPlan {
    pub fn is_empty(&self) -> bool {
        self.reseal.is_empty() && self.orphans.is_empty()
    }

    /// How many re-seals drop a recipient.
    pub fn removed(&self) -> usize {
        self.reseal.iter().filter(|r| r.removes_recipient).count()
    }
}

/// The vault plan: `declared` is what a seed sealed to the manifest's
/// recipients shows (`None` when they do not parse: apply refuses then),
/// `sealed` what each seed file in the vault shows (`None`: unreadable or
/// damaged, reported elsewhere), `bound` the lock's address → key that
/// this apply keeps, `was` public key → address for the lock's other keys.
pub fn plan_vault(
    declared: Option<&Sealed>,
    sealed: &BTreeMap<String, Option<Sealed>>,
    bound: &BTreeMap<String, String>,
    was: &BTreeMap<String, String>,
) -> VaultPlan {
    let by_key: BTreeMap<&str, &str> = bound
        .iter()
        .map(|(a, k)| (k.as_str(), a.as_str()))
        .collect();
    let mut plan = VaultPlan::default();
    for (public, shape) in sealed {
        let Some(address) = by_key.get(public.as_str()) else {
            plan.orphans.push(Orphan {
                public_key: public.clone(),
                was: was.get(public).cloned(),
            });
            continue;
        };
        if let (Some(declared), Some(shape)) = (declared, shape) {
            if shape != declared {
                plan.reseal.push(Reseal {
                    address: address.to_string(),
                    public_key: public.clone(),
                    removes_recipient: shape.exceeds(declared),
                });
            }
        }
    }
    plan.reseal.sort_by(|a, b| a.address.cmp(&b.address));
    plan.orphans.sort_by(|a, b| {
        (a.was.is_none(), &a.was, &a.public_key).cmp(&(b.was.is_none(), &b.was, &b.public_key))
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(x: usize, ssh: &[&str]) -> Sealed {
        Sealed {
            x25519: x,
            ssh: ssh.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reseals_what_differs_and_lists_what_nothing_names() {
        let bound: BTreeMap<String, String> = [("b/op", "OB"), ("a/acc", "AA"), ("c/u", "UC")]
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .collect();
        let sealed: BTreeMap<String, Option<Sealed>> = [
            ("OB", Some(shape(1, &[]))),
            ("AA", Some(shape(2, &[]))),
            ("UC", Some(shape(1, &["ssh-ed25519 abcd"]))),
            ("UX", Some(shape(1, &[]))),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), s))
        .collect();
        let declared = shape(2, &[]);
        let was = BTreeMap::new();
        let p = plan_vault(Some(&declared), &sealed, &bound, &was);
        assert_eq!(
            p.reseal,
            vec![
                Reseal {
                    address: "b/op".into(),
                    public_key: "OB".into(),
                    removes_recipient: false
                },
                Reseal {
                    address: "c/u".into(),
                    public_key: "UC".into(),
                    removes_recipient: true
                },
            ]
        );
        assert_eq!(
            p.orphans,
            vec![Orphan {
                public_key: "UX".into(),
                was: None
            }]
        );
        // Recipients that do not parse: nothing to compare, orphans still.
        let p = plan_vault(None, &sealed, &bound, &was);
        assert!(p.reseal.is_empty());
        assert_eq!(p.removed(), 0);
        assert_eq!(p.orphans.len(), 1);
    }
}
