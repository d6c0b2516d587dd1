//! Backups inside a running server: background jobs with progress (`POST /backups`, restores),
//! one backup at a time, the schedule, and the listing that merges what is on disk with what
//! this process is doing. The HTTP routes are glue over this.

use crate::manifest::{self, Verified};
use crate::{
    create, prune, restore, ArchiveHead, BackupError, CreateOptions, RestoreOptions,
    TelemetryRange, Until,
};
use async_nats::jetstream::Context;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Looks up the archive's chain head at a position (it may wait for the archive to get there).
pub type HeadLookup = Arc<dyn Fn(u64) -> BoxFuture<'static, Option<ArchiveHead>> + Send + Sync>;

/// Where and how a server keeps backups.
#[derive(Clone)]
pub struct ServiceConfig {
    pub dir: PathBuf,
    pub create: CreateOptions,
    /// Retention after each backup.
    pub keep: Option<usize>,
    pub keep_days: Option<u32>,
    /// Restores go into the deployment behind this context (a namespace beside the live one);
    /// `None`: restores are refused.
    pub restore_target: Option<Context>,
    pub restore: RestoreOptions,
    /// Scheduled backups also take the telemetry stored in this window before them.
    pub scheduled_telemetry: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Completed,
    Failed,
}

/// A job's progress as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub state: JobState,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `verify`, `restore` then `telemetry` for a restore; `events` then `telemetry` for a
    /// backup.
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub error: Option<String>,
    pub result: Option<Value>,
}

impl Job {
    fn running(phase: &str) -> Self {
        Self {
            state: JobState::Running,
            started_at: chrono::Utc::now(),
            finished_at: None,
            phase: phase.to_owned(),
            done: 0,
            total: 0,
            error: None,
            result: None,
        }
    }
}

#[derive(Default)]
struct Jobs {
    /// Backups this process made or is making, by backup id.
    backups: HashMap<String, Job>,
    /// Restores this process ran or runs, by backup id.
    restores: HashMap<String, Job>,
}

#[derive(Clone)]
pub struct BackupService {
    js: Context,
    config: ServiceConfig,
    head: Option<HeadLookup>,
    /// Where each backup's outcome is recorded (the live log).
    log: Option<mc_commands::BackupLog>,
    jobs: Arc<Mutex<Jobs>>,
}

