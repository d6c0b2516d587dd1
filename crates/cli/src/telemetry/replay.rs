//! `telemetry replay`: judge a time range of stored telemetry against the current limits or
//! limits from a file, with every side effect off, and print the alarm transitions they would
//! have caused.

use super::ReplayArgs;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use mc_domain::telemetry::LimitsHistory;
use mc_telemetry::replay::{replay as run_replay, ReplayOptions};
use std::collections::HashMap;
use std::time::Duration;

/// RFC 3339 or epoch milliseconds.
fn parse_time(s: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .with_context(|| format!("{flag}: {ms} is out of range"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{flag}: {s:?} is neither RFC 3339 nor epoch milliseconds"))
}

/// The limits of `--limits FILE`: the body of `PUT /spacecraft/{id}/config`, parsed as the API
/// parses it; they judge the whole range (the file's `effectiveAt` is not used).
fn limits_from_file(path: &std::path::Path) -> anyhow::Result<LimitsHistory> {
    let bytes =
        std::fs::read(path).with_context(|| format!("read limits from {}", path.display()))?;
    let (limits, _) = mc_api::spacecraft::parse_config_json(&bytes).map_err(|e| match e {
        mc_api::problem::ApiError::Validation(errors) => anyhow::anyhow!(
            "{}: {}",
            path.display(),
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{}: {other:?}", path.display()),
    })?;
    Ok(LimitsHistory::new(vec![(i64::MIN, 0, limits)]))
}

pub(super) async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let from = parse_time(&args.from, "--from")?;
    let to = match &args.to {
        Some(t) => parse_time(t, "--to")?,
        None => Utc::now(),
    };
    let limits: HashMap<String, LimitsHistory> = match (&args.limits, &args.spacecraft) {
        (Some(path), Some(sc)) => [(sc.clone(), limits_from_file(path)?)].into(),
        (Some(_), None) => {
            anyhow::bail!("--limits needs --spacecraft (the limits are one spacecraft's)")
        }
        (None, _) => {
            let url = args
                .database_url
                .as_deref()
                .context("without --limits the current limits are read from the database: set MC_DATABASE_URL")?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connect to postgres")?;
            mc_telemetry::load_limits(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("load limits: {e}"))?
        }
    };
    let client = args
        .nats
        .connect("mission-control telemetry replay")
        .await?;
    let js = async_nats::jetstream::new(client);
    let options = ReplayOptions {
        spacecraft: args.spacecraft.clone(),
        from,
        to,
        speed: args.speed,
        limits,
        max_future_ms: 5 * 60 * 1000,
    };
    let json = args.json;
    if !json {
        println!(
            "{:<26} {:<10} {:<16} {:<20} value",
            "sample time", "spacecraft", "parameter", "transition"
        );
    }
    let report = run_replay(&js, &options, |t| {
        if json {
            println!("{}", serde_json::to_string(t).unwrap_or_default());
        } else {
            let at = DateTime::from_timestamp_millis(t.sample_time_ms).map_or_else(
                || t.sample_time_ms.to_string(),
                |d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
            let transition = serde_json::to_value(t)
                .ok()
                .and_then(|v| v["transition"].as_str().map(str::to_owned))
                .unwrap_or_default();
            println!(
                "{at:<26} {:<10} {:<16} {transition:<20} {}",
                t.spacecraft, t.parameter, t.value
            );
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("replay: {e}"))?;
    eprintln!(
        "replayed {} frames (positions {}..{}): {} alarm transitions; nothing was sent or stored",
        report.frames,
        report.first_position.map_or("-".into(), |p| p.to_string()),
        report.last_position.map_or("-".into(), |p| p.to_string()),
        report.transitions
    );
    Ok(())
}
