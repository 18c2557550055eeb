//! RMS profiles of events: the Urms(1/2) records of every channel from `PRE` records before an
//! event's start to `post` records after its end, in fixed memory.
//!
//! A [`Profiler`] keeps a ring of the most recent records. When an event starts, the ring becomes
//! the pre-trigger part of its profile; records then go to a fixed *head* until it is full and,
//! after that, to a fixed *tail* ring, so an event of any length keeps both its beginning and its
//! end (the recovery) and says how many records in the middle were skipped.

use crate::detector::{Transition, MAX_CHANNELS};
use crate::urms::Pos;
use heapless::{HistoryBuffer, Vec};

/// One Urms(1/2) record of every channel, in the unit of Udin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProfilePoint {
    /// Window start.
    pub start: Pos,
    /// Window end.
    pub end: Pos,
    /// Urms(1/2) per channel (unused channels 0).
    pub values: [f32; MAX_CHANNELS],
}

/// The profile of one event, complete once its post-trigger records are in.
#[derive(Clone, Debug, PartialEq)]
pub struct EventProfile<const HEAD: usize, const TAIL: usize> {
    /// The detector's event id.
    pub event_id: u32,
    /// Records from the pre-trigger ring and the start of the event, oldest first.
    pub head: Vec<ProfilePoint, HEAD>,
    /// The last records (the end of the event and after it), oldest first.
    pub tail: HistoryBuffer<ProfilePoint, TAIL>,
    /// How many of `head` came before the event's start.
    pub pre: u16,
    /// Records between head and tail that were not kept (0 when everything fitted).
    pub skipped: u32,
    post_remaining: Option<u16>,
}

impl<const HEAD: usize, const TAIL: usize> EventProfile<HEAD, TAIL> {
    /// Every kept record, oldest first (the gap of `skipped` records lies between head and tail).
    pub fn points(&self) -> impl Iterator<Item = &ProfilePoint> {
        self.head.iter().chain(self.tail.oldest_ordered())
    }

    fn push(&mut self, p: ProfilePoint) {
        if self.head.len() < HEAD {
            let _ = self.head.push(p);
        } else {
            if self.tail.len() == TAIL {
                self.skipped += 1;
            }
            self.tail.write(p);
        }
    }
}

/// Records profiles of up to `SLOTS` events at once (a dip, an interruption inside it, and a
/// swell after it overlap).
#[derive(Debug)]
pub struct Profiler<const PRE: usize, const HEAD: usize, const TAIL: usize, const SLOTS: usize> {
    history: HistoryBuffer<ProfilePoint, PRE>,
    active: Vec<EventProfile<HEAD, TAIL>, SLOTS>,
    post: u16,
    /// Events whose profile could not be started because every slot was busy.
    pub missed: u32,
}

impl<const PRE: usize, const HEAD: usize, const TAIL: usize, const SLOTS: usize>
    Profiler<PRE, HEAD, TAIL, SLOTS>
{
    /// A profiler that keeps `post` records after each event's end.
    pub fn new(post: u16) -> Self {
        Profiler {
            history: HistoryBuffer::new(),
            active: Vec::new(),
            post,
            missed: 0,
        }
    }

    /// Takes the record of one half cycle and the transitions the detector gave for it;
    /// `done` receives every profile that is complete.
    pub fn record(
        &mut self,
        point: ProfilePoint,
        transitions: &[Transition],
        mut done: impl FnMut(EventProfile<HEAD, TAIL>),
    ) {
        for tr in transitions {
            if let Transition::Started(e) = tr {
                let mut prof = EventProfile {
                    event_id: e.id,
                    head: Vec::new(),
                    tail: HistoryBuffer::new(),
                    pre: 0,
                    skipped: 0,
                    post_remaining: None,
                };
                for p in self.history.oldest_ordered() {
                    prof.push(*p);
                }
                prof.pre = prof.head.len() as u16;
                if self.active.push(prof).is_err() {
                    self.missed = self.missed.wrapping_add(1);
                }
            }
        }
        for prof in self.active.iter_mut() {
            prof.push(point);
        }
        for tr in transitions {
            if let Transition::Ended(e) = tr {
                if let Some(p) = self.active.iter_mut().find(|p| p.event_id == e.id) {
                    p.post_remaining = Some(self.post);
                }
            }
        }
        let mut i = 0;
        while i < self.active.len() {
            let finished = match &mut self.active[i].post_remaining {
                Some(0) => true,
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            };
            if finished {
                done(self.active.swap_remove(i));
            } else {
                i += 1;
            }
        }
        self.history.write(point);
    }

    /// Profiles of events still in progress (for the end of a recording), as they stand.
    pub fn open(&self) -> impl Iterator<Item = &EventProfile<HEAD, TAIL>> {
        self.active.iter()
    }
}
