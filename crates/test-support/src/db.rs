//! A fresh Postgres database per test, migrated, dropped on drop.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// Superuser connection where test databases are created: `$MC_TEST_DATABASE_URL`.
pub fn admin_url() -> String {
    std::env::var("MC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TestDb {
    /// A superuser pool on the test database.
    pub pool: PgPool,
    name: String,
    url: String,
    app_url: String,
}

/// `url` with `user` as its user (no password: the test cluster trusts loopback logins).
fn with_user(url: &str, user: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://") else {
        return url.to_owned();
    };
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("postgres://{user}@{host}")
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDb {
    /// Create `mc_test_<uuid>` and apply every migration.
    pub async fn new() -> Self {
        let name = format!("mc_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect to MC_TEST_DATABASE_URL (a Postgres superuser connection)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = with_database(&admin_url(), &name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .expect("connect to test database");
        mc_projections::migrator()
            .run(&pool)
            .await
            .expect("migrate test database");
        // A login of its own in `mc_app`, as `serve` runs in production (dropped with the
        // database).
        sqlx::query(&format!("CREATE ROLE {name} LOGIN IN ROLE mc_app"))
            .execute(&pool)
            .await
            .expect("create the test's mc_app login");
        let app_url = with_user(&url, &name);
        Self {
            pool,
            name,
            url,
            app_url,
        }
    }

    /// The superuser URL (owner of everything: migrations, rebuild DDL).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of that login (and of the database).
    pub fn app_role(&self) -> &str {
        &self.name
    }

    /// A login in `mc_app`: DML on the read models, append-only archive, no DDL.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we may block; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {name}"))
                            .execute(&mut admin)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::{with_database, with_user};

    #[test]
    fn swaps_the_user() {
        assert_eq!(
            with_user("postgres://postgres@h:5432/x", "app"),
            "postgres://app@h:5432/x"
        );
        assert_eq!(
            with_user("postgres://u:pw@h/x?sslmode=disable", "app"),
            "postgres://app@h/x?sslmode=disable"
        );
        assert_eq!(with_user("postgres://h/x", "app"), "postgres://app@h/x");
    }

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
