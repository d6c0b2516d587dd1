//! `mission-control pricing seed`: write the seed price table (`mc_tasks::seed`) into the log,
//! with the service's own NATS credentials. Prices already there are left as they are.

use crate::nats::NatsArgs;
use clap::Subcommand;
use mc_commands::Handler;
use mc_eventlog::EventLog;

#[derive(Subcommand)]
pub enum PricingCommand {
    /// Write the public list prices of common models (and free local models) effective
    /// 2025-01-01; a price already set for a model at that time is kept.
    Seed {
        #[command(flatten)]
        nats: NatsArgs,
    },
}

pub async fn run(command: PricingCommand) -> anyhow::Result<()> {
    let PricingCommand::Seed { nats } = command;
    let client = nats.connect("mission-control pricing").await?;
    let log = EventLog::new(client);
    mc_eventlog::streams::provision(log.jetstream(), &Default::default()).await?;
    let service = mc_tasks::TaskService::new(Handler::new(log));
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let (written, kept) = service.seed_prices(&actor).await?;
    println!("pricing seed: {written} prices written, {kept} already there");
    Ok(())
}
