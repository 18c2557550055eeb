//! Commissioning records (`kare commission`): kept with the site's events and tickets so that
//! whoever looks at the appliance later finds who signed it off, when, and what was checked.

use super::{format_ts, Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::params;

/// One stored commissioning record.
#[derive(Clone, Debug, PartialEq)]
pub struct CommissioningRow {
    /// Row id.
    pub id: i64,
    /// When the run ended.
    pub at: String,
    /// The crew's name as they gave it.
    pub crew: String,
    /// `pass`, `warn` or `fail`.
    pub verdict: String,
    /// The signed record, exactly as signed (JSON).
    pub record: String,
}

impl Store {
    /// Stores a signed commissioning record; returns its row id.
    pub fn save_commissioning(
        &mut self,
        at: DateTime<Utc>,
        crew: &str,
        verdict: &str,
        record: &str,
    ) -> Result<i64, StoreError> {
        self.write("saving a commissioning record", |c, p| {
            c.execute(
                "INSERT INTO commissioning (at_utc, crew, verdict, record) VALUES (?1, ?2, ?3, ?4)",
                params![format_ts(at), crew, verdict, record],
            )
            .map_err(|e| StoreError::sqlite(p, "saving a commissioning record", e))?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Every stored commissioning record, oldest first.
    pub fn commissioning_records(&self) -> Result<Vec<CommissioningRow>, StoreError> {
        let doing = "reading commissioning records";
        let sq = |e| StoreError::sqlite(self.path(), doing, e);
        let mut st = self
            .connection()
            .prepare("SELECT id, at_utc, crew, verdict, record FROM commissioning ORDER BY id")
            .map_err(sq)?;
        let rows = st
            .query_map([], |r| {
                Ok(CommissioningRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    crew: r.get(2)?,
                    verdict: r.get(3)?,
                    record: r.get(4)?,
                })
            })
            .map_err(sq)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sq)
    }
}
