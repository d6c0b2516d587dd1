//! The tamper-evident archive: the chain holds, and detects an edited, a deleted and a
//! reordered row; the application role cannot update or delete archive rows.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

/// Five events after the harness's setup events; returns the last position.
async fn history(app: &TestApp) -> u64 {
    let agent = app.create("/agents", json!({"name": "auditor"})).await;
    for i in 0..3 {
        app.patch(
            &format!("/agents/{agent}"),
            json!({"description": format!("d{i}")}),
        )
        .await;
    }
    let (_, r) = app
        .post(
            "/missions",
            json!({"title": "audit", "metadata": {"b": 1.5, "a": [1, {"z": null}]}}),
        )
        .await;
    let last = r["position"].as_u64().unwrap();
    app.wait_projection("archive", last).await;
    last
}

async fn verify(app: &TestApp) -> Value {
    app.get_json("/audit/verify").await.1
}

/// A superuser session that bypasses the append-only triggers, as an attacker with the
/// database's superuser password would.
async fn attacker(app: &TestApp) -> PgConnection {
    let mut c = PgConnection::connect(app.db.url()).await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut c)
        .await
        .unwrap();
    c
}

#[tokio::test]
async fn chain_holds_and_detects_an_edited_row() {
    let app = TestApp::spawn().await;
    let last = history(&app).await;
    let v = verify(&app).await;
    assert_eq!(
        (v["holds"].as_bool(), v["count"].as_u64()),
        (Some(true), Some(last)),
        "{v}"
    );
    assert_eq!(v["headHash"].as_str().unwrap().len(), 64);

    let mut c = attacker(&app).await;
    sqlx::query("UPDATE events SET payload = jsonb_set(payload, '{description}', '\"forged\"') WHERE position = 3")
        .execute(&mut c)
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(
        (v["holds"].as_bool(), v["firstBrokenPosition"].as_i64()),
        (Some(false), Some(3)),
        "{v}"
    );
}

#[tokio::test]
async fn chain_detects_a_deleted_row() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let mut c = attacker(&app).await;
    sqlx::query("DELETE FROM events WHERE position = 2")
        .execute(&mut c)
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(
        (v["holds"].as_bool(), v["firstBrokenPosition"].as_i64()),
        (Some(false), Some(3)),
        "{v}"
    );
}

#[tokio::test]
async fn chain_detects_reordered_rows() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let mut c = attacker(&app).await;
    // Swap positions 2 and 4, hashes and all.
    for (from, to) in [(2, -1), (4, 2), (-1, 4)] {
        sqlx::query("UPDATE events SET position = $2 WHERE position = $1")
            .bind(from)
            .bind(to)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let v = verify(&app).await;
    assert_eq!(
        (v["holds"].as_bool(), v["firstBrokenPosition"].as_i64()),
        (Some(false), Some(2)),
        "{v}"
    );
}

#[tokio::test]
async fn the_app_role_cannot_update_or_delete_the_archive_and_triggers_stop_everyone() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let mut c = PgConnection::connect(app.db.url()).await.unwrap();
    sqlx::query("SET ROLE mc_app")
        .execute(&mut c)
        .await
        .unwrap();
    for sql in [
        "UPDATE events SET event_type = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let e = sqlx::query(sql).execute(&mut c).await.unwrap_err();
        let code = e
            .as_database_error()
            .and_then(|d| d.code())
            .unwrap_or_default()
            .into_owned();
        assert_eq!(code, "42501", "{sql}: {e}");
    }
    // The app role can read and append-project: reads work.
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 5 + crate::helpers::SETUP_EVENTS as i64);
    // Even the owner is stopped by the append-only triggers.
    sqlx::query("RESET ROLE").execute(&mut c).await.unwrap();
    for sql in ["UPDATE events SET event_type = 'x'", "DELETE FROM events"] {
        let e = sqlx::query(sql).execute(&mut c).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(verify(&app).await["holds"], true);
}

#[tokio::test]
async fn cli_audit_verify_reports_and_fails_on_a_broken_chain() {
    let app = TestApp::spawn().await;
    history(&app).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mission-control"))
            .args(["audit", "verify"])
            .env("MC_DATABASE_URL", app.db.url())
            .env("MC_LOG", "warn")
            .output()
            .unwrap()
    };
    let ok = run();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success()
            && stdout.contains(&format!(
                "holds: {} events",
                5 + crate::helpers::SETUP_EVENTS
            )),
        "{stdout}"
    );
    let mut c = attacker(&app).await;
    sqlx::query("UPDATE events SET aggregate_version = 99 WHERE position = 4")
        .execute(&mut c)
        .await
        .unwrap();
    let broken = run();
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout.contains("BROKEN at position 4"), "{stdout}");
}
