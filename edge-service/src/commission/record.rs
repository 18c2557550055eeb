//! The commissioning record: every check, every reading, who did it and when, signed with the
//! appliance's own Ed25519 key so that the desk can tell a record this box made from one edited
//! afterwards. `kare commission verify FILE` checks it.
//!
//! The signed file is `{"schema": …, "record": {…}, "signature": {…}}`; the signature covers
//! the exact bytes of the `record` member as written (read back through serde_json's
//! `RawValue`), so no re-serialisation (key order, float formatting) can break it.
//!
//! The key: 32 random bytes from the kernel, hex, in `<state>/commission.key`, created on first
//! use with mode 0600 and refused when anyone but the owner can read it.

use super::check::{worst, Check, Status};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The record's schema name.
pub const SCHEMA: &str = "kare.commissioning/1";
/// The key file's name in the state folder.
pub const KEY_FILE: &str = "commission.key";

/// What was checked, by whom, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Identifies this run (also in the test tickets it sent).
    pub run_id: String,
    /// When the run began and ended (RFC 3339, UTC).
    pub started_at: String,
    /// See [`Self::started_at`].
    pub finished_at: String,
    /// The crew's name as given.
    pub crew: String,
    /// The language the texts are in (`en`, `zh-CN`).
    pub lang: String,
    /// Site id and customer, from the configuration (empty when it has no `[site]`).
    pub site_id: String,
    /// Customer name.
    pub customer: String,
    /// The appliance's host name.
    pub host: String,
    /// kare's version.
    pub version: String,
    /// The configuration file used.
    pub config: String,
    /// The worst status of any check.
    pub verdict: Status,
    /// Every check, in step order.
    pub checks: Vec<Check>,
}

impl Record {
    /// Counts of pass, warn, fail.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.checks.iter().filter(|c| c.status == s).count();
        (n(Status::Pass), n(Status::Warn), n(Status::Fail))
    }

    /// Recomputes the verdict from the checks.
    pub fn settle(&mut self) {
        self.verdict = worst(&self.checks);
    }
}

/// The signature block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureBlock {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The appliance's public key, hex (64 digits).
    pub public_key: String,
    /// The signature over the record's bytes, hex (128 digits).
    pub value: String,
}

#[derive(Serialize)]
struct SignedOut<'a> {
    schema: &'static str,
    record: &'a RawValue,
    signature: SignatureBlock,
}

#[derive(Deserialize)]
struct SignedIn<'a> {
    schema: String,
    #[serde(borrow)]
    record: &'a RawValue,
    signature: SignatureBlock,
}

/// Why a key could not be had or a record not verified.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The key file could not be read or written.
    #[error("commissioning key {path}: {source}; the state folder must be writable by kare")]
    KeyIo {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error("commissioning key {path} is readable by others (mode {mode:o}): run `chmod 600 {path}`; a key others can read can sign records this appliance never made")]
    KeyExposed {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file does not hold 64 hex digits.
    #[error("commissioning key {path} is damaged (expected 64 hex digits): move it away and run again to make a new one, then tell the desk the new public key")]
    KeyDamaged {
        /// The file.
        path: PathBuf,
    },
    /// Not a signed commissioning record.
    #[error("not a signed commissioning record: {0}")]
    Malformed(String),
    /// The signature does not match.
    #[error("the signature does not match the record: it was changed after signing, or signed by another key")]
    BadSignature,
    /// Signed by a key other than the one expected.
    #[error("signed by key {found}, not by the expected {expected}")]
    OtherKey {
        /// The record's key.
        found: String,
        /// The expected key.
        expected: String,
    },
}

