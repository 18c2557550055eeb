//! The store-and-forward backlog: batches the server could not take, in a SQLite file of their
//! own (`<data dir>/influx-backlog.sqlite`), oldest first, bounded in size.
//!
//! - Bodies are stored gzip-compressed (fast level): line protocol compresses about tenfold,
//!   so the bound holds ten times the data; the bound counts stored bytes.
//! - When a new batch does not fit, the oldest batches of the least valuable class go first
//!   ([`Class`] order: fine readings, then profiles, then interval data), and only batches of a
//!   class no more valuable than the newcomer's: fine readings never push out interval data or
//!   events. Events are never evicted: a batch of events is stored even over the bound (and
//!   that is reported). A newcomer that cannot make room for itself is dropped and counted.
//! - Batches the server refused as bad data move to `rejected`, with the server's message,
//!   bounded to an eighth of the backlog (at least 1 MiB), oldest deleted first and counted.
//! - WAL journal with `synchronous = NORMAL`: a commit is not an fsync (an SD card's fsync
//!   costs tens of milliseconds), at the price of the last commits on a power cut (the
//!   appliance runs on its UPS through an outage; events are also in the main store).

use super::error::InfluxError;
use super::point::Class;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use rusqlite::{params, Connection, OptionalExtension};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One stored batch, body decompressed.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBatch {
    /// Row id: the age order.
    pub id: i64,
    /// Class.
    pub class: Class,
    /// Points in the body.
    pub points: u64,
    /// Line protocol.
    pub body: Vec<u8>,
}

/// What a push had to evict (or drop) to respect the bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Batches removed (or the newcomer, if it was dropped).
    pub batches: u64,
    /// Points in them.
    pub points: u64,
    /// Points per class, [`Class::code`] order.
    pub points_by_class: [u64; 4],
    /// Whether the new batch itself was dropped (it did not fit and could evict nothing).
    pub dropped_new: bool,
    /// Whether the new batch (events) was stored over the bound.
    pub over_bound: bool,
}

/// Counts of what the backlog holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Batches.
    pub batches: u64,
    /// Points.
    pub points: u64,
    /// Stored bytes (compressed bodies).
    pub bytes: u64,
    /// Event-class points among them.
    pub event_points: u64,
}

/// A batch the server refused, and its answer.
#[derive(Clone, Copy, Debug)]
pub struct Refused<'a> {
    /// Class.
    pub class: Class,
    /// Points in the body.
    pub points: u64,
    /// Line protocol.
    pub body: &'a [u8],
    /// HTTP status.
    pub status: u16,
    /// The server's message.
    pub message: &'a str,
}

/// The backlog database.
pub struct Backlog {
    conn: Connection,
    path: PathBuf,
    max_bytes: u64,
    depth: Depth,
    rejected_bytes: u64,
    /// The next sequence number ([`Backlog::reserve`]); row ids are sequence numbers.
    next_seq: i64,
}

/// gzip at the fast level.
pub fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 6 + 64), Compression::fast());
    e.write_all(body)?;
    e.finish()
}

