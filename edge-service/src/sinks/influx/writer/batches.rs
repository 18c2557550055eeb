//! Sealing points into batches, spilling them to the backlog, and choosing the next request
//! (live or drain, in turn).

use super::*;

impl Writer {
    pub(super) fn with_stats(&self, f: impl FnOnce(&mut InfluxStats)) {
        f(&mut lock(&self.stats));
    }

    pub(super) fn refresh_depth(&self) {
        let d = self.backlog.depth();
        let mem: u64 = self.pending.iter().map(|p| p.points).sum::<u64>()
            + self.live.iter().map(|b| b.points).sum::<u64>()
            + self.in_flight_live;
        let max = self.backlog.max_bytes();
        self.with_stats(|s| {
            s.backlog_batches = d.batches;
            s.backlog_points = d.points;
            s.backlog_event_points = d.event_points;
            s.backlog_bytes = d.bytes;
            s.backlog_max_bytes = max;
            s.memory_points = mem;
        });
    }

    pub(super) fn count_eviction(&self, ev: &Eviction) {
        if ev.points == 0 && !ev.over_bound {
            return;
        }
        if ev.points > 0 {
            tracing::warn!(
                points = ev.points,
                batches = ev.batches,
                readings = ev.points_by_class[0],
                profile = ev.points_by_class[1],
                interval = ev.points_by_class[2],
                "influx backlog full: oldest readings evicted"
            );
        }
        if ev.over_bound {
            tracing::warn!(
                "influx backlog full of events: stored over the bound (events are never evicted)"
            );
        }
        self.with_stats(|s| {
            s.evicted_points += ev.points;
            s.evicted_readings_points += ev.points_by_class[0];
            s.evicted_profile_points += ev.points_by_class[1];
            s.evicted_interval_points += ev.points_by_class[2];
            s.event_batches_over_bound += ev.over_bound as u64;
        });
    }

    /// Stores a batch in the backlog under its sequence number (counting what the bound
    /// evicted). `None` if it was dropped.
    pub(super) fn store(
        &mut self,
        seq: i64,
        class: Class,
        points: u64,
        body: &[u8],
    ) -> Option<i64> {
        match self.backlog.push_seq(seq, class, points, body, now_ns()) {
            Ok((id, ev)) => {
                self.count_eviction(&ev);
                id
            }
            Err(e) => {
                // The disk failed: these points are lost, and said so.
                tracing::error!(
                    "influx backlog: {e}; {points} {} points lost",
                    class.as_str()
                );
                self.with_stats(|s| {
                    s.evicted_points += points;
                    s.last_error = Some(e.to_string());
                });
                None
            }
        }
    }

    /// Encodes a point into its class's pending batch.
    pub(super) fn add(&mut self, p: Point) {
        let class = p.class;
        let pending = &mut self.pending[class.code() as usize];
        match encode_line(&mut pending.body, &p, &self.site_tags) {
            Ok(()) => {
                pending.points += 1;
                pending.since.get_or_insert_with(Instant::now);
                let full = pending.points as usize >= self.cfg.batch_size;
                self.with_stats(|s| {
                    s.received_points += 1;
                    s.memory_points += 1;
                });
                if full {
                    self.seal(class);
                }
            }
            Err(e) => {
                tracing::debug!("influx point dropped: {e}");
                self.with_stats(|s| {
                    s.received_points += 1;
                    s.dropped_unencodable += 1;
                });
            }
        }
    }

    /// Turns a class's pending points into a batch: live if up, else into the backlog.
    pub(super) fn seal(&mut self, class: Class) {
        let pending = std::mem::take(&mut self.pending[class.code() as usize]);
        if pending.points == 0 {
            return;
        }
        let body = pending.body.into_bytes();
        let seq = self.backlog.reserve();
        let backlog_id = if class == Class::Events || self.retry_at.is_some() {
            let id = self.store(seq, class, pending.points, &body);
            if self.retry_at.is_some() || id.is_none() {
                // Down: it waits in the backlog. (Or it was dropped by the bound: counted.)
                self.refresh_depth();
                return;
            }
            id
        } else {
            None
        };
        self.live.push_back(LiveBatch {
            seq,
            class,
            points: pending.points,
            body,
            backlog_id,
        });
        while self.live.len() > LIVE_QUEUE_MAX {
            // The server is slower than the data: the oldest live batch waits in the backlog.
            if let Some(b) = self.live.pop_front() {
                if b.backlog_id.is_none() {
                    self.store(b.seq, b.class, b.points, &b.body);
                }
            }
        }
        self.refresh_depth();
    }

