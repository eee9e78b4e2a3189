//! The live part of a plan (issue 10, `plan --live`), at the library
//! level: the walkthrough applied, account `sales` deleted and `A` changed
//! and applied, then three constructed servers that hold every kind of
//! difference. The three views are snapshotted; real-server runs of
//! `plan --live` live in the deploy suites.

mod support;

use std::fs;

use natsform::claims::{self, Account};
use natsform::keys::{generate, KeyKind, KeyPair};
use natsform::live::{LiveKind, LiveState, ServerHolding};
use natsform::plan::views::{self, Style};
use natsform::plan::Plan;
use natsform::tree::ObjectId;
use natsform::workspace::Workspace;
use support::cli::Project;

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

fn token(ws: &Workspace, account: &str) -> String {
    ws.existing[&ObjectId::account("O2", account)]
        .token
        .to_string()
}

fn subject(jwt: &str) -> String {
    claims::verify_envelope(jwt).unwrap().sub
}

/// The scene: the project after its second apply, and what the servers
/// hold.
struct Scene {
    p: Project,
    live: Vec<LiveState>,
    /// Keys that are not in the lock, by the label snapshots show.
    labels: Vec<(String, &'static str)>,
}

fn scene() -> Scene {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    let first = Workspace::open(&p.manifest).unwrap();
    let old_a = token(&first, "A");
    let sales = token(&first, "sales");
    drop(first);
    // `sales` leaves the manifest; A gains a description.
    let text = fs::read_to_string(&p.manifest).unwrap();
    let cut = text
        .find("[operators.O2.accounts.sales.signing_keys.team-service]")
        .unwrap();
    fs::write(&p.manifest, &text[..cut]).unwrap();
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.main]",
        "[operators.O2.accounts.A]\ndescription = \"orders\"\n\n[operators.O2.accounts.A.signing_keys.main]",
    );
    p.apply();
    let ws = Workspace::open(&p.manifest).unwrap();
    let (a, sys) = (token(&ws, "A"), token(&ws, "SYS"));

    // Someone else's operator key signs an A with wider limits and pushes it.
    let stranger = generate(KeyKind::Operator);
    let mut forged = claims::decode_as::<Account>(&a).unwrap();
    forged.nats.description = "changed by hand".into();
    forged.nats.limits.account.conn = 5;
    let drifted = claims::encode(&mut forged, &stranger).unwrap();
    // An account of another operator the servers trust too (never ours to
    // delete), and one this operator issued that the manifest never had.
    let legacy = generate(KeyKind::Account);
    let mut c = claims::AccountClaims::new(legacy.public_key());
    c.data.name = "legacy".into();
    c.data.iat = 1_700_000_000;
    let legacy_jwt = claims::encode(&mut c, &stranger).unwrap();
    let orphan = generate(KeyKind::Account);
    let mut c = claims::AccountClaims::new(orphan.public_key());
    c.data.name = "orphan".into();
    c.data.iat = 1_700_000_000;
    let orphan_jwt = claims::encode(&mut c, &operator_signer(&p, &a)).unwrap();

    let holding = |name: &str, accounts: Vec<(&String, &String)>| ServerHolding {
        name: name.into(),
        accounts: accounts
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let (a_key, sys_key, sales_key) = (subject(&a), subject(&sys), subject(&sales));
    let (legacy_key, orphan_key) = (legacy.public_key(), orphan.public_key());
    let live = vec![LiveState {
        operator: "O2".into(),
        servers: vec![
            // Missed the DELETE of sales; holds an account from before.
            holding(
                "n1",
                vec![
                    (&a_key, &a),
                    (&sys_key, &sys),
                    (&sales_key, &sales),
                    (&legacy_key, &legacy_jwt),
                    (&orphan_key, &orphan_jwt),
                ],
            ),
            // Missed the update of A.
            holding("n2", vec![(&a_key, &old_a), (&sys_key, &sys)]),
            // Holds a drifted A and lacks SYS.
            holding("n3", vec![(&a_key, &drifted)]),
        ],
    }];
    let labels = vec![
        (sales_key, "<deleted sales key>"),
        (legacy_key, "<legacy key>"),
        (orphan_key, "<orphan key>"),
        (KeyPair::public_key(&stranger), "<stranger key>"),
    ];
    Scene { p, live, labels }
}

