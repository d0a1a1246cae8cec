//! Stream matching state: Hyperscan stream state for every reassembled
//! direction, kept compressed in one table preallocated per worker.
//!
//! A worker owns one live Hyperscan stream per streaming database (one per
//! rule group that has stream rules, `detect::groups`); a direction is
//! scanned with its group's. To scan a direction's new bytes
//! it expands that direction's saved state into the live stream, scans, and
//! compresses the state back into the direction's slot
//! (`hs_reset_and_expand_stream` / `hs_compress_stream`): neither allocates,
//! so the state table is all the memory streams take, sized from
//! `--stream-memcap` when the worker starts, and a slot is free again the
//! moment its direction ends. (Hyperscan's own stream allocator hooks are
//! process-wide and know no worker; this keeps each worker's pool its own
//! without a lock or unsafe code.)
//!
//! Hits name a rule and the stream offset where its fast pattern ended. A
//! hit whose rule does not confirm yet (a later content or pcre is still
//! to come) stays *pending* and is tried again on the direction's next
//! bytes, as long as the hit is still in the retained window.

use super::Engine;
use hyperscan::prelude::*;

/// Unconfirmed hits a direction keeps for another try.
pub const PENDING: usize = 4;

/// What stream matching counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamMatchCounters {
    /// Deliveries scanned.
    pub scans: u64,
    /// Hits whose rule's absolute positions reach before the window: not
    /// confirmable, so not alerted.
    pub unconfirmable: u64,
    /// Hits that could not wait for more data: the pending list was full.
    pub pending_full: u64,
    /// States that did not fit their slot (the direction restarts).
    pub state_overflow: u64,
}

impl StreamMatchCounters {
    pub fn add(&mut self, o: &StreamMatchCounters) {
        self.scans += o.scans;
        self.unconfirmable += o.unconfirmable;
        self.pending_full += o.pending_full;
        self.state_overflow += o.state_overflow;
    }
}

/// A rule hit waiting for more data: the rule and the stream offset where
/// its fast pattern ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub rule: u32,
    pub end: u64,
}

pub struct StreamScanner {
    /// A live stream per streaming database.
    live: Vec<Stream>,
    slot: usize,
    /// The database each session's saved state belongs to.
    dbs: Vec<u32>,
    states: Vec<u8>,
    /// Bytes of saved state per session; 0: the session starts fresh.
    lens: Vec<u32>,
    /// The stream offset the session's Hyperscan stream started at (its
    /// offsets count from there; a gap restarts it).
    bases: Vec<u64>,
    /// PENDING entries per session: rule index + 1 (0: empty), and the
    /// stream offset where its fast pattern ended. Zeroed memory is empty,
    /// so start-up writes nothing.
    pending_rule: Vec<u32>,
    pending_end: Vec<u64>,
    pub counters: StreamMatchCounters,
}

impl std::fmt::Debug for StreamScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StreamScanner({} x {} bytes)",
            self.lens.len(),
            self.slot
        )
    }
}

/// Room for one compressed state: Hyperscan's full stream state (of the
/// largest database), plus what compression adds in the worst case.
fn slot_size(engine: &Engine) -> Result<Option<usize>, String> {
    let mut max = None;
    for db in engine.prefilter.streams() {
        let n = db.stream_size().map_err(|e| e.to_string())?;
        max = Some(max.unwrap_or(0).max(n + 64));
    }
    Ok(max)
}

impl StreamScanner {
    /// Bytes one session's matching state takes (charged to
    /// `--stream-memcap`), or None when no rule needs the stream.
    pub fn session_bytes(engine: &Engine) -> Result<Option<usize>, String> {
        Ok(slot_size(engine)?.map(|slot| slot + 4 + 4 + 8 + PENDING * (4 + 8)))
    }

    /// State for `sessions` directions, allocated now.
    pub fn new(engine: &Engine, sessions: usize) -> Result<Option<Self>, String> {
        let Some(slot) = slot_size(engine)? else {
            return Ok(None);
        };
        let live = engine
            .prefilter
            .streams()
            .iter()
            .map(|db| db.open_stream().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(StreamScanner {
            live,
            slot,
            dbs: vec![0; sessions],
            states: vec![0; slot * sessions],
            lens: vec![0; sessions],
            bases: vec![0; sessions],
            pending_rule: vec![0; sessions * PENDING],
            pending_end: vec![0; sessions * PENDING],
            counters: StreamMatchCounters::default(),
        }))
    }

    /// Scans `data`, the direction's new bytes from stream offset `at`, with
    /// streaming database `db` (`Prefilter::stream_index`), and calls
    /// `hit(rule, end)` for each fast pattern ending in it. `restart`: a gap
    /// lies before `data`, so no match may span it. Returns whether `data`
    /// was scanned (no such session or database: not).
    #[allow(clippy::too_many_arguments)]
    pub fn scan(
        &mut self,
        scratch: &Scratch,
        session: u32,
        db: usize,
        restart: bool,
        data: &[u8],
        at: u64,
        mut hit: impl FnMut(u32, u64),
    ) -> bool {
        let s = session as usize;
        if s >= self.lens.len() || db >= self.live.len() {
            return false;
        }
        self.counters.scans += 1;
        let ignore = |_, _, _, _| Matching::Continue;
        // A state saved from another database cannot go on here.
        let saved = if self.dbs[s] as usize == db {
            self.lens[s] as usize
        } else {
            0
        };
        self.dbs[s] = db as u32;
        let live = &mut self.live[db];
        if restart {
            // A gap (or a new session) also forgets the hits that waited
            // for more bytes: what they waited on can no longer come.
            self.pending_rule[s * PENDING..(s + 1) * PENDING].fill(0);
        }
        let ok = if restart || saved == 0 {
            self.bases[s] = at;
            live.reset(scratch, ignore).is_ok()
        } else {
            let state = &self.states[s * self.slot..][..saved];
            live.reset_and_expand(state, scratch, ignore).is_ok()
        };
        if !ok {
            self.counters.state_overflow += 1;
            self.bases[s] = at;
            let _ = live.reset(scratch, ignore);
        }
        let base = self.bases[s];
        let _ = live.scan(data, scratch, |id, _, to, _| {
            hit(id, base + to);
            Matching::Continue
        });
        match live.compress(&mut self.states[s * self.slot..][..self.slot]) {
            Ok(n) => self.lens[s] = n as u32,
            Err(_) => {
                // Restart on the next bytes rather than carry a wrong state.
                self.counters.state_overflow += 1;
                self.lens[s] = 0;
            }
        }
        true
    }