    pub(super) fn seal_due(&mut self, all: bool) {
        // Down, batches only go to the backlog: bigger ones compress far better (a 5-s batch of
        // one node's aggregates is ~25 points, ~90 bytes each gzipped; 60 s is ~300 points),
        // so the bound holds days more. Events are sealed at once whatever the state.
        let flush = if self.retry_at.is_some() {
            self.cfg.flush_interval().max(DOWN_FLUSH)
        } else {
            self.cfg.flush_interval()
        };
        for class in Class::ALL {
            let p = &self.pending[class.code() as usize];
            let due = p.since.is_some_and(|t| t.elapsed() >= flush);
            if p.points > 0 && (all || due) {
                self.seal(class);
            }
        }
    }

    /// Moves every live batch to the backlog (going down, or stopping).
    pub(super) fn spill_live(&mut self) {
        while let Some(b) = self.live.pop_front() {
            if b.backlog_id.is_none() {
                self.store(b.seq, b.class, b.points, &b.body);
            }
        }
        self.refresh_depth();
    }

    pub(super) fn live_ids(&self) -> Vec<i64> {
        self.live.iter().filter_map(|b| b.backlog_id).collect()
    }

    /// The next request to make, if any is due.
    pub(super) fn next_job(&mut self) -> Option<Job> {
        if let Some(at) = self.retry_at {
            if Instant::now() < at {
                return None;
            }
        }
        let down = self.retry_at.is_some();
        let backlog_waiting = !self.backlog.is_empty()
            && (self.backlog.depth().batches as usize) > self.live_ids().len();
        let from_backlog = match (self.live.is_empty(), backlog_waiting) {
            (true, false) => return None,
            (false, false) => false,
            (true, true) => true,
            // Both waiting: alternate. Down: the probe is the oldest data.
            (false, true) => {
                if down {
                    true
                } else {
                    let take = self.backlog_turn;
                    self.backlog_turn = !take;
                    take
                }
            }
        };
        if !from_backlog {
            return self.live.pop_front().map(Job::Live);
        }
        let skip = self.live_ids();
        let rows = match self
            .backlog
            .oldest(&skip, self.cfg.batch_size as u64, DRAIN_MAX_ROWS)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("influx backlog read: {e}");
                return self.live.pop_front().map(Job::Live);
            }
        };
        let rows = match rows.first() {
            Some(first) if first.id <= self.single_until => rows.into_iter().take(1).collect(),
            Some(_) => rows,
            None => return self.live.pop_front().map(Job::Live),
        };
        Some(Job::Drain(rows))
    }

    pub(super) fn body_of(job: &Job) -> Vec<u8> {
        match job {
            Job::Live(b) => b.body.clone(),
            Job::Drain(rows) => {
                let mut body = Vec::with_capacity(rows.iter().map(|r| r.body.len()).sum());
                for r in rows {
                    body.extend_from_slice(&r.body);
                }
                body
            }
        }
    }

    /// The sink's own counters as a point (fine readings: evictable like any).
    pub(super) fn stats_point(&self) -> Point {
        let s = lock(&self.stats).clone();
        Point::new("kare_influx", Class::Readings, Utc::now())
            .field("up", s.up)
            .field("written_points", s.written_points)
            .field("drained_points", s.drained_points)
            .field("failed_requests", s.failed_requests)
            .field("backlog_points", s.backlog_points)
            .field("backlog_bytes", s.backlog_bytes)
            .field("backlog_event_points", s.backlog_event_points)
            .field("evicted_points", s.evicted_points)
            .field("dropped_channel_full", s.dropped_channel_full)
            .field("lagged_readings", s.lagged_readings)
            .field("dropped_unencodable", s.dropped_unencodable)
            .field("rejected_points", s.rejected_points)
    }

    pub(super) fn on_tick(&mut self) {
        self.seal_due(false);
        let every = self.cfg.stats_interval_s;
        if every > 0.0 && self.last_stats_point.elapsed() >= Duration::from_secs_f64(every) {
            self.last_stats_point = Instant::now();
            let p = self.stats_point();
            self.add(p);
        }
    }
}
