//! The flags that choose servers (`apply`, `plan --live`) and the live
//! read both commands share.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::Output;
use crate::deploy::{self, report::Progress, Overrides, Session, Target};
use crate::keys::{Identities, IdentitySources, Vault};
use crate::live::LiveState;
use crate::workspace::Workspace;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeployArgs {
    /// Push to (or read from) this server instead of the manifest's
    /// `resolver.urls` (repeatable; `nats://` or `tls://`).
    #[arg(long = "push", value_name = "URL")]
    pub push: Vec<String>,
    /// A creds file of a system-account user to connect as, instead of a
    /// short-lived user natsform mints with the system account's key.
    #[arg(long, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// PEM file of the CA that signed the servers' certificates.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of a TLS client certificate (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the TLS client certificate's key (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl DeployArgs {
    pub fn overrides(&self, no_push: bool) -> Overrides {
        Overrides {
            push: self.push.clone(),
            no_push,
            creds: self.creds.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// Opens a session to each target and reads what its servers hold. An
/// operator whose system-account key natsform.lock does not bind yet (a
/// first apply) has never been deployed: it is skipped, with a note, and
/// step 8 of apply connects with the new key.
pub fn read_live(
    ws: &Workspace,
    targets: &[Target],
    creds: Option<&PathBuf>,
    identities: &IdentitySources,
    out: &Output,
) -> Result<(Vec<LiveState>, std::collections::BTreeMap<String, Session>)> {
    let mut states = Vec::new();
    let mut sessions = std::collections::BTreeMap::new();
    let mut secrets: Option<Identities> = None;
    let bar = Progress::new(!out.quiet);
    for target in targets {
        let op = &target.operator;
        let credentials = match creds {
            Some(file) => deploy::auth::from_creds_file(file)?,
            None => {
                let addr = deploy::system_signer_address(ws, op)?;
                let Some(public) = ws.lock.get(&addr).map(str::to_string) else {
                    out.note(&format!("Operator {op}: natsform.lock binds no system-account key yet, so no server can hold its accounts; not reading them."));
                    continue;
                };
                let book = ws.key_book();
                let sys = deploy::system_account_key(ws, op, &book).ok_or_else(|| {
                    anyhow!("operator {op}: natsform.lock binds no system account key")
                })?;
                let ids = match &mut secrets {
                    Some(ids) => ids,
                    None => secrets.insert(Identities::load(identities).map_err(|e| {
                        anyhow!("{e:#}\n  = help: reaching the servers needs the system account's key from the vault: pass --identity (or set NATSFORM_AGE_IDENTITY), or --creds FILE")
                    })?),
                };
                let kp = Vault::new(&ws.vault_dir).get(&public, ids)?;
                deploy::auth::mint(&kp, &sys, deploy::wall_clock())?
            }
        };
        out.note(&format!("Reading what the servers of operator {op} hold…"));
        let mut session = Session::open(target, credentials)?;
        let state = session.read_live(&bar)?;
        for note in session.notes.drain(..) {
            out.warning(&note);
        }
        states.push(state);
        sessions.insert(op.clone(), session);
    }
    Ok((states, sessions))
}
