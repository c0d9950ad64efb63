//! `huashi serve`: parses the flags and runs the gateway (see the huashi-gateway crate).

use clap::Args;

#[derive(Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not built yet")
}
