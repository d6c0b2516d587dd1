//! `backup create|list|verify|restore`: the `mc-backup` crate from the command line, with
//! progress bars and exit codes (1 on any refusal, with the reason).

use crate::nats::NatsArgs;
use crate::progress::Bar;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use mc_backup::{manifest, ArchiveHead, CreateOptions, RestoreOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up the event log (MC_EVENTS) up to its head now, and with --telemetry a time range
    /// of MC_TELEMETRY: zstd segments, SHA-256 manifest.
    Create(CreateArgs),
    /// List the backups in the directory, oldest first.
    List(DirArgs),
    /// Re-hash and decode every segment of a backup.
    Verify(VerifyArgs),
    /// Verify a backup, then restore it into a deployment whose MC_EVENTS is empty (or resume
    /// an unfinished restore of it). Start `serve` on a fresh database afterwards: it rebuilds
    /// every read model from the restored log.
    Restore(RestoreArgs),
}

#[derive(Args)]
pub struct DirArgs {
    /// Where backups are kept (a local or mounted directory).
    #[arg(long, env = "MC_BACKUP_DIR", default_value = "backups")]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    dir: DirArgs,
    #[command(flatten)]
    nats: NatsArgs,
    /// Record the archive's hash-chain head at the backup's last position (needs the database).
    #[arg(long, env = "MC_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Messages per segment at most.
    #[arg(long, default_value_t = 100_000)]
    segment_messages: u64,
    /// Afterwards keep only the newest N backups.
    #[arg(long, env = "MC_BACKUP_KEEP")]
    keep: Option<usize>,
    /// Afterwards delete backups older than N days (never the newest).
    #[arg(long, env = "MC_BACKUP_KEEP_DAYS")]
    keep_days: Option<u32>,
    /// Also back up telemetry (all that is kept, or the range of --telemetry-from/-to).
    #[arg(long)]
    telemetry: bool,
    /// Telemetry stored from this time: RFC 3339, or an age like 30m, 24h, 7d (implies
    /// --telemetry).
    #[arg(long)]
    telemetry_from: Option<String>,
    /// Telemetry stored up to this time: RFC 3339, or an age (implies --telemetry).
    #[arg(long)]
    telemetry_to: Option<String>,
}

impl CreateArgs {
    fn telemetry(&self) -> anyhow::Result<Option<mc_backup::TelemetryRange>> {
        if !self.telemetry && self.telemetry_from.is_none() && self.telemetry_to.is_none() {
            return Ok(None);
        }
        let now = chrono::Utc::now();
        let bound = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| mc_backup::TelemetryRange::parse_bound(s, now))
                .transpose()
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
        };
        let range = mc_backup::TelemetryRange::new(
            bound("--telemetry-from", &self.telemetry_from)?,
            bound("--telemetry-to", &self.telemetry_to)?,
        )
        .map_err(|e| anyhow::anyhow!("--telemetry-from/--telemetry-to: {e}"))?;
        Ok(Some(range))
    }
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The backup's id (see `backup list`).
    id: String,
    #[command(flatten)]
    dir: DirArgs,
    /// Also restore it into a scratch deployment, rebuild the read models there and compare
    /// them and the archive's hash chain with the live system (MC_DATABASE_URL).
    #[arg(long, requires_all = ["drill_nats_url", "drill_database_url"])]
    drill: bool,
    /// The scratch deployment's NATS: empty (or an unfinished drill of this backup).
    #[arg(long, env = "MC_DRILL_NATS_URL")]
    drill_nats_url: Option<String>,
    /// The scratch deployment's database: empty, with rights to migrate.
    #[arg(long, env = "MC_DRILL_DATABASE_URL", hide_env_values = true)]
    drill_database_url: Option<String>,
    /// The live database to compare with.
    #[arg(long, env = "MC_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Longest wait for the scratch read models, seconds.
    #[arg(long, default_value_t = 600)]
    drill_timeout_seconds: u64,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup's id (see `backup list`).
    id: String,
    #[command(flatten)]
    dir: DirArgs,
    /// The target deployment's NATS (its MC_EVENTS must be empty or an unfinished restore).
    #[command(flatten)]
    nats: NatsArgs,
    /// Restore up to this point only: a position, or an RFC 3339 time (the last event stored
    /// at or before it).
    #[arg(long, value_parser = mc_backup::Until::parse)]
    until: Option<mc_backup::Until>,
    /// Leave the backup's telemetry out (its telemetry is restored up to the same point in
    /// time as the events otherwise).
    #[arg(long)]
    skip_telemetry: bool,
}