impl BackupService {
    pub fn new(
        js: Context,
        config: ServiceConfig,
        head: Option<HeadLookup>,
        log: Option<mc_commands::BackupLog>,
    ) -> Self {
        Self {
            js,
            config,
            head,
            log,
            jobs: Arc::default(),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn schema_version(&self) -> i64 {
        self.config.create.schema_version
    }

    /// Start a backup in the background; its id. Refused while another one runs. `actor`
    /// (the principal, or the schedule) is recorded with its outcome in the log.
    pub fn start_backup(
        &self,
        actor: &str,
        scheduled: bool,
        telemetry: Option<TelemetryRange>,
    ) -> Result<String, BackupError> {
        let id = crate::create::new_id();
        {
            let mut jobs = self.jobs();
            if jobs.backups.values().any(|j| j.state == JobState::Running) {
                return Err(BackupError::Refused("a backup is already running".into()));
            }
            jobs.backups.insert(id.clone(), Job::running("events"));
        }
        let this = self.clone();
        let job_id = id.clone();
        let actor = actor.to_owned();
        tokio::spawn(async move {
            let outcome = this.run_backup(&job_id, telemetry).await;
            if let Some(log) = &this.log {
                match &outcome {
                    Ok(m) => match manifest::digest(&this.config.dir, &m.id) {
                        Ok(digest) => {
                            crate::record::completed(log, &actor, m, &digest, scheduled).await
                        }
                        Err(e) => {
                            tracing::warn!(id = %m.id, error = %e, "backup not recorded: its digest is unreadable")
                        }
                    },
                    Err(e) => {
                        crate::record::failed(log, &actor, &job_id, &e.to_string(), scheduled).await
                    }
                }
            }
            let mut jobs = this.jobs();
            if let Some(job) = jobs.backups.get_mut(&job_id) {
                job.finished_at = Some(chrono::Utc::now());
                match outcome {
                    Ok(m) => {
                        job.state = JobState::Completed;
                        job.result =
                            Some(json!({"first": m.first, "last": m.last, "messages": m.messages}));
                        tracing::info!(id = %job_id, last = m.last, messages = m.messages, "backup completed");
                    }
                    Err(e) => {
                        job.state = JobState::Failed;
                        job.error = Some(e.to_string());
                        tracing::error!(id = %job_id, error = %e, "backup failed");
                    }
                }
            }
        });
        Ok(id)
    }

    async fn run_backup(
        &self,
        id: &str,
        telemetry: Option<TelemetryRange>,
    ) -> Result<crate::Manifest, BackupError> {
        let mut options = self.config.create.clone();
        options.id = Some(id.to_owned());
        options.telemetry = telemetry;
        let jobs = self.jobs.clone();
        let draft = create(&self.js, &self.config.dir, &options, |phase, p| {
            if let Some(job) = jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .backups
                .get_mut(id)
            {
                phase.clone_into(&mut job.phase);
                job.done = p.done;
                job.total = p.total;
            }
        })
        .await?;
        let head = match &self.head {
            Some(lookup) => lookup(draft.last()).await,
            None => None,
        };
        let manifest = draft.finish(head)?;
        let dir = self.config.dir.clone();
        let (keep, days) = (self.config.keep, self.config.keep_days);
        let removed = tokio::task::spawn_blocking(move || {
            prune(
                &dir,
                keep,
                days.map(|d| chrono::Duration::days(i64::from(d))),
            )
        })
        .await
        .map_err(|e| BackupError::Refused(e.to_string()))??;
        for old in removed {
            tracing::info!(id = %old, "retention removed a backup");
        }
        Ok(manifest)
    }

    /// Backups on disk and this process's jobs, oldest first:
    /// `{id, state, createdAt?, first?, last?, messages?, compressedBytes?, progress?, error?}`.
    pub fn list(&self) -> Result<Vec<Value>, BackupError> {
        let (complete, partial) = manifest::list(&self.config.dir, i64::MAX)?;
        let jobs = self.jobs();
        let mut items: Vec<Value> = Vec::new();
        for r in complete {
            items.push(match r {
                Ok(m) => m.summary(),
                Err((id, e)) => json!({"id": id, "state": "unreadable", "error": e.to_string()}),
            });
        }
        for id in partial {
            match jobs.backups.get(&id) {
                Some(job) if job.state == JobState::Running => items.push(json!({"id": id, "state": "running",
                    "startedAt": job.started_at, "progress": {"done": job.done, "total": job.total}})),
                _ => items.push(json!({"id": id, "state": "failed",
                    "error": jobs.backups.get(&id).and_then(|j| j.error.clone())
                        .unwrap_or_else(|| "its writer stopped before it was complete".into())})),
            }
        }
        items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(items)
    }

    /// One backup: its manifest (and this process's restore of it, if any), or the job that is
    /// writing it.
    pub fn get(&self, id: &str) -> Result<Value, BackupError> {
        let restore = self.jobs().restores.get(id).cloned();
        match manifest::read(&self.config.dir, id, i64::MAX) {
            Ok(m) => {
                let mut v =
                    serde_json::to_value(&m).map_err(|e| BackupError::Corrupt(e.to_string()))?;
                v["state"] = "completed".into();
                if let Some(r) = restore {
                    v["restore"] = serde_json::to_value(r).unwrap_or_default();
                }
                Ok(v)
            }
            Err(BackupError::Incomplete(_) | BackupError::UnknownBackup(_)) => {
                manifest::path_of(&self.config.dir, id)?;
                match self.jobs().backups.get(id) {
                    Some(job) => Ok(
                        json!({"id": id, "state": job.state, "startedAt": job.started_at,
                        "progress": {"done": job.done, "total": job.total}, "error": job.error}),
                    ),
                    None => Err(BackupError::UnknownBackup(id.to_owned())),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Re-hash and decode every segment (on a blocking thread).
    pub async fn verify(&self, id: &str) -> Result<Verified, BackupError> {
        let (dir, id, schema) = (
            self.config.dir.clone(),
            id.to_owned(),
            self.schema_version(),
        );
        tokio::task::spawn_blocking(move || manifest::verify(&dir, &id, schema, |_, _| {}))
            .await
            .map_err(|e| BackupError::Refused(e.to_string()))?
    }

    /// Start restoring backup `id` into the configured restore target, in the background.
    pub fn start_restore(
        &self,
        id: &str,
        until: Option<Until>,
        skip_telemetry: bool,
    ) -> Result<(), BackupError> {
        let Some(target) = self.config.restore_target.clone() else {
            return Err(BackupError::Refused(
                "no restore target is configured (MC_RESTORE_NATS_URL): restores go into a deployment beside the live one".into(),
            ));
        };
        // Checked up front so an unknown id is a 404, not a failed job.
        manifest::read(&self.config.dir, id, self.schema_version())?;
        {
            let mut jobs = self.jobs();
            if jobs.restores.values().any(|j| j.state == JobState::Running) {
                return Err(BackupError::Refused("a restore is already running".into()));
            }
            jobs.restores.insert(id.to_owned(), Job::running("verify"));
        }
        let this = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let mut options = this.config.restore.clone();
            options.until = until;
            options.skip_telemetry = skip_telemetry;
            options.schema_version = this.schema_version();
            let jobs = this.jobs.clone();
            let outcome = restore(&target, &this.config.dir, &id, &options, |phase, p| {
                if let Some(job) = jobs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .restores
                    .get_mut(&id)
                {
                    phase.clone_into(&mut job.phase);
                    job.done = p.done;
                    job.total = p.total;
                }
            })
            .await;
            let mut jobs = this.jobs();
            if let Some(job) = jobs.restores.get_mut(&id) {
                job.finished_at = Some(chrono::Utc::now());
                match outcome {
                    Ok(r) => {
                        job.state = JobState::Completed;
                        job.result = serde_json::to_value(r).ok();
                    }
                    Err(e) => {
                        job.state = JobState::Failed;
                        job.error = Some(e.to_string());
                        tracing::error!(id = %id, error = %e, "restore failed");
                    }
                }
            }
        });
        Ok(())
    }

    /// Back up every `every` until `cancel`; a backup still running when the next is due is
    /// not doubled (the next one waits for the following tick).
    pub fn spawn_schedule(&self, every: Duration, cancel: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let telemetry = this
                    .config
                    .scheduled_telemetry
                    .map(|window| TelemetryRange {
                        from: chrono::Duration::from_std(window)
                            .ok()
                            .and_then(|w| chrono::Utc::now().checked_sub_signed(w)),
                        to: None,
                    });
                match this.start_backup("system:backup-schedule", true, telemetry) {
                    Ok(id) => tracing::info!(id = %id, "scheduled backup started"),
                    Err(e) => tracing::warn!(error = %e, "scheduled backup skipped"),
                }
            }
        });
    }
}

/// A [`HeadLookup`] from an async function.
pub fn head_lookup<F>(f: F) -> HeadLookup
where
    F: Fn(u64) -> BoxFuture<'static, Option<ArchiveHead>> + Send + Sync + 'static,
{
    Arc::new(f)
}
