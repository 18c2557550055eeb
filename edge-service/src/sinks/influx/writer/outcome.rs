//! What the server's answer does: up again, down (back-off, the batch to the backlog), or a
//! refusal (the batch set aside as rejected, never retried).

use super::*;

impl Writer {
    pub(super) fn went_up(&mut self) {
        if self.retry_at.take().is_some() {
            let d = self.backlog.depth();
            tracing::info!(
                backlog_points = d.points,
                "influx server reachable again: draining the backlog"
            );
        }
        self.backoff = Duration::from_secs(1).min(self.cfg.retry_max());
        self.with_stats(|s| s.up = true);
    }

    pub(super) fn finish(&mut self, job: Job, outcome: Outcome) {
        self.in_flight_live = 0;
        let points = job.points();
        match outcome {
            Outcome::Written => {
                let drained = match &job {
                    Job::Live(b) => {
                        if let Some(id) = b.backlog_id {
                            if let Err(e) = self.backlog.remove(&[id]) {
                                tracing::error!("influx backlog: {e}");
                            }
                        }
                        0
                    }
                    Job::Drain(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        if let Err(e) = self.backlog.remove(&ids) {
                            tracing::error!("influx backlog: {e}");
                        }
                        points
                    }
                };
                self.went_up();
                self.with_stats(|s| {
                    s.written_points += points;
                    s.written_batches += 1;
                    s.drained_points += drained;
                    s.last_write = Some(Utc::now());
                });
            }
            Outcome::Retry {
                reason,
                retry_after,
            } => {
                if self.retry_at.is_none() {
                    tracing::warn!("influx write failed, keeping data in the backlog: {reason}");
                }
                if self.cfg.create_database && reason.starts_with("HTTP 404") {
                    self.need_create_db = true;
                }
                match job {
                    Job::Live(b) => {
                        if b.backlog_id.is_none() {
                            self.store(b.seq, b.class, b.points, &b.body);
                        }
                    }
                    Job::Drain(rows) => {
                        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                        let _ = self.backlog.note_attempt(&ids);
                    }
                }
                let wait = retry_after
                    .unwrap_or(self.backoff)
                    .min(self.cfg.retry_max().max(Duration::from_millis(100)));
                self.retry_at = Some(Instant::now() + wait);
                self.backoff = (self.backoff * 2).min(self.cfg.retry_max());
                self.spill_live();
                self.with_stats(|s| {
                    s.up = false;
                    s.failed_requests += 1;
                    s.last_error = Some(reason);
                });
            }
            Outcome::Rejected { status, message } => {
                // The server answered: it is up, whatever it thought of the data.
                self.went_up();
                match job {
                    Job::Drain(rows) if rows.len() > 1 => {
                        // One of several merged batches is bad: find it, batch by batch.
                        self.single_until = rows.iter().map(|r| r.id).max().unwrap_or(0);
                        return;
                    }
                    Job::Drain(rows) => {
                        for r in rows {
                            self.reject(r.class, r.points, &r.body, status, &message, &[r.id]);
                        }
                    }
                    Job::Live(b) => {
                        let from: Vec<i64> = b.backlog_id.into_iter().collect();
                        self.reject(b.class, b.points, &b.body, status, &message, &from);
                    }
                }
            }
        }
        self.refresh_depth();
    }

    pub(super) fn reject(
        &mut self,
        class: Class,
        points: u64,
        body: &[u8],
        status: u16,
        message: &str,
        from: &[i64],
    ) {
        tracing::error!(
            status,
            points,
            class = class.as_str(),
            "influx server refused a batch (kept in the backlog's `rejected` table): {message}"
        );
        let refused = Refused {
            class,
            points,
            body,
            status,
            message,
        };
        if let Err(e) = self.backlog.reject(&refused, from, now_ns()) {
            tracing::error!("influx backlog: {e}");
        }
        self.with_stats(|s| {
            s.rejected_points += points;
            s.rejected_batches += 1;
            s.last_rejection = Some(format!("HTTP {status}: {message}"));
        });
    }
}
