//! `backup verify <id> --drill`: a backup that has never been restored is not trusted. Restore
//! it into a scratch deployment (an empty NATS and an empty database the operator names),
//! rebuild every read model there with the server's own projectors (wall-clock sweepers off, no
//! command service: nothing is appended), then compare with the live system at the backup's
//! position: the archive's hash chain, and every read model's checksum when the live system is
//! still at that position. Exits 1 unless the restore is faithful.

use crate::progress::Bar;
use anyhow::Context as _;
use mc_backup::{Manifest, RestoreOptions};
use serde::Serialize;
use sqlx::PgPool;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where a drill restores to, and the live database it compares with.
pub struct DrillTarget {
    pub nats_url: String,
    pub database_url: String,
    pub live_database_url: Option<String>,
    /// Longest wait for the scratch projectors to reach the backup's last position.
    pub timeout: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TableResult {
    table: String,
    live_rows: i64,
    restored_rows: i64,
    equal: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    id: String,
    position: u64,
    faithful: bool,
    restored_chain_holds: bool,
    restored_head: Option<String>,
    backup_head: Option<String>,
    live_head: Option<String>,
    read_models: Option<Vec<TableResult>>,
    notes: Vec<String>,
}

async fn pool(url: &str) -> anyhow::Result<PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connect to postgres")
}

/// The lowest checkpoint of the consumers of `MC_EVENTS` (not the telemetry consumers).
async fn min_checkpoint(pool: &PgPool) -> u64 {
    let row: Result<(Option<i64>,), _> = sqlx::query_as(
        "SELECT min(position) FROM projection_checkpoints WHERE name NOT LIKE 'telemetry-%'",
    )
    .fetch_one(pool)
    .await;
    row.ok().and_then(|(p,)| p).unwrap_or(0).max(0) as u64
}

