//! How this system's NATS clients authenticate: none, user and password, an nkey seed file or a
//! creds file, chosen from configuration and applied to every connection's `ConnectOptions`.
//!
//! The server side is `nats/nats-server.conf` (and `nats/cluster/n*.conf`): users with subject
//! permissions, the service being `mission-control`. A password or seed never appears in
//! `Debug` output or in an error message.

use std::fmt;
use std::path::{Path, PathBuf};

/// How to authenticate to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (a server without `authorization`, e.g. the test servers).
    #[default]
    None,
    /// A user of the server's `authorization { users: [...] }`.
    UserPassword { user: String, password: String },
    /// A file holding a user nkey seed (`SU...`, e.g. from `nk -gen user`); the server lists
    /// the matching public key (`U...`) as `{ nkey: U... }`.
    NkeySeedFile(PathBuf),
    /// A `.creds` file (user JWT and nkey seed) for servers in operator (JWT) mode.
    CredsFile(PathBuf),
}

/// The settings [`NatsAuth`] is chosen from (flags or environment). An empty string is the same
/// as not set, so `MC_NATS_PASSWORD=` in a compose file means "no password".
#[derive(Clone, Default)]
pub struct NatsAuthSettings {
    pub user: Option<String>,
    pub password: Option<String>,
    pub nkey_seed_file: Option<PathBuf>,
    pub creds_file: Option<PathBuf>,
}

/// Why credentials could not be chosen or loaded. Never holds a password or seed.
#[derive(Debug, thiserror::Error)]
pub enum NatsAuthError {
    #[error("a nats password was given without a nats user")]
    PasswordWithoutUser,
    #[error("nats user {0:?} was given without a password")]
    UserWithoutPassword(String),
    #[error("choose one way to authenticate to nats, not {0}")]
    Contradictory(String),
    #[error("cannot read the nats nkey seed file {path}: {source}")]
    ReadSeed {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the nats nkey seed file {0} does not hold one user nkey seed (58 characters starting with SU)"
    )]
    NotAUserSeed(PathBuf),
    #[error("cannot load the nats creds file {path}: {source}")]
    Creds {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn non_empty<T: AsRef<std::ffi::OsStr>>(v: Option<&T>) -> bool {
    v.is_some_and(|v| !v.as_ref().is_empty())
}

impl NatsAuth {
    /// Choose from the settings: user and password together, or an nkey seed file, or a creds
    /// file, or nothing. Any other combination is an error naming what was given.
    pub fn from_settings(s: &NatsAuthSettings) -> Result<Self, NatsAuthError> {
        let user = s.user.as_ref().filter(|u| !u.is_empty());
        let password = s.password.as_ref().filter(|p| !p.is_empty());
        let nkey = s.nkey_seed_file.as_ref().filter(|p| non_empty(Some(p)));
        let creds = s.creds_file.as_ref().filter(|p| non_empty(Some(p)));
        let mut given = Vec::new();
        if user.is_some() || password.is_some() {
            given.push("user and password");
        }
        if nkey.is_some() {
            given.push("an nkey seed file");
        }
        if creds.is_some() {
            given.push("a creds file");
        }
        if given.len() > 1 {
            return Err(NatsAuthError::Contradictory(given.join(" and ")));
        }
        Ok(match (user, password, nkey, creds) {
            (Some(user), Some(password), _, _) => Self::UserPassword {
                user: user.clone(),
                password: password.clone(),
            },
            (Some(user), None, _, _) => {
                return Err(NatsAuthError::UserWithoutPassword(user.clone()))
            }
            (None, Some(_), _, _) => return Err(NatsAuthError::PasswordWithoutUser),
            (None, None, Some(path), _) => Self::NkeySeedFile(path.clone()),
            (None, None, None, Some(path)) => Self::CredsFile(path.clone()),
            (None, None, None, None) => Self::None,
        })
    }

    /// What kind of credentials, for logs: `none`, `user <name>`, `nkey`, `creds`.
    pub fn describe(&self) -> String {
        match self {
            Self::None => "none".to_owned(),
            Self::UserPassword { user, .. } => format!("user {user}"),
            Self::NkeySeedFile(_) => "nkey".to_owned(),
            Self::CredsFile(_) => "creds".to_owned(),
        }
    }

    /// Add the credentials to a connection's options. Files are read here (they are small), so
    /// a missing or malformed file fails before connecting, with the path in the error.
    pub fn apply(
        &self,
        opts: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions, NatsAuthError> {
        Ok(match self {
            Self::None => opts,
            Self::UserPassword { user, password } => {
                opts.user_and_password(user.clone(), password.clone())
            }
            Self::NkeySeedFile(path) => opts.nkey(read_user_seed(path)?),
            Self::CredsFile(path) => {
                let contents =
                    std::fs::read_to_string(path).map_err(|source| NatsAuthError::Creds {
                        path: path.clone(),
                        source,
                    })?;
                opts.credentials(&contents)
                    .map_err(|source| NatsAuthError::Creds {
                        path: path.clone(),
                        source,
                    })?
            }
        })
    }
}

/// The one user seed in the file (surrounding whitespace and blank lines ignored). Only its
/// shape is checked here; the key itself is checked by the client when it signs the nonce.
fn read_user_seed(path: &Path) -> Result<String, NatsAuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| NatsAuthError::ReadSeed {
        path: path.to_owned(),
        source,
    })?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (Some(seed), None) if is_user_seed(seed) => Ok(seed.to_owned()),
        _ => Err(NatsAuthError::NotAUserSeed(path.to_owned())),
    }
}

