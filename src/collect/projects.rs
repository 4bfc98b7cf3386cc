//! Projects: who may send sessions to the collector, from where, how fast, and who may
//! read or delete them.
//!
//! A projects file (TOML) lists the projects. Each has a public **ingest key** (it sits in
//! the page's script tag, `data-key="pk_…"`, and `capture.js` sends it as `?key=`), an
//! allow-list of **origins** (CORS), a **rate limit** per key, and **admin tokens**
//! (`sk_…`, secret) for reading, exporting and deleting its sessions over HTTP:
//!
//! ```toml
//! [[project]]
//! name = "shop"
//! origins = ["https://shop.example"]
//! keys_sha256 = ["9f86d0…"]
//! revoked_keys_sha256 = []
//! admin_tokens_sha256 = ["60303a…"]
//! rate_limit = { per_second = 1000.0, burst = 2000 }
//! ```
//!
//! Keys and tokens are never stored in clear: the file holds their SHA-256 (hex), and a
//! presented secret is hashed and compared with every stored hash in constant time.
//! `understudy project add|rotate-key|rotate-token` edit the file and print a new secret
//! once. The collector re-reads the file when it changes (and on SIGHUP), so keys and
//! tokens rotate without a restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Prefix of ingest keys (public).
pub const KEY_PREFIX: &str = "pk_";
/// Prefix of admin tokens (secret).
pub const TOKEN_PREFIX: &str = "sk_";
/// Longest project name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest key or token the collector bothers to hash.
pub const MAX_SECRET_LEN: usize = 256;

/// The default per-key rate limit: generous for one site, a wall for a flood.
pub const DEFAULT_RATE: RateLimit = RateLimit {
    per_second: 1000.0,
    burst: 2000,
};

/// SHA-256 of a key or token.
pub type Hash = [u8; 32];

/// The projects file as written on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectsFile {
    #[serde(default, rename = "project")]
    pub projects: Vec<ProjectEntry>,
}

/// One `[[project]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectEntry {
    /// `[A-Za-z0-9_-]`, 1..=64 characters, unique in the file.
    pub name: String,
    /// Origins (`https://shop.example`, `http://localhost:8080`) whose pages may send
    /// sessions; `"*"` allows any.
    pub origins: Vec<String>,
    /// SHA-256 (hex) of the ingest keys in use.
    #[serde(default)]
    pub keys_sha256: Vec<String>,
    /// SHA-256 (hex) of ingest keys that were rotated out: refused with 403.
    #[serde(default)]
    pub revoked_keys_sha256: Vec<String>,
    /// SHA-256 (hex) of the admin tokens (read, export, delete).
    #[serde(default)]
    pub admin_tokens_sha256: Vec<String>,
    /// Batches per second per key; [`DEFAULT_RATE`] when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket: `burst` batches at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// Why a projects file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectsError {
    #[error("cannot read projects file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("projects file {path} is not valid TOML for understudy: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("projects file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write projects file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no project named `{0}` in the projects file")]
    NoSuchProject(String),
    #[error("a project named `{0}` already exists")]
    Exists(String),
    #[error("cannot draw a random secret from the operating system: {0}")]
    Random(String),
    #[error("{0}")]
    BadOrigin(String),
}

/// A checked project, ready for lookups.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    /// Canonical origins (`scheme://host[:port]`); empty when any origin is allowed.
    origins: Vec<String>,
    any_origin: bool,
    keys: Vec<Hash>,
    revoked: Vec<Hash>,
    admin_tokens: Vec<Hash>,
    pub rate: RateLimit,
}

impl Project {
    /// Whether a page served from `origin` (the `Origin` header, verbatim) may send.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    /// Whether `hash` is one of this project's ingest keys in use.
    pub fn has_key_hash(&self, hash: &Hash) -> bool {
        self.keys.contains(hash)
    }
}