pub async fn run(command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Create(args) => create(args).await,
        BackupCommand::List(args) => list(&args),
        BackupCommand::Verify(args) => verify(args).await,
        BackupCommand::Restore(args) => restore(args).await,
    }
}

fn schema_version() -> i64 {
    mc_projections::latest_migration()
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let client = args.nats.connect("mission-control backup").await?;
    let js = async_nats::jetstream::new(client.clone());
    // The outcome is recorded in the log it backs up, with the operator as its actor.
    let log = mc_commands::BackupLog::new(mc_commands::Handler::new(mc_eventlog::EventLog::new(
        client,
    )));
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let telemetry = args.telemetry()?;
    let id = mc_backup::new_id();
    let options = CreateOptions {
        telemetry,
        segment_messages: args.segment_messages.max(1),
        schema_version: schema_version(),
        software: format!("mission-control {}", env!("CARGO_PKG_VERSION")),
        id: Some(id.clone()),
        ..Default::default()
    };
    let started = Instant::now();
    let mut bar = Bar::new("backup", "events");
    let mut telemetry_bar = Bar::new("backup", "telemetry messages");
    let draft = match mc_backup::create(&js, &args.dir.dir, &options, |phase, p| match phase {
        "telemetry" => telemetry_bar.show(p.done, p.total),
        _ => bar.show(p.done, p.total),
    })
    .await
    {
        Ok(draft) => draft,
        Err(e) => {
            mc_backup::record::failed(&log, &actor, &id, &e.to_string(), false).await;
            return Err(anyhow::Error::new(e).context("back up MC_EVENTS"));
        }
    };
    bar.finish();
    telemetry_bar.finish();
    let head = match &args.database_url {
        Some(url) => archive_head(url, draft.last()).await?,
        None => None,
    };
    let m = draft.finish(head)?;
    let digest = manifest::digest(&args.dir.dir, &m.id)?;
    mc_backup::record::completed(&log, &actor, &m, &digest, false).await;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    if args.dir.json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        println!(
            "backup {} written to {}: positions {}..={}, {} events in {} segments, {:.1} MB compressed ({:.1} MB raw), {:.0} events/s, {:.1} MB/s",
            m.id,
            args.dir.dir.join(&m.id).display(),
            m.first,
            m.last,
            m.messages,
            m.segments.len(),
            m.compressed_bytes as f64 / 1e6,
            m.uncompressed_bytes as f64 / 1e6,
            m.messages as f64 / secs,
            m.uncompressed_bytes as f64 / 1e6 / secs,
        );
        if let Some(t) = &m.telemetry {
            println!(
                "telemetry: {} messages (positions {}..={}) in {} segments, {:.1} MB compressed",
                t.messages,
                t.first,
                t.last,
                t.segments.len(),
                t.compressed_bytes as f64 / 1e6
            );
        }
        match &m.archive_head {
            Some(h) => println!("archive head at position {}: {}", h.position, h.hash),
            None => println!("archive head not recorded (no --database-url or nothing archived)"),
        }
    }
    let removed = mc_backup::prune(
        &args.dir.dir,
        args.keep,
        args.keep_days.map(|d| chrono::Duration::days(i64::from(d))),
    )?;
    for id in removed {
        eprintln!("retention: removed backup {id}");
    }
    Ok(())
}

