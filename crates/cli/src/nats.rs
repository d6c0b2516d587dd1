//! The NATS connection settings every command shares: server URLs and the credentials
//! (`MC_NATS_USER`/`MC_NATS_PASSWORD`, `MC_NATS_NKEY_SEED_FILE` or `MC_NATS_CREDS`).

use anyhow::Context as _;
use clap::Args;
use mc_eventlog::connect::{NatsAuth, NatsAuthSettings};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "MC_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS user (with `--nats-password`), as listed in the server config's `accounts` section.
    #[arg(long, env = "MC_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password of `--nats-user`. (Its value is never printed by `--help`.)
    #[arg(long, env = "MC_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// A file holding a NATS user nkey seed (`SU…`).
    #[arg(long, env = "MC_NATS_NKEY_SEED_FILE")]
    pub nats_nkey_seed_file: Option<PathBuf>,
    /// A NATS `.creds` file (operator/JWT mode servers).
    #[arg(long, env = "MC_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
}

impl NatsArgs {
    /// The credentials these settings choose (an error names a contradiction).
    pub fn auth(&self) -> anyhow::Result<NatsAuth> {
        Ok(NatsAuth::from_settings(&NatsAuthSettings {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            nkey_seed_file: self.nats_nkey_seed_file.clone(),
            creds_file: self.nats_creds.clone(),
        })?)
    }

    /// Connect with these settings (waits for the first connection).
    pub async fn connect(&self, name: &str) -> anyhow::Result<async_nats::Client> {
        self.auth()?
            .apply(async_nats::ConnectOptions::new().name(name))?
            .connect(mc_api::nats_addrs(&self.nats_url)?)
            .await
            .with_context(|| format!("connect to nats at {}", self.nats_url))
    }
}