/// What an ingest key turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyCheck<'a> {
    /// A key in use: the project, and the key's hash (the rate limiter's bucket id).
    Active(&'a Project, Hash),
    /// A key that was rotated out.
    Revoked(&'a Project),
    /// No project knows this key.
    Unknown,
}

/// Every project of a checked projects file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projects {
    projects: Vec<Project>,
}

impl Projects {
    /// Reads and checks the projects file at `path`.
    pub fn load(path: &Path) -> Result<Projects, ProjectsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProjectsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Projects::parse(&text, path)
    }

    /// Parses and checks projects-file text (`path` is only for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Projects, ProjectsError> {
        let file: ProjectsFile = toml::from_str(text).map_err(|e| ProjectsError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Projects::check(&file).map_err(|reason| ProjectsError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Checks a projects file: names, origins, hashes, limits, no secret used twice.
    pub fn check(file: &ProjectsFile) -> Result<Projects, String> {
        let mut projects = Vec::with_capacity(file.projects.len());
        let mut seen_hashes: Vec<Hash> = Vec::new();
        for entry in &file.projects {
            let name = &entry.name;
            if !valid_name(name) {
                return Err(format!(
                    "project name `{}` must be 1..={MAX_NAME_LEN} characters of [A-Za-z0-9_-]",
                    name.escape_debug()
                ));
            }
            if projects.iter().any(|p: &Project| &p.name == name) {
                return Err(format!("project `{name}` is listed twice"));
            }
            let ctx = |reason: String| format!("project `{name}`: {reason}");
            if entry.origins.is_empty() {
                return Err(ctx(
                    "`origins` is empty; list the origins whose pages may send (or \"*\")".into(),
                ));
            }
            let mut origins = Vec::new();
            let mut any_origin = false;
            for o in &entry.origins {
                if o == "*" {
                    any_origin = true;
                } else {
                    origins.push(canonical_origin(o).map_err(ctx)?);
                }
            }
            let hashes = |list: &[String], what: &str| -> Result<Vec<Hash>, String> {
                list.iter()
                    .map(|h| {
                        parse_hash(h).ok_or_else(|| {
                            ctx(format!(
                                "`{what}` entry `{}` is not 64 hex digits of a SHA-256",
                                h.escape_debug()
                            ))
                        })
                    })
                    .collect()
            };
            let keys = hashes(&entry.keys_sha256, "keys_sha256")?;
            let revoked = hashes(&entry.revoked_keys_sha256, "revoked_keys_sha256")?;
            let admin_tokens = hashes(&entry.admin_tokens_sha256, "admin_tokens_sha256")?;
            for h in keys.iter().chain(&revoked).chain(&admin_tokens) {
                if seen_hashes.contains(h) {
                    return Err(ctx(format!(
                        "the hash {} is used twice in the file; every key and token must be distinct",
                        to_hex(h)
                    )));
                }
                seen_hashes.push(*h);
            }
            let rate = entry.rate_limit.unwrap_or(DEFAULT_RATE);
            if !(rate.per_second.is_finite() && rate.per_second > 0.0) || rate.burst == 0 {
                return Err(ctx(
                    "`rate_limit` needs per_second > 0 and burst >= 1".into()
                ));
            }
            projects.push(Project {
                name: name.clone(),
                origins,
                any_origin,
                keys,
                revoked,
                admin_tokens,
                rate,
            });
        }
        Ok(Projects { projects })
    }

    /// The projects, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Project> {
        self.projects.iter()
    }

    /// Looks an ingest key up. Every stored hash is compared, in constant time.
    pub fn check_key(&self, key: &str) -> KeyCheck<'_> {
        if key.is_empty() || key.len() > MAX_SECRET_LEN {
            return KeyCheck::Unknown;
        }
        let hash = sha256(key.as_bytes());
        if let Some(i) = find_ct(self.projects.iter().map(|p| p.keys.as_slice()), &hash) {
            return KeyCheck::Active(&self.projects[i], hash);
        }
        match find_ct(self.projects.iter().map(|p| p.revoked.as_slice()), &hash) {
            Some(i) => KeyCheck::Revoked(&self.projects[i]),
            None => KeyCheck::Unknown,
        }
    }

    /// The project an admin token belongs to, if any. Constant time per stored hash.
    pub fn check_admin(&self, token: &str) -> Option<&Project> {
        if token.is_empty() || token.len() > MAX_SECRET_LEN {
            return None;
        }
        let hash = sha256(token.as_bytes());
        find_ct(
            self.projects.iter().map(|p| p.admin_tokens.as_slice()),
            &hash,
        )
        .map(|i| &self.projects[i])
    }
}

