//! Database roles, logged in as each: a role with no grants can do nothing (not even call the
//! SECURITY DEFINER telemetry functions that drop partitions), a login in `mc_app` can do what
//! `serve` needs and no more, and `mc_migrator` owns every object the migrations create (and the
//! tables a rebuild swaps in).

use crate::helpers::TestApp;
use mc_test_support::TestDb;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::{Duration, Instant};

const PASSWORD: &str = "roles-test";
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// Login roles made for one test run. Roles are cluster-wide: the names are unique per run and
/// the roles are dropped at the end, or on drop when the test failed half-way.
struct Logins {
    url: String,
    names: Vec<String>,
}

impl Logins {
    async fn create(db: &TestDb) -> Self {
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let logins = Self {
            url: db.url().to_owned(),
            names: vec![
                format!("mc_test_none_{suffix}"),
                format!("mc_test_app_{suffix}"),
            ],
        };
        for (name, membership) in logins.names.iter().zip(["", " IN ROLE mc_app"]) {
            sqlx::query(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'{membership}"
            ))
            .execute(&db.pool)
            .await
            .unwrap();
        }
        logins
    }

    fn nobody(&self) -> &str {
        &self.names[0]
    }

    fn app(&self) -> &str {
        &self.names[1]
    }

    async fn connect(&self, name: &str) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .username(name)
            .password(PASSWORD);
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("log in as {name}: {e}"))
    }

    async fn drop_all(url: &str, names: &[String]) -> Result<(), sqlx::Error> {
        let admin = PgPoolOptions::new().max_connections(1).connect(url).await?;
        for name in names {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(name)
                    .fetch_one(&admin)
                    .await?;
            if exists {
                sqlx::query(&format!("DROP OWNED BY {name}"))
                    .execute(&admin)
                    .await?;
                sqlx::query(&format!("DROP ROLE {name}"))
                    .execute(&admin)
                    .await?;
            }
        }
        admin.close().await;
        Ok(())
    }

    async fn drop_now(mut self) {
        let names = std::mem::take(&mut self.names);
        Self::drop_all(&self.url, &names).await.unwrap();
    }
}

impl Drop for Logins {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let (url, names) = (self.url.clone(), std::mem::take(&mut self.names));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(Self::drop_all(&url, &names)).ok()
        })
        .join();
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

async fn allowed(pool: &PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: refused: {e}"));
}

async fn refused(pool: &PgPool, sql: &str) {
    let e = sqlx::query(sql)
        .execute(pool)
        .await
        .expect_err(&format!("{sql}: allowed"));
    assert_eq!(
        sqlstate(&e).as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{sql}: {e}"
    );
}

async fn strings(pool: &PgPool, sql: &str, role: &str) -> Vec<String> {
    sqlx::query_scalar(sql)
        .bind(role)
        .fetch_all(pool)
        .await
        .unwrap()
}

const INSERT_EVENT: &str = "INSERT INTO events (position, event_index, event_id, aggregate_type, \
    aggregate_id, aggregate_version, event_type, schema_version, payload, metadata, command_id, \
    occurred_at, hash) VALUES (1, 0, gen_random_uuid(), 'agent', 'a', 1, 'AgentRegistered', 1, \
    '{}', '{}', gen_random_uuid(), now(), '\\x00')";