/// The archive's hash at `last` (the archive may lag the log: it waits up to 30 s for it).
async fn archive_head(url: &str, last: u64) -> anyhow::Result<Option<ArchiveHead>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connect to postgres")?;
    let head =
        mc_projections::audit::head_when_archived(&pool, last, Duration::from_secs(30)).await?;
    Ok(head.map(|(position, hash)| ArchiveHead { position, hash }))
}

fn list(args: &DirArgs) -> anyhow::Result<()> {
    let (complete, partial) = manifest::list(&args.dir, schema_version())?;
    if args.json {
        let items: Vec<serde_json::Value> = complete
            .iter()
            .map(|r| match r {
                Ok(m) => m.summary(),
                Err((id, e)) => {
                    serde_json::json!({"id": id, "state": "unreadable", "error": e.to_string()})
                }
            })
            .chain(
                partial
                    .iter()
                    .map(|id| serde_json::json!({"id": id, "state": "unfinished"})),
            )
            .collect();
        println!("{}", serde_json::json!({ "items": items }));
        return Ok(());
    }
    if complete.is_empty() && partial.is_empty() {
        println!("no backups in {}", args.dir.display());
        return Ok(());
    }
    for r in &complete {
        match r {
            Ok(m) => println!(
                "{}  {}  positions {}..={}  {} events{}  {:.1} MB",
                m.id,
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                m.first,
                m.last,
                m.messages,
                m.telemetry
                    .as_ref()
                    .map(|t| format!(" + {} telemetry messages", t.messages))
                    .unwrap_or_default(),
                (m.compressed_bytes + m.telemetry.as_ref().map_or(0, |t| t.compressed_bytes))
                    as f64
                    / 1e6
            ),
            Err((id, e)) => println!("{id}  unreadable: {e}"),
        }
    }
    for id in &partial {
        println!("{id}  unfinished (its writer stopped; safe to delete)");
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let (dir, id) = (args.dir.dir.clone(), args.id.clone());
    let started = Instant::now();
    let verified = tokio::task::spawn_blocking(move || {
        let mut bar = Bar::new("verify", "events");
        let r = manifest::verify(&dir, &id, schema_version(), |done, total| {
            bar.show(done, total)
        });
        bar.finish();
        r
    })
    .await?;
    let v = match verified {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: backup {} failed verification: {e}", args.id);
            std::process::exit(1);
        }
    };
    if args.drill {
        let target = crate::drill::DrillTarget {
            nats_url: args.drill_nats_url.clone().unwrap_or_default(),
            database_url: args.drill_database_url.clone().unwrap_or_default(),
            live_database_url: args.database_url.clone(),
            timeout: Duration::from_secs(args.drill_timeout_seconds),
        };
        if !crate::drill::drill(&args.dir.dir, &args.id, target, args.dir.json).await? {
            std::process::exit(1);
        }
        return Ok(());
    }
    if args.dir.json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "backup {} verified: {} segments, {} events (positions {}..={}){} in {:.1} s",
            args.id,
            v.segments_checked,
            v.messages_checked,
            v.manifest.first,
            v.manifest.last,
            if v.telemetry_messages_checked > 0 {
                format!(", {} telemetry messages", v.telemetry_messages_checked)
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let client = args.nats.connect("mission-control restore").await?;
    let js = async_nats::jetstream::new(client.clone());
    let options = RestoreOptions {
        until: args.until,
        skip_telemetry: args.skip_telemetry,
        schema_version: schema_version(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut verify_bar = Bar::new("verify", "events");
    let mut restore_bar = Bar::new("restore", "events");
    let mut telemetry_bar = Bar::new("restore", "telemetry messages");
    let result = mc_backup::restore(
        &js,
        &args.dir.dir,
        &args.id,
        &options,
        |phase, p| match phase {
            "verify" => verify_bar.show(p.done, p.total),
            "telemetry" => telemetry_bar.show(p.done, p.total),
            _ => restore_bar.show(p.done, p.total),
        },
    )
    .await;
    restore_bar.finish();
    telemetry_bar.finish();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: restore of backup {} refused or stopped: {e}",
                args.id
            );
            eprintln!("nothing is reported restored; a stopped restore resumes when run again");
            std::process::exit(1);
        }
    };
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let names_started = Instant::now();
    // Unique agent names are reserved in a KV bucket derived from the log: re-derive it.
    let agents = mc_commands::AgentService::new(
        mc_commands::Handler::new(mc_eventlog::EventLog::new(client)),
        mc_commands::NameRegistry::new(js),
    );
    let names = agents
        .restore_names()
        .await
        .context("reserve the restored agents' names")?;
    let names_secs = names_started.elapsed().as_secs_f64();
    if args.dir.json {
        let mut out = serde_json::to_value(&r)?;
        out["agentNames"] = names.into();
        println!("{out}");
    } else if r.written == 0 {
        println!("backup {} already restored up to position {}", r.id, r.last);
    } else {
        println!(
            "restored backup {} up to position {} ({} events written{}, {:.0} events/s with verification)",
            r.id,
            r.last,
            r.written,
            if r.resumed_after > 0 {
                format!(", resumed after {}", r.resumed_after)
            } else {
                String::new()
            },
            r.written as f64 / secs
        );
        if let Some(t) = &r.telemetry {
            println!(
                "restored telemetry up to position {} ({} messages written)",
                t.last, t.written
            );
        }
        println!("reserved the names of {names} agents in {names_secs:.1} s");
        println!("next: start `mission-control serve` against this NATS and a fresh database; it rebuilds every read model");
    }
    Ok(())
}