/// Index of the group holding `needle`, comparing against every hash of every group
/// without an early exit, so the time taken says nothing about where (or whether) it
/// matched.
fn find_ct<'a>(groups: impl Iterator<Item = &'a [Hash]>, needle: &Hash) -> Option<usize> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, group) in groups.enumerate() {
        for h in group {
            let eq = h.ct_eq(needle);
            index.conditional_assign(&(i as u64), eq);
            found |= eq;
        }
    }
    bool::from(found).then_some(index as usize)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn parse_hash(hex: &str) -> Option<Hash> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The origin as browsers send it (`scheme://host[:port]`, default port left out), or why
/// `text` is not one.
pub fn canonical_origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| format!("origin `{}` {why}", text.escape_debug());
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must be scheme://host[:port] only, without a path (e.g. https://shop.example)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    Ok(url.origin().ascii_serialization())
}

/// A fresh random secret with `prefix` (256 bits from the operating system).
pub fn new_secret(prefix: &str) -> Result<String, ProjectsError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ProjectsError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", to_hex(&bytes)))
}

/// Secrets minted by an edit, to be shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecrets {
    pub key: Option<String>,
    pub admin_token: Option<String>,
}

const FILE_HEADER: &str = "\
# understudy projects: who may send sessions to the collector and who may read or delete them.
# Edited by `understudy project add | rotate-key | rotate-token`. Keys and tokens are kept
# only as SHA-256 hashes; the collector re-reads this file when it changes.
";

