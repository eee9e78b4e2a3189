//! The plan a reviewer reads for each kind of change, snapshotted: start
//! from the applied walkthrough, edit the manifest (or the store), plan.
//! Keys are random, so public keys are shown as `<their lock address>`.

mod support;

use std::fs;

use support::cli::Project;

fn applied() -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    p.apply();
    p
}

fn edit(p: &Project, from: &str, to: &str) {
    let text = fs::read_to_string(&p.manifest).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}");
    fs::write(&p.manifest, text.replacen(from, to, 1)).unwrap();
}

fn plan(p: &Project) -> String {
    let run = p.run_without_identity(&["plan"]).success();
    p.redact(&run.stdout)
}

#[test]
fn adding_a_user() {
    let p = applied();
    edit(&p, "[operators.O2.accounts.A.users.worker]", "[operators.O2.accounts.A.users.reporter]\nsigner = \"main\"\nsub = { allow = [\"reports.>\"] }\n\n[operators.O2.accounts.A.users.worker]");
    insta::assert_snapshot!(plan(&p));
}

#[test]
fn changing_a_role_shows_effective_permissions_of_each_user() {
    let p = applied();
    edit(&p, "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\"] }", "sub = { allow = [\"{{account-name()}}.{{tag(team)}}.{{name()}}.>\", \"{{account-name()}}.{{tag(team)}}.shared.>\"] }");
    let text = plan(&p);
    assert!(
        text.contains("sales.support.shared.>") && text.contains("sales.leads.shared.>"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn changing_an_account_tag_a_template_reads_shows_each_users_effective_permissions() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.sales.signing_keys.team-service]\nsub = { allow = [\"{{account-name()}}.",
        "[operators.O2.accounts.sales]\ntags = [\"region:eu\"]\n\n[operators.O2.accounts.sales.signing_keys.team-service]\nsub = { allow = [\"{{account-tag(region)}}.{{account-name()}}.",
    );
    p.apply();
    edit(&p, "tags = [\"region:eu\"]", "tags = [\"region:us\"]");
    // Only the account's tags change: its users' JWTs stay, and what they
    // may do follows the account's new tag.
    let text = plan(&p);
    for user in ["pam", "joe"] {
        assert!(
            text.contains(&format!(
                "user.O2/sales/{user}: effective permissions change"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("us.sales.support.pam.>") && text.contains("eu.sales.support.pam.>"),
        "{text}"
    );
}

#[test]
fn deleting_a_user_of_a_templated_role_changes_no_other_users_permissions() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.sales.users.pam]\nsigner = \"team-service\"\ntags = [\"team:support\"]\n",
        "",
    );
    let text = plan(&p);
    assert!(
        text.contains("revokes user.O2/sales/pam (not in the manifest)"),
        "{text}"
    );
    assert!(!text.contains("effective permissions change"), "{text}");
}

#[test]
fn rotating_an_account_signing_key_reissues_its_users() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.service]",
        "[operators.O2.accounts.A.signing_keys.service]\nkeys = [\"v2\"]",
    );
    let text = plan(&p);
    assert!(
        text.contains("issuer key `signing_key.O2/A/service#v1` removed"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn two_step_rotation_first_adds_then_drops_the_old_key() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.service]",
        "[operators.O2.accounts.A.signing_keys.service]\nkeys = [\"v2\", \"v1\"]",
    );
    let step1 = plan(&p);
    assert!(step1.contains("which stays trusted"), "{step1}");
    p.apply();
    edit(&p, "keys = [\"v2\", \"v1\"]", "keys = [\"v2\"]");
    let step2 = plan(&p);
    assert!(
        step2.contains("Plan: 0 to create, 1 to update, 0 to re-issue, 0 to replace, 0 to delete."),
        "{step2}"
    );
    insta::assert_snapshot!("two_step_rotation_step1", step1);
    insta::assert_snapshot!("two_step_rotation_step2", step2);
}