/// The backup settings of `serve`: `/api/v1/backups`, the schedule, retention, restore target.
#[derive(Args)]
pub struct ServeBackupArgs {
    /// Where `POST /api/v1/backups` and scheduled backups write.
    #[arg(long = "backup-dir", env = "MC_BACKUP_DIR", default_value = "backups")]
    backup_dir: PathBuf,
    /// Back up every N minutes (0: only on request).
    #[arg(long, env = "MC_BACKUP_EVERY_MINUTES", default_value_t = 0)]
    backup_every_minutes: u64,
    /// After each backup keep only the newest N.
    #[arg(long = "backup-keep", env = "MC_BACKUP_KEEP")]
    backup_keep: Option<usize>,
    /// After each backup delete those older than N days (never the newest).
    #[arg(long = "backup-keep-days", env = "MC_BACKUP_KEEP_DAYS")]
    backup_keep_days: Option<u32>,
    /// NATS of the deployment `POST /api/v1/backups/{id}/restore` restores into (beside the live
    /// one; credentials may be in the URL). Unset: restores over HTTP are refused.
    #[arg(long, env = "MC_RESTORE_NATS_URL", hide_env_values = true)]
    restore_nats_url: Option<String>,
    /// Scheduled backups also take the telemetry stored in the last N hours (0: none).
    #[arg(long, env = "MC_BACKUP_TELEMETRY_HOURS", default_value_t = 0)]
    backup_telemetry_hours: u64,
}

impl ServeBackupArgs {
    pub fn settings(&self) -> mc_api::BackupSettings {
        mc_api::BackupSettings {
            dir: self.backup_dir.clone(),
            every: (self.backup_every_minutes > 0)
                .then(|| Duration::from_secs(self.backup_every_minutes * 60)),
            keep: self.backup_keep,
            keep_days: self.backup_keep_days,
            restore_nats_url: self.restore_nats_url.clone(),
            scheduled_telemetry: (self.backup_telemetry_hours > 0)
                .then(|| Duration::from_secs(self.backup_telemetry_hours * 3_600)),
        }
    }
}
