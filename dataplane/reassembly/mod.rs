//! TCP stream reassembly: per flow direction, the bytes the receiver will
//! see, in order, handed to the stream matcher as they become contiguous.
//!
//! Each direction that carries data gets a *session* from a pool sized by
//! `--stream-memcap` (with the matcher's per-session state, which the caller
//! declares). A session keeps the last `--stream-window` bytes delivered in a
//! *window block* and the out-of-order segments it waits on in fixed
//! *chunks*; blocks and chunks come from one arena sized by
//! `--reassembly-memcap`. Everything is allocated when the worker starts.
//!
//! Stream offsets are absolute: offset 0 is the byte after the sender's SYN
//! (or, with `--midstream on`, the first byte seen). Policy, in the order a
//! segment meets it:
//! - bytes already delivered or already held win (first data wins, as on
//!   most stacks); a later copy that agrees is an overlap with the same
//!   bytes, one that differs is counted and reported so IPS can drop the
//!   packet (the receiver could take either version);
//! - a segment ahead of the next expected byte is held until the hole
//!   fills; the hole becomes a *gap* (reported, never papered over: the
//!   window restarts after it) when the receiver has acknowledged past it,
//!   when the direction's holding limits or the arena run out (the session
//!   is marked over its limits and counted), or when the flow ends;
//! - past `--stream-depth` bytes a direction is no longer reassembled;
//! - a direction that starts with TLS records is followed record by record
//!   and stops at the first ChangeCipherSpec or application-data record:
//!   ciphertext is never scanned.

use crate::flow::tcp::Dir;

/// Marks a slot direction without a session yet.
const NIL: u32 = u32::MAX;
/// Marks a slot direction that will not be reassembled (midstream without
/// `--midstream on`, no session left, RST): its stream rules fall back to
/// matching packet by packet.
const REFUSED: u32 = u32::MAX - 1;

/// Out-of-order pieces one direction holds at most.
pub const MAX_HELD: usize = 16;
/// Bytes in one chunk of held out-of-order data.
pub const CHUNK: usize = 2048;

/// Stream bounds, per worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Reassemble at all. Always on from the command line; off, stream
    /// rules match packet by packet (what the matcher benchmark compares
    /// streaming against).
    pub enabled: bool,
    /// Bytes for sessions and the matcher's state in them.
    pub memcap: usize,
    /// Bytes for window blocks and held segments.
    pub reassembly_memcap: usize,
    /// Bytes per direction reassembled at most; 0 for no limit.
    pub depth: u64,
    /// Bytes of each direction retained for rule confirmation.
    pub window: usize,
    /// Reassemble flows whose handshake was not seen, from their first byte.
    pub midstream: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            enabled: true,
            memcap: 32 << 20,
            reassembly_memcap: 128 << 20,
            depth: 1 << 20,
            window: 4096,
            midstream: false,
        }
    }
}

/// Whether TCP checksums are verified before a segment enters reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Verify, and stop once a capture shows offloaded checksums (the NIC
    /// left them unfilled): more than one bad in ten of the first
    /// `CHECKSUM_SAMPLE` segments.
    #[default]
    Auto,
    On,
    Off,
}

/// Segments `--checksum auto` judges a capture by.
pub const CHECKSUM_SAMPLE: u64 = 1000;

/// A worker's checksum policy and what it found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksums {
    mode: ChecksumMode,
    checked: u64,
    pub bad: u64,
    /// `auto` turned verification off.
    pub turned_off: bool,
}

impl Checksums {
    pub fn new(mode: ChecksumMode) -> Self {
        Checksums {
            mode,
            ..Checksums::default()
        }
    }

    /// Whether a segment may enter reassembly; `verify` computes its
    /// checksum when the policy asks for it. A bad one is counted.
    pub fn admit(&mut self, verify: impl FnOnce() -> bool) -> bool {
        if self.mode == ChecksumMode::Off || self.turned_off {
            return true;
        }
        let ok = verify();
        self.checked += 1;
        self.bad += u64::from(!ok);
        if self.mode == ChecksumMode::Auto
            && self.checked == CHECKSUM_SAMPLE
            && self.bad * 10 > self.checked
        {
            self.turned_off = true;
        }
        ok
    }
}

/// What reassembly counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Bytes delivered in order to the matcher.
    pub bytes: u64,
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
    /// Segments wholly inside bytes already delivered or held.
    pub retransmissions: u64,
    /// Segments overlapping bytes already delivered or held, with the same
    /// bytes and with different ones (first data wins).
    pub overlaps_same: u64,
    pub overlaps_different: u64,
    /// Holes declared gaps: the matcher's window restarts after each.
    pub gaps: u64,
    /// Sessions that ran into their holding limit or an empty arena.
    pub over_limits: u64,
    /// Directions refused a session because the pool was empty.
    pub sessions_full: u64,
    /// Directions not reassembled: their handshake was not seen.
    pub midstream_skipped: u64,
    /// Directions that reached `--stream-depth`.
    pub depth_reached: u64,
    /// Directions that turned to TLS ciphertext (not scanned from there).
    pub ciphertext: u64,
    /// Segments kept out for a bad TCP checksum, and workers whose
    /// `--checksum auto` found offloaded checksums and stopped verifying.
    pub checksum_bad: u64,
    pub checksum_off: u64,
    /// Sessions, window blocks and chunks in use now, and the peak of the
    /// bytes they take (with the matcher's per-session state).
    pub sessions: u64,
    pub blocks: u64,
    pub chunks: u64,
    pub memuse: u64,
    pub memuse_peak: u64,
}