#[tokio::test]
async fn a_role_without_grants_can_do_nothing() {
    let db = TestDb::new().await;
    let logins = Logins::create(&db).await;
    let nobody = logins.connect(logins.nobody()).await;

    refused(&nobody, "SELECT mc_telemetry_drop_before(current_date + 1)").await;
    refused(&nobody, "SELECT mc_telemetry_partition(current_date)").await;
    refused(&nobody, "CALL mc_hand_over()").await;
    refused(&nobody, "SELECT count(*) FROM events").await;
    refused(&nobody, INSERT_EVENT).await;
    refused(&nobody, "SELECT count(*) FROM telemetry_frames").await;
    refused(&nobody, "DELETE FROM agents").await;
    refused(&nobody, "CREATE TABLE public.intruder (x int)").await;

    // Not one privilege on any table of the schema, nor on any SECURITY DEFINER routine.
    let tables = strings(
        &db.pool,
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace \
         AND c.relkind IN ('r', 'p', 'v', 'm') \
         AND has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
        logins.nobody(),
    )
    .await;
    assert_eq!(tables, Vec::<String>::new());
    let routines = strings(
        &db.pool,
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace \
         AND p.prosecdef AND has_function_privilege($1, p.oid, 'EXECUTE')",
        logins.nobody(),
    )
    .await;
    assert_eq!(routines, Vec::<String>::new());

    let parts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry_frames'::regclass",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(parts, 0, "the refused calls created or dropped nothing");

    nobody.close().await;
    logins.drop_now().await;
}

#[tokio::test]
async fn mc_app_appends_events_writes_telemetry_and_nothing_more() {
    let db = TestDb::new().await;
    let logins = Logins::create(&db).await;
    let app = logins.connect(logins.app()).await;

    // The archive: read and append, never change.
    allowed(&app, INSERT_EVENT).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app)
        .await
        .unwrap();
    assert_eq!(n, 1);
    refused(&app, "UPDATE events SET event_type = 'Edited'").await;
    refused(&app, "DELETE FROM events").await;
    refused(&app, "TRUNCATE events").await;
    // Refused by the grants, not only by the append-only triggers.
    for privilege in ["UPDATE", "DELETE", "TRUNCATE"] {
        let has: bool = sqlx::query_scalar("SELECT has_table_privilege($1, 'events', $2)")
            .bind(logins.app())
            .bind(privilege)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(!has, "mc_app has {privilege} on events");
    }

    // Day partitions on demand, owned by mc_migrator, written through the parent, dropped by
    // retention.
    allowed(&app, "SELECT mc_telemetry_partition(current_date)").await;
    allowed(
        &app,
        "INSERT INTO telemetry_frames (spacecraft_id, ts, position, idx, parameters) \
         VALUES ('SC-001', now(), 1, 0, '{\"temp\": 1}')",
    )
    .await;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT c.relowner::regrole::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent IN ('telemetry_frames'::regclass, 'telemetry_rollups_1s'::regclass)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(owners, ["mc_migrator", "mc_migrator"]);
    let dropped: Vec<String> =
        sqlx::query_scalar("SELECT mc_telemetry_drop_before(current_date + 1)")
            .fetch_all(&app)
            .await
            .unwrap();
    assert_eq!(dropped.len(), 2, "{dropped:?}");

    // No DDL, no schema, no hand-over.
    refused(&app, "CREATE TABLE public.intruder (x int)").await;
    refused(&app, "CREATE SCHEMA intruder").await;
    refused(&app, "ALTER TABLE events DISABLE TRIGGER USER").await;
    refused(&app, "DROP TABLE agents").await;
    refused(&app, "CALL mc_hand_over()").await;

    app.close().await;
    logins.drop_now().await;
}

#[tokio::test]
async fn mc_migrator_owns_everything_and_public_executes_no_security_definer_routine() {
    let db = TestDb::new().await;
    // A day partition made before the check, as the telemetry store makes them.
    sqlx::query("SELECT mc_telemetry_partition(current_date)")
        .execute(&db.pool)
        .await
        .unwrap();

    let relations = strings(
        &db.pool,
        "SELECT c.relname || ' (' || c.relowner::regrole || ')' FROM pg_class c \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
         AND c.relowner <> $1::regrole",
        "mc_migrator",
    )
    .await;
    assert_eq!(relations, Vec::<String>::new());
    let routines = strings(
        &db.pool,
        "SELECT p.oid::regprocedure || ' (' || p.proowner::regrole || ')' FROM pg_proc p \
         WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> $1::regrole",
        "mc_migrator",
    )
    .await;
    assert_eq!(routines, Vec::<String>::new());
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace \
         AND relowner = 'mc_migrator'::regrole AND relname IN ('events', 'agents', 'telemetry_frames')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(count, 3);

    // A NULL acl is the default one, which lets PUBLIC execute.
    let public: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace \
         AND p.prosecdef AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a \
         WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(public, Vec::<String>::new());
    let definers = strings(
        &db.pool,
        "SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace \
         AND p.prosecdef AND has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1",
        "mc_app",
    )
    .await;
    assert_eq!(
        definers,
        ["mc_telemetry_drop_before", "mc_telemetry_partition"]
    );
}

