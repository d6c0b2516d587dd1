//! Restore drills: a faithful backup is reported faithful table by table; a backup rewritten
//! consistently (segments, hashes, manifest) passes plain verification but not the drill.

use crate::backup::{backup_cli, copy_dir, history, stdout_json};
use crate::helpers::TestApp;
use mc_test_support::{NatsServer, TestDb};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Rewrite backup `id` under `dir` as someone who can write the backup volume would: the
/// commit at `position` gets another actor, and the segment's hash, size, the manifest and its
/// digest are all recomputed, so plain verification passes.
fn tamper(dir: &Path, id: &str, position: u64) {
    use mc_backup::manifest::{self, Manifest};
    use mc_backup::segment::Record;
    let root = dir.join(id);
    let mut m: Manifest =
        serde_json::from_slice(&std::fs::read(root.join(manifest::MANIFEST)).unwrap()).unwrap();
    let seg = m
        .segments
        .iter_mut()
        .find(|s| (s.first..=s.last).contains(&position))
        .unwrap();
    let mut records = Vec::new();
    manifest::read_segment(&root, seg, |mut r: Record| {
        if r.seq == position {
            let mut commit = mc_eventlog::Commit::decode(&r.payload).unwrap();
            commit.meta.actor = "token:forged/mallory".into();
            r.payload = commit.encode();
        }
        records.push(r);
        Ok(())
    })
    .unwrap();
    let mut raw = Vec::new();
    for r in &records {
        r.write_to(&mut raw).unwrap();
    }
    let compressed = zstd::encode_all(raw.as_slice(), 3).unwrap();
    std::fs::write(root.join(&seg.file), &compressed).unwrap();
    seg.bytes = compressed.len() as u64;
    seg.sha256 = manifest::sha256_hex(&compressed);
    let text = serde_json::to_vec_pretty(&m).unwrap();
    std::fs::write(root.join(manifest::MANIFEST), &text).unwrap();
    std::fs::write(
        root.join(manifest::MANIFEST_DIGEST),
        manifest::sha256_hex(&text),
    )
    .unwrap();
}

async fn drill_cli(app: &TestApp, dir: &str, id: &str) -> Output {
    let (nats, db) = (NatsServer::start().await, TestDb::new().await);
    let mut command = Command::new(env!("CARGO_BIN_EXE_mission-control"));
    command
        .args(["backup", "verify", id, "--dir", dir, "--drill", "--json"])
        .args(["--drill-timeout-seconds", "30"])
        .env("MC_DRILL_NATS_URL", nats.url())
        .env("MC_DRILL_DATABASE_URL", db.url())
        .env("MC_DATABASE_URL", app.db.url())
        .env("MC_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    drop((nats, db));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_reports_a_faithful_restore_and_detects_a_tampered_one() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let created = stdout_json(
        &backup_cli(
            &app.nats.url(),
            Some(app.db.url()),
            &["create", "--dir", dir_arg, "--json"],
        )
        .await,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let last = created["last"].as_u64().unwrap();

    let out = drill_cli(&app, dir_arg, &id).await;
    let report = stdout_json(&out);
    assert_eq!(report["faithful"], true, "{report}");
    assert_eq!(report["position"], last);
    assert_eq!(
        report["restoredHead"], created["archiveHead"]["hash"],
        "{report}"
    );
    let tables = report["readModels"].as_array().unwrap();
    assert!(tables.len() >= 8, "{report}");
    assert!(tables.iter().all(|t| t["equal"] == true), "{report}");

    // Rewritten consistently, the backup passes plain verification, but not the drill.
    let forged = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join(&id), &forged.path().join(&id));
    tamper(forged.path(), &id, 3);
    let forged_arg = forged.path().to_str().unwrap();
    let verified = stdout_json(
        &backup_cli(
            &app.nats.url(),
            None,
            &["verify", &id, "--dir", forged_arg, "--json"],
        )
        .await,
    );
    assert_eq!(verified["messagesChecked"], last);
    let out = drill_cli(&app, forged_arg, &id).await;
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["faithful"], false, "{report}");
    assert_ne!(report["restoredHead"], report["liveHead"], "{report}");
}