impl StreamCounters {
    pub fn add(&mut self, o: &StreamCounters) {
        self.bytes += o.bytes;
        self.out_of_order += o.out_of_order;
        self.retransmissions += o.retransmissions;
        self.overlaps_same += o.overlaps_same;
        self.overlaps_different += o.overlaps_different;
        self.gaps += o.gaps;
        self.over_limits += o.over_limits;
        self.sessions_full += o.sessions_full;
        self.midstream_skipped += o.midstream_skipped;
        self.depth_reached += o.depth_reached;
        self.ciphertext += o.ciphertext;
        self.checksum_bad += o.checksum_bad;
        self.checksum_off += o.checksum_off;
        self.sessions += o.sessions;
        self.blocks += o.blocks;
        self.chunks += o.chunks;
        self.memuse += o.memuse;
        self.memuse_peak += o.memuse_peak;
    }
}

/// Newly contiguous bytes of one direction, with what is retained before
/// them: `window[new_from..]` is new, and `window[0]` sits at stream offset
/// `base`. After a gap the window holds nothing from before it.
#[derive(Debug)]
pub struct Delivery<'a> {
    pub session: u32,
    pub dir: Dir,
    pub window: &'a [u8],
    pub base: u64,
    pub new_from: usize,
    /// A gap lies right before the new bytes: matching state restarts.
    pub gap: bool,
    /// The session's first bytes: matching state starts afresh (the
    /// session's slot may have served another direction before).
    pub fresh: bool,
}

/// What reassembly tells the matcher.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    Data(Delivery<'a>),
    /// The session's direction is done (depth, ciphertext, flow end): its
    /// matching state can go.
    Done(u32),
}

/// One TCP segment of a flow direction.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub seq: u32,
    pub ack: Option<u32>,
    pub payload: &'a [u8],
}

/// What became of a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    /// Some of its bytes differ from bytes already delivered or held.
    pub overlap_different: bool,
    /// Its direction is not reassembled: stream rules take the packet alone.
    pub unstreamed: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Held {
    off: u64,
    len: u16,
    chunk: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Status {
    #[default]
    Active,
    /// Past the depth, into ciphertext, or reset: nothing more is taken.
    Finished,
    /// No window could be had: nothing more is taken, and the direction's
    /// stream rules take each packet alone.
    Overflow,
}

/// Where a direction stands in the TLS record layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Tls {
    /// Nothing delivered yet.
    #[default]
    Unknown,
    /// Not TLS (or record sync was lost): everything is scanned.
    Plain,
    /// Inside TLS records: `have` bytes of the next header, or `left` bytes
    /// of the current record's body.
    Records { hdr: [u8; 5], have: u8, left: u32 },
}

impl Tls {
    /// How many leading bytes of `b` (delivered from stream offset `at`)
    /// are plaintext; fewer than `b.len()` when ciphertext starts inside it.
    fn plain_prefix(&mut self, b: &[u8], at: u64) -> usize {
        if *self == Tls::Unknown {
            *self = if at == 0 && b.first() == Some(&0x16) {
                Tls::Records {
                    hdr: [0; 5],
                    have: 0,
                    left: 0,
                }
            } else {
                Tls::Plain
            };
        }
        let mut i = 0;
        while i < b.len() {
            let Tls::Records { hdr, have, left } = self else {
                return b.len();
            };
            if *left > 0 {
                let n = (*left as usize).min(b.len() - i);
                *left -= n as u32;
                i += n;
                continue;
            }
            let start = i.saturating_sub(usize::from(*have));
            hdr[usize::from(*have)] = b[i];
            *have += 1;
            i += 1;
            if *have < 5 {
                continue;
            }
            *have = 0;
            if hdr[1] != 3 {
                *self = Tls::Plain;
                return b.len();
            }
            // ChangeCipherSpec (TLS 1.2, and 1.3's compatibility one) or
            // application data: everything from this record on is encrypted.
            if matches!(hdr[0], 20 | 23) {
                return start;
            }
            *left = u32::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        }
        b.len()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// Sequence number of the next byte expected, and its stream offset.
    next_seq: u32,
    delivered: u64,
    /// The window block (NIL for none yet) and the bytes it holds.
    block: u32,
    block_start: u64,
    block_len: u32,
    held: [Held; MAX_HELD],
    n_held: u8,
    /// The highest acknowledgement the receiver sent.
    acked: Option<u32>,
    status: Status,
    tls: Tls,
    over_limit: bool,
    /// A hole was skipped: the next delivery says so.
    gap_pending: bool,
    /// Nothing delivered yet: the next delivery says so.
    fresh: bool,
}

/// `a` is after `b` in sequence space.
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The most new bytes one delivery carries: half the window (at least 32),
/// so a block is one and a half windows.
fn piece_len(window: usize) -> usize {
    (window / 2).max(32)
}

/// A free list over `n` preallocated items.
#[derive(Debug)]
struct Pool {
    free: Vec<u32>,
    total: usize,
}

impl Pool {
    fn new(n: usize) -> Self {
        Pool {
            free: (0..n as u32).rev().collect(),
            total: n,
        }
    }
    fn get(&mut self) -> Option<u32> {
        self.free.pop()
    }
    fn put(&mut self, i: u32) {
        self.free.push(i);
    }
    fn in_use(&self) -> u64 {
        (self.total - self.free.len()) as u64
    }
}

/// One worker's reassembly: sessions, their window blocks and held chunks.
pub struct Reassembly {
    cfg: StreamConfig,
    /// Per flow slot: the flow id the entries belong to, and per direction
    /// the session (or NIL / REFUSED).
    owners: Vec<u64>,
    handles: Vec<[u32; 2]>,
    sessions: Vec<Session>,
    session_pool: Pool,
    blocks: Vec<u8>,
    block_pool: Pool,
    chunks: Vec<u8>,
    chunk_pool: Pool,
    /// Bytes one session costs with the matcher's state.
    session_bytes: usize,
    /// Bytes in a window block: the window and one piece of new bytes.
    block: usize,
    pub counters: StreamCounters,
}

impl std::fmt::Debug for Reassembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Reassembly({} sessions, {} blocks, {} chunks)",
            self.session_pool.total, self.block_pool.total, self.chunk_pool.total
        )
    }
}

