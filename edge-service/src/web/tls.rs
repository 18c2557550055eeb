//! HTTPS for the pages and the API: `[tls] cert_file`, `key_file` (PEM), served with rustls and
//! the `ring` provider (as every TLS in kare: no OpenSSL, no CMake) through axum-server; and
//! `kare gen-cert`, the self-signed certificate the Debian package makes at install (rcgen).
//!
//! May never: accept a private key file that others may read (0600, as every secret); speak a
//! protocol below TLS 1.2.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[tls]` in kare.toml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (`kare gen-cert` writes `/etc/kare/secrets/tls.crt`).
    pub cert_file: PathBuf,
    /// Its private key, PEM, 0600 (`/etc/kare/secrets/tls.key`).
    pub key_file: PathBuf,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {path}: {problem}; make one with `kare gen-cert --out /etc/kare/secrets/` or name yours in [tls] cert_file")]
    Cert { path: String, problem: String },
    #[error("cannot read the private key {path}: {problem}; it must be a PEM key (PKCS#8, PKCS#1 or SEC1), 0600: `kare gen-cert --out /etc/kare/secrets/` makes a pair")]
    Key { path: String, problem: String },
    #[error("the certificate {cert} and the key {key} do not go together: {problem}; name the matching pair in [tls]")]
    Pair {
        cert: String,
        key: String,
        problem: String,
    },
    #[error("the private key {path} can be read by others (mode {mode:03o}): run `chmod 600 {path}` (and `chown kare {path}`)")]
    Permissions { path: String, mode: u32 },
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}; check that the folder exists and is writable (run as root at install)")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl TlsConfig {
    /// Reads the pair (the key must be 0600) into a rustls server configuration.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert_path = self.cert_file.display().to_string();
        let key_path = self.key_file.display().to_string();
        match super::auth::check_private(&self.key_file) {
            Ok(()) => {}
            Err(super::auth::AuthError::Permissions { path, mode }) => {
                return Err(TlsError::Permissions { path, mode })
            }
            Err(e) => {
                return Err(TlsError::Key {
                    path: key_path,
                    problem: e.to_string(),
                })
            }
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Cert {
                path: cert_path.clone(),
                problem: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Cert {
                path: cert_path,
                problem: "no CERTIFICATE in it".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::Key {
            path: key_path.clone(),
            problem: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Generate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Pair {
                cert: cert_path,
                key: key_path,
                problem: e.to_string(),
            })?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// The files `kare gen-cert` writes in its folder.
pub const CERT_NAME: &str = "tls.crt";
/// The private key's name (0600).
pub const KEY_NAME: &str = "tls.key";

/// Makes a self-signed certificate for `names` (DNS names or IP addresses; `localhost` and
/// 127.0.0.1 are always in) and writes `tls.crt` (0644) and `tls.key` (0600) into `out`, owned
/// like `out`.
/// Returns the two paths.
pub fn generate(out: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let mut all: Vec<String> = names.to_vec();
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !all.iter().any(|a| a == n) {
            all.push(n.into());
        }
    }
    let mut params =
        rcgen::CertificateParams::new(all).map_err(|e| TlsError::Generate(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("kare"),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "kare appliance");
    // From today (UTC) for ten years: the appliance's life.
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, today.day() as u8);
    params.not_after = rcgen::date_time_ymd(
        today.year() + 10,
        today.month() as u8,
        today.day().min(28) as u8,
    );
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert_path = out.join(CERT_NAME);
    let key_path = out.join(KEY_NAME);
    write_mode(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_mode(&cert_path, cert.pem().as_bytes(), 0o644)?;
    // Owned like the folder (the package's secrets folder is the `kare` user's), so that kare
    // reads a key root wrote. Best effort: only root may.
    if let Ok(meta) = std::fs::metadata(out) {
        use std::os::unix::fs::MetadataExt;
        for p in [&key_path, &cert_path] {
            let _ = std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid()));
        }
    }
    Ok((cert_path, key_path))
}

/// Writes a file created with `mode` (replacing an old one, whose mode is reset too).
fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}
