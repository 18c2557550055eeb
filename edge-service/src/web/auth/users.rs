//! The pages' users: one line per user, `name:role:$argon2id$…` (the PHC string of an argon2id
//! hash with its own salt), in the file `[auth] users_file` (0600; the Debian package's
//! folder is `/etc/kare/secrets/`, so `/etc/kare/secrets/users`). `kare passwd` adds a user or
//! changes a password ([`set_password`]); kare reads the file at start.
//!
//! May never: keep or write a password itself, only its hash; write the file readable by others.

use super::{AuthError, Role};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The shortest password `kare passwd` accepts.
pub const MIN_PASSWORD_LEN: usize = 10;

/// The default users file (the package's secrets folder).
pub const DEFAULT_USERS_FILE: &str = "/etc/kare/secrets/users";

/// One user.
#[derive(Clone, Debug)]
struct User {
    role: Role,
    /// The PHC string.
    hash: String,
}

/// The users, by name.
#[derive(Clone, Debug, Default)]
pub struct Users(BTreeMap<String, User>);

/// A hash to verify against when the user does not exist, so that a wrong name takes as long
/// as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default())
}

/// An argon2id hash of `password` with a fresh random salt, as a PHC string.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl Users {
    /// Reads a users file (it must be 0600).
    pub fn load(path: &Path) -> Result<Users, AuthError> {
        let text = super::read_secret(path)?;
        Users::parse(&text).map_err(|problem| AuthError::Users {
            path: path.display().to_string(),
            problem,
        })
    }

    /// Parses `name:role:hash` lines (`#` comments and blank lines ignored).
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| {
                format!(
                    "line {}: {what}; each line is `name:role:hash`, written by `kare passwd`",
                    i + 1
                )
            };
            let mut parts = line.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("not three fields"));
            };
            if !valid_name(name) {
                return Err(bad("a user name is letters, digits and . _ - @"));
            }
            let role = Role::parse(role).ok_or_else(|| bad("the role is viewer or admin"))?;
            PasswordHash::new(hash).map_err(|_| bad("the hash is not an argon2 PHC string"))?;
            users.insert(
                name.to_string(),
                User {
                    role,
                    hash: hash.to_string(),
                },
            );
        }
        Ok(Users(users))
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The user's role if `password` is theirs. Takes an argon2 verification whether or not
    /// the user exists.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let user = self.0.get(name);
        let phc = user
            .map(|u| u.hash.as_str())
            .unwrap_or_else(|| dummy_hash());
        let ok = PasswordHash::new(phc).ok().is_some_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        user.filter(|_| ok).map(|u| u.role)
    }

    fn render(&self) -> String {
        let mut out = String::from("# kare's page users: name:role:argon2 hash (`kare passwd`)\n");
        for (name, u) in &self.0 {
            out.push_str(&format!("{name}:{}:{}\n", u.role.as_str(), u.hash));
        }
        out
    }
}

/// Why `kare passwd` failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("the user name {0:?} is not allowed: use letters, digits and . _ - @ (at most 64)")]
    Name(String),
    #[error("the password is too short: at least {MIN_PASSWORD_LEN} characters")]
    Short,
    #[error("the two passwords differ: run `kare passwd` again")]
    Mismatch,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("cannot read the password from the terminal or standard input: {0}; pipe it in (`echo PASSWORD | kare passwd USER`) or run in a terminal")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot write {path}: {source}; run as the file's owner (root or kare) or choose another with --file")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Adds `name` with `role`, or changes their password and role, in the users file at `path`
/// (created 0600 if missing; replaced atomically).
pub fn set_password(
    path: &Path,
    name: &str,
    role: Role,
    password: &str,
) -> Result<(), PasswdError> {
    if !valid_name(name) {
        return Err(PasswdError::Name(name.to_string()));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswdError::Short);
    }
    let mut users = if path.exists() {
        Users::load(path)?
    } else {
        Users::default()
    };
    let hash = hash(password).map_err(PasswdError::Hash)?;
    users.0.insert(name.to_string(), User { role, hash });
    let p = path.display().to_string();
    let werr = |source| PasswdError::Write {
        path: p.clone(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("users")
    ));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(users.render().as_bytes()).map_err(werr)?;
        f.sync_all().map_err(werr)?;
    }
    // The owner of the file it replaces, or of the folder (the package's 0700 secrets folder is
    // the `kare` user's), so that kare can read a file root wrote. Best effort: only root may.
    if let Ok(meta) = std::fs::metadata(path).or_else(|_| std::fs::metadata(dir)) {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
    }
    std::fs::rename(&tmp, path).map_err(werr)?;
    Ok(())
}

/// Reads the new password: twice from the terminal without echo, or one line from standard
/// input when it is not a terminal (scripts, the package).
pub fn read_password(name: &str) -> Result<String, PasswdError> {
    use std::io::IsTerminal;
    let read_err = PasswdError::Read;
    if std::io::stdin().is_terminal() {
        let a =
            rpassword::prompt_password(format!("New password for {name}: ")).map_err(read_err)?;
        let b = rpassword::prompt_password("Again: ").map_err(read_err)?;
        if a != b {
            return Err(PasswdError::Mismatch);
        }
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(read_err)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}
