//! Where sessions are kept: [`DbSpec`], what `--db` says, and [`open`], which opens the
//! right backend behind the one [`SessionStore`] trait.
//!
//! `--db` takes either a SQLite file path or a PostgreSQL URL (`postgres://…` or
//! `postgresql://…`, in libpq's URL syntax). Anything else is a path, so SQLite paths
//! behave exactly as they always did.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::postgres::PostgresStore;
use super::{SessionStore, SqliteStore, StoreError};

/// URL schemes that select the PostgreSQL backend.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// A session database: a SQLite file or a PostgreSQL server.
///
/// `Display` never shows a password: URLs print with it replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbSpec {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as given.
    Postgres(String),
}

/// Why a `--db` value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Nothing was given.
    #[error("the session database is empty: give a SQLite file or a postgres:// URL")]
    Empty,
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL {url}: {}", super::postgres::describe(source))]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl DbSpec {
    /// Whether this names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbSpec::Postgres(_))
    }

    /// For messages, like [`Path::display`]: the path, or the URL with its password
    /// hidden.
    pub fn display(&self) -> &Self {
        self
    }

    /// The SQLite file, if this names one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbSpec::Sqlite(path) => Some(path),
            DbSpec::Postgres(_) => None,
        }
    }
}

impl FromStr for DbSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if s.is_empty() {
            return Err(SpecError::Empty);
        }
        let scheme = POSTGRES_SCHEMES.iter().find(|p| {
            s.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        });
        if let Some(scheme) = scheme {
            // The client library only knows the lower-case spelling.
            let url = format!("{scheme}{}", &s[scheme.len()..]);
            tokio_postgres::Config::from_str(&url).map_err(|source| SpecError::BadUrl {
                url: redact(&url),
                source,
            })?;
            Ok(DbSpec::Postgres(url))
        } else {
            Ok(DbSpec::Sqlite(PathBuf::from(s)))
        }
    }
}

impl From<&Path> for DbSpec {
    fn from(path: &Path) -> Self {
        DbSpec::Sqlite(path.to_path_buf())
    }
}

impl From<PathBuf> for DbSpec {
    fn from(path: PathBuf) -> Self {
        DbSpec::Sqlite(path)
    }
}

impl fmt::Display for DbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSpec::Sqlite(path) => write!(f, "{}", path.display()),
            DbSpec::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DbSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSpec::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DbSpec::Postgres(url) => f.debug_tuple("Postgres").field(&redact(url)).finish(),
        }
    }
}

/// Opens the session database `spec` names, creating or upgrading its schema.
///
/// The store is boxed so that every command works the same on either backend. Open and
/// drop it on a thread that is not running async tasks (a CLI's main thread, the
/// collector's writer thread or a `spawn_blocking` closure): its calls block.
pub fn open(spec: &DbSpec) -> Result<Box<dyn SessionStore + Send>, StoreError> {
    Ok(match spec {
        DbSpec::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        DbSpec::Postgres(url) => Box::new(PostgresStore::open(url)?),
    })
}

/// `url` with any password replaced by `***`, in the user-info part and in a
/// `password=` query parameter.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = url[..scheme_end].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_postgres_and_anything_else_is_a_sqlite_path() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgresql://127.0.0.1/db",
            "POSTGRES://127.0.0.1/db",
        ] {
            let spec: DbSpec = url.parse().unwrap();
            assert!(spec.is_postgres(), "{url}");
            assert_eq!(spec.sqlite_path(), None);
        }
        for path in [
            "sessions.db",
            "./postgres://x",
            "/tmp/a b.db",
            "postgres.db",
        ] {
            let spec: DbSpec = path.parse().unwrap();
            assert_eq!(spec, DbSpec::Sqlite(PathBuf::from(path)), "{path}");
            assert_eq!(spec.to_string(), path);
        }
        assert!(matches!("".parse::<DbSpec>(), Err(SpecError::Empty)));
        let err = "postgres://u:hunter2@127.0.0.1:notaport/db"
            .parse::<DbSpec>()
            .unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("invalid PostgreSQL URL"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "postgres://ann:s3cret@db.example:5432/sessions",
                "postgres://ann:***@db.example:5432/sessions",
            ),
            (
                "postgresql://ann@127.0.0.1/s?password=s3cret&sslmode=disable",
                "postgresql://ann@127.0.0.1/s?password=***&sslmode=disable",
            ),
            ("postgres://127.0.0.1/s", "postgres://127.0.0.1/s"),
            (
                "postgres://a:b:c@h?options=-c%20x%3Dy",
                "postgres://a:***@h?options=-c%20x%3Dy",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
            let spec: DbSpec = url.parse().unwrap();
            assert_eq!(spec.to_string(), want);
            assert!(!format!("{spec:?}").contains("s3cret"));
        }
    }
}