/// An nkey seed is 58 characters of base32 (A-Z, 2-7); a user's starts with `SU`.
fn is_user_seed(s: &str) -> bool {
    s.len() == 58
        && s.starts_with("SU")
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Self::NkeySeedFile(path) => f.debug_tuple("NkeySeedFile").field(path).finish(),
            Self::CredsFile(path) => f.debug_tuple("CredsFile").field(path).finish(),
        }
    }
}

impl fmt::Debug for NatsAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAuthSettings")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("creds_file", &self.creds_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory removed on drop (this crate has no tempfile dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("mc-connect-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir(&dir).expect("create temp dir");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // A syntactically valid user seed made up for these tests (never used by a server).
    const SEED: &str = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU";

    fn settings(
        user: Option<&str>,
        password: Option<&str>,
        nkey: Option<&str>,
        creds: Option<&str>,
    ) -> NatsAuthSettings {
        NatsAuthSettings {
            user: user.map(str::to_owned),
            password: password.map(str::to_owned),
            nkey_seed_file: nkey.map(PathBuf::from),
            creds_file: creds.map(PathBuf::from),
        }
    }

    #[test]
    fn each_single_method_is_chosen() {
        let choose = |s| NatsAuth::from_settings(&s).expect("valid settings");
        assert_eq!(choose(settings(None, None, None, None)), NatsAuth::None);
        assert_eq!(
            choose(settings(Some("mission-control"), Some("pw"), None, None)),
            NatsAuth::UserPassword {
                user: "mission-control".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            choose(settings(None, None, Some("/run/seed.nk"), None)),
            NatsAuth::NkeySeedFile("/run/seed.nk".into())
        );
        assert_eq!(
            choose(settings(None, None, None, Some("/run/mc.creds"))),
            NatsAuth::CredsFile("/run/mc.creds".into())
        );
    }

    #[test]
    fn empty_strings_are_not_set() {
        let s = settings(Some(""), Some(""), Some(""), Some(""));
        assert_eq!(NatsAuth::from_settings(&s).expect("valid"), NatsAuth::None);
        let s = settings(Some("u"), Some("p"), Some(""), Some(""));
        assert_eq!(
            NatsAuth::from_settings(&s).expect("valid").describe(),
            "user u"
        );
    }

    #[test]
    fn contradictory_or_incomplete_settings_are_refused() {
        let err = |s| {
            NatsAuth::from_settings(&s)
                .expect_err("must be refused")
                .to_string()
        };
        assert_eq!(
            err(settings(Some("u"), Some("p"), Some("/s.nk"), None)),
            "choose one way to authenticate to nats, not user and password and an nkey seed file"
        );
        assert_eq!(
            err(settings(None, None, Some("/s.nk"), Some("/c.creds"))),
            "choose one way to authenticate to nats, not an nkey seed file and a creds file"
        );
        assert_eq!(
            err(settings(Some("u"), None, None, Some("/c.creds"))),
            "choose one way to authenticate to nats, not user and password and a creds file"
        );
        assert_eq!(
            err(settings(Some("u"), None, None, None)),
            "nats user \"u\" was given without a password"
        );
        let e = err(settings(None, Some("hunter2"), None, None));
        assert_eq!(e, "a nats password was given without a nats user");
    }

    #[test]
    fn debug_never_shows_a_password() {
        let auth = NatsAuth::UserPassword {
            user: "mission-control".into(),
            password: "hunter2-secret".into(),
        };
        let shown = format!("{auth:?} {auth:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("mission-control") && shown.contains("<redacted>"));
        let s = settings(Some("u"), Some("hunter2-secret"), None, None);
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(
            format!("{:?}", settings(None, None, None, None)),
            "NatsAuthSettings { user: None, password: None, nkey_seed_file: None, creds_file: None }"
        );
    }

    #[test]
    fn an_nkey_seed_file_is_read_and_checked_without_echoing_it() {
        let dir = TempDir::new();
        let good = dir.0.join("good.nk");
        std::fs::write(&good, format!("\n{SEED}\n")).expect("write seed");
        let auth = NatsAuth::NkeySeedFile(good.clone());
        assert!(!format!("{auth:?}").contains(SEED));
        auth.apply(async_nats::ConnectOptions::new())
            .expect("a user seed is accepted");

        // An account seed (SA...), two lines, or a missing file are refused with the path only.
        let account = dir.0.join("account.nk");
        std::fs::write(&account, SEED.replacen("SU", "SA", 1)).expect("write");
        let two = dir.0.join("two.nk");
        std::fs::write(&two, format!("{SEED}\n{SEED}\n")).expect("write");
        for path in [account, two, dir.0.join("missing.nk")] {
            let e = NatsAuth::NkeySeedFile(path.clone())
                .apply(async_nats::ConnectOptions::new())
                .expect_err("must be refused")
                .to_string();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(!e.contains(&SEED[2..]), "{e}");
        }
    }

    #[test]
    fn a_missing_creds_file_is_an_error_naming_it() {
        let e = NatsAuth::CredsFile("/nonexistent/mc.creds".into())
            .apply(async_nats::ConnectOptions::new())
            .expect_err("missing file")
            .to_string();
        assert!(
            e.starts_with("cannot load the nats creds file /nonexistent/mc.creds"),
            "{e}"
        );
    }
}