pub async fn drill(
    dir: &Path,
    id: &str,
    target: DrillTarget,
    json_out: bool,
) -> anyhow::Result<bool> {
    // 1. Restore (it verifies every byte first).
    let client = async_nats::ConnectOptions::new()
        .name("mission-control drill")
        .connect(mc_api::nats_addrs(&target.nats_url)?)
        .await
        .with_context(|| format!("connect to the drill's nats at {}", target.nats_url))?;
    let js = async_nats::jetstream::new(client.clone());
    let options = RestoreOptions {
        schema_version: mc_projections::latest_migration(),
        ..Default::default()
    };
    let mut bar = Bar::new("drill restore", "events");
    let restored = mc_backup::restore(&js, dir, id, &options, |phase, p| {
        if phase == "restore" {
            bar.show(p.done, p.total);
        }
    })
    .await
    .with_context(|| format!("restore backup {id} into the drill's nats"))?;
    bar.finish();
    let manifest: Manifest =
        mc_backup::manifest::read(dir, id, mc_projections::latest_migration())?;
    let last = restored.last;

    // 2. Rebuild every read model in the scratch database with the server's own projectors.
    let mut config = mc_api::Config::local(target.nats_url.clone(), target.database_url.clone());
    config.serve_nats_commands = false;
    config.sweepers = false;
    let app = mc_api::Application::build(config)
        .await
        .context("start the drill's projectors")?;
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.run(cancel.clone()));
    let scratch = pool(&target.database_url).await?;
    let started = Instant::now();
    let mut bar = Bar::new("drill rebuild", "events");
    loop {
        let at = min_checkpoint(&scratch).await;
        bar.show(at.min(last), last);
        if at >= last {
            break;
        }
        if started.elapsed() > target.timeout {
            cancel.cancel();
            let _ = server.await;
            anyhow::bail!(
                "the drill's projectors reached only position {at} of {last} in {:?}",
                target.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish();

    // 3. Compare.
    let mut notes = Vec::new();
    let chain = mc_projections::audit::verify(&scratch, |_| {}).await?;
    let restored_head = mc_projections::audit::head_at(&scratch, last)
        .await?
        .map(|(_, h)| h);
    let backup_head = manifest.archive_head.as_ref().map(|h| h.hash.clone());
    if manifest
        .archive_head
        .as_ref()
        .is_some_and(|h| h.position != last)
    {
        notes.push("the backup recorded the archive's head below its last position".to_owned());
    }
    let mut faithful = chain.holds;
    if !chain.holds {
        notes.push(format!(
            "the restored archive's chain breaks at position {:?}",
            chain.first_broken_position
        ));
    }
    if let (Some(b), Some(r)) = (&backup_head, &restored_head) {
        if manifest
            .archive_head
            .as_ref()
            .is_some_and(|h| h.position == last)
            && b != r
        {
            faithful = false;
            notes.push(
                "the restored archive's head differs from the one the backup recorded".into(),
            );
        }
    }
    let mut live_head = None;
    let mut read_models = None;
    if let Some(url) = &target.live_database_url {
        let live = pool(url).await?;
        live_head = mc_projections::audit::head_at(&live, last)
            .await?
            .map(|(_, h)| h);
        if live_head != restored_head {
            faithful = false;
            notes.push(format!(
                "the live archive's head at position {last} differs from the restored one"
            ));
        }
        // The live read models are comparable while the live log has nothing after the
        // backup but backup records (which change no read model but the archive, compared up
        // to the backup's position).
        let live_at = min_checkpoint(&live).await;
        let (live_max, later): (Option<i64>, i64) = sqlx::query_as(
            "SELECT max(position), count(*) FILTER (WHERE position > $1 AND aggregate_type <> 'backup') FROM events",
        )
        .bind(last as i64)
        .fetch_one(&live)
        .await?;
        let live_max = live_max.unwrap_or(0).max(0) as u64;
        if live_at >= live_max && live_max >= last && later == 0 {
            let agents = mc_commands::AgentService::new(
                mc_commands::Handler::new(mc_eventlog::EventLog::new(client.clone())),
                mc_commands::NameRegistry::new(js.clone()),
            );
            let mut tables = Vec::new();
            for projection in mc_api::all_projections(&agents) {
                for table in projection.tables() {
                    let (live_rows, live_sum) =
                        mc_projections::audit::table_checksum(&live, table, last).await?;
                    let (restored_rows, restored_sum) =
                        mc_projections::audit::table_checksum(&scratch, table, last).await?;
                    let equal = live_rows == restored_rows && live_sum == restored_sum;
                    faithful &= equal;
                    tables.push(TableResult {
                        table: (*table).to_owned(),
                        live_rows,
                        restored_rows,
                        equal,
                    });
                }
            }
            read_models = Some(tables);
        } else {
            notes.push(format!(
                "read models not compared: the live system is at position {live_max} (projections at {live_at}), the backup at {last}"
            ));
        }
    } else {
        notes.push(
            "no live database given (MC_DATABASE_URL): only the restored chain was checked".into(),
        );
    }
    if let Some(t) = &restored.telemetry {
        notes.push(format!(
            "telemetry restored up to position {} with its positions; its read models are not compared (the live system keeps telemetry outside the backup's range)",
            t.last
        ));
    }
    cancel.cancel();
    let _ = server.await;

    let report = Report {
        id: id.to_owned(),
        position: last,
        faithful,
        restored_chain_holds: chain.holds,
        restored_head,
        backup_head,
        live_head,
        read_models,
        notes,
    };
    if json_out {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "drill of backup {id} at position {last}: {}",
            if faithful { "FAITHFUL" } else { "NOT FAITHFUL" }
        );
        println!(
            "  restored archive chain holds: {}",
            report.restored_chain_holds
        );
        for (name, head) in [
            ("backup", &report.backup_head),
            ("restored", &report.restored_head),
            ("live", &report.live_head),
        ] {
            println!("  {name:<9} head: {}", head.as_deref().unwrap_or("-"));
        }
        for t in report.read_models.iter().flatten() {
            println!(
                "  {:<26} live {:>8} rows, restored {:>8} rows  {}",
                t.table,
                t.live_rows,
                t.restored_rows,
                if t.equal { "equal" } else { "DIFFERENT" }
            );
        }
        for note in &report.notes {
            println!("  note: {note}");
        }
    }
    Ok(faithful)
}
