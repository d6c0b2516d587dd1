//! `mission-control tokens create|list|revoke` and `mission-control permissions`: API tokens
//! are events in the log, issued here with the service's own NATS credentials.

use crate::nats::NatsArgs;
use anyhow::Context as _;
use clap::Subcommand;
use mc_auth::registry::TokenRegistry;
use mc_auth::tokens::{self, NewToken};
use mc_commands::{CommandContext, Handler, TokenService};
use mc_eventlog::EventLog;

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Issue a token and print its secret (shown once; only its hash is stored).
    Create {
        /// A name for the token's holder (a person, a service, a producer).
        #[arg(long)]
        name: String,
        /// viewer, producer, operator or admin.
        #[arg(long)]
        role: String,
        /// When it stops working: RFC 3339 (`2027-01-01T00:00:00Z`) or a duration from now
        /// (`90d`, `12h`, `30m`).
        #[arg(long)]
        expires: Option<String>,
        /// For a producer: the spacecraft it may publish for, comma-separated.
        #[arg(long, value_delimiter = ',')]
        spacecraft: Vec<String>,
        /// Print only the token (for scripts).
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// List every token (never a secret or a hash).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Revoke a token (its id, or the whole token); every running server refuses it within
    /// a second.
    Revoke {
        id: String,
        /// Why (kept in the event).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// `--expires`: an RFC 3339 time or `<n>d|h|m` from now.
fn parse_expiry(input: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(input) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (n, unit) = input.split_at(input.len().saturating_sub(1));
    let n: i64 = n.parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("--expires {input:?}: expected an RFC 3339 time or e.g. 90d, 12h, 30m")
    })?;
    let span = match unit {
        "d" => chrono::Duration::days(n),
        "h" => chrono::Duration::hours(n),
        "m" => chrono::Duration::minutes(n),
        _ => anyhow::bail!("--expires {input:?}: the unit must be d, h or m"),
    };
    Ok(chrono::Utc::now() + span)
}

async fn service(nats: &NatsArgs) -> anyhow::Result<(EventLog, TokenService)> {
    let client = nats.connect("mission-control tokens").await?;
    let log = EventLog::new(client);
    mc_eventlog::streams::provision(log.jetstream(), &Default::default())
        .await
        .context("provision streams")?;
    Ok((log.clone(), TokenService::new(Handler::new(log))))
}

/// The local operator running the CLI (with the service's NATS credentials).
fn ctx() -> CommandContext {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    CommandContext::new(format!("cli:{user}"), None)
}

pub async fn run(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            name,
            role,
            expires,
            spacecraft,
            quiet,
            nats,
        } => {
            let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
            let (_, service) = service(&nats).await?;
            let new = NewToken {
                name,
                role,
                spacecraft,
                expires_at,
            };
            let (secret, _) = tokens::issue(&service, &ctx(), new)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if quiet {
                println!("{}", secret.expose());
            } else {
                println!("token id: {}", secret.id);
                println!("token:    {}", secret.expose());
                println!("(shown once; send it as `Authorization: Bearer <token>`)");
            }
        }
        TokensCommand::List { json, nats } => {
            let client = nats.connect("mission-control tokens").await?;
            let js = async_nats::jetstream::new(client);
            let registry =
                tokio::time::timeout(std::time::Duration::from_secs(30), TokenRegistry::load(&js))
                    .await
                    .context("timed out reading the token events")?
                    .map_err(|e| anyhow::anyhow!("read the token events: {e}"))?;
            let all = registry.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<36}  {:<9}  {:<8}  {:<20}  name",
                    "id", "role", "state", "expires"
                );
                for t in all {
                    let state = if t.revoked { "revoked" } else { "active" };
                    println!(
                        "{:<36}  {:<9}  {:<8}  {:<20}  {}{}",
                        t.id,
                        t.role,
                        state,
                        t.expires_at.as_deref().unwrap_or("never"),
                        t.name,
                        if t.spacecraft.is_empty() {
                            String::new()
                        } else {
                            format!(" (spacecraft {})", t.spacecraft.join(","))
                        }
                    );
                }
            }
        }
        TokensCommand::Revoke { id, reason, nats } => {
            let id = tokens::parse_id(&id).map_err(|e| anyhow::anyhow!("{e}"))?;
            let (_, service) = service(&nats).await?;
            let done = service
                .revoke(&ctx(), id, reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            match done.position {
                Some(p) => println!("token {id} revoked (position {p})"),
                None => println!("token {id} was already revoked"),
            }
        }
    }
    Ok(())
}
