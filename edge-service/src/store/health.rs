//! The store's health: can it write, since when has it failed and why, and how much room is
//! left on its filesystem. Kept by the writer thread at every commit and every failure (so it
//! reflects every writer: the consumer, the outbox worker, retention), read by the status page,
//! the health report and the consumer's store alarm.

use super::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;

/// Below this much free space a full-disk error is the filesystem's, not `hard_limit_mb`'s:
/// SQLite needs a few pages at least for one commit.
const NEARLY_FULL_BYTES: u64 = 256 * 1024;

/// The store as the status page and the health report show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreHealth {
    /// The database file.
    pub path: String,
    /// Whether the last write reached the disk (true until a write fails).
    pub writable: bool,
    /// Since when writes fail (`None` while writable).
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure, worded for a person (kept after the store writes again: history).
    pub last_error: Option<String>,
    /// When that failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last commit.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Free space on the store's filesystem for kare's user, bytes (`None`: could not tell).
    pub free_bytes: Option<u64>,
}

impl StoreHealth {
    /// One line saying what is wrong and what to do, for the alarm, the console and the status
    /// page; `None` while the store writes.
    pub fn problem(&self) -> Option<String> {
        if self.writable {
            return None;
        }
        Some(
            self.last_error
                .clone()
                .unwrap_or_else(|| format!("store {} cannot be written; see the log", self.path)),
        )
    }
}

#[derive(Debug, Default)]
struct State {
    failing_since: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    last_commit_at: Option<DateTime<Utc>>,
}

/// What the writer thread updates; [`Tracker::snapshot`] is what everyone else reads.
#[derive(Debug)]
pub(crate) struct Tracker {
    path: String,
    state: Mutex<State>,
}

impl Tracker {
    pub(crate) fn new(path: &str) -> Tracker {
        Tracker {
            path: path.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    /// A transaction committed with no command lost to the medium: the store writes.
    pub(crate) fn committed(&self, at: DateTime<Utc>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.failing_since = None;
        s.last_commit_at = Some(at);
    }

    /// A write failed. Only failures of the medium or the file make the store unwritable; a
    /// refused command (unknown id, bad input) says nothing about the disk.
    pub(crate) fn failed(&self, e: &StoreError, at: DateTime<Utc>) {
        if !cannot_write(e) {
            return;
        }
        let line = alarm_line(&self.path, e, free_bytes(Path::new(&self.path)));
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.failing_since.get_or_insert(at);
        s.last_error = Some(line);
        s.last_error_at = Some(at);
    }

    pub(crate) fn snapshot(&self) -> StoreHealth {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        StoreHealth {
            path: self.path.clone(),
            writable: s.failing_since.is_none(),
            failing_since: s.failing_since,
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at,
            last_commit_at: s.last_commit_at,
            free_bytes: free_bytes(Path::new(&self.path)),
        }
    }
}

/// Whether `e` means the store cannot write (the disk, the file, the writer), as opposed to
/// one command being refused. Writes failing so wait in memory rather than being given up.
pub fn cannot_write(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::DiskFull { .. } | StoreError::Corrupt { .. } | StoreError::Unavailable { .. }
    )
}

/// "store P cannot be written: WHY; WHAT TO DO": short enough for an SMS and a console line.
pub fn alarm_line(path: &str, e: &StoreError, free: Option<u64>) -> String {
    let (why, todo) = match e {
        StoreError::DiskFull { .. } if free.is_none_or(|f| f < NEARLY_FULL_BYTES) => (
            "No space left on device".to_string(),
            "free space on that filesystem".to_string(),
        ),
        StoreError::DiskFull { .. } => (
            "the file reached [store] hard_limit_mb".to_string(),
            "raise [store] hard_limit_mb, or lower max_db_mb / retention_days".to_string(),
        ),
        StoreError::Corrupt { message, .. } => (
            format!("the database file is damaged ({message})"),
            "stop kare, move the file and its -wal and -shm files aside, start again".to_string(),
        ),
        StoreError::Unavailable { doing, message, .. }
        | StoreError::Sqlite { doing, message, .. } => (
            format!("{message} (while {doing})"),
            "check that its filesystem is mounted read-write and healthy (dmesg) and the file's \
             permissions"
                .to_string(),
        ),
        other => (other.to_string(), "see the log".to_string()),
    };
    format!("store {path} cannot be written: {why}; {todo}")
}

/// Free space for an unprivileged writer on the filesystem holding `file` (its directory's
/// `statvfs`: a system call, cheap enough for every status request).
pub fn free_bytes(file: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_health_says_what_is_wrong_and_what_to_do() {
        let full = StoreError::DiskFull {
            path: "/var/lib/kare/kare.db".into(),
            doing: "committing",
        };
        assert_eq!(
            alarm_line("/var/lib/kare/kare.db", &full, Some(0)),
            "store /var/lib/kare/kare.db cannot be written: No space left on device; free space \
             on that filesystem"
        );
        assert!(alarm_line("x.db", &full, Some(1 << 30)).contains("hard_limit_mb"));
        let t = Tracker::new("/tmp/kare-health-test.db");
        assert!(t.snapshot().writable);
        let t0 = Utc::now();
        t.failed(&StoreError::Invalid("empty key".into()), t0);
        assert!(t.snapshot().writable, "a refused command is not a disk");
        t.failed(&full, t0);
        t.failed(&full, t0 + chrono::Duration::seconds(5));
        let h = t.snapshot();
        assert!(!h.writable);
        assert_eq!(h.failing_since, Some(t0), "since the first failure");
        assert!(h.problem().unwrap().contains("cannot be written"));
        assert!(h.free_bytes.is_some(), "statvfs of /tmp");
        t.committed(t0 + chrono::Duration::seconds(9));
        let h = t.snapshot();
        assert!(h.writable && h.failing_since.is_none() && h.last_error.is_some());
    }
}