impl Reassembly {
    /// Preallocates for `flows` flow slots. `matcher_state` is what the
    /// matcher keeps per session, charged to `--stream-memcap` with it.
    pub fn new(cfg: StreamConfig, flows: usize, matcher_state: usize) -> Self {
        let window = cfg.window.max(64);
        let cfg = StreamConfig { window, ..cfg };
        let session_bytes = std::mem::size_of::<Session>() + matcher_state;
        let n_sessions = (cfg.memcap / session_bytes).max(1);
        let block = window + piece_len(window);
        let n_blocks = (cfg.reassembly_memcap / 2 / block).max(1);
        let n_chunks = (cfg.reassembly_memcap / 2 / CHUNK).max(1);
        Reassembly {
            cfg,
            owners: vec![0; flows],
            handles: vec![[NIL; 2]; flows],
            // Filled as the pool hands sessions out (it hands out 0, 1, 2 …
            // first), so start-up does not write every one.
            sessions: Vec::with_capacity(n_sessions),
            session_pool: Pool::new(n_sessions),
            blocks: vec![0; n_blocks * block],
            block_pool: Pool::new(n_blocks),
            chunks: vec![0; n_chunks * CHUNK],
            chunk_pool: Pool::new(n_chunks),
            session_bytes,
            block,
            counters: StreamCounters::default(),
        }
    }

    /// Sessions the pool holds: the matcher sizes its state table on it.
    pub fn capacity(&self) -> usize {
        self.session_pool.total
    }

    /// Bytes one direction's session takes: the session with the matcher's
    /// state, and the window block once it carries data.
    pub fn bytes_per_direction(&self) -> (usize, usize) {
        (self.session_bytes, self.block)
    }

    fn update_memuse(&mut self) {
        let c = &mut self.counters;
        c.sessions = self.session_pool.in_use();
        c.blocks = self.block_pool.in_use();
        c.chunks = self.chunk_pool.in_use();
        c.memuse = c.sessions * self.session_bytes as u64
            + c.blocks * self.block as u64
            + c.chunks * CHUNK as u64;
        c.memuse_peak = c.memuse_peak.max(c.memuse);
    }

    /// The session entry of `slot` for flow `flow_id`, after dropping
    /// entries a previous flow in the slot left (it ended through `end`, so
    /// only markers can remain).
    fn handle(&mut self, slot: u32, flow_id: u64, dir: Dir) -> u32 {
        let s = slot as usize;
        if self.owners[s] != flow_id {
            // A flow that left without `end`: its sessions go back unheard
            // (a session's first delivery restarts the matcher anyway).
            for h in std::mem::replace(&mut self.handles[s], [NIL; 2]) {
                if h != NIL && h != REFUSED {
                    self.release(h);
                }
            }
            self.owners[s] = flow_id;
        }
        self.handles[s][dir as usize]
    }

    /// Frees a session's block, chunks and the session itself.
    fn release(&mut self, h: u32) {
        self.sessions[h as usize].status = Status::Finished;
        self.free_buffers(h);
        self.session_pool.put(h);
        self.update_memuse();
    }

    /// Returns the session's window block and held chunks to their pools.
    fn free_buffers(&mut self, h: u32) {
        let s = &mut self.sessions[h as usize];
        let block = std::mem::replace(&mut s.block, NIL);
        s.block_len = 0;
        while self.sessions[h as usize].n_held > 0 {
            self.drop_first_held(h);
        }
        if block != NIL {
            self.block_pool.put(block);
        }
    }

    /// Whether `len` bytes at `seq` in `dir` lie wholly within what the
    /// direction has already delivered: a retransmission, which can add
    /// nothing (so its checksum only matters if it disagrees).
    pub fn is_retransmission(
        &self,
        slot: u32,
        flow_id: u64,
        dir: Dir,
        seq: u32,
        len: usize,
    ) -> bool {
        let s = slot as usize;
        if self.owners.get(s) != Some(&flow_id) {
            return false;
        }
        let h = self.handles[s][dir as usize];
        let Some(sess) = self.sessions.get(h as usize) else {
            return false;
        };
        let rel = i64::from(seq.wrapping_sub(sess.next_seq) as i32);
        sess.status == Status::Active && rel + len as i64 <= 0
    }

    /// Takes one segment of flow `flow_id` (table slot `slot`) sent in
    /// `dir`. `isn` is the sender's SYN sequence number if it was seen.
    /// Newly contiguous bytes go to `ev`.
    pub fn segment(
        &mut self,
        slot: u32,
        flow_id: u64,
        dir: Dir,
        isn: Option<u32>,
        seg: &Segment<'_>,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) -> Placed {
        let mut placed = Placed::default();
        if slot as usize >= self.handles.len() {
            placed.unstreamed = true;
            return placed;
        }
        // The acknowledgement tells what the receiver of the other
        // direction already has.
        if let Some(ack) = seg.ack {
            let peer = self.handle(slot, flow_id, dir.peer());
            if let Some(p) = self.sessions.get_mut(peer as usize) {
                if p.acked.is_none_or(|a| seq_gt(ack, a)) {
                    p.acked = Some(ack);
                }
            }
        }
        if seg.payload.is_empty() {
            return placed;
        }
        let mut h = self.handle(slot, flow_id, dir);
        if h == NIL {
            h = self.open(seg.seq, isn);
            self.handles[slot as usize][dir as usize] = h;
        }
        if h == REFUSED {
            placed.unstreamed = true;
            return placed;
        }
        match self.sessions[h as usize].status {
            Status::Active => {}
            Status::Finished => return placed,
            Status::Overflow => {
                placed.unstreamed = true;
                return placed;
            }
        }
        self.place(h, dir, seg, &mut placed, ev);
        if self.sessions[h as usize].status == Status::Overflow {
            placed.unstreamed = true;
        }
        self.update_memuse();
        placed
    }