    fn pending_range(&self, session: u32) -> std::ops::Range<usize> {
        let s = session as usize;
        if s < self.lens.len() {
            s * PENDING..(s + 1) * PENDING
        } else {
            0..0
        }
    }

    /// The session's pending hits.
    pub fn pending(&self, session: u32) -> impl Iterator<Item = Pending> + '_ {
        self.pending_range(session)
            .filter(|&i| self.pending_rule[i] != 0)
            .map(|i| Pending {
                rule: self.pending_rule[i] - 1,
                end: self.pending_end[i],
            })
    }

    /// Keeps a hit for another try; false (and counted) when full.
    pub fn add_pending(&mut self, session: u32, p: Pending) -> bool {
        let range = self.pending_range(session);
        if range.is_empty() {
            return false;
        }
        let tag = p.rule + 1;
        if range.clone().any(|i| self.pending_rule[i] == tag) {
            return true;
        }
        match range.into_iter().find(|&i| self.pending_rule[i] == 0) {
            Some(i) => {
                self.pending_rule[i] = tag;
                self.pending_end[i] = p.end;
                true
            }
            None => {
                self.counters.pending_full += 1;
                false
            }
        }
    }

    /// Forgets the session's pending hits that ended before stream offset
    /// `base`: they are out of the retained window.
    pub fn forget_pending_before(&mut self, session: u32, base: u64) {
        for i in self.pending_range(session) {
            if self.pending_end[i] < base {
                self.pending_rule[i] = 0;
            }
        }
    }

    pub fn drop_pending(&mut self, session: u32, rule: u32) {
        for i in self.pending_range(session) {
            if self.pending_rule[i] == rule + 1 {
                self.pending_rule[i] = 0;
            }
        }
    }

    /// Frees the live Hyperscan stream (`hs_close_stream`; the crate's own
    /// drop does not). Matches at close are of no use: every hit is taken
    /// as the bytes arrive.
    pub fn close(self, scratch: &Scratch) {
        for live in self.live {
            let _ = live.close(scratch, |_, _, _, _| Matching::Continue);
        }
    }

    /// The session's direction is done: its slot is free.
    pub fn release(&mut self, session: u32) {
        let s = session as usize;
        if s < self.lens.len() {
            self.lens[s] = 0;
            self.pending_rule[s * PENDING..(s + 1) * PENDING].fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn engine(rules: &str) -> Engine {
        crate::detect::load_text(rules, &BTreeMap::new()).0
    }

    #[test]
    fn a_pattern_split_between_scans_is_found_and_sessions_stay_apart() {
        let e = engine(r#"alert tcp any any -> any any (content:"ignore previous"; sid:1;)"#);
        let scratch = e.scratch().unwrap().unwrap();
        let mut s = StreamScanner::new(&e, 2).unwrap().unwrap();
        let mut hits = Vec::new();
        // Session 0 gets the first half, session 1 other bytes in between,
        // then session 0 the second half.
        s.scan(&scratch, 0, 0, false, b"please ignore pre", 0, |r, end| {
            hits.push((0, r, end))
        });
        s.scan(&scratch, 1, 0, false, b"vious", 0, |r, end| {
            hits.push((1, r, end))
        });
        s.scan(&scratch, 0, 0, false, b"vious orders", 17, |r, end| {
            hits.push((0, r, end))
        });
        assert_eq!(hits, vec![(0, 0, 22)]);
        // A restart (a gap) forgets the first half.
        hits.clear();
        s.scan(&scratch, 1, 0, false, b"ignore pre", 5, |r, end| {
            hits.push((1, r, end))
        });
        s.scan(&scratch, 1, 0, true, b"vious", 100, |r, end| {
            hits.push((1, r, end))
        });
        assert!(hits.is_empty());
        s.release(0);
        assert_eq!(s.lens[0], 0);
    }

    #[test]
    fn pending_hits_are_bounded() {
        let e = engine(r#"alert tcp any any -> any any (content:"x"; sid:1;)"#);
        let mut s = StreamScanner::new(&e, 1).unwrap().unwrap();
        for r in 0..PENDING as u32 {
            assert!(s.add_pending(0, Pending { rule: r, end: 1 }));
        }
        assert!(
            s.add_pending(0, Pending { rule: 0, end: 2 }),
            "already there"
        );
        assert!(!s.add_pending(0, Pending { rule: 9, end: 1 }));
        assert_eq!(s.counters.pending_full, 1);
        s.drop_pending(0, 1);
        assert_eq!(s.pending(0).count(), PENDING - 1);
    }
}
