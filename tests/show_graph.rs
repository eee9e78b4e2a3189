//! Issue 11, item 4: `natsform show --format dot|mermaid` draws the trust
//! tree of the store. The DOT output must be accepted by Graphviz's `dot`
//! (Debian's graphviz; `.ci/run` installs it), both formats are
//! snapshotted for the walkthrough, and hostile names from the store stay
//! text in both: no node, edge or markup of their own.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cli::{demo_identity, Project};

/// `dot -Tsvg` of `source`: the SVG, or why Graphviz refused it. Bounded:
/// killed after 60 seconds.
fn dot_svg(source: &str) -> Result<String, String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `dot` (install Debian's graphviz): {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    let input = source.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("dot did not finish within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap().map_err(|e| e.to_string())?;
    let svg = reader.join().unwrap().map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    if !status.success() || !stderr.trim().is_empty() {
        return Err(format!("dot refused it ({status}): {stderr}\n{source}"));
    }
    Ok(svg)
}

/// Node and edge statements in natsform's DOT output.
fn dot_counts(dot: &str) -> (usize, usize) {
    let nodes = dot
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('n')
                && t.split_once(' ').is_some_and(|(id, rest)| {
                    id[1..].bytes().all(|b| b.is_ascii_digit()) && rest.starts_with("[label=")
                })
        })
        .count();
    let is_id =
        |s: &str| s.len() > 1 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit());
    let edges = dot
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(is_id)
                && words.next() == Some("->")
                && words.next().is_some_and(is_id)
                && words.next().is_some_and(|w| w.starts_with('['))
        })
        .count();
    (nodes, edges)
}

fn svg_counts(svg: &str) -> (usize, usize) {
    (
        svg.matches("class=\"node\"").count(),
        svg.matches("class=\"edge\"").count(),
    )
}

#[test]
fn walkthrough_as_dot_is_accepted_by_graphviz() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let run = natsform_snapshot!(project, ["show", "--format", "dot"]);
    let svg = dot_svg(&run.stdout).unwrap();
    // Everything drawn: 13 nodes (operator, its key, 3 accounts, 2 roles,
    // 1 plain key, 5 users) and 12 edges.
    assert_eq!(dot_counts(&run.stdout), (13, 12), "{}", run.stdout);
    assert_eq!(svg_counts(&svg), (13, 12));
    for text in [
        "signing_key.O2/A/service#v1",
        "sub allow: q.&gt;",
        // Graphviz writes `-` as `&#45;`.
        "role team&#45;service",
        "user joe",
    ] {
        assert!(svg.contains(text), "`{text}` not drawn:\n{svg}");
    }
}

#[test]
fn walkthrough_as_mermaid() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let run = natsform_snapshot!(project, ["show", "--format", "mermaid"]);
    assert_mermaid_is_well_formed(&run.stdout);
}

#[test]
fn the_same_store_draws_the_same_picture_and_a_filter_keeps_the_parents() {
    let project = Project::from_example("walkthrough", "natsform.toml");
    project.apply();
    let a = project.run(&["show", "--format", "dot"]).success().stdout;
    let b = project.run(&["show", "--format", "dot"]).success().stdout;
    assert_eq!(a, b);
    let run = natsform_snapshot!(project, ["show", "--format", "mermaid", "user.O2/sales/"]);
    assert_mermaid_is_well_formed(&run.stdout);
    let sales = project
        .run(&["show", "--format", "dot", "user.O2/sales/"])
        .success()
        .stdout;
    dot_svg(&sales).unwrap();
    // The operator, its key, account sales and its role, pam and joe.
    assert_eq!(dot_counts(&sales).0, 6, "{sales}");
    assert!(!sales.contains("account A"), "{sales}");
}

const IMPORTS: &str = r#"
[secrets]
recipients = ["age13c6rnmx24dn4ykcpx3rdwgnjc5v7cmzgdjxcq4n8p0znf09j2ayst7y6m9"]

[operators.demo]
system_account = "SYS"

[operators.demo.accounts.SYS.users.admin]