/// The operator key that issued `account_jwt` (O2's signing key), from the
/// vault.
fn operator_signer(p: &Project, account_jwt: &str) -> KeyPair {
    use natsform::keys::{Identities, IdentitySources, Vault};
    let ids = Identities::load(&IdentitySources {
        paths: vec![support::cli::demo_identity()],
        ..Default::default()
    })
    .unwrap();
    let issuer = claims::verify_envelope(account_jwt).unwrap().iss;
    Vault::new(p.project_dir().join("vault"))
        .get(&issuer, &ids)
        .unwrap()
}

impl Scene {
    fn plan(&self, prune: bool) -> Plan {
        let ws = Workspace::open(&self.p.manifest).unwrap();
        ws.plan_live_pruning(natsform::workspace::now(), &self.live, prune)
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (key, label) in &self.labels {
            out = out.replace(key.as_str(), label);
            out = out.replace(&format!("{}…", &key[..12]), label);
        }
        self.p.redact(&out)
    }
}

#[test]
fn apply_records_the_deleted_account_and_leaves_an_unchanged_lock_alone() {
    let s = scene();
    let lock_path = s.p.project_dir().join("natsform.lock");
    let lock = fs::read_to_string(&lock_path).unwrap();
    let sales_key = &s.labels[0].0;
    assert!(
        lock.contains(&format!(
            "[deleted_accounts]\n\"account.O2/sales\" = [\"{sales_key}\"]"
        )),
        "{lock}"
    );
    let mtime = fs::metadata(&lock_path).unwrap().modified().unwrap();
    s.p.apply();
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), lock);
    assert_eq!(fs::metadata(&lock_path).unwrap().modified().unwrap(), mtime);
}

#[test]
fn every_kind_of_live_difference_in_the_text_plan() {
    let s = scene();
    let plan = s.plan(false);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let lp = &plan.live[0];
    let kinds: Vec<(LiveKind, Option<&str>)> = lp
        .items
        .iter()
        .map(|i| (i.kind, i.address.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (LiveKind::Missing, Some("account.O2/SYS")),
            (LiveKind::Older, Some("account.O2/A")),
            (LiveKind::Drifted, Some("account.O2/A")),
            (LiveKind::Unmanaged, None),
            (LiveKind::Foreign, None),
            (LiveKind::Returned, Some("account.O2/sales")),
        ]
    );
    // Pushes and a deletion pending: the plan is not empty.
    assert!(!plan.is_empty());
    let text = views::text::text(&plan, Style { color: false });
    assert!(text.contains("- description: changed by hand"), "{text}");
    assert!(text.contains("+ description: orders"), "{text}");
    insta::assert_snapshot!(s.redact(&text));
}

#[test]
fn the_live_part_as_json_and_as_a_comment() {
    let s = scene();
    let plan = s.plan(false);
    let json = views::json::json(&plan);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["changes"], true);
    assert_eq!(
        doc["summary"]["live"],
        serde_json::json!({"push": 2, "delete": 1, "unmanaged": 1, "foreign": 1})
    );
    assert_eq!(doc["live"][0]["items"].as_array().unwrap().len(), 6);
    insta::assert_snapshot!("json", s.redact(&json));

    let md = views::markdown::markdown(&plan, "natsform.toml");
    assert!(md.contains("### Live servers"), "{md}");
    assert!(
        md.contains("| live servers: accounts to push | 2 |"),
        "{md}"
    );
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    insta::assert_snapshot!("markdown", s.redact(&md));
}