/// Inflates a gzip body.
pub fn decompress(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(gz.len() * 8);
    GzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

impl Backlog {
    /// Opens (or creates) the backlog file, bounded to `max_bytes` of stored batches.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Backlog, InfluxError> {
        let err = |source| InfluxError::Backlog {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS batch (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 class INTEGER NOT NULL,
                 points INTEGER NOT NULL,
                 created_ns INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 body BLOB NOT NULL
             );
             CREATE INDEX IF NOT EXISTS batch_by_class ON batch (class, id);
             CREATE TABLE IF NOT EXISTS rejected (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 class INTEGER NOT NULL,
                 points INTEGER NOT NULL,
                 rejected_ns INTEGER NOT NULL,
                 status INTEGER NOT NULL,
                 message TEXT NOT NULL,
                 body BLOB NOT NULL
             );",
        )
        .map_err(err)?;
        let mut b = Backlog {
            conn,
            path: path.to_path_buf(),
            max_bytes,
            depth: Depth::default(),
            rejected_bytes: 0,
            next_seq: 1,
        };
        b.recount()?;
        // Past every id ever used (AUTOINCREMENT's own counter survives deleted rows).
        let used: i64 = b
            .conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'batch'), 0),
                            COALESCE((SELECT MAX(id) FROM batch), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(|e| b.err(e))?;
        b.next_seq = used + 1;
        Ok(b)
    }

    fn err(&self, source: rusqlite::Error) -> InfluxError {
        InfluxError::Backlog {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn recount(&mut self) -> Result<(), InfluxError> {
        let (batches, points, bytes, event_points): (i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0),
                        COALESCE(SUM(CASE WHEN class = ?1 THEN points ELSE 0 END), 0)
                 FROM batch",
                [Class::Events.code()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(|e| self.err(e))?;
        self.depth = Depth {
            batches: batches as u64,
            points: points as u64,
            bytes: bytes as u64,
            event_points: event_points as u64,
        };
        self.rejected_bytes = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM rejected",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))? as u64;
        Ok(())
    }

    /// What the backlog holds.
    pub fn depth(&self) -> Depth {
        self.depth
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.depth.batches == 0
    }

    /// The bound, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// A fresh sequence number, for a batch that may be stored later ([`Backlog::push_seq`]).
    ///
    /// The writer numbers each batch when it seals it, so a batch that comes to the backlog
    /// late (its live send failed after newer batches had already been stored) still drains
    /// in the order its points were made.
    pub fn reserve(&mut self) -> i64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Stores a batch (plain line protocol) as the newest, evicting to respect the bound.
    /// Returns the new row's id (`None` if the batch itself was dropped) and what was evicted.
    pub fn push(
        &mut self,
        class: Class,
        points: u64,
        body: &[u8],
        now_ns: i64,
    ) -> Result<(Option<i64>, Eviction), InfluxError> {
        let seq = self.reserve();
        self.push_seq(seq, class, points, body, now_ns)
    }

    /// Stores a batch under the sequence number `seq` from [`Backlog::reserve`] (its row id, so
    /// its place in the drain order). Returns the row's id (`None` if the batch itself was
    /// dropped) and what was evicted.
    pub fn push_seq(
        &mut self,
        seq: i64,
        class: Class,
        points: u64,
        body: &[u8],
        now_ns: i64,
    ) -> Result<(Option<i64>, Eviction), InfluxError> {
        let gz = compress(body)?;
        let len = gz.len() as u64;
        let mut ev = Eviction::default();
        let tx = self.conn.transaction().map_err(|e| InfluxError::Backlog {
            path: self.path.display().to_string(),
            source: e,
        })?;
        let mut depth = self.depth;
        let mut stored_id = None;
        let res: rusqlite::Result<()> = (|| {
            // Evict the least valuable oldest first, never more valuable than the newcomer.
            'room: while depth.bytes + len > self.max_bytes {
                for victim in Class::ALL {
                    if !victim.evictable() || victim > class {
                        continue;
                    }
                    let row: Option<(i64, i64, i64)> = tx
                        .query_row(
                            "SELECT id, points, LENGTH(body) FROM batch WHERE class = ?1
                             ORDER BY id LIMIT 1",
                            [victim.code()],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()?;
                    if let Some((id, pts, bytes)) = row {
                        tx.execute("DELETE FROM batch WHERE id = ?1", [id])?;
                        depth.batches -= 1;
                        depth.points -= pts as u64;
                        depth.bytes -= bytes as u64;
                        ev.batches += 1;
                        ev.points += pts as u64;
                        ev.points_by_class[victim.code() as usize] += pts as u64;
                        continue 'room;
                    }
                }
                break;
            }
            if depth.bytes + len > self.max_bytes {
                if class.evictable() {
                    ev.dropped_new = true;
                    ev.batches += 1;
                    ev.points += points;
                    ev.points_by_class[class.code() as usize] += points;
                    return Ok(());
                }
                ev.over_bound = true;
            }
            tx.execute(
                "INSERT INTO batch (id, class, points, created_ns, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![seq, class.code(), points as i64, now_ns, gz],
            )?;
            stored_id = Some(seq);
            depth.batches += 1;
            depth.points += points;
            depth.bytes += len;
            if class == Class::Events {
                depth.event_points += points;
            }
            Ok(())
        })();
        res.and_then(|()| tx.commit()).map_err(|e| self.err(e))?;
        self.depth = depth;
        Ok((stored_id, ev))
    }

    /// The oldest batches, skipping `skip` (batches already on their way), up to `max_points`
    /// points and `max_rows` rows (at least one row when there is one).
    pub fn oldest(
        &self,
        skip: &[i64],
        max_points: u64,
        max_rows: usize,
    ) -> Result<Vec<StoredBatch>, InfluxError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, class, points, body FROM batch ORDER BY id LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([(max_rows + skip.len()) as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<StoredBatch> = Vec::new();
        let mut total = 0u64;
        for row in rows {
            let (id, class, points, gz) = row.map_err(|e| self.err(e))?;
            if skip.contains(&id) {
                continue;
            }
            if !out.is_empty() && (total + points as u64 > max_points || out.len() >= max_rows) {
                break;
            }
            total += points as u64;
            out.push(StoredBatch {
                id,
                class: Class::from_code(class),
                points: points as u64,
                body: decompress(&gz)?,
            });
        }
        Ok(out)
    }

    /// Deletes batches that the server took.
    pub fn remove(&mut self, ids: &[i64]) -> Result<(), InfluxError> {
        let tx = self.conn.transaction().map_err(|e| InfluxError::Backlog {
            path: self.path.display().to_string(),
            source: e,
        })?;
        let res: rusqlite::Result<()> = (|| {
            for id in ids {
                tx.execute("DELETE FROM batch WHERE id = ?1", [id])?;
            }
            Ok(())
        })();
        res.and_then(|()| tx.commit()).map_err(|e| self.err(e))?;
        self.recount()
    }

    /// Counts a failed attempt on batches (kept for inspection: `attempts` column).
    pub fn note_attempt(&mut self, ids: &[i64]) -> Result<(), InfluxError> {
        for id in ids {
            self.conn
                .execute(
                    "UPDATE batch SET attempts = attempts + 1 WHERE id = ?1",
                    [id],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Sets a refused batch aside: stored in `rejected` with the server's status and message,
    /// and removed from the backlog when it came from there (`from_backlog`). Returns the
    /// number of older rejected rows deleted to respect the rejected table's bound.
    pub fn reject(
        &mut self,
        r: &Refused<'_>,
        from_backlog: &[i64],
        now_ns: i64,
    ) -> Result<u64, InfluxError> {
        let Refused {
            class,
            points,
            body,
            status,
            message,
        } = *r;
        let gz = compress(body)?;
        let bound = (self.max_bytes / 8).max(1 << 20);
        let tx = self.conn.transaction().map_err(|e| InfluxError::Backlog {
            path: self.path.display().to_string(),
            source: e,
        })?;
        let mut rejected_bytes = self.rejected_bytes;
        let mut deleted = 0u64;
        let res: rusqlite::Result<()> = (|| {
            for id in from_backlog {
                tx.execute("DELETE FROM batch WHERE id = ?1", [id])?;
            }
            while rejected_bytes + gz.len() as u64 > bound {
                let row: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT id, LENGTH(body) FROM rejected ORDER BY id LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((id, bytes)) = row else { break };
                tx.execute("DELETE FROM rejected WHERE id = ?1", [id])?;
                rejected_bytes -= bytes as u64;
                deleted += 1;
            }
            tx.execute(
                "INSERT INTO rejected (class, points, rejected_ns, status, message, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![class.code(), points as i64, now_ns, status, message, gz],
            )?;
            Ok(())
        })();
        res.and_then(|()| tx.commit()).map_err(|e| self.err(e))?;
        self.recount()?;
        Ok(deleted)
    }

    /// Rows in the rejected table.
    pub fn rejected_rows(&self) -> Result<u64, InfluxError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// The most recent rejection: status and message.
    pub fn last_rejection(&self) -> Result<Option<(u16, String)>, InfluxError> {
        self.conn
            .query_row(
                "SELECT status, message FROM rejected ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u16, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