/// A blue/green rebuild swaps in tables it created itself (as the postgres superuser here): they
/// go back to mc_migrator and keep mc_app's grants.
#[tokio::test]
async fn a_rebuilt_read_model_stays_owned_by_mc_migrator_and_granted_to_mc_app() {
    let app = TestApp::spawn().await;
    app.create("/agents", json!({"name": "rebuilt"})).await;
    let (status, body) = app.post("/projections/agents/rebuild", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM projection_versions WHERE name = 'agents') \
             AND NOT EXISTS (SELECT 1 FROM projection_rebuilds WHERE name = 'agents')",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rebuild of agents did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owner: String = sqlx::query_scalar(
        "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'public.agents'::regclass",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(owner, "mc_migrator");
    let granted: bool = sqlx::query_scalar(
        "SELECT has_table_privilege('mc_app', 'public.agents', 'SELECT, INSERT, UPDATE, DELETE') \
         AND NOT has_table_privilege('mc_app', 'public.agents', 'TRUNCATE')",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(granted);
    let logins = Logins::create(&app.db).await;
    let pool = logins.connect(logins.app()).await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM agents")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["rebuilt"]);
    pool.close().await;
    logins.drop_now().await;
}

/// The e2e servers run as production does: an `mc_app` login for everything they serve, the
/// migrator's login only for migrations and rebuild DDL; a blue/green rebuild works that way.
#[tokio::test]
async fn the_test_server_serves_as_an_mc_app_login_and_rebuilds_through_the_migrator() {
    let app = crate::helpers::TestApp::spawn().await;
    let role = app.db.app_role().to_owned();
    let (superuser, in_app): (bool, bool) = sqlx::query_as(
        "SELECT rolsuper, pg_has_role(rolname, 'mc_app', 'MEMBER') FROM pg_roles WHERE rolname = $1",
    )
    .bind(&role)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((superuser, in_app), (false, true));
    let (s, created) = app
        .create_agent(serde_json::json!({"name": "served-by-mc-app"}))
        .await;
    assert_eq!(s, 201, "{created}");
    let (_, agent) = app
        .get_json(&format!(
            "/agents/{}?minPosition={}",
            created["id"].as_str().unwrap(),
            created["position"]
        ))
        .await;
    assert_eq!(agent["name"], "served-by-mc-app");
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()",
    )
    .bind(&role)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(sessions > 0, "the server holds no connection as {role}");
    // The login itself has no DDL rights.
    let mut as_app = <sqlx::PgConnection as sqlx::Connection>::connect(app.db.app_url())
        .await
        .unwrap();
    let refused = sqlx::query("CREATE TABLE nope (x int)")
        .execute(&mut as_app)
        .await
        .unwrap_err();
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("42501")
    );
    // A rebuild (shadow schema, swap) goes through the migrator and lands.
    let (s, body) = app
        .post("/projections/agents/rebuild", serde_json::json!({}))
        .await;
    assert_eq!(s, 202, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, list) = app.get_json("/projections").await;
        let agents = list["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "agents")
            .unwrap()
            .clone();
        if agents["rebuild"].is_null() && agents["state"] == "running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild never finished: {agents}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, agent) = app
        .get_json(&format!("/agents/{}", created["id"].as_str().unwrap()))
        .await;
    assert_eq!(agent["name"], "served-by-mc-app");
}
