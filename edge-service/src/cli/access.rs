//! `kare passwd` (a user of the pages: an argon2id hash in the users file) and `kare gen-cert`
//! (the self-signed TLS certificate the Debian package makes at install). Their arguments are
//! here so that `main.rs` only names them.

use crate::web::auth::users::{self, DEFAULT_USERS_FILE};
use crate::web::auth::Role;
use std::path::PathBuf;

/// `kare passwd USER [--role viewer|admin] [--file PATH]`.
#[derive(clap::Args, Debug)]
pub struct PasswdArgs {
    /// The user name (letters, digits and . _ - @).
    pub user: String,
    /// What the user may do: `viewer` (events, tickets, reports, pages) or `admin` (also
    /// commissioning and anything that changes state).
    #[arg(long, default_value = "viewer", value_parser = ["viewer", "admin"])]
    pub role: String,
    /// The users file (name it in kare.toml as `[auth] users_file`); created 0600 if missing.
    #[arg(long, default_value = DEFAULT_USERS_FILE)]
    pub file: PathBuf,
}

/// Sets the user's password (from the terminal, twice, or one line of standard input).
pub fn passwd(args: PasswdArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).unwrap_or(Role::Viewer);
    let password = users::read_password(&args.user)?;
    users::set_password(&args.file, &args.user, role, &password)?;
    eprintln!(
        "kare: {} ({}) set in {}; restart kare to use it (systemctl restart kare)",
        args.user,
        role.as_str(),
        args.file.display()
    );
    Ok(())
}

/// `kare gen-cert --out DIR [--name HOST]…`.
#[derive(clap::Args, Debug)]
pub struct GenCertArgs {
    /// The folder for tls.crt (0644) and tls.key (0600); name them in `[tls]`.
    #[arg(long, default_value = "/etc/kare/secrets/")]
    pub out: PathBuf,
    /// A DNS name or IP address the appliance is reached at (repeat; localhost, 127.0.0.1 and
    /// ::1 are always in; default: this machine's host name).
    #[arg(long = "name")]
    pub names: Vec<String>,
}

/// Writes a self-signed certificate and its key.
pub fn gen_cert(args: GenCertArgs) -> anyhow::Result<()> {
    let mut names = args.names;
    if names.is_empty() {
        if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
            let h = h.trim();
            if !h.is_empty() {
                names.push(h.to_string());
            }
        }
    }
    let (cert, key) = crate::web::tls::generate(&args.out, &names)?;
    eprintln!(
        "kare: wrote {} and {} (self-signed, 10 years); set [tls] cert_file and key_file to them",
        cert.display(),
        key.display()
    );
    Ok(())
}