[[operators.demo.accounts.orders.exports]]
name = "orders API"
subject = "orders.api.>"
type = "service"

[[operators.demo.accounts.orders.exports]]
name = "order events"
subject = "orders.events.>"
type = "stream"

[operators.demo.accounts.orders.users.api]

[[operators.demo.accounts.shop.imports]]
name = "orders API"
subject = "orders.api.>"
from = "orders"
local_subject = "orders.>"
type = "service"

[[operators.demo.accounts.shop.imports]]
name = "order events"
subject = "orders.events.>"
from = "orders"
type = "stream"

[[operators.demo.accounts.shop.imports]]
name = "partner prices"
subject = "prices.>"
account = "AA6IO54GZ6MARAS7VS4OCPSG2MLPVUPGE34NUY2JQ5D4JQ5TTPW4LFTZ"
type = "stream"

[operators.demo.accounts.shop.users.web]
"#;

#[test]
fn imports_are_edges_from_importer_to_exporter() {
    let project = Project::with_manifest("natsform.toml", IMPORTS);
    project.apply();
    let run = natsform_snapshot!(project, ["show", "--format", "dot"]);
    let svg = dot_svg(&run.stdout).unwrap();
    assert_eq!(svg_counts(&svg), dot_counts(&run.stdout));
    let dot = &run.stdout;
    let node_of = |label: &str| {
        dot.lines()
            .find(|l| l.contains(&format!("[label=\"{label}\\n")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no node `{label}`:\n{dot}"))
            .to_string()
    };
    let (shop, orders) = (node_of("account shop"), node_of("account orders"));
    let outside = node_of("account not shown");
    for (to, label) in [
        (&orders, "imports service orders.api.> as orders.>"),
        (&orders, "imports stream orders.events.>"),
        (&outside, "imports stream prices.>"),
    ] {
        let edge = format!("  {shop} -> {to} [label=\"{label}\"");
        assert!(dot.contains(&edge), "`{edge}` missing:\n{dot}");
    }
    let mermaid = project
        .run(&["show", "--format", "mermaid"])
        .success()
        .stdout;
    assert_mermaid_is_well_formed(&mermaid);
    assert!(
        mermaid.contains(&format!(
            "  {shop} ==>|\"imports service orders.api.#62; as orders.#62;\"| {orders}"
        )),
        "{mermaid}"
    );
}

#[test]
fn a_damaged_jwt_and_a_foreign_signer_are_drawn_as_such() {
    let project = Project::with_manifest("natsform.toml", IMPORTS);
    project.apply();
    let other = Project::with_manifest("natsform.toml", IMPORTS);
    other.apply();
    let users = project.path().join("store/demo/accounts/shop/users");
    fs::write(users.join("web.jwt"), "garbage").unwrap();
    // A user JWT signed by another project's account key.
    fs::copy(
        other
            .path()
            .join("store/demo/accounts/orders/users/api.jwt"),
        users.join("api.jwt"),
    )
    .unwrap();
    let dot = project.run(&["show", "--format", "dot"]).success().stdout;
    let svg = dot_svg(&dot).unwrap();
    assert_eq!(svg_counts(&svg), dot_counts(&dot));
    let line_of = |text: &str| {
        dot.lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("`{text}` missing:\n{dot}"))
            .trim()
            .to_string()
    };
    let web = line_of("user web");
    assert!(web.contains("\\ninvalid: "), "{web}");
    assert!(web.contains("color=red"), "{web}");
    let web_id = web.split_whitespace().next().unwrap();
    assert!(
        !dot.lines().any(|l| l.contains(&format!("-> {web_id} "))),
        "a damaged JWT has no signer:\n{dot}"
    );
    let api = line_of("[label=\"user api\"");
    let api_ids: Vec<&str> = dot
        .lines()
        .filter(|l| l.contains("[label=\"user api\""))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(api_ids.len(), 2, "{api}\n{dot}");
    let foreign = line_of("signer not in the store");
    let foreign_id = foreign.split_whitespace().next().unwrap();
    let edge = format!("  {foreign_id} -> {} [label=\"signs\"];", api_ids[1]);
    assert!(dot.contains(&edge), "`{edge}` missing:\n{dot}");
    let mermaid = project
        .run(&["show", "--format", "mermaid"])
        .success()
        .stdout;
    assert_mermaid_is_well_formed(&mermaid);
    assert!(
        mermaid.contains(&format!("  class {web_id} invalid\n")),
        "{mermaid}"
    );
}

/// A role name, an import subject and a store file name an attacker chose:
/// quotes, brackets, `-->`, `%%`, HTML, an entity, a newline.
const HOSTILE_ROLE: &str =
    "r\"]; n0 -> n1 [label=\"x\n]--> n2 %%{init}%% <img src=x onerror=alert(1)> &#60; `md`";
const HOSTILE_SUBJECT: &str = "a.\"|]-->\"<b>.&amp;";
const HOSTILE_FILE: &str = "u\"];n0->n1[label=\"y]-->z %%<img src=x>&#60;`|";

fn hostile_project() -> Project {
    use natsform::keys::{Identities, IdentitySources, Vault};
    let project = Project::with_manifest("natsform.toml", IMPORTS);
    project.apply();
    // Re-sign shop's account JWT with its real issuer: a scoped key whose
    // role is hostile, and an import whose subject is.
    let path = project.path().join("store/demo/accounts/shop/shop.jwt");
    let token = fs::read_to_string(&path).unwrap();
    let mut claims: natsform::claims::AccountClaims = natsform::claims::decode_as(&token).unwrap();
    let ids = Identities::load(&IdentitySources {
        paths: vec![demo_identity()],
        ..Default::default()
    })
    .unwrap();
    let signer = Vault::new(project.path().join("vault"))
        .get(&claims.data.iss, &ids)
        .unwrap();
    // A fresh account key as the hostile role's key (not in the lock).
    let role_key = natsform::keys::generate(natsform::keys::KeyKind::Account).public_key();
    let mut scope = natsform::claims::UserScope::new(HOSTILE_ROLE);
    scope.template.permissions.publish.allow = vec![HOSTILE_SUBJECT.to_string()];
    claims.nats.signing_keys.0.insert(role_key, Some(scope));
    claims.nats.imports[0].subject = HOSTILE_SUBJECT.to_string();
    claims.data.iat += 1;
    let token = natsform::claims::encode(&mut claims, &signer).unwrap();
    fs::write(&path, token).unwrap();
    // A user JWT under a hostile file name.
    let users = project.path().join("store/demo/accounts/shop/users");
    fs::copy(
        users.join("web.jwt"),
        users.join(format!("{HOSTILE_FILE}.jwt")),
    )
    .unwrap();
    project
}

#[test]
fn hostile_names_stay_text_in_dot() {
    let project = hostile_project();
    let dot = project.run(&["show", "--format", "dot"]).success().stdout;
    let svg = dot_svg(&dot).unwrap();
    let (nodes, edges) = dot_counts(&dot);
    // Nothing injected: Graphviz draws exactly the statements natsform wrote,
    // one per line, and no line but natsform's own holds an edge.
    assert_eq!(svg_counts(&svg), (nodes, edges), "{dot}");
    assert_eq!(
        dot.lines().count(),
        dot.lines().filter(|l| !l.is_empty()).count()
    );
    assert!(!svg.contains("<img"), "{svg}");
    assert!(!svg.contains("<b>"), "{svg}");
    // Shown as written (the newline as `\u{a}`), XML-escaped by Graphviz;
    // the entity stays an entity's text.
    for shown in [
        "role r&quot;]; n0 &#45;&gt; n1 [label=&quot;x\\u{a}]&#45;&#45;&gt; n2 %%{init}%% &lt;img src=x onerror=alert(1)&gt; &amp;#60; `md`",
        "user u&quot;];n0&#45;&gt;n1[label=&quot;y]&#45;&#45;&gt;z %%&lt;img src=x&gt;&amp;#60;`|",
        "a.&quot;|]&#45;&#45;&gt;&quot;&lt;b&gt;.&amp;amp;",
    ] {
        assert!(svg.contains(shown), "`{shown}` not drawn as text:\n{svg}");
    }
    assert_no_controls(&dot);
}

#[test]
fn hostile_names_stay_text_in_mermaid() {
    let project = hostile_project();
    let mermaid = project
        .run(&["show", "--format", "mermaid"])
        .success()
        .stdout;
    assert_mermaid_is_well_formed(&mermaid);
    assert_no_controls(&mermaid);
    // Decoded as Mermaid decodes entity codes, the labels hold the names.
    let decoded = decode_mermaid_entities(&mermaid);
    for shown in [
        format!("role {}", HOSTILE_ROLE.replace('\n', "\\u{a}")),
        format!("user {HOSTILE_FILE}"),
        format!("pub allow: {HOSTILE_SUBJECT}"),
        format!("imports service {HOSTILE_SUBJECT} as orders.>"),
    ] {
        assert!(decoded.contains(&shown), "`{shown}` missing:\n{decoded}");
    }
}

fn assert_no_controls(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
}

fn decode_mermaid_entities(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('#') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(';') {
            let code: u32 = tail[..digits].parse().unwrap();
            out.push(char::from_u32(code).unwrap());
            rest = &tail[digits + 1..];
        } else {
            out.push('#');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Every line is one of the statements natsform writes, and every quoted
/// label holds only characters that cannot end it or start markup: ASCII
/// letters, digits, space, `._-/:,*+=@()`, entity codes `#N;` and `<br/>`.
fn assert_mermaid_is_well_formed(text: &str) {
    fn label_ok(label: &str) -> bool {
        let label = label.replace("<br/>", " ");
        let mut chars = label.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '#' {
                let mut digits = 0;
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                    digits += 1;
                }
                if digits == 0 || chars.next() != Some(';') {
                    return false;
                }
            } else if !(c.is_ascii_alphanumeric() || " ._-/:,*+=@()".contains(c)) {
                return false;
            }
        }
        true
    }
    fn id_ok(id: &str) -> bool {
        id.len() > 1
            && (id.starts_with('n') || id.starts_with('g'))
            && id[1..].bytes().all(|b| b.is_ascii_digit())
    }
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart TB"), "{text}");
    let mut depth = 0i32;
    for line in lines {
        let t = line.trim_start();
        let ok = if t == "end" {
            depth -= 1;
            depth >= 0
        } else if let Some(rest) = t.strip_prefix("subgraph ") {
            depth += 1;
            rest.split_once(" [\"")
                .is_some_and(|(id, l)| id_ok(id) && l.strip_suffix("\"]").is_some_and(label_ok))
        } else if t.starts_with("classDef ") || t.starts_with("class ") {
            !t.contains('"')
        } else {
            let split = t
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(t.len());
            let (id, rest) = t.split_at(split);
            if let Some(rest) = rest.strip_prefix(' ') {
                // An edge: `nA -.- nB`, `nA -->|"…"| nB`, `nA ==>|"…"| nB`.
                let (link, to) = rest.rsplit_once(' ').unwrap_or(("", ""));
                let link_ok = link == "-.-"
                    || ["-->|\"", "==>|\""].iter().any(|p| {
                        link.strip_prefix(p)
                            .and_then(|l| l.strip_suffix("\"|"))
                            .is_some_and(label_ok)
                    });
                id_ok(id) && id.starts_with('n') && id_ok(to) && link_ok
            } else {
                // A node: `nN` then one of the shapes around a quoted label.
                id_ok(id)
                    && id.starts_with('n')
                    && [
                        ("[\"", "\"]"),
                        ("([\"", "\"])"),
                        ("(\"", "\")"),
                        ("[/\"", "\"/]"),
                    ]
                    .iter()
                    .any(|(open, close)| {
                        rest.strip_prefix(open)
                            .and_then(|s| s.strip_suffix(close))
                            .is_some_and(label_ok)
                    })
            }
        };
        assert!(ok, "not a statement natsform writes: {line:?}\n{text}");
    }
    assert_eq!(depth, 0, "unbalanced subgraphs:\n{text}");
}
