//! IP fragment reassembly, one table per worker, preallocated from
//! `--defrag-memcap`: datagram trackers (found by key in O(1)), fragment
//! entries and the fragments' bytes in 256-byte chunks, so a tiny fragment
//! costs a chunk, not a whole datagram. The datagram is rebuilt when
//! complete as one frame (the first fragment's link and IP headers, lengths
//! fixed, no fragment fields) that the pipeline decodes like any packet.
//!
//! Overlaps are settled as the receiving host settles them
//! (`--defrag-policy`):
//! - `linux` (the default), as Linux has done since 4.19 and as RFC 5722
//!   asks of IPv6: a fragment wholly inside data already held is a
//!   duplicate and ignored (the held bytes stay); any other overlap
//!   discards the whole datagram, and later fragments start a new one;
//! - Suricata's target-based policies for IPv4 (`old-linux`, `bsd`,
//!   `bsd-right`, `windows`, `solaris`, `first`, `last`): which bytes win
//!   is decided fragment against fragment, exactly as Suricata's defrag
//!   does; IPv6 always discards;
//! - inline (IPS) the first copy wins and a fragment that would change held
//!   bytes is refused (the worker drops it): the host only ever gets what
//!   was inspected.
//!
//! Inline, a datagram's verdict outlives it: once a drop verdict blocks it,
//! every later fragment with its key (a duplicate of the completing one,
//! say) is blocked until the datagram's timeout, so the host can never
//! complete it. Under memory pressure the oldest incomplete datagrams give
//! way; inline, their later fragments meet the exception policy, since
//! they can no longer be inspected whole.
//!
//! Lengths follow Linux: a non-last fragment is cut to a multiple of 8; a
//! last fragment that ends before data already seen, a second last
//! fragment with another end, or data past the end discard the datagram;
//! so do more than `MAX_FRAGMENTS` fragments or an end past 65,535 bytes.
//! Timeouts run on capture time, from the first fragment.

pub mod handoff;

use crate::craft::internet_checksum;
use crate::decode::{Decoded, Network, MAX_VLAN_TAGS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Largest IP payload a datagram can reassemble to.
pub const MAX_DATAGRAM: usize = 65_535;
/// Link and unfragmentable IP headers copied from the first fragment.
const MAX_HEAD: usize = 512;
/// Fragments one datagram may take.
pub const MAX_FRAGMENTS: u16 = 128;
/// Bytes in one chunk of fragment data.
const CHUNK: usize = 256;
const NIL: u32 = u32::MAX;
/// Trackers looked at, oldest first, for one eviction.
const EVICT_SCAN: usize = 64;

/// Which copy of overlapping fragment data a host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefragPolicy {
    /// Linux since 4.19 (and IPv6 everywhere): duplicates ignored, any
    /// other overlap discards the datagram.
    #[default]
    Linux,
    /// Suricata's `linux`: Linux before it discarded overlaps.
    OldLinux,
    Bsd,
    BsdRight,
    Windows,
    Solaris,
    First,
    Last,
}

impl DefragPolicy {
    pub const ALL: [DefragPolicy; 8] = [
        DefragPolicy::Linux,
        DefragPolicy::OldLinux,
        DefragPolicy::Bsd,
        DefragPolicy::BsdRight,
        DefragPolicy::Windows,
        DefragPolicy::Solaris,
        DefragPolicy::First,
        DefragPolicy::Last,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DefragPolicy::Linux => "linux",
            DefragPolicy::OldLinux => "old-linux",
            DefragPolicy::Bsd => "bsd",
            DefragPolicy::BsdRight => "bsd-right",
            DefragPolicy::Windows => "windows",
            DefragPolicy::Solaris => "solaris",
            DefragPolicy::First => "first",
            DefragPolicy::Last => "last",
        }
    }

    pub fn parse(s: &str) -> Option<DefragPolicy> {
        DefragPolicy::ALL.into_iter().find(|p| p.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragConfig {
    /// Bytes of reassembly state per worker.
    pub memcap: usize,
    pub timeout_ns: u64,
    pub policy: DefragPolicy,
    /// Inline (IPS): first copy wins, a changing overlap is refused, and
    /// verdicts are remembered.
    pub inline: bool,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            memcap: 16 << 20,
            timeout_ns: 30_000_000_000,
            policy: DefragPolicy::Linux,
            inline: false,
        }
    }
}

/// What reassembly counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragCounters {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub overlaps: u64,
    /// Overlaps whose bytes differ from the held ones.
    pub overlap_conflicts: u64,
    pub duplicates: u64,
    /// Datagrams discarded for an overlap (`linux` policy, IPv6).
    pub overlap_discards: u64,
    /// Inline: fragments refused because they would change held bytes.
    pub refused: u64,
    pub tiny_first: u64,
    pub too_many_fragments: u64,
    pub invalid: u64,
    /// Inline: fragments of a datagram a verdict blocked, or one whose
    /// verdict was still on its way, that were dropped.
    pub blocked: u64,
    /// Datagrams (incomplete) that gave way to newer ones under pressure.
    pub evicted: u64,
    /// Fragments that found no room at all (every tracker busy).
    pub no_slot: u64,
    /// Reassembled datagrams handed to the worker that owns their flow,
    /// and those lost because its ring or the buffer pool was full.
    pub handoffs: u64,
    pub handoff_drops: u64,
    /// Fragments of datagrams that could not be reassembled (evicted under
    /// pressure) met by the exception policy.
    pub exception: u64,
}