    fn open(&mut self, seq: u32, isn: Option<u32>) -> u32 {
        let start = match (isn, self.cfg.midstream) {
            (Some(i), _) => i.wrapping_add(1),
            (None, true) => seq,
            (None, false) => {
                self.counters.midstream_skipped += 1;
                return REFUSED;
            }
        };
        let Some(h) = self.session_pool.get() else {
            self.counters.sessions_full += 1;
            return REFUSED;
        };
        let fresh = Session {
            next_seq: start,
            block: NIL,
            fresh: true,
            ..Session::default()
        };
        match self.sessions.get_mut(h as usize) {
            Some(s) => *s = fresh,
            // Never past the capacity reserved at start: no reallocation.
            None => self.sessions.push(fresh),
        }
        h
    }

    /// Puts the segment's bytes where they belong.
    fn place(
        &mut self,
        h: u32,
        dir: Dir,
        seg: &Segment<'_>,
        placed: &mut Placed,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let s = self.sessions[h as usize];
        let rel = i64::from(seg.seq.wrapping_sub(s.next_seq) as i32);
        let mut off = s.delivered as i64 + rel;
        let mut data = seg.payload;
        if off < 0 {
            // Bytes before the stream's start (a SYN's data we did not take).
            let cut = (-off).min(data.len() as i64) as usize;
            data = &data[cut..];
            off = 0;
        }
        let mut off = off as u64;
        let end = off + data.len() as u64;
        if data.is_empty() {
            return;
        }
        // Bytes already delivered: compare what the window still has.
        if off < s.delivered {
            let upto = end.min(s.delivered);
            match self.compare_delivered(h, off, &data[..(upto - off) as usize]) {
                Some(false) => {
                    self.counters.overlaps_different += 1;
                    placed.overlap_different = true;
                }
                _ => self.counters.overlaps_same += 1,
            }
            if end <= s.delivered {
                self.counters.retransmissions += 1;
                return;
            }
            data = &data[(upto - off) as usize..];
            off = upto;
        }
        if off > s.delivered {
            self.counters.out_of_order += 1;
            let acked_past = s.acked.is_some_and(|a| seq_gt(a, s.next_seq));
            if acked_past {
                // The receiver has the hole's bytes; we never will.
                self.flush_held(h, dir, ev);
                if self.sessions[h as usize].delivered < off {
                    self.skip_to(h, off);
                }
            } else if !self.hold(h, off, data, placed) {
                self.mark_over_limit(h);
                self.flush_held(h, dir, ev);
                let d = self.sessions[h as usize].delivered;
                if d < off {
                    self.skip_to(h, off);
                } else if end <= d {
                    return;
                } else {
                    data = &data[(d - off) as usize..];
                    off = d;
                }
            } else {
                return;
            }
            let d = self.sessions[h as usize].delivered;
            if end <= d {
                return;
            }
            if off < d {
                data = &data[(d - off) as usize..];
                off = d;
            }
            self.deliver_run(h, dir, off, data, placed, ev);
            return;
        }
        self.deliver_run(h, dir, off, data, placed, ev);
    }

    /// Whether `data` at stream offset `off` (all before `delivered`)
    /// agrees with the window; None when the window no longer has it.
    fn compare_delivered(&self, h: u32, off: u64, data: &[u8]) -> Option<bool> {
        let s = &self.sessions[h as usize];
        if s.block == NIL || off < s.block_start {
            return None;
        }
        let bs = self.block;
        let blk = &self.blocks[s.block as usize * bs..][..s.block_len as usize];
        let at = (off - s.block_start) as usize;
        blk.get(at..at + data.len()).map(|w| w == data)
    }

    /// Holds `data` at `off` (ahead of the delivered point) around what is
    /// already held; false if the direction's limits or the arena ran out.
    fn hold(&mut self, h: u32, off: u64, data: &[u8], placed: &mut Placed) -> bool {
        let end = off + data.len() as u64;
        let mut at = off;
        let mut i = 0;
        while at < end {
            let s = self.sessions[h as usize];
            // The held pieces are sorted and disjoint.
            while i < usize::from(s.n_held) && {
                let p = s.held[i];
                p.off + u64::from(p.len) <= at
            } {
                i += 1;
            }
            let next = s.held[..usize::from(s.n_held)].get(i).copied();
            match next {
                Some(p) if p.off <= at => {
                    // Overlaps a held piece: the held bytes win.
                    at = self.overlap_held(p, at, &data[(at - off) as usize..], end, placed);
                }
                _ => {
                    let stop = next.map_or(end, |p| p.off.min(end));
                    let len = ((stop - at) as usize).min(CHUNK);
                    if usize::from(s.n_held) == MAX_HELD {
                        return false;
                    }
                    let Some(c) = self.chunk_pool.get() else {
                        return false;
                    };
                    let src = &data[(at - off) as usize..][..len];
                    self.chunks[c as usize * CHUNK..][..len].copy_from_slice(src);
                    let s = &mut self.sessions[h as usize];
                    let n = usize::from(s.n_held);
                    s.held.copy_within(i..n, i + 1);
                    s.held[i] = Held {
                        off: at,
                        len: len as u16,
                        chunk: c,
                    };
                    s.n_held += 1;
                    i += 1;
                    at += len as u64;
                }
            }
        }
        true
    }