/// The appliance's signing key from `state_dir`, made on first use.
pub fn load_or_create_key(state_dir: &Path) -> Result<SigningKey, RecordError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = state_dir.join(KEY_FILE);
    let io = |source| RecordError::KeyIo {
        path: path.clone(),
        source,
    };
    match std::fs::metadata(&path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(RecordError::KeyExposed { path, mode });
            }
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| RecordError::KeyDamaged { path: path.clone() })?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(state_dir).map_err(io)?;
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed)
                .map_err(|e| io(std::io::Error::other(e.to_string())))?;
            // Written whole under a temporary name, then linked into place: a second run at the
            // same moment, or a crash, never leaves a short key behind; whoever links first wins
            // and the other reads that key.
            let tmp = state_dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
            let written = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(seed)).as_bytes())?;
                f.sync_all()?;
                std::fs::hard_link(&tmp, &path)
            })();
            let _ = std::fs::remove_file(&tmp);
            match written {
                Ok(()) => {
                    tracing::info!(key = %path.display(), "made the appliance's commissioning key");
                    Ok(SigningKey::from_bytes(&seed))
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_key(state_dir)
                }
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// The signed file's text.
pub fn sign(record: &Record, key: &SigningKey) -> String {
    // A Record always serialises (plain data, finite numbers written as numbers).
    let body = serde_json::to_string_pretty(record).unwrap_or_else(|_| "{}".into());
    let raw = RawValue::from_string(body.clone())
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("an empty object is JSON"));
    let signature = key.sign(raw.get().as_bytes());
    let out = SignedOut {
        schema: SCHEMA,
        record: &raw,
        signature: SignatureBlock {
            algorithm: "ed25519".into(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            value: hex::encode(signature.to_bytes()),
        },
    };
    let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
    text.push('\n');
    text
}

/// Checks a signed file; returns the record and the key that signed it. With `expected_key`
/// (hex), a record signed by any other key is refused.
pub fn verify(text: &str, expected_key: Option<&str>) -> Result<(Record, String), RecordError> {
    let signed: SignedIn =
        serde_json::from_str(text).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if signed.schema != SCHEMA {
        return Err(RecordError::Malformed(format!(
            "schema is `{}`, expected `{SCHEMA}`",
            signed.schema
        )));
    }
    if signed.signature.algorithm != "ed25519" {
        return Err(RecordError::Malformed(format!(
            "signature algorithm `{}` (only ed25519)",
            signed.signature.algorithm
        )));
    }
    let key_bytes: [u8; 32] = hex::decode(&signed.signature.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RecordError::Malformed("public_key is not 64 hex digits".into()))?;
    let sig_bytes: [u8; 64] = hex::decode(&signed.signature.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| RecordError::Malformed("signature value is not 128 hex digits".into()))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| RecordError::Malformed("public_key is not a valid Ed25519 key".into()))?;
    key.verify(
        signed.record.get().as_bytes(),
        &Signature::from_bytes(&sig_bytes),
    )
    .map_err(|_| RecordError::BadSignature)?;
    let found = signed.signature.public_key.to_lowercase();
    if let Some(want) = expected_key {
        if want.trim().to_lowercase() != found {
            return Err(RecordError::OtherKey {
                found,
                expected: want.trim().to_lowercase(),
            });
        }
    }
    let record: Record = serde_json::from_str(signed.record.get())
        .map_err(|e| RecordError::Malformed(format!("record: {e}")))?;
    Ok((record, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commission::check::Step;
    use std::os::unix::fs::PermissionsExt;

    fn record() -> Record {
        Record {
            run_id: "r1".into(),
            started_at: "2026-12-05T08:00:00Z".into(),
            finished_at: "2026-12-05T08:01:00Z".into(),
            crew: "王工 / J. Smith".into(),
            lang: "zh-CN".into(),
            site_id: "SITE-1".into(),
            customer: "City Hospital".into(),
            host: "kare-01".into(),
            version: "0.1.0".into(),
            config: "/etc/kare/kare.toml".into(),
            verdict: Status::Pass,
            checks: vec![
                Check::new(Step::Box, "box.version", "", Status::Pass, "ok".into()).number(
                    "voltage_a",
                    230.123_456_789_012_3,
                    Some("V"),
                ),
            ],
        }
    }

    #[test]
    fn a_signed_record_verifies_and_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let text = sign(&record(), &key);
        let (back, by) = verify(&text, None).unwrap();
        assert_eq!(back, record());
        assert_eq!(by, hex::encode(key.verifying_key().as_bytes()));
    }

    #[test]
    fn one_changed_character_breaks_the_signature() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let text = sign(&record(), &key).replace("\"pass\"", "\"fail\"");
        assert!(matches!(
            verify(&text, None),
            Err(RecordError::BadSignature)
        ));
    }

    #[test]
    fn the_key_is_made_once_with_mode_600_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_key_others_can_read_is_refused_with_the_chmod() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_key(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_key(dir.path()).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_record_signed_by_another_key_is_refused_when_a_key_is_expected() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ka = load_or_create_key(a.path()).unwrap();
        let kb = load_or_create_key(b.path()).unwrap();
        let text = sign(&record(), &kb);
        let want = hex::encode(ka.verifying_key().as_bytes());
        assert!(matches!(
            verify(&text, Some(&want)),
            Err(RecordError::OtherKey { .. })
        ));
    }
}