impl FragCounters {
    pub fn add(&mut self, o: &FragCounters) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.timeouts += o.timeouts;
        self.overlaps += o.overlaps;
        self.overlap_conflicts += o.overlap_conflicts;
        self.duplicates += o.duplicates;
        self.overlap_discards += o.overlap_discards;
        self.refused += o.refused;
        self.tiny_first += o.tiny_first;
        self.too_many_fragments += o.too_many_fragments;
        self.invalid += o.invalid;
        self.blocked += o.blocked;
        self.evicted += o.evicted;
        self.no_slot += o.no_slot;
        self.handoffs += o.handoffs;
        self.handoff_drops += o.handoff_drops;
        self.exception += o.exception;
    }

    pub fn to_json(self) -> Value {
        json!({
            "fragments": self.fragments, "reassembled": self.reassembled,
            "timeouts": self.timeouts, "overlaps": self.overlaps,
            "overlap_conflicts": self.overlap_conflicts, "duplicates": self.duplicates,
            "overlap_discards": self.overlap_discards, "refused": self.refused,
            "tiny_first": self.tiny_first,
            "too_many_fragments": self.too_many_fragments, "invalid": self.invalid,
            "blocked": self.blocked, "evicted": self.evicted,
            "no_slot": self.no_slot, "handoffs": self.handoffs, "handoff_drops": self.handoff_drops,
            "exception": self.exception,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct FragKey {
    network: Network,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    vlan: [u16; MAX_VLAN_TAGS],
    vni: Option<u32>,
    pass: u16,
}

/// FNV-1a: keys are fixed-size and the table is private to a worker; a
/// flood that aims at collisions still costs only probes, bounded by the
/// table's size.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Where a tracker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Free,
    /// Collecting fragments.
    Open,
    /// Complete; its verdict is still to come (inline).
    Awaiting,
    /// A verdict dropped it: later fragments are blocked.
    Blocked,
    /// Evicted unseen (inline): later fragments meet the exception policy.
    Lost,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tracker {
    key: FragKey,
    state: State,
    first_ns: u64,
    /// Bumped each time the tracker is taken: handles name one use.
    generation: u32,
    head_len: u16,
    l3_offset: u16,
    unfrag_len: u16,
    next_field: u16,
    /// The upper protocol (an IPv6 fragment header's next header).
    upper: u8,
    /// Fragment entries, sorted by offset (equal offsets: arrival order).
    frags: u32,
    n_frags: u16,
    /// The last fragment (MF clear) was seen, and where it ends.
    seen_last: bool,
    total: u32,
    /// The furthest end of any fragment.
    max_end: u32,
    /// Neighbours in creation order (oldest first).
    prev: u32,
    next: u32,
}

/// One fragment's data in a tracker.
#[derive(Debug, Clone, Copy, Default)]
struct Frag {
    offset: u32,
    len: u32,
    /// Bytes at its start a later fragment took over (Suricata's ltrim).
    ltrim: u32,
    /// Wholly replaced: not copied.
    skip: bool,
    chunk: u32,
    next: u32,
}

impl Frag {
    fn end(&self) -> u32 {
        self.offset + self.len
    }
}

/// Names a completed datagram until its verdict settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragHandle {
    tracker: u32,
    generation: u32,
}

/// What became of a fragment.
#[derive(Debug)]
pub enum FragFate<'a> {
    /// Held; the datagram is not complete yet. `overlap`: it overlapped
    /// held data (settled by the policy).
    Held { overlap: bool },
    /// It completed its datagram: the rebuilt frame, and the handle its
    /// verdict settles.
    Complete {
        datagram: &'a [u8],
        handle: FragHandle,
        overlap: bool,
    },
    /// Wholly inside data already held: ignored. `differs`: with other
    /// bytes.
    Duplicate { differs: bool },
    /// An overlap made the host discard the datagram (`linux`, IPv6).
    Discarded,
    /// Inline: it would change held bytes, so it is refused.
    Refused,
    /// Its lengths do not add up (or too many fragments): the datagram is
    /// dropped.
    Invalid,
    /// Its datagram was blocked by a verdict, or awaits one (inline).
    Blocked,
    /// Its datagram was evicted unseen (inline): the exception policy.
    Lost,
}

pub struct Defrag {
    cfg: DefragConfig,
    trackers: Vec<Tracker>,
    tracker_free: Vec<u32>,
    index: HashMap<FragKey, u32, BuildHasherDefault<Fnv>>,
    /// Trackers in use, oldest first (creation order: timeouts run from
    /// the first fragment, so this is also expiry order).
    oldest: u32,
    newest: u32,
    /// MAX_HEAD bytes of headers per tracker.
    heads: Vec<u8>,
    frags: Vec<Frag>,
    frag_free: Vec<u32>,
    chunks: Vec<u8>,
    chunk_next: Vec<u32>,
    chunk_free: Vec<u32>,
    out: Box<[u8]>,
    pub counters: FragCounters,
}

/// Whether a new fragment's range is covered, and how.
#[derive(Debug, Clone, Copy, Default)]
struct Overlap {
    /// It overlaps held data at all.
    any: bool,
    /// It lies wholly inside held data (a contiguous run of fragments).
    within: bool,
    /// Some overlapping bytes differ from the held ones.
    differs: bool,
}

impl Defrag {
    /// Preallocates everything `cfg.memcap` pays for: an eighth for
    /// trackers (with their headers), an eighth for fragment entries, the
    /// rest for data chunks.
    pub fn new(cfg: DefragConfig) -> Self {
        let tracker_bytes = std::mem::size_of::<Tracker>() + MAX_HEAD + 32;
        let n_trackers = (cfg.memcap / 8 / tracker_bytes).max(2);
        let n_frags =
            (cfg.memcap / 8 / std::mem::size_of::<Frag>()).max(usize::from(MAX_FRAGMENTS));
        let n_chunks = (cfg.memcap * 3 / 4 / (CHUNK + 4)).max(MAX_DATAGRAM / CHUNK + 1);
        let mut index = HashMap::default();
        index.reserve(n_trackers);
        Defrag {
            cfg,
            trackers: vec![Tracker::default(); n_trackers],
            tracker_free: (0..n_trackers as u32).rev().collect(),
            index,
            oldest: NIL,
            newest: NIL,
            heads: vec![0; n_trackers * MAX_HEAD],
            frags: vec![Frag::default(); n_frags],
            frag_free: (0..n_frags as u32).rev().collect(),
            chunks: vec![0; n_chunks * CHUNK],
            chunk_next: vec![NIL; n_chunks],
            chunk_free: (0..n_chunks as u32).rev().collect(),
            out: vec![0; MAX_HEAD + MAX_DATAGRAM].into_boxed_slice(),
            counters: FragCounters::default(),
        }
    }

    /// Datagrams that can be in flight at once.
    pub fn capacity(&self) -> usize {
        self.trackers.len()
    }

    pub fn in_flight(&self) -> usize {
        self.trackers.len() - self.tracker_free.len()
    }

    fn unlink(&mut self, t: u32) {
        let Tracker { prev, next, .. } = self.trackers[t as usize];
        if prev == NIL {
            self.oldest = next;
        } else {
            self.trackers[prev as usize].next = next;
        }
        if next == NIL {
            self.newest = prev;
        } else {
            self.trackers[next as usize].prev = prev;
        }
    }

    /// Returns a tracker's fragments and chunks; the tracker stays.
    fn free_data(&mut self, t: u32) {
        let mut f = std::mem::replace(&mut self.trackers[t as usize].frags, NIL);
        self.trackers[t as usize].n_frags = 0;
        while f != NIL {
            let Frag { chunk, next, .. } = self.frags[f as usize];
            self.free_chunks(chunk);
            self.frag_free.push(f);
            f = next;
        }
    }

    fn free_chunks(&mut self, mut c: u32) {
        while c != NIL {
            let next = std::mem::replace(&mut self.chunk_next[c as usize], NIL);
            self.chunk_free.push(c);
            c = next;
        }
    }

    fn free_tracker(&mut self, t: u32) {
        self.free_data(t);
        let key = self.trackers[t as usize].key;
        if self.index.get(&key) == Some(&t) {
            self.index.remove(&key);
        }
        self.unlink(t);
        self.trackers[t as usize].state = State::Free;
        self.tracker_free.push(t);
    }

    /// A tracker for a datagram seen for the first time; the oldest gives
    /// way when none is free.
    fn new_tracker(&mut self, key: FragKey, now_ns: u64) -> Option<u32> {
        if self.tracker_free.is_empty() {
            let mut v = self.oldest;
            for _ in 0..EVICT_SCAN {
                if v == NIL {
                    break;
                }
                let next = self.trackers[v as usize].next;
                if self.trackers[v as usize].state != State::Awaiting {
                    if self.trackers[v as usize].state == State::Open {
                        self.counters.evicted += 1;
                    }
                    self.free_tracker(v);
                    break;
                }
                v = next;
            }
        }
        let t = self.tracker_free.pop()?;
        let generation = self.trackers[t as usize].generation.wrapping_add(1);
        self.trackers[t as usize] = Tracker {
            key,
            state: State::Open,
            first_ns: now_ns,
            generation,
            frags: NIL,
            prev: self.newest,
            next: NIL,
            ..Tracker::default()
        };
        if self.newest == NIL {
            self.oldest = t;
        } else {
            self.trackers[self.newest as usize].next = t;
        }
        self.newest = t;
        self.index.insert(key, t);
        Some(t)
    }

    /// Frees the data of the oldest incomplete datagrams (not `keep`)
    /// until `chunks` chunks and one fragment entry are free. Inline, each
    /// one so emptied is remembered as lost.
    fn make_room(&mut self, chunks: usize, keep: u32) -> bool {
        let mut v = self.oldest;
        for _ in 0..EVICT_SCAN {
            if self.chunk_free.len() >= chunks && !self.frag_free.is_empty() {
                return true;
            }
            if v == NIL {
                break;
            }
            let next = self.trackers[v as usize].next;
            if v != keep && self.trackers[v as usize].state == State::Open {
                self.counters.evicted += 1;
                if self.cfg.inline {
                    self.free_data(v);
                    self.trackers[v as usize].state = State::Lost;
                } else {
                    self.free_tracker(v);
                }
            }
            v = next;
        }
        self.chunk_free.len() >= chunks && !self.frag_free.is_empty()
    }

    /// The byte at `at` of a fragment's stored data.
    fn frag_bytes(&self, f: &Frag, from: usize, out: &mut [u8]) {
        let mut c = f.chunk;
        let mut skip = from;
        while skip >= CHUNK && c != NIL {
            c = self.chunk_next[c as usize];
            skip -= CHUNK;
        }
        let mut done = 0;
        while done < out.len() && c != NIL {
            let n = (CHUNK - skip).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.chunks[c as usize * CHUNK + skip..][..n]);
            done += n;
            skip = 0;
            c = self.chunk_next[c as usize];
        }
    }

    /// How `[off, off + data.len())` meets the fragments held in `t`.
    fn overlap(&self, t: u32, off: u32, data: &[u8]) -> Overlap {
        let end = off + data.len() as u32;
        let mut o = Overlap::default();
        let mut cover = off;
        let mut f = self.trackers[t as usize].frags;
        let mut buf = [0u8; CHUNK];
        while f != NIL {
            let fr = self.frags[f as usize];
            f = fr.next;
            if fr.skip {
                continue;
            }
            let (a, b) = (fr.offset + fr.ltrim, fr.end());
            if a >= end || b <= off || a >= b {
                continue;
            }
            o.any = true;
            if a <= cover && b > cover {
                cover = b;
            }
            // Compare the overlapping bytes, a chunk at a time.
            let (lo, hi) = (a.max(off), b.min(end));
            let mut at = lo;
            while at < hi && !o.differs {
                let n = ((hi - at) as usize).min(CHUNK);
                self.frag_bytes(&fr, (at - fr.offset) as usize, &mut buf[..n]);
                o.differs |= buf[..n] != data[(at - off) as usize..][..n];
                at += n as u32;
            }
        }
        o.within = o.any && cover >= end;
        o
    }

    /// Suricata's per-fragment policies (IPv4): trims held fragments or the
    /// new one. Returns the new fragment's ltrim, or None when it is
    /// dropped whole.
    fn settle_overlap(&mut self, t: u32, policy: DefragPolicy, off: u32, end: u32) -> Option<u32> {
        // Start at the fragment before the first one at or past `off`.
        let mut prev = self.trackers[t as usize].frags;
        let mut before = NIL;
        while prev != NIL && self.frags[prev as usize].offset < off {
            before = prev;
            prev = self.frags[prev as usize].next;
        }
        if before != NIL {
            prev = before;
        }
        let mut ltrim: u32 = 0;
        while prev != NIL {
            let next = self.frags[prev as usize].next;
            let p = self.frags[prev as usize];
            if p.skip {
                prev = next;
                continue;
            }
            let pend = p.end();
            let mut insert = false;
            match policy {
                DefragPolicy::Bsd => {
                    if off < pend {
                        if off >= p.offset {
                            ltrim = pend - off;
                        }
                        if next != NIL && end > self.frags[next as usize].offset {
                            let n = &mut self.frags[next as usize];
                            n.ltrim = end - n.offset;
                        }
                        if off < p.offset && end >= pend {
                            self.frags[prev as usize].skip = true;
                        }
                        insert = true;
                    }
                }
                DefragPolicy::OldLinux => {
                    if p.offset + p.ltrim < off + ltrim && pend > off + ltrim {
                        ltrim += pend - off;
                    }
                    let pl = p.offset + p.ltrim;
                    if off + ltrim < pl && end > pl {
                        self.frags[prev as usize].ltrim += end - pl;
                        insert = true;
                    } else if off + ltrim <= pl && end >= pend {
                        self.frags[prev as usize].skip = true;
                        insert = true;
                    }
                }
                DefragPolicy::Windows => {
                    if off >= p.offset && end <= pend {
                        return None;
                    }
                    if off < p.offset && end > pend {
                        self.frags[prev as usize].skip = true;
                        insert = true;
                    } else if (off + ltrim > p.offset + p.ltrim && off + ltrim < pend)
                        || (off == p.offset && end > pend)
                    {
                        // It overlaps the end of the held one, or starts
                        // with it and runs past: the held bytes stay.
                        ltrim += pend - off;
                        insert = true;
                    }
                }
                DefragPolicy::Solaris => {
                    if off < pend {
                        if off >= p.offset {
                            ltrim = pend - off;
                        }
                        if off < p.offset && end >= pend {
                            self.frags[prev as usize].skip = true;
                        }
                        insert = true;
                    }
                }
                DefragPolicy::First => {
                    if off >= p.offset && end <= pend {
                        return None;
                    }
                    if off < p.offset {
                        insert = true;
                    } else if off < pend {
                        ltrim = pend - off;
                        insert = true;
                    }
                }
                DefragPolicy::Last => {
                    if off <= p.offset {
                        if end > p.offset {
                            self.frags[prev as usize].ltrim = end - p.offset;
                        }
                        insert = true;
                    }
                }
                // Suricata has no rule of its own for these: later data
                // wins by arrival (and Linux never gets here).
                DefragPolicy::BsdRight | DefragPolicy::Linux => {}
            }
            if insert {
                let p = self.frags[prev as usize];
                if p.skip || p.ltrim >= p.len {
                    self.remove_frag(t, prev);
                }
                break;
            }
            prev = next;
        }
        (ltrim <= end - off).then_some(ltrim)
    }

    fn remove_frag(&mut self, t: u32, f: u32) {
        let mut at = self.trackers[t as usize].frags;
        let mut before = NIL;
        while at != NIL && at != f {
            before = at;
            at = self.frags[at as usize].next;
        }
        if at == NIL {
            return;
        }
        let Frag { chunk, next, .. } = self.frags[f as usize];
        if before == NIL {
            self.trackers[t as usize].frags = next;
        } else {
            self.frags[before as usize].next = next;
        }
        self.free_chunks(chunk);
        self.frag_free.push(f);
        self.trackers[t as usize].n_frags -= 1;
    }

    /// Stores `data` at `off` (keeping `ltrim` of it as Suricata's policies
    /// say) in `t`'s sorted list. False when memory ran out even after the
    /// oldest datagrams gave way.
    fn store(&mut self, t: u32, off: u32, data: &[u8]) -> bool {
        let n_chunks = data.len().div_ceil(CHUNK).max(1);
        if (self.chunk_free.len() < n_chunks || self.frag_free.is_empty())
            && !self.make_room(n_chunks, t)
        {
            return false;
        }
        let mut head = NIL;
        for piece in data.chunks(CHUNK).rev() {
            let Some(c) = self.chunk_free.pop() else {
                self.free_chunks(head);
                return false;
            };
            self.chunks[c as usize * CHUNK..][..piece.len()].copy_from_slice(piece);
            self.chunk_next[c as usize] = head;
            head = c;
        }
        if data.is_empty() {
            if let Some(c) = self.chunk_free.pop() {
                head = c;
            }
        }
        let Some(f) = self.frag_free.pop() else {
            self.free_chunks(head);
            return false;
        };
        // After every fragment at or before `off`: equal offsets keep
        // arrival order, and the later copy is laid down later.
        let mut at = self.trackers[t as usize].frags;
        let mut before = NIL;
        while at != NIL && self.frags[at as usize].offset <= off {
            before = at;
            at = self.frags[at as usize].next;
        }
        self.frags[f as usize] = Frag {
            offset: off,
            len: data.len() as u32,
            ltrim: 0,
            skip: false,
            chunk: head,
            next: at,
        };
        if before == NIL {
            self.trackers[t as usize].frags = f;
        } else {
            self.frags[before as usize].next = f;
        }
        self.trackers[t as usize].n_frags += 1;
        true
    }

    /// Whether `t`'s fragments cover `[0, total)` with no hole.
    fn complete(&self, t: u32) -> bool {
        let tr = &self.trackers[t as usize];
        if !tr.seen_last || tr.head_len == 0 {
            return false;
        }
        let mut have = 0u32;
        let mut f = tr.frags;
        while f != NIL {
            let fr = &self.frags[f as usize];
            f = fr.next;
            if fr.skip || fr.ltrim >= fr.len {
                continue;
            }
            if fr.offset + fr.ltrim > have {
                return false;
            }
            have = have.max(fr.end());
        }
        have >= tr.total
    }

    /// Takes one fragment (`d` decoded from `frame`) at capture time
    /// `now_ns`, replay pass `pass`.
    pub fn fragment(&mut self, frame: &[u8], d: &Decoded, now_ns: u64, pass: u16) -> FragFate<'_> {
        self.counters.fragments += 1;
        let key = FragKey {
            network: d.network,
            src: d.src,
            dst: d.dst,
            id: d.frag.id,
            proto: if d.network == Network::Ipv4 {
                d.proto
            } else {
                0
            },
            vlan: d.vlan,
            vni: d.vni,
            pass,
        };
        let t = match self.index.get(&key).copied() {
            Some(t) => t,
            None => match self.new_tracker(key, now_ns) {
                Some(t) => t,
                None => {
                    self.counters.no_slot += 1;
                    return if self.cfg.inline {
                        self.counters.exception += 1;
                        FragFate::Lost
                    } else {
                        FragFate::Invalid
                    };
                }
            },
        };
        match self.trackers[t as usize].state {
            State::Blocked | State::Awaiting => {
                self.counters.blocked += 1;
                return FragFate::Blocked;
            }
            State::Lost => {
                self.counters.exception += 1;
                return FragFate::Lost;
            }
            State::Open | State::Free => {}
        }
        let start = d.payload_offset as usize;
        let data = frame
            .get(start..start + d.payload_len as usize)
            .unwrap_or(&[]);
        let more = d.frag.more;
        let off = d.frag.offset;
        // A non-last fragment is cut to a multiple of 8, as Linux cuts it.
        let len = if more { data.len() & !7 } else { data.len() };
        let data = &data[..len];
        let end = off as usize + len;
        let tr = self.trackers[t as usize];
        let end32 = end as u32;
        let bad = usize::from(tr.n_frags) >= usize::from(MAX_FRAGMENTS)
            || end > MAX_DATAGRAM
            || (more && len == 0)
            || (!more && (end32 < tr.max_end || (tr.seen_last && end32 != tr.total)))
            || (more && tr.seen_last && end32 > tr.total);
        if bad {
            if usize::from(tr.n_frags) >= usize::from(MAX_FRAGMENTS) {
                self.counters.too_many_fragments += 1;
            } else {
                self.counters.invalid += 1;
            }
            self.free_tracker(t);
            return FragFate::Invalid;
        }
        let o = self.overlap(t, off, data);
        if o.any {
            self.counters.overlaps += 1;
            self.counters.overlap_conflicts += u64::from(o.differs);
        }
        let policy = if d.network == Network::Ipv6 {
            DefragPolicy::Linux
        } else {
            self.cfg.policy
        };
        let mut ltrim = 0;
        if o.any {
            if self.cfg.inline || policy == DefragPolicy::Linux {
                if o.within && !o.differs {
                    self.counters.duplicates += 1;
                    return FragFate::Duplicate { differs: false };
                }
                if self.cfg.inline {
                    // The host must only ever get what is inspected.
                    self.counters.refused += 1;
                    return FragFate::Refused;
                }
                if o.within {
                    // Linux ignores a duplicate whatever it carries.
                    self.counters.duplicates += 1;
                    return FragFate::Duplicate { differs: true };
                }
                self.counters.overlap_discards += 1;
                self.free_tracker(t);
                return FragFate::Discarded;
            }
            match self.settle_overlap(t, policy, off, end32) {
                Some(l) => ltrim = l,
                None => {
                    self.counters.duplicates += 1;
                    return FragFate::Duplicate { differs: o.differs };
                }
            }
        }
        let kept = &data[(ltrim as usize).min(data.len())..];
        if !self.store(t, off + ltrim, kept) {
            self.counters.no_slot += 1;
            if self.cfg.inline {
                self.free_data(t);
                self.trackers[t as usize].state = State::Lost;
                self.counters.exception += 1;
                return FragFate::Lost;
            }
            self.free_tracker(t);
            return FragFate::Invalid;
        }
        if off == 0 && self.trackers[t as usize].head_len == 0 {
            let l3 = usize::from(d.frag.l3_offset);
            let unfrag = usize::from(d.frag.unfrag_len);
            if l3 + unfrag > MAX_HEAD || l3 + unfrag > frame.len() {
                self.counters.invalid += 1;
                self.free_tracker(t);
                return FragFate::Invalid;
            }
            self.heads[t as usize * MAX_HEAD..][..l3 + unfrag]
                .copy_from_slice(&frame[..l3 + unfrag]);
            let tr = &mut self.trackers[t as usize];
            tr.head_len = (l3 + unfrag) as u16;
            tr.l3_offset = l3 as u16;
            tr.unfrag_len = unfrag as u16;
            tr.next_field = d.frag.next_field;
            let min_l4 = match d.proto {
                6 => 20,
                17 | 1 | 58 => 8,
                _ => 0,
            };
            if data.len() < min_l4 {
                self.counters.tiny_first += 1;
            }
        }
        {
            let tr = &mut self.trackers[t as usize];
            // (The upper protocol of an IPv6 datagram is the fragment
            // header's next header; the key leaves it out, so keep it.)
            tr.upper = d.proto;
            tr.max_end = tr.max_end.max(end32);
            if !more {
                tr.seen_last = true;
                tr.total = end32;
            }
        }
        if !self.complete(t) {
            return FragFate::Held { overlap: o.any };
        }
        self.counters.reassembled += 1;
        let len = self.build(t, d.network);
        self.free_data(t);
        let tr = &mut self.trackers[t as usize];
        tr.state = State::Awaiting;
        let handle = FragHandle {
            tracker: t,
            generation: tr.generation,
        };
        FragFate::Complete {
            datagram: &self.out[..len],
            handle,
            overlap: o.any,
        }
    }

    /// Rebuilds `t`'s datagram into `out`; returns its length.
    fn build(&mut self, t: u32, network: Network) -> usize {
        let tr = self.trackers[t as usize];
        let (hl, l3) = (usize::from(tr.head_len), usize::from(tr.l3_offset));
        let total = tr.total as usize;
        self.out[..hl].copy_from_slice(&self.heads[t as usize * MAX_HEAD..][..hl]);
        // In list order: where copies overlap, the later one stays (the
        // policies trimmed and skipped to make it so).
        let mut f = tr.frags;
        let mut out = std::mem::take(&mut self.out);
        while f != NIL {
            let fr = self.frags[f as usize];
            f = fr.next;
            if fr.skip || fr.ltrim >= fr.len {
                continue;
            }
            let a = (fr.offset + fr.ltrim) as usize;
            let b = (fr.end() as usize).min(total);
            if a < b {
                self.frag_bytes(&fr, fr.ltrim as usize, &mut out[hl + a..hl + b]);
            }
        }
        self.out = out;
        let out = &mut self.out;
        match network {
            Network::Ipv4 => {
                let ip = &mut out[l3..hl];
                ip[2..4]
                    .copy_from_slice(&((usize::from(tr.unfrag_len) + total) as u16).to_be_bytes());
                // Keep DF, clear MF and the offset.
                ip[6] &= 0x40;
                ip[7] = 0;
                ip[10..12].copy_from_slice(&[0, 0]);
                let c = internet_checksum(&[ip]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                out[l3 + usize::from(tr.next_field)] = tr.upper;
                let plen = (usize::from(tr.unfrag_len) - 40 + total) as u16;
                out[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
            }
        }
        hl + total
    }

    /// The verdict on a completed datagram: a blocked one keeps blocking
    /// its later fragments until its timeout; one let through is forgotten
    /// (as the host forgets it: later fragments start a new datagram).
    pub fn settle(&mut self, h: FragHandle, blocked: bool) {
        let Some(tr) = self.trackers.get(h.tracker as usize) else {
            return;
        };
        if tr.generation != h.generation || tr.state != State::Awaiting {
            return;
        }
        if blocked {
            self.trackers[h.tracker as usize].state = State::Blocked;
        } else {
            self.free_tracker(h.tracker);
        }
    }

    /// Drops datagrams still incomplete `timeout` after their first
    /// fragment, and forgets blocked ones then, on capture time.
    pub fn expire(&mut self, now_ns: u64) {
        while self.oldest != NIL {
            let t = self.oldest;
            let tr = self.trackers[t as usize];
            if tr.first_ns.saturating_add(self.cfg.timeout_ns) > now_ns {
                return;
            }
            if tr.state == State::Open {
                self.counters.timeouts += 1;
            }
            self.free_tracker(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{fragment, Ipv6Ext, Route};
    use crate::decode::decode;

    const SEC: u64 = 1_000_000_000;

    /// The same datagram, but for what fragmentation itself changes: the
    /// IPv4 identification, flags and header checksum.
    fn same_datagram(got: &[u8], original: &[u8]) -> bool {
        let l3 = 14 + 4 * usize::from(decode(original).unwrap().vlan_count);
        let v4 = original[l3] >> 4 == 4;
        got.len() == original.len()
            && got.iter().zip(original).enumerate().all(|(i, (a, b))| {
                a == b || (v4 && ((l3 + 4..l3 + 8).contains(&i) || (l3 + 10..l3 + 12).contains(&i)))
            })
    }

    fn table_with(policy: DefragPolicy, inline: bool) -> Defrag {
        Defrag::new(DefragConfig {
            memcap: 1 << 20,
            timeout_ns: 30 * SEC,
            policy,
            inline,
        })
    }

    fn table() -> Defrag {
        table_with(DefragPolicy::Linux, false)
    }

    fn v4_segment() -> Vec<u8> {
        let r = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()).vlan(9);
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        r.tcp(40000, 8000, 1000, 2000, 0x18, 500, &[], &payload)
    }

    fn v6_datagram() -> Vec<u8> {
        let r = Route::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .ipv6_ext(&[Ipv6Ext::HopByHop, Ipv6Ext::DestOpts]);
        let payload: Vec<u8> = (0..2500u32).map(|i| (i * 13 % 253) as u8).collect();
        r.udp(5000, 6000, &payload)
    }

    /// What one fragment did, without the borrowed datagram.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Held,
        Complete(Vec<u8>),
        Duplicate(bool),
        Discarded,
        Refused,
        Invalid,
        Blocked,
        Lost,
    }

    fn one(t: &mut Defrag, f: &[u8], now: u64) -> (Got, Option<FragHandle>) {
        let d = decode(f).unwrap();
        assert!(d.fragment);
        match t.fragment(f, &d, now, 0) {
            FragFate::Held { .. } => (Got::Held, None),
            FragFate::Complete {
                datagram, handle, ..
            } => (Got::Complete(datagram.to_vec()), Some(handle)),
            FragFate::Duplicate { differs } => (Got::Duplicate(differs), None),
            FragFate::Discarded => (Got::Discarded, None),
            FragFate::Refused => (Got::Refused, None),
            FragFate::Invalid => (Got::Invalid, None),
            FragFate::Blocked => (Got::Blocked, None),
            FragFate::Lost => (Got::Lost, None),
        }
    }

    /// Feeds fragments in `order`; returns the reassembled frame, if any
    /// (its datagram is let through).
    fn feed(t: &mut Defrag, frags: &[Vec<u8>], order: &[usize]) -> Option<Vec<u8>> {
        let mut done = None;
        for &i in order {
            if let (Got::Complete(f), Some(h)) = one(t, &frags[i], 0) {
                t.settle(h, false);
                done = Some(f);
            }
        }
        done
    }

    /// A raw IPv4 fragment: `data` at byte `off` of datagram `id`.
    fn frag4(id: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        let fo = (off / 8) | if more { 0x2000 } else { 0 };
        ip[6..8].copy_from_slice(&fo.to_be_bytes());
        let c = internet_checksum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(data);
        f
    }

    /// The payload of a rebuilt IPv4 frame.
    fn payload(frame: &[u8]) -> &[u8] {
        &frame[34..]
    }

    #[test]
    fn in_order_reversed_and_shuffled_all_rebuild_the_datagram() {
        for original in [v4_segment(), v6_datagram()] {
            let frags = fragment(&original, 800, 77);
            assert!(frags.len() >= 3);
            let n = frags.len();
            let orders: [Vec<usize>; 3] = [
                (0..n).collect(),
                (0..n).rev().collect(),
                (1..n).step_by(2).chain((0..n).step_by(2)).collect(),
            ];
            for order in &orders {
                let mut t = table();
                let got = feed(&mut t, &frags, order).expect("complete");
                let (a, b) = (decode(&got).unwrap(), decode(&original).unwrap());
                assert!(!a.fragment);
                assert_eq!(
                    (a.src_port, a.dst_port, a.proto, a.vlan),
                    (b.src_port, b.dst_port, b.proto, b.vlan)
                );
                assert!(same_datagram(&got, &original), "order {order:?}");
                assert_eq!(t.counters.reassembled, 1);
                assert_eq!(t.in_flight(), 0);
            }
        }
    }

    #[test]
    fn rebuilt_ipv4_header_is_valid() {
        let original = v4_segment();
        let frags = fragment(&original, 1024, 5);
        let got = feed(&mut table(), &frags, &[0, 1, 2]).unwrap();
        let ip = &got[18..38];
        assert_eq!(internet_checksum(&[ip]), 0);
        assert_eq!(&ip[6..8], &[0, 0], "MF and offset cleared");
        assert_eq!(
            &ip[4..6],
            &5u16.to_be_bytes(),
            "the fragments' identification"
        );
        assert!(same_datagram(&got, &original));
    }

    #[test]
    fn duplicates_are_ignored() {
        let frags = fragment(&v4_segment(), 800, 1);
        let mut t = table();
        let got = feed(&mut t, &frags, &[0, 1, 1, 0, 2, 3]);
        assert!(got.is_some());
        assert_eq!(t.counters.duplicates, 2);
        assert_eq!(t.counters.overlap_discards, 0);
    }

    #[test]
    fn linux_discards_a_datagram_with_overlapping_fragments_and_starts_over() {
        let a = frag4(7, 0, true, &[b'A'; 16]);
        let b = frag4(7, 8, true, &[b'B'; 16]);
        let c = frag4(7, 24, false, &[b'C'; 8]);
        let mut t = table();
        assert_eq!(one(&mut t, &a, 0).0, Got::Held);
        assert_eq!(one(&mut t, &b, 0).0, Got::Discarded);
        assert_eq!(t.in_flight(), 0, "the host forgets the datagram");
        // A clean set with the same identification starts a new one.
        let a2 = frag4(7, 0, true, &[b'a'; 24]);
        assert_eq!(one(&mut t, &a2, 0).0, Got::Held);
        let (got, _) = one(&mut t, &c, 0);
        let Got::Complete(f) = got else {
            panic!("complete: {got:?}");
        };
        assert_eq!(payload(&f), [[b'a'; 24].as_slice(), &[b'C'; 8]].concat());
        // A fragment wholly inside held data is a duplicate, kept out
        // whatever it carries.
        let mut t = table();
        one(&mut t, &frag4(8, 0, true, &[b'A'; 16]), 0);
        assert_eq!(
            one(&mut t, &frag4(8, 8, true, &[b'X'; 8]), 0).0,
            Got::Duplicate(true)
        );
        assert_eq!(t.counters.overlap_conflicts, 1);
    }

    /// The two classic overlaps, fragment against fragment, under each of
    /// Suricata's policies: which bytes the datagram ends with at 8..16.
    #[test]
    fn target_based_policies_settle_overlaps_as_suricata_does() {
        use DefragPolicy::*;
        // The new fragment starts inside the old one and ends past it.
        let inside = [
            (First, b'A'),
            (Last, b'B'),
            (Bsd, b'A'),
            (Windows, b'A'),
            (Solaris, b'A'),
            (OldLinux, b'A'),
            (BsdRight, b'B'),
        ];
        for (policy, want) in inside {
            let mut t = table_with(policy, false);
            one(&mut t, &frag4(1, 0, true, &[b'A'; 16]), 0);
            one(&mut t, &frag4(1, 8, true, &[b'B'; 16]), 0);
            let (got, _) = one(&mut t, &frag4(1, 24, false, &[b'C'; 8]), 0);
            let Got::Complete(f) = got else {
                panic!("{policy:?}: {got:?}");
            };
            let p = payload(&f);
            assert_eq!(p.len(), 32, "{policy:?}");
            assert!(p[8..16].iter().all(|&x| x == want), "{policy:?}: {p:?}");
            assert!(p[16..24].iter().all(|&x| x == b'B'), "{policy:?}");
        }
        // The new fragment starts before the old one and covers it.
        let over = [
            (First, b'A'),
            (Last, b'B'),
            (Bsd, b'B'),
            (Windows, b'B'),
            (Solaris, b'B'),
            (OldLinux, b'B'),
        ];
        for (policy, want) in over {
            let mut t = table_with(policy, false);
            one(&mut t, &frag4(2, 8, true, &[b'A'; 8]), 0);
            one(&mut t, &frag4(2, 0, true, &[b'B'; 24]), 0);
            let (got, _) = one(&mut t, &frag4(2, 24, false, &[b'C'; 8]), 0);
            let Got::Complete(f) = got else {
                panic!("{policy:?}: {got:?}");
            };
            assert!(payload(&f)[8..16].iter().all(|&x| x == want), "{policy:?}");
        }
    }

    #[test]
    fn ipv6_overlap_discards_the_whole_datagram() {
        let frags = fragment(&v6_datagram(), 800, 9);
        let mut shifted = frags[1].clone();
        // Same data, offset moved back by 8: it overlaps fragment 0.
        let d = decode(&shifted).unwrap();
        let fo = usize::from(d.frag.l3_offset) + usize::from(d.frag.unfrag_len) + 2;
        let off = u16::from_be_bytes([shifted[fo], shifted[fo + 1]]) & 0xfff8;
        shifted[fo..fo + 2].copy_from_slice(&((off - 8) | 1).to_be_bytes());
        for policy in [DefragPolicy::Linux, DefragPolicy::Last] {
            let mut t = table_with(policy, false);
            one(&mut t, &frags[0], 0);
            assert_eq!(one(&mut t, &shifted, 0).0, Got::Discarded, "{policy:?}");
            assert_eq!(t.counters.overlap_discards, 1);
        }
    }

    #[test]
    fn inline_the_first_copy_stays_and_a_changing_copy_is_refused() {
        let mut t = table_with(DefragPolicy::Linux, true);
        one(&mut t, &frag4(3, 0, true, &[b'A'; 16]), 0);
        assert_eq!(
            one(&mut t, &frag4(3, 0, true, &[b'A'; 16]), 0).0,
            Got::Duplicate(false)
        );
        assert_eq!(
            one(&mut t, &frag4(3, 8, true, &[b'X'; 8]), 0).0,
            Got::Refused
        );
        assert_eq!(
            one(&mut t, &frag4(3, 8, true, &[b'A'; 16]), 0).0,
            Got::Refused
        );
        let (got, h) = one(&mut t, &frag4(3, 16, false, &[b'C'; 8]), 0);
        let Got::Complete(f) = got else {
            panic!("{got:?}");
        };
        assert_eq!(payload(&f), [[b'A'; 16].as_slice(), &[b'C'; 8]].concat());
        // Blocked: the completing fragment again, or any other, is blocked
        // until the datagram's timeout.
        t.settle(h.unwrap(), true);
        assert_eq!(
            one(&mut t, &frag4(3, 16, false, &[b'C'; 8]), 0).0,
            Got::Blocked
        );
        assert_eq!(
            one(&mut t, &frag4(3, 0, true, &[b'A'; 16]), SEC).0,
            Got::Blocked
        );
        t.expire(31 * SEC);
        assert_eq!(
            one(&mut t, &frag4(3, 0, true, &[b'A'; 16]), 32 * SEC).0,
            Got::Held
        );
        // Let through: forgotten, as the host forgets it.
        let mut t = table_with(DefragPolicy::Linux, true);
        one(&mut t, &frag4(4, 0, true, &[b'A'; 8]), 0);
        let (_, h) = one(&mut t, &frag4(4, 8, false, &[b'C'; 8]), 0);
        t.settle(h.unwrap(), false);
        assert_eq!(one(&mut t, &frag4(4, 8, false, &[b'C'; 8]), 0).0, Got::Held);
    }

    #[test]
    fn a_flood_of_first_fragments_gives_way_to_a_real_datagram() {
        // Room for a few dozen trackers; 600 first fragments that never
        // complete, then a real datagram.
        for inline in [false, true] {
            let mut t = Defrag::new(DefragConfig {
                memcap: 256 << 10,
                timeout_ns: 30 * SEC,
                policy: DefragPolicy::Linux,
                inline,
            });
            assert!(t.capacity() < 600);
            for id in 0..600u16 {
                one(&mut t, &frag4(id, 0, true, &[b'z'; 24]), 0);
            }
            let real = fragment(&v4_segment(), 800, 60_000);
            let got = feed(&mut t, &real, &[0, 1, 2, 3]);
            assert!(got.is_some(), "inline {inline}: {:?}", t.counters);
            assert!(t.counters.evicted > 0);
            assert!(t.in_flight() <= t.capacity());
        }
        // A fragment of a datagram evicted unseen meets the exception
        // policy inline.
        let mut t = Defrag::new(DefragConfig {
            memcap: 64 << 10,
            timeout_ns: 30 * SEC,
            policy: DefragPolicy::Linux,
            inline: true,
        });
        let first = frag4(9, 0, true, &[b'z'; 1000]);
        one(&mut t, &first, 0);
        for id in 100..400u16 {
            one(&mut t, &frag4(id, 0, true, &[b'y'; 1000]), 0);
        }
        let (got, _) = one(&mut t, &frag4(9, 1000, false, &[b'z'; 8]), 0);
        assert!(matches!(got, Got::Lost | Got::Held), "{got:?}");
    }
    #[test]
    fn incomplete_datagrams_time_out_on_capture_time() {
        let frags = fragment(&v4_segment(), 800, 3);
        let mut t = table();
        assert!(feed(&mut t, &frags, &[0, 2]).is_none());
        t.expire(29 * SEC);
        assert_eq!(t.in_flight(), 1);
        t.expire(30 * SEC);
        assert_eq!((t.in_flight(), t.counters.timeouts), (0, 1));
    }

    #[test]
    fn tiny_first_fragments_are_counted() {
        let frags = fragment(&v4_segment(), 8, 4);
        let mut t = table();
        let order: Vec<usize> = (0..frags.len().min(MAX_FRAGMENTS as usize)).collect();
        let _ = feed(&mut t, &frags, &order);
        assert_eq!(t.counters.tiny_first, 1);
        assert!(frags.len() > MAX_FRAGMENTS as usize);
        let rest: Vec<usize> = (MAX_FRAGMENTS as usize..frags.len()).collect();
        let _ = feed(&mut t, &frags, &rest);
        assert!(t.counters.too_many_fragments >= 1, "{:?}", t.counters);
    }

    #[test]
    fn hostile_fragments_never_panic_or_grow_the_table() {
        // Real fragments with their offset, MF bit, identification and
        // length scrambled, IPv4 and IPv6, thousands of them.
        let mut t = Defrag::new(DefragConfig {
            memcap: 256 << 10,
            timeout_ns: SEC,
            ..DefragConfig::default()
        });
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            fragment(&v4_segment(), 800, 1),
            fragment(&v6_datagram(), 800, 2),
        ];
        for round in 0..20_000u64 {
            let base = &seeds[(round % 2) as usize];
            let mut f = base[(next() % base.len() as u64) as usize].clone();
            let d = decode(&f).unwrap();
            let at = usize::from(d.frag.l3_offset)
                + if d.network == Network::Ipv4 {
                    6
                } else {
                    usize::from(d.frag.unfrag_len) + 2
                };
            let r = next();
            f[at] = r as u8;
            f[at + 1] = (r >> 8) as u8;
            if d.network == Network::Ipv4 {
                f[at - 2] = (r >> 16) as u8 % 4; // a few identifications
            } else {
                f[at + 5] = (r >> 16) as u8 % 4;
            }
            if r >> 24 & 3 == 0 {
                let keep = (r >> 26) as usize % f.len();
                f.truncate(keep.max(1));
            }
            if let Ok(d) = decode(&f) {
                if d.fragment {
                    if let FragFate::Complete { handle, .. } = t.fragment(&f, &d, round * 1000, 0) {
                        t.settle(handle, round % 3 == 0);
                    }
                }
            }
            assert!(t.in_flight() <= t.capacity());
            if round % 1000 == 0 {
                t.expire(round * 1000);
            }
        }
        assert!(t.counters.fragments > 10_000);
    }
}
