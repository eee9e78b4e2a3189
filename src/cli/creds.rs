//! `natsform creds`: a user's creds file, byte for byte as nsc writes it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use super::lock::{self, LockArgs};
use super::Output;
use crate::claims;
use crate::fsutil::write_atomic;
use crate::keys::{Identities, IdentitySources, KeyPair, UserSeeds, Vault, BUNDLE_SUFFIX};
use crate::plan::ActionKind;
use crate::runlock::Mode;
use crate::tree::ObjectId;
use crate::workspace::Workspace;
use std::collections::HashMap;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users as `ACCOUNT/USER` or `OPERATOR/ACCOUNT/USER`. With --out and no
    /// users, every user whose seed natsform holds.
    pub users: Vec<String>,
    /// Write `<DIR>/<operator>/<account>/<user>.creds` (mode 0600) instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// age identity file to decrypt seeds with (repeatable); without it,
    /// $NATSFORM_AGE_IDENTITY, $NATSFORM_AGE_KEY, $SOPS_AGE_KEY_FILE,
    /// $SOPS_AGE_KEY, then the default files (see below).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    #[command(flatten)]
    pub lock: LockArgs,
}

pub fn run(args: Args, path: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    // Printing creds only reads (shared). Writing them takes the lock alone,
    // so that sweeping the temporary files an interrupted `creds --out` left
    // cannot remove those of a concurrent one.
    let mode = if args.out.is_some() {
        Mode::Exclusive
    } else {
        Mode::Shared
    };
    let _lock = lock::take(path, mode, &args.lock, out)?;
    // Signatures an earlier run verified are taken from the user's cache
    // (at 100,000 users, checking every one was most of the time); the
    // JWTs of the users asked for, their accounts and operators are
    // verified again below, ignoring it, before anything is printed.
    let ws = Workspace::open_cached(
        path,
        crate::workspace::Signatures::Remembered,
        crate::workspace::Parsing::Always,
    )?;
    ws.cache_notes().iter().for_each(|n| out.note(n));
    let vault = Vault::new(&ws.vault_dir);
    let ids: Vec<ObjectId> = if args.users.is_empty() {
        if args.out.is_none() {
            bail!("name a user, e.g. `natsform creds A/U`\n  = help: with --out DIR and no user, creds of every user are written");
        }
        // A user whose stored JWT does not verify is listed too (when the
        // manifest names it with a seed natsform keeps): refused below,
        // never skipped in silence.
        ws.existing
            .iter()
            .filter(|(id, e)| {
                id.user.is_some()
                    && (holds_seed(&ws, &vault, id)
                        || (e.decoded.is_err() && named_keyless(&ws, id)))
            })
            .map(|(id, _)| id.clone())
            .collect()
    } else {
        args.users
            .iter()
            .map(|u| resolve(&ws, u))
            .collect::<anyhow::Result<_>>()?
    };
    let again = ws.verify_chains(&ids);
    super::plan::debug_verification(&ws, again.as_ref().ok().map(|n| (*n, "creds")));
    again?;
    let plan = ws.plan(crate::workspace::now());
    // One action per object: looked up, not searched, for each user (every
    // user of 100,000 with `--out`).
    let acted: std::collections::HashMap<&ObjectId, &crate::plan::Action> =
        plan.actions.iter().map(|a| (&a.id, a)).collect();
    for id in &ids {
        // Creds whose account (or operator) is not in the store yet would
        // not let the user in anywhere.
        let above = [Some(ObjectId::operator(&id.operator)), id.account_id()];
        if let Some(a) = above
            .iter()
            .flatten()
            .filter_map(|up| acted.get(up))
            .find(|a| a.action == ActionKind::Create)
        {
            bail!(
                "{} is not in the store yet, so creds of {} would not connect; run `natsform apply` first",
                a.address,
                id
            );
        }
        if let Some(a) = acted.get(id).filter(|a| a.action != ActionKind::Delete) {
            bail!(
                "{} has pending changes ({}); run `natsform apply` first",
                a.address,
                a.action.phrase()
            );
        }
    }
    let identities = Identities::load(&IdentitySources::from_env(args.identity))
        .context("creds need the user's seed")?;
    for w in identities.warnings() {
        out.warning(w);
    }
    if let Some(dir) = &args.out {
        let files: Vec<PathBuf> = ids.iter().map(|id| creds_path(dir, id)).collect();
        super::creds_guard::refuse_unignored(dir, &files)?;
        remove_leftovers(&ws, dir, out);
    }
    // Each account's bundle is opened once, however many of its users.
    let mut bundles: HashMap<String, Option<UserSeeds>> = HashMap::new();
    for id in &ids {
        let stored = ws
            .existing
            .get(id)
            .ok_or_else(|| anyhow!("{id} is not in the store; run `natsform apply` first"))?;
        let decoded = stored
            .decoded
            .as_ref()
            .map_err(|e| anyhow!("{id}: the stored JWT is not valid: {e}"))?;
        let kp = user_pair(&ws, &vault, id, &decoded.subject, &identities, &mut bundles)
            .with_context(|| {
                format!(
                    "{id}: reading the user's seed (users with a bring-your-own public_key have none)"
                )
            })?;
        let seed = kp
            .seed()
            .map_err(|_| anyhow!("{id}: the vault holds no seed for this user"))?;
        let text = claims::format_user_creds(&stored.token, &seed);
        match &args.out {
            None => out.result(&text),
            Some(dir) => {
                let file = creds_path(dir, id);
                // DIR is the caller's, but what is inside it may be the
                // branch's (an output directory in the checkout): a seed is
                // never written through a link there.
                crate::safepath::check_no_links(dir, &file)?;
                write_atomic(&file, text.as_bytes(), 0o600)
                    .with_context(|| format!("writing {}", file.display()))?;
                out.note(&format!("wrote {}", file.display()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `creds --out DIR` writes user `id`'s creds.
fn creds_path(dir: &Path, id: &ObjectId) -> PathBuf {
    dir.join(&id.operator)
        .join(id.account.as_deref().unwrap_or_default())
        .join(format!("{}.creds", id.name()))
}

/// Temporary files (each a full creds file, seed included) an interrupted
/// `creds --out DIR` left where it writes: DIR, DIR/<operator> and
/// DIR/<operator>/<account> for the manifest's operators and accounts. Only
/// there: DIR may be a large directory natsform does not own.
fn remove_leftovers(ws: &Workspace, dir: &Path, out: &Output) {
    let mut dirs = vec![dir.to_path_buf()];
    for (op, operator) in &ws.loaded.manifest.operators {
        dirs.push(dir.join(op));
        dirs.extend(operator.accounts.keys().map(|a| dir.join(op).join(a)));
    }
    // A link below DIR (`DIR/<operator>` pointing elsewhere) would make
    // the sweep remove files outside it: such directories are skipped.
    let dirs: Vec<(&Path, usize)> = dirs
        .iter()
        .filter(|d| crate::safepath::check_no_links(dir, d).is_ok())
        .map(|d| (d.as_path(), 0))
        .collect();
    lock::sweep(&dirs, out);
}

/// The error of `creds USER` without its account: every user of that name
/// the manifest declares, as the argument to write (at most ten).
fn user_without_account(ws: &Workspace, user: &str, several_operators: bool) -> String {
    const SHOWN: usize = 10;
    let matches: Vec<String> = ws
        .loaded
        .manifest
        .operators
        .iter()
        .flat_map(|(op, o)| {
            o.accounts
                .iter()
                .filter(|(_, a)| a.users.contains_key(user))
                .map(move |(acc, _)| {
                    if several_operators {
                        format!("{op}/{acc}/{user}")
                    } else {
                        format!("{acc}/{user}")
                    }
                })
        })
        .collect();
    let shown_user = crate::safepath::escape_line(user);
    let head = format!("`{shown_user}` is not a user: write ACCOUNT/USER or OPERATOR/ACCOUNT/USER");
    let list = |m: &[String]| {
        m.iter()
            .take(SHOWN)
            .map(|s| format!("`natsform creds {}`", crate::safepath::escape_line(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matches.len() {
        0 => format!("{head}\n  = help: no account of the manifest has a user `{shown_user}`"),
        1 => format!("{head}\n  = help: did you mean {}?", list(&matches)),
        n if n <= SHOWN => format!(
            "{head}\n  = help: {n} accounts have a user `{shown_user}`: {}",
            list(&matches)
        ),
        n => format!(
            "{head}\n  = help: {n} accounts have a user `{shown_user}`, among them {}",
            list(&matches)
        ),
    }
}

/// The account keys whose bundle may hold the seeds of `id`'s users: the
/// key the manifest names for its account first, then the lock's others.
fn account_keys(ws: &Workspace, id: &ObjectId) -> Vec<String> {
    use crate::manifest::address;
    let acc = id.account.as_deref().unwrap_or_default();
    let Some(account) = ws
        .loaded
        .manifest
        .operators
        .get(&id.operator)
        .and_then(|o| o.accounts.get(acc))
    else {
        return Vec::new();
    };
    let named = address::key(&address::account(&id.operator, acc), &account.key);
    let prefix = format!("{}#", address::account(&id.operator, acc));
    let mut keys: Vec<String> = ws
        .lock
        .get(&named)
        .map(str::to_string)
        .into_iter()
        .collect();
    for (a, k) in ws
        .lock
        .bindings()
        .range(prefix.clone()..)
        .take_while(|(a, _)| a.starts_with(&prefix))
    {
        if *a != named && !keys.iter().any(|x| x == k) {
            keys.push(k.to_string());
        }
    }
    keys
}

/// The key pair of user `id` (public key `public`): from its own seed file
/// (written before bundles), else from its account's bundle.
fn user_pair(
    ws: &Workspace,
    vault: &Vault,
    id: &ObjectId,
    public: &str,
    identities: &Identities,
    bundles: &mut HashMap<String, Option<UserSeeds>>,
) -> anyhow::Result<KeyPair> {
    if vault.contains(public) && !crate::safepath::is_link(&vault.seed_path(public)?) {
        return Ok(vault.get(public, identities)?);
    }
    let accounts = account_keys(ws, id);
    for account in &accounts {
        if !bundles.contains_key(account) {
            let opened = vault.open_bundle(account, identities)?;
            bundles.insert(account.clone(), opened);
        }
        if let Some(Some(seeds)) = bundles.get(account) {
            let kp = seeds.get(public).ok_or_else(|| {
                anyhow!("the seed bundle {account}{BUNDLE_SUFFIX} holds no seed for {public}")
            })?;
            return Ok(kp?);
        }
    }
    // Neither: the error names the file the seed should be in.
    let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
    Ok(vault.get_user(public, &refs, identities)?)
}

/// Whether the manifest names user `id` without a `public_key` of its own
/// (natsform generated its key and keeps its seed).
fn named_keyless(ws: &Workspace, id: &ObjectId) -> bool {
    ws.loaded
        .manifest
        .operators
        .get(&id.operator)
        .and_then(|o| o.accounts.get(id.account.as_deref().unwrap_or_default()))
        .and_then(|a| a.users.get(id.name()))
        .is_some_and(|u| u.public_key.is_none())
}

fn holds_seed(ws: &Workspace, vault: &Vault, id: &ObjectId) -> bool {
    let byo = !named_keyless(ws, id);
    ws.existing
        .get(id)
        .and_then(|e| e.decoded.as_ref().ok())
        .is_some_and(|d| {
            vault.contains(&d.subject)
                || (!byo && account_keys(ws, id).iter().any(|a| vault.has_bundle(a)))
        })
}

/// `A/U` (when the manifest has one operator) or `O/A/U`.
fn resolve(ws: &Workspace, spec: &str) -> anyhow::Result<ObjectId> {
    let parts: Vec<&str> = spec.split('/').collect();
    let ops: Vec<&String> = ws.loaded.manifest.operators.keys().collect();
    let id = match parts.as_slice() {
        [o, a, u] => ObjectId::user(o, a, u),
        [a, u] if ops.len() == 1 => ObjectId::user(ops[0], a, u),
        [_, _] => bail!("`{spec}` is ambiguous: the manifest has several operators; write OPERATOR/ACCOUNT/USER"),
        [u] => bail!(user_without_account(ws, u, ops.len() > 1)),
        _ => bail!("`{spec}` is not a user: write ACCOUNT/USER or OPERATOR/ACCOUNT/USER"),
    };
    let declared = ws
        .loaded
        .manifest
        .operators
        .get(&id.operator)
        .and_then(|o| o.accounts.get(id.account.as_deref().unwrap_or_default()))
        .is_some_and(|a| a.users.contains_key(id.name()));
    if !declared {
        bail!("{} is not declared in the manifest", id.address());
    }
    Ok(id)
}