impl ProjectsFile {
    /// Reads the file at `path`; a missing file is an empty one (for `project add`).
    pub fn load_or_empty(path: &Path) -> Result<ProjectsFile, ProjectsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ProjectsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let file: ProjectsFile = toml::from_str(&text).map_err(|e| ProjectsError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Projects::check(&file).map_err(|reason| ProjectsError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(file)
    }

    /// Writes the file atomically (a reader sees the old file or the new one, never half),
    /// after checking that it loads.
    pub fn save(&self, path: &Path) -> Result<(), ProjectsError> {
        Projects::check(self).map_err(|reason| ProjectsError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        let mut body = toml::to_string(self).map_err(|e| ProjectsError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !body.ends_with('\n') {
            body.push('\n');
        }
        let write_err = |source| ProjectsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        use std::io::Write;
        tmp.write_all(FILE_HEADER.as_bytes())
            .and_then(|()| tmp.write_all(b"\n"))
            .and_then(|()| tmp.write_all(body.as_bytes()))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(write_err)?;
        tmp.persist(path).map_err(|e| write_err(e.error))?;
        Ok(())
    }

    fn find(&mut self, name: &str) -> Result<&mut ProjectEntry, ProjectsError> {
        self.projects
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| ProjectsError::NoSuchProject(name.to_string()))
    }

    /// Adds a project with a new ingest key and a new admin token.
    pub fn add_project(
        &mut self,
        name: &str,
        origins: &[String],
        rate_limit: Option<RateLimit>,
    ) -> Result<NewSecrets, ProjectsError> {
        if self.projects.iter().any(|p| p.name == name) {
            return Err(ProjectsError::Exists(name.to_string()));
        }
        let origins = origins
            .iter()
            .map(|o| match o.as_str() {
                "*" => Ok(o.clone()),
                _ => canonical_origin(o),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProjectsError::BadOrigin)?;
        let key = new_secret(KEY_PREFIX)?;
        let token = new_secret(TOKEN_PREFIX)?;
        self.projects.push(ProjectEntry {
            name: name.to_string(),
            origins,
            keys_sha256: vec![to_hex(&sha256(key.as_bytes()))],
            revoked_keys_sha256: Vec::new(),
            admin_tokens_sha256: vec![to_hex(&sha256(token.as_bytes()))],
            rate_limit,
        });
        Ok(NewSecrets {
            key: Some(key),
            admin_token: Some(token),
        })
    }

    /// Mints a new ingest key for `name`. Unless `keep_old`, the keys in use move to the
    /// revoked list (pages still sending them get 403).
    pub fn rotate_key(&mut self, name: &str, keep_old: bool) -> Result<String, ProjectsError> {
        let key = new_secret(KEY_PREFIX)?;
        let entry = self.find(name)?;
        if !keep_old {
            let old = std::mem::take(&mut entry.keys_sha256);
            entry.revoked_keys_sha256.extend(old);
        }
        entry.keys_sha256.push(to_hex(&sha256(key.as_bytes())));
        Ok(key)
    }

    /// Mints a new admin token for `name`. Unless `keep_old`, the others stop working.
    pub fn rotate_token(&mut self, name: &str, keep_old: bool) -> Result<String, ProjectsError> {
        let token = new_secret(TOKEN_PREFIX)?;
        let entry = self.find(name)?;
        if !keep_old {
            entry.admin_tokens_sha256.clear();
        }
        entry
            .admin_tokens_sha256
            .push(to_hex(&sha256(token.as_bytes())));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(name: &str, origins: &[&str]) -> (ProjectsFile, NewSecrets) {
        let mut f = ProjectsFile::default();
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        let secrets = f.add_project(name, &origins, None).unwrap();
        (f, secrets)
    }

    #[test]
    fn keys_and_tokens_are_found_by_hash_only() {
        let (mut f, s) = file_with("shop", &["https://shop.example"]);
        let s2 = f.add_project("blog", &["*".to_string()], None).unwrap();
        let text = toml::to_string(&f).unwrap();
        let key = s.key.unwrap();
        let token = s.admin_token.unwrap();
        assert!(!text.contains(&key) && !text.contains(&token), "{text}");
        assert!(text.contains(&to_hex(&sha256(key.as_bytes()))));

        let p = Projects::parse(&text, Path::new("p.toml")).unwrap();
        match p.check_key(&key) {
            KeyCheck::Active(project, hash) => {
                assert_eq!(project.name, "shop");
                assert_eq!(hash, sha256(key.as_bytes()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.check_admin(&token).unwrap().name, "shop");
        assert_eq!(
            p.check_admin(s2.admin_token.as_deref().unwrap())
                .unwrap()
                .name,
            "blog"
        );
        // A key is not a token and vice versa.
        assert!(p.check_admin(&key).is_none());
        assert_eq!(p.check_key(&token), KeyCheck::Unknown);
        assert_eq!(p.check_key("pk_nope"), KeyCheck::Unknown);
        assert_eq!(p.check_key(""), KeyCheck::Unknown);
        assert_eq!(p.check_key(&"x".repeat(10_000)), KeyCheck::Unknown);
    }

    #[test]
    fn rotation_revokes_old_keys_and_tokens() {
        let (mut f, s) = file_with("shop", &["https://shop.example"]);
        let old_key = s.key.unwrap();
        let old_token = s.admin_token.unwrap();
        let new_key = f.rotate_key("shop", false).unwrap();
        let new_token = f.rotate_token("shop", false).unwrap();
        let p = Projects::check(&f).unwrap();
        assert!(matches!(p.check_key(&old_key), KeyCheck::Revoked(pr) if pr.name == "shop"));
        assert!(matches!(p.check_key(&new_key), KeyCheck::Active(..)));
        assert!(p.check_admin(&old_token).is_none());
        assert!(p.check_admin(&new_token).is_some());

        let kept = f.rotate_token("shop", true).unwrap();
        let p = Projects::check(&f).unwrap();
        assert!(p.check_admin(&new_token).is_some() && p.check_admin(&kept).is_some());
        assert!(matches!(
            f.rotate_key("nope", false),
            Err(ProjectsError::NoSuchProject(_))
        ));
        assert!(matches!(
            f.add_project("shop", &["*".into()], None),
            Err(ProjectsError::Exists(_))
        ));
    }

    #[test]
    fn origins_are_canonical_and_matched_exactly() {
        assert_eq!(
            canonical_origin("HTTPS://Shop.Example:443").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            canonical_origin("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/app",
            "https://shop.example?x=1",
            "https://u:p@shop.example",
        ] {
            assert!(canonical_origin(bad).is_err(), "{bad}");
        }
        let (f, _) = file_with("shop", &["https://Shop.example", "http://localhost:8080"]);
        let p = Projects::check(&f).unwrap();
        let shop = p.iter().next().unwrap();
        assert!(shop.allows_origin("https://shop.example"));
        assert!(shop.allows_origin("http://localhost:8080"));
        assert!(!shop.allows_origin("https://shop.example.evil.test"));
        assert!(!shop.allows_origin("http://shop.example"));
        assert!(!shop.allows_origin("null"));
        let (any, _) = file_with("any", &["*"]);
        assert!(Projects::check(&any)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .allows_origin("null"));
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let path = Path::new("projects.toml");
        let h = "a".repeat(64);
        let cases = [
            ("[[project]]\nname = \"a b\"\norigins = [\"*\"]\n", "project name"),
            ("[[project]]\nname = \"a\"\norigins = []\n", "`origins` is empty"),
            ("[[project]]\nname = \"a\"\norigins = [\"*\"]\nkeys_sha256 = [\"zz\"]\n", "not 64 hex digits"),
            (&format!("[[project]]\nname = \"a\"\norigins = [\"*\"]\nkeys_sha256 = [\"{h}\"]\nadmin_tokens_sha256 = [\"{h}\"]\n"), "used twice"),
            ("[[project]]\nname = \"a\"\norigins = [\"*\"]\n[[project]]\nname = \"a\"\norigins = [\"*\"]\n", "listed twice"),
            ("[[project]]\nname = \"a\"\norigins = [\"*\"]\nrate_limit = { per_second = 0.0, burst = 1 }\n", "rate_limit"),
            ("[[project]]\nname = \"a\"\norigins = [\"*\"]\nkey = \"pk_clear\"\n", "unknown field `key`"),
            ("[[project]\n", "not valid TOML"),
        ];
        for (text, want) in cases {
            let err = Projects::parse(text, path).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("projects.toml"), "{err}");
        }
    }

    #[test]
    fn save_round_trips_and_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projects.toml");
        let mut f = ProjectsFile::load_or_empty(&path).unwrap();
        assert!(f.projects.is_empty());
        f.add_project(
            "shop",
            &["https://shop.example".into()],
            Some(RateLimit {
                per_second: 5.0,
                burst: 10,
            }),
        )
        .unwrap();
        f.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# understudy projects"), "{text}");
        assert_eq!(ProjectsFile::load_or_empty(&path).unwrap(), f);
        let p = Projects::load(&path).unwrap();
        assert_eq!(p.iter().next().unwrap().rate.burst, 10);
        // Nothing else left in the folder (no temp file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_secret(KEY_PREFIX).unwrap();
        let b = new_secret(KEY_PREFIX).unwrap();
        assert!(a.starts_with("pk_") && a.len() == 3 + 64);
        assert_ne!(a, b);
    }
}