#[test]
fn unmanaged_accounts_are_information_unless_pruning_and_foreign_ones_are_never_deleted() {
    let s = scene();
    // Only the unmanaged account (issued by O2's signing key) and another
    // operator's account differ: every server holds the store.
    let ws = Workspace::open(&s.p.manifest).unwrap();
    let (a, sys) = (token(&ws, "A"), token(&ws, "SYS"));
    let mut live = s.live.clone();
    let servers = &mut live[0].servers;
    servers.truncate(1);
    let (legacy, orphan) = (s.labels[1].0.clone(), s.labels[2].0.clone());
    let keep = [subject(&a), subject(&sys), legacy.clone(), orphan.clone()];
    servers[0].accounts.retain(|key, _| keep.contains(key));
    assert_eq!(servers[0].accounts.len(), 4, "A, SYS, legacy and orphan");
    let now = natsform::workspace::now();
    let plan = ws.plan_live(now, &live);
    assert!(plan.is_empty(), "unmanaged and foreign alone are not work");
    let text = s.redact(&views::text::text(&plan, Style { color: false }));
    assert!(
        text.contains("No changes. The store matches the manifest, and the live servers hold its accounts.\nLive: 0 to push, 0 to delete on servers, 1 unmanaged (listed; --prune deletes them), 1 held for other operators (listed; never deleted).\n"),
        "{text}"
    );
    assert!(text.contains("? account <orphan key> named \"orphan\" on n1 is not managed by this manifest; listed only (--prune deletes it)"), "{text}");
    let foreign = "? account <legacy key> named \"legacy\" on n1 is held for another operator: signed by <stranger key>, a key this operator does not trust; listed only, never deleted (not even with --prune)";
    assert!(text.contains(foreign), "{text}");
    let pruned = ws.plan_live_pruning(now, &live, true);
    assert!(!pruned.is_empty());
    assert_eq!(
        pruned.live[0].to_delete(true).collect::<Vec<_>>(),
        [orphan.as_str()],
        "--prune deletes what this operator issued, never another's"
    );
    let text = s.redact(&views::text::text(&pruned, Style { color: false }));
    assert!(text.contains("- account <orphan key> named \"orphan\" on n1 is not managed by this manifest; apply deletes it (--prune)"), "{text}");
    assert!(text.contains(foreign), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&views::json::json(&pruned)).unwrap();
    let item = doc["live"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["account"] == legacy.as_str())
        .unwrap();
    assert_eq!(item["kind"], "foreign");
    assert_eq!(item["apply"], "none");
    assert_eq!(item["issuer"], s.labels[3].0.as_str());
    let md = views::markdown::markdown(&pruned, "natsform.toml");
    assert!(
        md.contains(
            "| live servers: accounts of other operators, listed only (never deleted) | 1 |"
        ),
        "{md}"
    );
    // Without live data, nothing of this appears.
    let plain = views::text::text(&ws.plan(now), Style { color: false });
    assert_eq!(plain, "No changes. The store matches the manifest.\n");
}

/// A plan built as data, with what a hostile server or manifest can put
/// in the live part: control characters, HTML, mentions, backticks.
#[test]
fn hostile_server_text_stays_in_its_place() {
    use natsform::live::{Drift, DriftReason, LiveItem, LivePlan};
    use natsform::plan::{Action, ActionKind, Reason};
    let evil = "n1\u{1b}[2J</details><b>@org/team</b>```";
    let key = generate(KeyKind::Account).public_key();
    let item = |kind, address: Option<&str>, name: Option<&str>, drift| LiveItem {
        public: key.clone(),
        address: address.map(str::to_string),
        kind,
        servers: vec![evil.to_string()],
        name: name.map(str::to_string),
        drift,
        issuer: None,
    };
    let drift = Box::new(Drift {
        reasons: vec![DriftReason::NotAnAccount {
            found: "x\u{7}</summary>".into(),
        }],
        live: Some(r#"{"name":"```\u001b[31m</details>"}"#.into()),
        store: r#"{"name":"A"}"#.into(),
    });
    let id = ObjectId::account("O", "A");
    let plan = Plan {
        actions: vec![Action {
            address: id.address(),
            id,
            action: ActionKind::Update,
            reasons: vec![Reason::NotInStore],
            signer: None,
            before: None,
            after: None,
        }],
        live: vec![LivePlan {
            operator: "O\u{1b}]0;title\u{7}".into(),
            servers: vec![evil.into()],
            items: vec![
                item(LiveKind::Missing, Some("account.O/A"), None, None),
                item(LiveKind::Drifted, Some("account.O/A"), None, Some(drift)),
                item(LiveKind::Unmanaged, None, Some(evil), None),
                item(LiveKind::Foreign, None, Some(evil), None),
            ],
            prune: false,
            malformed: 2,
        }],
        ..Plan::default()
    };
    let text = views::text::text(&plan, Style { color: false });
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(
        text.contains("note: this plan changes the account too"),
        "{text}"
    );
    assert!(
        text.contains("note: 2 entries the servers listed"),
        "{text}"
    );
    let md = views::markdown::markdown(&plan, "natsform.toml");
    assert!(!md.contains('\u{1b}') && !md.contains('\u{7}'), "{md}");
    assert!(!md.contains("@org"), "{md}");
    assert!(
        !md.contains("</summary></summary>") && !md.contains("<b>@"),
        "{md}"
    );
    assert_eq!(
        md.lines().filter(|l| l.starts_with("<details>")).count(),
        md.lines().filter(|l| *l == "</details>").count(),
        "{md}"
    );
    // The drift diff's fence is longer than the backticks inside it.
    assert!(md.contains("````diff"), "{md}");
    let doc: serde_json::Value = serde_json::from_str(&views::json::json(&plan)).unwrap();
    assert_eq!(doc["live"][0]["malformed"], 2);
    assert_eq!(doc["live"][0]["items"][2]["name"], evil);
}
