//! The live planner on constructed server states: every kind, in sync,
//! grouping by server, hostile replies.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::claims::{self, AccountClaims};
use crate::keys::{generate, KeyPair};
use crate::live::ServerHolding;
use crate::plan::desired::DesiredClaims;
use crate::plan::{DesiredObject, KeyRef, Reason};

/// Operator `O` (its identity key signs accounts), accounts `A` and `B`
/// kept by the manifest, account `Gone` in the store and deleted by the
/// plan; the store holds A and B issued at 1000.
struct World {
    op: KeyPair,
    a: KeyPair,
    b: KeyPair,
    gone: KeyPair,
    state: DesiredState,
    existing: BTreeMap<ObjectId, Existing>,
    actions: Vec<Action>,
    deleted: DeletedAccounts,
}

fn account_jwt(subject: &KeyPair, name: &str, iat: i64, signer: &KeyPair, desc: &str) -> String {
    let mut c = AccountClaims::new(subject.public_key());
    c.data.name = name.to_string();
    c.data.iat = iat;
    if !desc.is_empty() {
        c.nats.description = desc.to_string();
    }
    claims::encode(&mut c, signer).unwrap()
}

fn key_ref(address: &str, kind: KeyKind, kp: Option<&KeyPair>) -> KeyRef {
    KeyRef {
        address: address.to_string(),
        kind,
        public: kp.map(KeyPair::public_key),
    }
}

fn stored(token: &str) -> Existing {
    Existing {
        token: Arc::from(token),
        decoded: existing::decode_live(token).map_err(|e| format!("{e:?}")),
    }
}

impl World {
    fn new() -> World {
        let op = generate(KeyKind::Operator);
        let a = generate(KeyKind::Account);
        let b = generate(KeyKind::Account);
        let gone = generate(KeyKind::Account);
        let trusted: Arc<[KeyRef]> =
            vec![key_ref("operator.O#v1", KeyKind::Operator, Some(&op))].into();
        let mut state = DesiredState::default();
        for (name, kp) in [("A", &a), ("B", &b)] {
            let id = ObjectId::account("O", name);
            state.objects.insert(
                id.clone(),
                DesiredObject {
                    id,
                    claims: DesiredClaims::Account(Box::new(AccountClaims::new(kp.public_key()))),
                    subject: key_ref(&format!("account.O/{name}#v1"), KeyKind::Account, Some(kp)),
                    signer: std::sync::Arc::new(trusted[0].clone()),
                    trusted: trusted.clone(),
                    scoped_role: None,
                    valid_for: None,
                    activations: Vec::new(),
                    new_keys: Vec::new(),
                },
            );
        }
        let mut existing = BTreeMap::new();
        for (name, kp) in [("A", &a), ("B", &b), ("Gone", &gone)] {
            existing.insert(
                ObjectId::account("O", name),
                stored(&account_jwt(kp, name, 1000, &op, "")),
            );
        }
        let gone_id = ObjectId::account("O", "Gone");
        let actions = vec![Action {
            address: gone_id.address(),
            id: gone_id,
            action: ActionKind::Delete,
            reasons: vec![Reason::NotInManifest],
            signer: None,
            before: None,
            after: None,
        }];
        World {
            op,
            a,
            b,
            gone,
            state,
            existing,
            actions,
            deleted: DeletedAccounts::new(),
        }
    }

    fn store_token(&self, name: &str) -> String {
        self.existing[&ObjectId::account("O", name)]
            .token
            .to_string()
    }

    fn plan(&self, servers: Vec<ServerHolding>, prune: bool) -> LivePlan {
        let live = [LiveState {
            operator: "O".into(),
            servers,
        }];
        let mut plans = plan_live(&LiveInputs {
            live: &live,
            prune,
            state: &self.state,
            existing: &self.existing,
            actions: &self.actions,
            deleted: &self.deleted,
        });
        plans.pop().unwrap()
    }

    /// Records `key` in the lock as an account deleted at `address`.
    fn record_deleted(&mut self, address: &str, key: String) {
        self.deleted.entry(address.into()).or_default().insert(key);
    }

    /// A server holding `a` as A, and the store's B.
    fn holding_a(&self, name: &str, a: String) -> ServerHolding {
        server(
            name,
            [
                (self.a.public_key(), a),
                (self.b.public_key(), self.store_token("B")),
            ],
        )
    }

    /// A server holding the store's A and B.
    fn in_sync(&self, name: &str) -> ServerHolding {
        self.holding_a(name, self.store_token("A"))
    }
}