#[test]
fn rotating_the_operator_signing_key_reissues_every_account() {
    let p = applied();
    edit(&p, "signing_keys = [\"ops\"]", "signing_keys = [\"ops-2\"]");
    let text = plan(&p);
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 3 to re-issue, 0 to replace, 0 to delete."),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn deleting_a_user_revokes_it_in_its_account() {
    let p = applied();
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "",
    );
    let text = plan(&p);
    assert!(
        text.contains("revokes user.O2/A/U (not in the manifest)"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn deleting_an_account_deletes_it_and_its_users() {
    let p = applied();
    let text = fs::read_to_string(&p.manifest).unwrap();
    let start = text
        .find("[operators.O2.accounts.sales.signing_keys.team-service]")
        .unwrap();
    fs::write(&p.manifest, &text[..start]).unwrap();
    insta::assert_snapshot!(plan(&p));
}

#[test]
fn deleting_the_system_account_needs_allow_destroy() {
    let p = applied();
    edit(&p, "system_account = \"SYS\"", "system_account = \"A\"");
    edit(&p, "[operators.O2.accounts.SYS.users.sys]\n", "");
    let text = plan(&p);
    assert!(
        text.contains("Warning: account.O2/SYS would be deleted"),
        "{text}"
    );
    let before = p.files();
    let run = p.run(&["apply", "--auto-approve"]).failure();
    assert!(run.stderr.contains("--allow-destroy"), "{}", run.stderr);
    assert_eq!(p.files(), before, "nothing may change");
    p.run(&["apply", "--auto-approve", "--allow-destroy"])
        .success();
    assert!(!p.path().join("store/O2/accounts/SYS").exists());
}

#[test]
fn a_tampered_store_jwt_is_reported_and_reissued() {
    let p = applied();
    let path = p.path().join("store/O2/accounts/A/users/U.jwt");
    let jwt = fs::read_to_string(&path).unwrap();
    // Grant more permissions in the payload without re-signing.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let payload = data_encoding::BASE64URL_NOPAD
        .decode(parts[1].as_bytes())
        .unwrap();
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace("\"pub\":{}", "\"pub\":{\"allow\":[\"admin.>\"]}");
    parts[1] = data_encoding::BASE64URL_NOPAD.encode(forged.as_bytes());
    fs::write(&path, parts.join(".")).unwrap();
    let text = plan(&p);
    assert!(
        text.contains("user.O2/A/U will be re-issued") && text.contains("cannot be trusted"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    p.apply();
    assert!(p
        .run_without_identity(&["plan"])
        .success()
        .stdout
        .contains("No changes."));
}

#[test]
fn a_jwt_near_its_relative_expiry_is_reissued() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\nexpires = \"60d\"\n",
    );
    let t0 = "1800000000";
    p.run_env(&["apply", "--auto-approve"], &[("NATSFORM_NOW", t0)])
        .success();
    let u = support::nats::jwt_claims(&p.store_file("O2/accounts/A/users/U.jwt"));
    assert_eq!(
        u["exp"].as_i64().unwrap() - u["iat"].as_i64().unwrap(),
        60 * 86_400
    );
    // 20 days later: still 40 days to go, outside the 30-day window.
    let later = (1_800_000_000i64 + 20 * 86_400).to_string();
    assert!(p
        .run_env(&["plan"], &[("NATSFORM_NOW", &later)])
        .success()
        .stdout
        .contains("No changes."));
    // 40 days later: 20 days to go.
    let near = (1_800_000_000i64 + 40 * 86_400).to_string();
    let text = p.redact_keeping_dates(
        &p.run_env(&["plan"], &[("NATSFORM_NOW", &near)])
            .success()
            .stdout,
    );
    // The same rule: the dates, and no `expires` change in the diff.
    assert!(
        text.contains("expires in 20d (re-issued within 30d of expiry)")
            && text.contains("expires: 2027-03-16T08:00:00Z → 2027-04-25T08:00:00Z (rule unchanged: 60d after each issue)")
            && text.contains("(claims unchanged)"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    p.run_env(&["apply", "--auto-approve"], &[("NATSFORM_NOW", &near)])
        .success();
    let u2 = support::nats::jwt_claims(&p.store_file("O2/accounts/A/users/U.jwt"));
    assert_eq!(
        u2["exp"].as_i64().unwrap(),
        near.parse::<i64>().unwrap() + 60 * 86_400
    );
    assert!(p
        .run_env(&["plan"], &[("NATSFORM_NOW", &near)])
        .success()
        .stdout
        .contains("No changes."));
}

#[test]
fn a_fixed_expiry_inside_the_window_is_a_warning_not_a_reissue() {
    let p = Project::from_example("walkthrough", "natsform.toml");
    edit(
        &p,
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\n",
        "[operators.O2.accounts.A.users.U]\nsigner = \"main\"\nexpires = 2027-01-01\n",
    );
    p.run_env(
        &["apply", "--auto-approve"],
        &[("NATSFORM_NOW", "1795000000")],
    )
    .success();
    // 2026-12-27: five days before the fixed date.
    let run = p.run_env(
        &["plan", "--detailed-exitcode"],
        &[("NATSFORM_NOW", "1798329600")],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Warning: user.O2/A/U: expires in 5d, on the fixed date"),
        "{}",
        run.stdout
    );
}

/// 2027-01-15T08:00:00Z: the clock of every run below that applies.
const T0: i64 = 1_800_000_000;

fn at(t: i64) -> String {
    t.to_string()
}

/// The walkthrough with `expires = "90d"` on `worker` (signed by role
/// `service`), applied at [`T0`]: its JWT expires 2027-04-15T08:00:00Z.
fn applied_with_a_relative_expiry(rule: &str) -> Project {
    let p = Project::from_example("walkthrough", "natsform.toml");
    edit(
        &p,
        "[operators.O2.accounts.A.users.worker]\nsigner = \"service\"\n",
        &format!(
            "[operators.O2.accounts.A.users.worker]\nsigner = \"service\"\nexpires = \"{rule}\"\n"
        ),
    );
    p.run_env(&["apply", "--auto-approve"], &[("NATSFORM_NOW", &at(T0))])
        .success();
    p
}

/// The lines of `user.O2/A/worker`'s block in a text plan.
fn worker_block(text: &str) -> String {
    let start = text
        .find("# user.O2/A/worker")
        .unwrap_or_else(|| panic!("no worker in {text}"));
    let rest = &text[start..];
    rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
}

#[test]
fn a_role_key_rotation_reissues_users_under_the_same_expiry_rule_without_an_expires_change() {
    let p = applied_with_a_relative_expiry("90d");
    let show = p.run(&["show", "user.O2/A/worker"]).success().stdout;
    assert!(
        show.contains("issued: 2027-01-15T08:00:00Z")
            && show.contains("expires: 2027-04-15T08:00:00Z"),
        "{show}"
    );
    edit(
        &p,
        "[operators.O2.accounts.A.signing_keys.service]",
        "[operators.O2.accounts.A.signing_keys.service]\nkeys = [\"v2\"]",
    );
    // Ten days later.
    let t1 = T0 + 10 * 86_400;
    let text = p.redact_keeping_dates(
        &p.natsform(&["plan"])
            .without_identity()
            .env("NATSFORM_NOW", at(t1))
            .run()
            .success()
            .stdout,
    );
    let worker = worker_block(&text);
    assert!(
        worker.contains("will be re-issued")
            && worker.contains("reason: issuer key `signing_key.O2/A/service#v1` removed")
            && worker.contains(
                "expires: 2027-04-15T08:00:00Z → 2027-04-25T08:00:00Z (rule unchanged: 90d after each issue)"
            )
            && worker.contains("(claims unchanged)"),
        "{worker}"
    );
    assert!(
        !worker.contains("- expires") && !worker.contains("+ expires"),
        "{worker}"
    );
    insta::assert_snapshot!(text);

    // The pull-request comment says the same.
    let md = p
        .run_env(
            &["plan", "--format", "markdown"],
            &[("NATSFORM_NOW", &at(t1))],
        )
        .success()
        .stdout;
    let worker_md = &md[md
        .find("<b>user.O2/A/worker</b> will be re-issued")
        .expect(&md)..];
    let worker_md = &worker_md[..worker_md.find("</details>").unwrap()];
    assert!(
        worker_md.contains(
            r"- expires 2027\-04\-15T08:00:00Z → 2027\-04\-25T08:00:00Z \(rule unchanged: 90d after each issue\)"
        ) && worker_md.contains("(claims unchanged)")
            && !worker_md.contains("- expires:")
            && !worker_md.contains("+ expires:"),
        "{worker_md}"
    );

    // The JSON document: no false change either, the rule and the stored
    // date in `expires`, and nothing that depends on the clock.
    let json: serde_json::Value = serde_json::from_str(
        &p.run_env(&["plan", "--json"], &[("NATSFORM_NOW", &at(t1))])
            .success()
            .stdout,
    )
    .unwrap();
    let action = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "user.O2/A/worker")
        .unwrap();
    assert_eq!(action["before"], action["after"], "{action}");
    assert!(action["after"]
        .as_str()
        .unwrap()
        .contains("expires: 90d after each issue\n"));
    assert_eq!(
        action["expires"],
        serde_json::json!({"rule": "90d after each issue", "stored": "2027-04-15T08:00:00Z", "same_rule": true})
    );

    // A plan saved now still matches a minute later: the date beside the
    // rule is not part of the saved document.
    let plan_file = p.path().join("plan.json");
    p.run_env(
        &["plan", "--out", plan_file.to_str().unwrap()],
        &[("NATSFORM_NOW", &at(t1))],
    )
    .success();
    p.run_env(
        &["apply", plan_file.to_str().unwrap()],
        &[("NATSFORM_NOW", &at(t1 + 60))],
    )
    .success();
    let u = support::nats::jwt_claims(&p.store_file("O2/accounts/A/users/worker.jwt"));
    assert_eq!(u["exp"].as_i64().unwrap(), t1 + 60 + 90 * 86_400);
    assert!(p
        .run_env(&["plan"], &[("NATSFORM_NOW", &at(t1 + 60))])
        .success()
        .stdout
        .contains("No changes."));
}

#[test]
fn changing_the_expiry_rule_shows_the_old_and_the_new_date() {
    let p = applied_with_a_relative_expiry("90d");
    edit(&p, "expires = \"90d\"", "expires = \"45d\"");
    let t1 = T0 + 10 * 86_400;
    let text = p.redact_keeping_dates(
        &p.run_env(&["plan"], &[("NATSFORM_NOW", &at(t1))])
            .success()
            .stdout,
    );
    let worker = worker_block(&text);
    assert!(
        worker.contains("will be updated")
            && worker.contains("- expires: 2027-04-15T08:00:00Z\n")
            && worker.contains("+ expires: 2027-03-11T08:00:00Z (45d after each issue)\n")
            && !worker.contains("rule unchanged"),
        "{worker}"
    );
    insta::assert_snapshot!(text);
}
