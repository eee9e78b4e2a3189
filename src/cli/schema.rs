//! `natsform schema`: print the manifest's JSON Schema.

use std::process::ExitCode;

use super::Output;
use crate::manifest::schema::json_schema;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, out: &Output) -> anyhow::Result<ExitCode> {
    out.result(&json_schema());
    Ok(ExitCode::SUCCESS)
}