    /// New bytes `mine` (from stream offset `at`, the segment ending at
    /// `end`) meet held piece `p`, which starts at or before `at`: the held
    /// bytes win; the overlap is counted as same or different. Returns
    /// where the overlap ends.
    fn overlap_held(
        &mut self,
        p: Held,
        at: u64,
        mine: &[u8],
        end: u64,
        placed: &mut Placed,
    ) -> u64 {
        let upto = end.min(p.off + u64::from(p.len));
        let mine = &mine[..(upto - at) as usize];
        let theirs = &self.chunks[p.chunk as usize * CHUNK + (at - p.off) as usize..][..mine.len()];
        if mine == theirs {
            self.counters.overlaps_same += 1;
        } else {
            self.counters.overlaps_different += 1;
            placed.overlap_different = true;
        }
        upto
    }

    /// Marks the session as having run into its limits; it counts once.
    fn mark_over_limit(&mut self, h: u32) {
        let s = &mut self.sessions[h as usize];
        if !s.over_limit {
            s.over_limit = true;
            self.counters.over_limits += 1;
        }
    }

    /// Jumps the delivered point over a hole to `off`: a gap.
    fn skip_to(&mut self, h: u32, off: u64) {
        let s = &mut self.sessions[h as usize];
        let hole = off - s.delivered;
        s.next_seq = s.next_seq.wrapping_add(hole as u32);
        s.delivered = off;
        s.block_len = 0;
        s.block_start = off;
        s.gap_pending = true;
        self.counters.gaps += 1;
    }

    /// Delivers `data` at the delivered point `off`, then every held piece
    /// that has become contiguous (the held bytes win where they overlap).
    fn deliver_run(
        &mut self,
        h: u32,
        dir: Dir,
        off: u64,
        data: &[u8],
        placed: &mut Placed,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) {
        debug_assert_eq!(off, self.sessions[h as usize].delivered);
        let end = off + data.len() as u64;
        let mut at = off;
        while at < end && self.sessions[h as usize].status == Status::Active {
            let s = self.sessions[h as usize];
            let first = (s.n_held > 0).then(|| s.held[0]);
            match first {
                Some(p) if p.off <= at => {
                    // A held piece starts here: it wins over the new bytes.
                    let upto = self.overlap_held(p, at, &data[(at - off) as usize..], end, placed);
                    self.pull_held(h, dir, ev);
                    at = self.sessions[h as usize].delivered.max(upto);
                }
                _ => {
                    let stop = first.map_or(end, |p| p.off.min(end));
                    let piece = &data[(at - off) as usize..(stop - off) as usize];
                    self.push(h, dir, piece, ev);
                    at = stop;
                }
            }
        }
        self.pull_held(h, dir, ev);
    }