fn server<const N: usize>(name: &str, accounts: [(String, String); N]) -> ServerHolding {
    ServerHolding {
        name: name.into(),
        accounts: accounts.into_iter().collect(),
    }
}

/// `holding` also holds account `subject` named `name`, issued at 10 by
/// `signer`.
fn hold(holding: &mut ServerHolding, subject: &KeyPair, name: &str, signer: &KeyPair) {
    holding.accounts.insert(
        subject.public_key(),
        account_jwt(subject, name, 10, signer, ""),
    );
}

/// The keys `plan` deletes (with or without `--prune`).
fn deleted_by(plan: &LivePlan, prune: bool) -> Vec<String> {
    plan.to_delete(prune).map(|k| k.to_string()).collect()
}

fn kinds(plan: &LivePlan) -> Vec<(LiveKind, Option<&str>, Vec<&str>)> {
    plan.items
        .iter()
        .map(|i| {
            (
                i.kind,
                i.address.as_deref(),
                i.servers.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

#[test]
fn servers_holding_the_store_are_in_sync() {
    let w = World::new();
    let plan = w.plan(vec![w.in_sync("n2"), w.in_sync("n1")], false);
    assert_eq!(plan.servers, ["n1", "n2"]);
    assert!(plan.items.is_empty(), "{:?}", plan.items);
    assert!(!plan.has_work());
}

#[test]
fn a_missing_account_is_grouped_over_the_servers_that_lack_it() {
    let w = World::new();
    let lacking = server("n3", [(w.a.public_key(), w.store_token("A"))]);
    let empty = server("n2", []);
    let plan = w.plan(vec![w.in_sync("n1"), empty, lacking], false);
    assert_eq!(
        kinds(&plan),
        [
            (LiveKind::Missing, Some("account.O/A"), vec!["n2"]),
            (LiveKind::Missing, Some("account.O/B"), vec!["n2", "n3"]),
        ]
    );
    assert!(plan.has_work());
    let a = w.a.public_key();
    let b = w.b.public_key();
    assert_eq!(
        plan.to_update().collect::<Vec<_>>(),
        [a.as_str(), b.as_str()]
    );
    // The account the plan deletes is never "missing".
    assert!(plan.items.iter().all(|i| i.public != w.gone.public_key()));
}

#[test]
fn an_earlier_version_signed_by_a_trusted_key_is_older() {
    let w = World::new();
    let old = account_jwt(&w.a, "A", 900, &w.op, "before");
    let plan = w.plan(vec![w.in_sync("n1"), w.holding_a("n2", old)], false);
    assert_eq!(
        kinds(&plan),
        [(LiveKind::Older, Some("account.O/A"), vec!["n2"])]
    );
    assert!(plan.items[0].drift.is_none());
    assert!(plan.has_work());
}

#[test]
fn drift_says_why_and_carries_both_claims() {
    let w = World::new();
    let stranger = generate(KeyKind::Operator);
    let newer = account_jwt(&w.a, "A", 2000, &w.op, "edited by hand");
    let foreign = account_jwt(&w.b, "B", 500, &stranger, "pushed by someone else");
    let other_subject = account_jwt(&w.gone, "Gone", 1500, &w.op, "");
    let plan = w.plan(
        vec![
            server(
                "n1",
                [
                    (w.a.public_key(), newer.clone()),
                    (w.b.public_key(), foreign),
                ],
            ),
            server(
                "n2",
                [(w.a.public_key(), newer), (w.b.public_key(), other_subject)],
            ),
            w.holding_a("n3", "not a jwt \u{1b}[2J".into()),
        ],
        false,
    );
    let reasons: Vec<(&str, &str, Vec<&str>)> = plan
        .items
        .iter()
        .map(|i| {
            let d = i.drift.as_ref().unwrap();
            assert_eq!(d.reasons.len(), 1);
            (
                i.address.as_deref().unwrap(),
                d.reasons[0].kind(),
                i.servers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("account.O/A", "not-older", vec!["n1", "n2"]),
            ("account.O/A", "unreadable", vec!["n3"]),
            ("account.O/B", "untrusted-issuer", vec!["n1"]),
            ("account.O/B", "other-subject", vec!["n2"]),
        ]
    );
    let newer = plan.items[0].drift.as_ref().unwrap();
    assert!(newer.live.as_deref().unwrap().contains("edited by hand"));
    assert!(!newer.store.contains("edited by hand"));
    assert!(newer.reasons[0]
        .to_string()
        .contains("issued at 1970-01-01T00:33:20Z, not before the store's JWT (issued at 1970-01-01T00:16:40Z)"));
    assert!(plan.items[1].drift.as_ref().unwrap().live.is_none());
    assert!(plan.items.iter().all(|i| i.kind == LiveKind::Drifted));
    // Every drifted account is pushed again.
    assert_eq!(plan.to_update().count(), 4);
}

#[test]
fn the_stores_jti_with_other_content_is_drift() {
    let w = World::new();
    // Same claims and jti as the store, signed again after an edit of the
    // payload that keeps the jti: only a trusted key can do it.
    let store = w.store_token("A");
    let payload = store.split('.').nth(1).unwrap();
    let json = String::from_utf8(
        data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let edited = json.replacen("\"name\":\"A\"", "\"name\":\"A2\"", 1);
    assert_ne!(edited, json);
    let header = store.split('.').next().unwrap();
    let input = format!(
        "{header}.{}",
        data_encoding::BASE64URL_NOPAD.encode(edited.as_bytes())
    );
    let sig = w.op.sign(input.as_bytes()).unwrap();
    let token = format!("{input}.{}", data_encoding::BASE64URL_NOPAD.encode(&sig));
    let plan = w.plan(vec![w.holding_a("n1", token)], false);
    assert_eq!(plan.items.len(), 1);
    assert_eq!(
        plan.items[0].drift.as_ref().unwrap().reasons,
        [DriftReason::SameJtiOtherContent]
    );
}

#[test]
fn unmanaged_accounts_are_listed_and_deleted_only_with_prune() {
    let w = World::new();
    let stranger = generate(KeyKind::Account);
    let seed = generate(KeyKind::User).seed().unwrap();
    let name = format!("theirs {seed} {}", "x".repeat(400));
    let theirs = account_jwt(&stranger, &name, 10, &w.op, "");
    let mut holding = w.in_sync("n1");
    holding.accounts.insert(stranger.public_key(), theirs);
    holding.accounts.insert("not-a-key".into(), "x".into());
    holding.accounts.insert(seed.clone(), "x".into());
    let plan = w.plan(vec![holding.clone()], false);
    assert_eq!(kinds(&plan), [(LiveKind::Unmanaged, None, vec!["n1"])]);
    assert_eq!(plan.malformed, 2);
    let shown = plan.items[0].name.as_deref().unwrap();
    assert!(shown.starts_with("theirs SU…(seed; not shown)"), "{shown}");
    assert!(!shown.contains(&seed[2..]));
    assert!(shown.chars().count() <= MAX_NAME_CHARS + 1);
    // Information, not work, without --prune.
    assert!(!plan.has_work());
    assert_eq!(plan.to_delete(false).count(), 0);
    let pruned = w.plan(vec![holding], true);
    assert!(pruned.has_work());
    assert_eq!(deleted_by(&pruned, pruned.prune), [stranger.public_key()]);
}

#[test]
fn accounts_another_operator_issued_are_foreign_and_never_pruned() {
    let mut w = World::new();
    // The servers trust a second operator too: its accounts, and one that
    // does not verify, are not ours to delete, --prune or not.
    let other_op = generate(KeyKind::Operator);
    let theirs = generate(KeyKind::Account);
    let broken = generate(KeyKind::Account);
    let planted = generate(KeyKind::Account);
    // A lock record naming the other operator's account, with its name:
    // still not ours (the issuer is not a key this operator trusts).
    w.record_deleted("account.O/Planted", planted.public_key());
    let mut holding = w.in_sync("n1");
    hold(&mut holding, &theirs, "theirs", &other_op);
    let mut bad = account_jwt(&broken, "broken", 10, &w.op, "");
    bad.push('x');
    holding.accounts.insert(broken.public_key(), bad);
    hold(&mut holding, &planted, "Planted", &other_op);
    for prune in [false, true] {
        let plan = w.plan(vec![holding.clone(), w.in_sync("n2")], prune);
        assert_eq!(
            kinds(&plan),
            [
                (LiveKind::Foreign, None, vec!["n1"]),
                (LiveKind::Foreign, None, vec!["n1"]),
                (LiveKind::Foreign, None, vec!["n1"]),
            ],
            "prune: {prune}"
        );
        assert_eq!(plan.to_delete(prune).count(), 0, "prune: {prune}");
        assert!(!plan.has_work(), "prune: {prune}");
        let issuer = |k: &KeyPair| {
            plan.items
                .iter()
                .find(|i| i.public == k.public_key())
                .unwrap()
                .issuer
                .clone()
        };
        assert_eq!(issuer(&theirs), Some(other_op.public_key()));
        assert_eq!(issuer(&planted), Some(other_op.public_key()));
        assert_eq!(issuer(&broken), None);
    }
    // The same accounts issued by this operator are unmanaged: --prune
    // deletes them.
    let mut ours = w.in_sync("n1");
    hold(&mut ours, &theirs, "theirs", &w.op);
    let plan = w.plan(vec![ours], true);
    assert_eq!(kinds(&plan), [(LiveKind::Unmanaged, None, vec!["n1"])]);
    assert_eq!(deleted_by(&plan, true), [theirs.public_key()]);
}

#[test]
fn a_deleted_account_that_comes_back_is_returned() {
    let mut w = World::new();
    let back = generate(KeyKind::Account);
    let impostor = generate(KeyKind::Account);
    w.record_deleted("account.O/Back", back.public_key());
    // A lock edit naming an account of ours under another name: its JWT
    // carries another name, so it stays unmanaged (and is not deleted
    // without --prune).
    w.record_deleted("account.O/Planted", impostor.public_key());
    // Another operator's record does not count here.
    w.record_deleted("account.P/Back", generate(KeyKind::Account).public_key());
    let mut holding = w.in_sync("n1");
    hold(&mut holding, &back, "Back", &w.op);
    hold(&mut holding, &impostor, "Victim", &w.op);
    let plan = w.plan(vec![holding, w.in_sync("n2")], false);
    assert_eq!(
        kinds(&plan),
        [
            (LiveKind::Unmanaged, None, vec!["n1"]),
            (LiveKind::Returned, Some("account.O/Back"), vec!["n1"]),
        ]
    );
    assert_eq!(deleted_by(&plan, false), [back.public_key()]);
    assert!(plan.has_work());
}

#[test]
fn an_account_the_plan_deletes_gets_no_item_and_a_replaced_key_is_retired() {
    let mut w = World::new();
    // B's key is being replaced: the manifest's B has a key to generate.
    let b_id = ObjectId::account("O", "B");
    w.state.objects.get_mut(&b_id).unwrap().subject.public = None;
    w.actions.push(Action {
        address: b_id.address(),
        id: b_id,
        action: ActionKind::Replace,
        reasons: vec![],
        signer: None,
        before: None,
        after: None,
    });
    let mut holding = w.in_sync("n1");
    holding
        .accounts
        .insert(w.gone.public_key(), w.store_token("Gone"));
    let plan = w.plan(vec![holding, server("n2", [])], false);
    assert_eq!(
        kinds(&plan),
        [
            (LiveKind::Missing, Some("account.O/A"), vec!["n2"]),
            (LiveKind::Retired, Some("account.O/B"), vec!["n1"]),
        ]
    );
    assert_eq!(deleted_by(&plan, false), [w.b.public_key()]);
    // And apply records both the deleted and the replaced key.
    let after = deleted_after(&w.deleted, &w.actions, &w.existing);
    assert_eq!(
        after["account.O/Gone"].iter().collect::<Vec<_>>(),
        [&w.gone.public_key()]
    );
    assert_eq!(
        after["account.O/B"].iter().collect::<Vec<_>>(),
        [&w.b.public_key()]
    );
}

#[test]
fn a_huge_reply_is_not_decoded() {
    let w = World::new();
    let huge = "a".repeat(MAX_LIVE_JWT_BYTES + 1);
    let plan = w.plan(vec![w.holding_a("n1", huge)], false);
    let d = plan.items[0].drift.as_ref().unwrap();
    assert_eq!(
        d.reasons,
        [DriftReason::Unreadable {
            error: "larger than 4 MiB".into()
        }]
    );
}

#[test]
fn a_server_jwt_of_another_type_is_drift() {
    let w = World::new();
    let user = generate(KeyKind::User);
    let mut c = crate::claims::UserClaims::new(user.public_key());
    c.data.iat = 5;
    let token = claims::encode(&mut c, &w.a).unwrap();
    let plan = w.plan(vec![w.holding_a("n1", token)], false);
    assert_eq!(
        plan.items[0].drift.as_ref().unwrap().reasons,
        [DriftReason::NotAnAccount {
            found: "user".into()
        }]
    );
}
