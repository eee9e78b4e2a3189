//! For random manifests: `apply` then `plan` is always empty, and a second
//! `apply` writes nothing (same bytes, same mtimes).

mod support;

use std::fmt::Write;
use std::fs;

use proptest::prelude::*;
use support::cli::Project;

#[derive(Debug, Clone)]
struct Role {
    scoped: bool,
    pub_allow: Vec<&'static str>,
    sub_allow: Vec<&'static str>,
    resp: bool,
}

#[derive(Debug, Clone)]
struct User {
    role: Option<usize>,
    team: Option<&'static str>,
    own_sub: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct Account {
    roles: Vec<Role>,
    users: Vec<User>,
}

#[derive(Debug, Clone)]
struct Operator {
    signing_keys: usize,
    strict: bool,
    accounts: Vec<Account>,
}

const SUBJECTS: &[&str] = &[
    "a.>",
    "b.*",
    "c",
    "_INBOX.>",
    "q.work",
    "{{name()}}.>",
    "team.{{tag(team)}}.>",
];
const TEAMS: &[&str] = &["red", "blue"];

fn role() -> impl Strategy<Value = Role> {
    (
        any::<bool>(),
        proptest::sample::subsequence(SUBJECTS, 0..3),
        proptest::sample::subsequence(SUBJECTS, 0..3),
        any::<bool>(),
    )
        .prop_map(|(scoped, p, s, resp)| Role {
            scoped,
            pub_allow: p,
            sub_allow: s,
            resp,
        })
}

fn account() -> impl Strategy<Value = Account> {
    (
        proptest::collection::vec(role(), 0..3),
        proptest::collection::vec(
            (
                any::<Option<prop::sample::Index>>(),
                proptest::option::of(proptest::sample::select(TEAMS)),
                proptest::sample::subsequence(&["x.>", "y"][..], 0..2),
            ),
            0..4,
        ),
    )
        .prop_map(|(roles, users)| {
            let users = users
                .into_iter()
                .map(|(r, team, own)| User {
                    role: r
                        .filter(|_| !roles.is_empty())
                        .map(|i| i.index(roles.len())),
                    team,
                    own_sub: own,
                })
                .collect();
            Account { roles, users }
        })
}

fn operator() -> impl Strategy<Value = Operator> {
    (
        0..3usize,
        any::<bool>(),
        proptest::collection::vec(account(), 0..3),
    )
        .prop_map(|(signing_keys, strict, accounts)| Operator {
            signing_keys,
            strict: strict && signing_keys > 0,
            accounts,
        })
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders a manifest that is valid by construction: templates only in
/// scoped roles, every user of a tag template carries the tag, strict
/// operators sign every user with a role.
fn render(ops: &[Operator]) -> String {
    let mut t = String::from("[secrets]\nrecipients = [\"age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9\"]\n");
    for (oi, op) in ops.iter().enumerate() {
        let o = format!("op{oi}");
        let sks: Vec<String> = (0..op.signing_keys).map(|i| format!("ops{i}")).collect();
        let _ = writeln!(t, "\n[operators.{o}]\nsystem_account = \"SYS\"\nstrict_signing_key_usage = {}\nsigning_keys = [{}]", op.strict, list(&sks.iter().map(String::as_str).collect::<Vec<_>>()));
        let _ = writeln!(t, "[operators.{o}.accounts.SYS.signing_keys.admin]\n[operators.{o}.accounts.SYS.users.sys]\nsigner = \"admin\"");
        for (ai, acc) in op.accounts.iter().enumerate() {
            let a = format!("acc{ai}");
            let _ = writeln!(t, "[operators.{o}.accounts.{a}]");
            let mut roles = acc.roles.clone();
            if op.strict && roles.is_empty() && !acc.users.is_empty() {
                roles.push(Role {
                    scoped: false,
                    pub_allow: vec![],
                    sub_allow: vec![],
                    resp: false,
                });
            }
            for (ri, r) in roles.iter().enumerate() {
                let _ = writeln!(t, "[operators.{o}.accounts.{a}.signing_keys.role{ri}]");
                if r.scoped {
                    let _ = writeln!(
                        t,
                        "scoped = true\npub = {{ allow = [{}] }}\nsub = {{ allow = [{}] }}",
                        list(&r.pub_allow),
                        list(&r.sub_allow)
                    );
                    if r.resp {
                        let _ = writeln!(t, "resp = {{ max = 2, ttl = \"30s\" }}");
                    }
                }
            }
            for (ui, u) in acc.users.iter().enumerate() {
                let role = u.role.or(if op.strict { Some(0) } else { None });
                let _ = writeln!(t, "[operators.{o}.accounts.{a}.users.user{ui}]");
                if let Some(r) = role {
                    let _ = writeln!(t, "signer = \"role{r}\"");
                }
                let scoped = role.is_some_and(|r| roles[r].scoped);
                let needs_team = scoped
                    && roles[role.unwrap()]
                        .pub_allow
                        .iter()
                        .chain(&roles[role.unwrap()].sub_allow)
                        .any(|s| s.contains("tag(team)"));
                if let Some(team) = u.team.or(needs_team.then_some("green")) {
                    let _ = writeln!(t, "tags = [\"team:{team}\"]");
                }
                if !scoped && !u.own_sub.is_empty() {
                    let _ = writeln!(t, "sub = {{ allow = [{}] }}", list(&u.own_sub));
                }
            }
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn apply_converges_and_a_second_apply_writes_nothing(ops in proptest::collection::vec(operator(), 1..3)) {
        let manifest = render(&ops);
        let p = Project::with_manifest("natsform.toml", &manifest);
        p.apply();
        let plan = p.run(&["plan", "--detailed-exitcode"]);
        prop_assert_eq!(plan.code, 0, "plan after apply is not empty:\n{}\nmanifest:\n{}", plan.stdout, manifest);
        let files = p.files();
        let mtimes: Vec<_> = files.iter().map(|(f, _)| fs::metadata(p.path().join(f)).unwrap().modified().unwrap()).collect();
        let again = p.apply();
        prop_assert!(again.stdout.contains("No changes."), "{}", again.stdout);
        prop_assert_eq!(p.files(), files);
        let after: Vec<_> = p.files().iter().map(|(f, _)| fs::metadata(p.path().join(f)).unwrap().modified().unwrap()).collect();
        prop_assert_eq!(after, mtimes);
    }
}