    /// Delivers held pieces that start at the delivered point.
    fn pull_held(&mut self, h: u32, dir: Dir, ev: &mut impl FnMut(StreamEvent<'_>)) {
        loop {
            let s = self.sessions[h as usize];
            if s.n_held == 0 || s.status != Status::Active {
                return;
            }
            let p = s.held[0];
            let pend = p.off + u64::from(p.len);
            if p.off > s.delivered {
                return;
            }
            self.drop_first_held(h);
            if pend > s.delivered {
                let skip = (s.delivered - p.off) as usize;
                let len = p.len as usize - skip;
                // The chunk is back in the pool, but nothing takes it before
                // this copy: push reads it first.
                let mut tmp = [0u8; CHUNK];
                tmp[..len].copy_from_slice(&self.chunks[p.chunk as usize * CHUNK + skip..][..len]);
                self.push(h, dir, &tmp[..len], ev);
            }
        }
    }

    fn drop_first_held(&mut self, h: u32) {
        let s = &mut self.sessions[h as usize];
        let n = usize::from(s.n_held);
        let c = s.held[0].chunk;
        s.held.copy_within(1..n, 0);
        s.n_held -= 1;
        self.chunk_pool.put(c);
    }

    /// Delivers every held piece in order, each hole before one a gap.
    fn flush_held(&mut self, h: u32, dir: Dir, ev: &mut impl FnMut(StreamEvent<'_>)) {
        loop {
            self.pull_held(h, dir, ev);
            let s = self.sessions[h as usize];
            if s.n_held == 0 || s.status != Status::Active {
                return;
            }
            self.skip_to(h, s.held[0].off);
        }
    }

    /// Appends bytes at the delivered point to the window and hands them
    /// to the matcher, in pieces small enough that each is seen with at
    /// least `--stream-window` bytes before it (the block holds the window
    /// and one piece).
    fn push(&mut self, h: u32, dir: Dir, mut data: &[u8], ev: &mut impl FnMut(StreamEvent<'_>)) {
        let bs = self.block;
        let w = piece_len(self.cfg.window);
        while !data.is_empty() {
            let s = self.sessions[h as usize];
            if s.status != Status::Active {
                return;
            }
            let mut take = data.len().min(w);
            if self.cfg.depth > 0 {
                let room = self.cfg.depth.saturating_sub(s.delivered);
                take = take.min(room as usize);
            }
            let plain = {
                let s = &mut self.sessions[h as usize];
                s.tls.plain_prefix(&data[..take], s.delivered)
            };
            let cipher = plain < take;
            take = plain;
            if take > 0 {
                if s.block == NIL {
                    let Some(b) = self.block_pool.get() else {
                        // No window to keep: the direction is over its
                        // limits, and its packets go to the stream rules
                        // one by one instead.
                        self.mark_over_limit(h);
                        self.finish(h, Status::Overflow, ev);
                        return;
                    };
                    let s = &mut self.sessions[h as usize];
                    s.block = b;
                    s.block_start = s.delivered;
                    s.block_len = 0;
                }
                let s = &mut self.sessions[h as usize];
                let blk = &mut self.blocks[s.block as usize * bs..][..bs];
                let gap = std::mem::take(&mut s.gap_pending);
                let fresh = std::mem::take(&mut s.fresh);
                if gap {
                    s.block_len = 0;
                    s.block_start = s.delivered;
                }
                let len = s.block_len as usize;
                if len + take > bs {
                    let keep = bs - take;
                    blk.copy_within(len - keep..len, 0);
                    s.block_start += (len - keep) as u64;
                    s.block_len = keep as u32;
                }
                let new_from = s.block_len as usize;
                blk[new_from..new_from + take].copy_from_slice(&data[..take]);
                s.block_len += take as u32;
                s.delivered += take as u64;
                s.next_seq = s.next_seq.wrapping_add(take as u32);
                self.counters.bytes += take as u64;
                ev(StreamEvent::Data(Delivery {
                    session: h,
                    dir,
                    window: &blk[..s.block_len as usize],
                    base: s.block_start,
                    new_from,
                    gap,
                    fresh,
                }));
            }
            data = &data[take..];
            let s = self.sessions[h as usize];
            if cipher {
                self.counters.ciphertext += 1;
                self.finish(h, Status::Finished, ev);
                return;
            }
            if self.cfg.depth > 0 && s.delivered >= self.cfg.depth {
                self.counters.depth_reached += 1;
                self.finish(h, Status::Finished, ev);
                return;
            }
        }
    }

    /// The direction takes nothing more (`status` says why): its block and
    /// chunks go back and the matcher lets go of its state. The session
    /// stays to say so.
    fn finish(&mut self, h: u32, status: Status, ev: &mut impl FnMut(StreamEvent<'_>)) {
        let s = &mut self.sessions[h as usize];
        if s.status != Status::Active {
            return;
        }
        s.status = status;
        self.free_buffers(h);
        ev(StreamEvent::Done(h));
        self.update_memuse();
    }

    /// The flow in `slot` was reset (an in-window RST): what is held goes
    /// to the matcher and neither direction takes more.
    pub fn reset(&mut self, slot: u32, flow_id: u64, ev: &mut impl FnMut(StreamEvent<'_>)) {
        self.close(slot, flow_id, ev);
        if self.owners.get(slot as usize) == Some(&flow_id) {
            self.handles[slot as usize] = [REFUSED; 2];
        }
    }

    /// The flow in `slot` ended: held bytes are delivered (each hole a
    /// gap), then both sessions go back to the pool.
    pub fn end(&mut self, slot: u32, flow_id: u64, ev: &mut impl FnMut(StreamEvent<'_>)) {
        self.close(slot, flow_id, ev);
        if let Some(o) = self
            .owners
            .get_mut(slot as usize)
            .filter(|o| **o == flow_id)
        {
            *o = 0;
        }
    }

    fn close(&mut self, slot: u32, flow_id: u64, ev: &mut impl FnMut(StreamEvent<'_>)) {
        let s = slot as usize;
        if self.owners.get(s) != Some(&flow_id) {
            return;
        }
        for dir in [Dir::ToServer, Dir::ToClient] {
            let h = self.handles[s][dir as usize];
            if h == NIL || h == REFUSED {
                continue;
            }
            self.flush_held(h, dir, ev);
            self.finish(h, Status::Finished, ev);
            self.session_pool.put(h);
            self.handles[s][dir as usize] = NIL;
        }
        self.update_memuse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISN: u32 = 1000;

    fn small() -> Reassembly {
        Reassembly::new(
            StreamConfig {
                window: 64,
                ..StreamConfig::default()
            },
            8,
            0,
        )
    }

    /// Feeds segments `(seq offset from the stream start, bytes)` to the
    /// client direction; returns the bytes delivered, with `|` at each gap.
    fn feed(r: &mut Reassembly, segs: &[(u32, &[u8])]) -> (String, Vec<Placed>) {
        let mut out = String::new();
        let mut placed = Vec::new();
        for &(rel, b) in segs {
            let seg = Segment {
                seq: ISN + 1 + rel,
                ack: None,
                payload: b,
            };
            placed.push(r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |e| {
                if let StreamEvent::Data(d) = e {
                    if d.gap {
                        out.push('|');
                    }
                    out.push_str(std::str::from_utf8(&d.window[d.new_from..]).unwrap());
                }
            }));
        }
        (out, placed)
    }

    fn end(r: &mut Reassembly) -> String {
        let mut out = String::new();
        r.end(0, 7, &mut |e| {
            if let StreamEvent::Data(d) = e {
                if d.gap {
                    out.push('|');
                }
                out.push_str(std::str::from_utf8(&d.window[d.new_from..]).unwrap());
            }
        });
        out
    }

    #[test]
    fn in_order_and_reordered_segments_come_out_in_order() {
        let mut r = small();
        assert_eq!(feed(&mut r, &[(0, b"hel"), (3, b"lo")]).0, "hello");
        let mut r = small();
        let (out, _) = feed(
            &mut r,
            &[(4, b"o"), (3, b"l"), (2, b"l"), (1, b"e"), (0, b"h")],
        );
        assert_eq!(out, "hello");
        assert_eq!(r.counters.out_of_order, 4);
        assert_eq!(r.counters.chunks, 0, "all held chunks went back");
    }

    #[test]
    fn retransmissions_and_same_overlaps_are_ignored() {
        let mut r = small();
        let (out, placed) = feed(&mut r, &[(0, b"abcd"), (0, b"abcd"), (2, b"cdef")]);
        assert_eq!(out, "abcdef");
        assert_eq!(r.counters.retransmissions, 1);
        assert_eq!(r.counters.overlaps_same, 2);
        assert!(placed.iter().all(|p| !p.overlap_different));
    }

    #[test]
    fn different_overlaps_keep_the_first_data_and_say_so() {
        // Over delivered bytes.
        let mut r = small();
        let (out, placed) = feed(&mut r, &[(0, b"abcd"), (2, b"XYef")]);
        assert_eq!(out, "abcdef");
        assert!(placed[1].overlap_different);
        // Over held bytes: the first held copy wins when the hole fills.
        let mut r = small();
        let (out, placed) = feed(&mut r, &[(4, b"ef"), (4, b"EF"), (0, b"abcdXF")]);
        assert_eq!(out, "abcdef");
        assert!(placed[1].overlap_different && placed[2].overlap_different);
        assert_eq!(r.counters.overlaps_different, 2);
    }

    #[test]
    fn an_unfilled_hole_is_a_gap_when_acked_or_at_the_end() {
        let mut r = small();
        let (out, _) = feed(&mut r, &[(0, b"ab"), (4, b"ef")]);
        assert_eq!(out, "ab");
        assert_eq!(end(&mut r), "|ef", "the flow ended: flushed after a gap");
        assert_eq!(r.counters.gaps, 1);
        assert_eq!(r.counters.sessions, 0);
        // The receiver acknowledges past the hole: the next segment beyond
        // it is a gap at once.
        let mut r = small();
        feed(&mut r, &[(0, b"ab")]);
        let ack = Segment {
            seq: 5000,
            ack: Some(ISN + 1 + 6),
            payload: &[],
        };
        r.segment(0, 7, Dir::ToClient, Some(4999), &ack, &mut |_| {});
        assert_eq!(feed(&mut r, &[(6, b"gh")]).0, "|gh");
        assert_eq!(r.counters.gaps, 1);
    }

    #[test]
    fn the_window_keeps_the_last_bytes_and_pieces_fit_it() {
        let mut r = small();
        let data: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut seen = Vec::new();
        let seg = Segment {
            seq: ISN + 1,
            ack: None,
            payload: &data,
        };
        r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |e| {
            if let StreamEvent::Data(d) = e {
                assert!(d.window.len() - d.new_from <= 64);
                assert!(d.new_from >= 64.min(d.base as usize + d.new_from));
                assert_eq!(
                    d.window,
                    &data[d.base as usize..d.base as usize + d.window.len()]
                );
                seen.extend_from_slice(&d.window[d.new_from..]);
            }
        });
        assert_eq!(seen, data);
    }

    #[test]
    fn depth_stops_a_direction_and_frees_its_memory() {
        let mut r = Reassembly::new(
            StreamConfig {
                window: 64,
                depth: 10,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        let (out, _) = feed(&mut r, &[(0, b"0123456"), (7, b"789abc"), (13, b"zz")]);
        assert_eq!(out, "0123456789");
        assert_eq!(r.counters.depth_reached, 1);
        assert_eq!(r.counters.blocks, 0);
    }

    #[test]
    fn holding_limits_turn_into_gaps_not_growth() {
        let mut r = small();
        // Every other byte, ahead of a hole that never fills: 16 pieces
        // fit, the 17th forces the held ones out past gaps.
        let segs: Vec<(u32, &[u8])> = (1..=17).map(|i| (2 * i, &b"x"[..])).collect();
        let (out, _) = feed(&mut r, &segs);
        assert_eq!(out, "|x|x|x|x|x|x|x|x|x|x|x|x|x|x|x|x|x");
        assert_eq!(r.counters.over_limits, 1);
        assert!(r.counters.chunks <= MAX_HELD as u64);
    }

    #[test]
    fn midstream_flows_are_refused_unless_asked_for() {
        let mut r = small();
        let seg = Segment {
            seq: 77,
            ack: None,
            payload: b"data",
        };
        let p = r.segment(0, 7, Dir::ToServer, None, &seg, &mut |_| {});
        assert!(p.unstreamed);
        assert_eq!(r.counters.midstream_skipped, 1);
        let mut r = Reassembly::new(
            StreamConfig {
                midstream: true,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        let mut got = Vec::new();
        let p = r.segment(0, 7, Dir::ToServer, None, &seg, &mut |e| {
            if let StreamEvent::Data(d) = e {
                got.extend_from_slice(&d.window[d.new_from..]);
            }
        });
        assert!(!p.unstreamed);
        assert_eq!(got, b"data");
    }

    #[test]
    fn tls_ciphertext_is_not_delivered() {
        let mut r = small();
        let mut hello = vec![0x16, 3, 1, 0, 4, 1, 0, 0, 0];
        hello.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
        hello.extend_from_slice(&[0x17, 3, 3, 0, 3, b'a', b'b', b'c']);
        let mut got = Vec::new();
        let seg = Segment {
            seq: ISN + 1,
            ack: None,
            payload: &hello,
        };
        r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |e| {
            if let StreamEvent::Data(d) = e {
                got.extend_from_slice(&d.window[d.new_from..]);
            }
        });
        assert_eq!(got, &hello[..9], "the handshake record only");
        assert_eq!(r.counters.ciphertext, 1);
        // Not TLS: all of it.
        let mut t = Tls::Unknown;
        assert_eq!(t.plain_prefix(b"\x16 POST", 0), 6);
    }

    #[test]
    fn auto_checksums_turn_off_on_offloaded_captures() {
        let mut c = Checksums::new(ChecksumMode::Auto);
        for i in 0..CHECKSUM_SAMPLE {
            c.admit(|| i % 5 != 0);
        }
        assert!(c.turned_off);
        assert!(c.admit(|| false), "no longer verified");
        let mut on = Checksums::new(ChecksumMode::On);
        for _ in 0..CHECKSUM_SAMPLE + 1 {
            assert!(!on.admit(|| false));
        }
        assert!(!on.turned_off);
        let mut auto = Checksums::new(ChecksumMode::Auto);
        for i in 0..CHECKSUM_SAMPLE {
            auto.admit(|| i % 20 != 0);
        }
        assert!(!auto.turned_off, "one in twenty bad is damage, not offload");
        assert!(Checksums::new(ChecksumMode::Off).admit(|| false));
    }

    /// A small deterministic generator (xorshift), so the random cases
    /// below are the same on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn any_order_of_any_cuts_with_repeats_delivers_the_bytes_once() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut exact = 0;
        for case in 0..300 {
            let len = 1 + rng.below(3000) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Segments with random cuts, some overlapping their neighbour
            // with the same bytes, in a random order, some sent twice.
            let mut segs = Vec::new();
            let mut at = 0;
            while at < len {
                let n = 1 + rng.below(400) as usize;
                let back = if at > 0 {
                    rng.below(30).min(at as u64) as usize
                } else {
                    0
                };
                let start = at - back;
                let end = (at + n).min(len);
                segs.push((start, end));
                at = end;
            }
            for i in (1..segs.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                segs.swap(i, j);
            }
            for _ in 0..rng.below(4) {
                let k = rng.below(segs.len() as u64) as usize;
                segs.push(segs[k]);
            }
            let mut r = Reassembly::new(
                StreamConfig {
                    window: 256,
                    depth: 0,
                    ..StreamConfig::default()
                },
                8,
                0,
            );
            let mut got = Vec::new();
            let mut gaps = 0;
            for &(a, b) in &segs {
                let seg = Segment {
                    seq: ISN.wrapping_add(1 + a as u32),
                    ack: None,
                    payload: &data[a..b],
                };
                let p = r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |e| {
                    if let StreamEvent::Data(d) = e {
                        gaps += usize::from(d.gap);
                        // Whatever happens, every byte handed out is the
                        // sender's byte at that stream offset.
                        let at = d.base as usize;
                        assert_eq!(d.window, &data[at..at + d.window.len()]);
                        if gaps == 0 {
                            assert_eq!(d.base + d.new_from as u64, got.len() as u64);
                        }
                        got.extend_from_slice(&d.window[d.new_from..]);
                    }
                });
                assert!(!p.overlap_different, "case {case}: same bytes only");
            }
            r.end(0, 7, &mut |e| {
                if let StreamEvent::Data(d) = e {
                    gaps += usize::from(d.gap);
                    got.extend_from_slice(&d.window[d.new_from..]);
                }
            });
            if r.counters.over_limits == 0 {
                exact += 1;
                assert_eq!(gaps, 0, "case {case}: {:?}", r.counters);
                assert_eq!(got, data, "case {case}: {} segments", segs.len());
            }
            let c = r.counters;
            assert_eq!(
                (c.sessions, c.blocks, c.chunks),
                (0, 0, 0),
                "case {case}: all returned"
            );
        }
        assert!(
            exact > 250,
            "only {exact} of 300 cases stayed within the limits"
        );
    }

    #[test]
    fn garbage_sequence_numbers_never_panic_or_leak() {
        let mut rng = Rng(42);
        let mut r = small();
        let junk = [0xa5u8; 1500];
        for i in 0..20_000u32 {
            let slot = rng.below(8) as u32;
            let flow = 1 + u64::from(slot) + 8 * (u64::from(i) / 5000);
            let n = rng.below(1500) as usize;
            let seg = Segment {
                seq: rng.next() as u32,
                ack: (rng.below(2) == 0).then(|| rng.next() as u32),
                payload: &junk[..n],
            };
            let dir = if rng.below(2) == 0 {
                Dir::ToServer
            } else {
                Dir::ToClient
            };
            let isn = (rng.below(3) > 0).then(|| rng.next() as u32);
            r.segment(slot, flow, dir, isn, &seg, &mut |_| {});
            if rng.below(50) == 0 {
                r.end(slot, flow, &mut |_| {});
            }
        }
        for slot in 0..8u32 {
            for gen in 0..5u64 {
                r.end(slot, 1 + u64::from(slot) + 8 * gen, &mut |_| {});
            }
        }
        let c = r.counters;
        assert_eq!((c.sessions, c.blocks, c.chunks), (0, 0, 0));
    }

    #[test]
    fn a_direction_without_a_window_falls_back_to_packets() {
        // Room for one window block: the second direction gets none.
        let mut r = Reassembly::new(
            StreamConfig {
                window: 64,
                reassembly_memcap: 2 * 2 * 64,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        let seg = |seq: u32, payload: &'static [u8]| Segment {
            seq,
            ack: None,
            payload,
        };
        let first = r.segment(
            0,
            7,
            Dir::ToServer,
            Some(ISN),
            &seg(ISN + 1, b"abc"),
            &mut |_| {},
        );
        assert!(!first.unstreamed);
        let mut done = 0;
        let second = r.segment(
            1,
            8,
            Dir::ToServer,
            Some(ISN),
            &seg(ISN + 1, b"abc"),
            &mut |e| {
                done += usize::from(matches!(e, StreamEvent::Done(_)));
            },
        );
        assert!(second.unstreamed, "its stream rules must see the packet");
        assert_eq!((r.counters.over_limits, done), (1, 1));
        let later = r.segment(
            1,
            8,
            Dir::ToServer,
            Some(ISN),
            &seg(ISN + 4, b"def"),
            &mut |_| {},
        );
        assert!(later.unstreamed);
        r.end(1, 8, &mut |_| {});
        r.end(0, 7, &mut |_| {});
        assert_eq!((r.counters.sessions, r.counters.blocks), (0, 0));
    }

    #[test]
    fn sessions_run_out_and_are_counted() {
        let mut r = Reassembly::new(
            StreamConfig {
                memcap: 1,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        assert_eq!(r.capacity(), 1);
        let seg = Segment {
            seq: ISN + 1,
            ack: None,
            payload: b"x",
        };
        assert!(
            !r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |_| {})
                .unstreamed
        );
        assert!(
            r.segment(1, 8, Dir::ToServer, Some(ISN), &seg, &mut |_| {})
                .unstreamed
        );
        assert_eq!(r.counters.sessions_full, 1);
        r.end(0, 7, &mut |_| {});
        assert!(
            !r.segment(2, 9, Dir::ToServer, Some(ISN), &seg, &mut |_| {})
                .unstreamed
        );
    }
}
