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
//! - bytes already delivered win (the host has handed them on); a later
//!   copy that agrees is an overlap with the same bytes, one that differs is
//!   counted and reported so IPS can drop the packet;
//! - a segment ahead of the next expected byte is held until the hole
//!   fills. Where it overlaps held bytes, the receiving host's policy
//!   decides which copy stays (`policy`: Suricata's target-based policies by
//!   host prefix, Linux by default; inline, always the first copy);
//! - a segment the flow tracker calls *suspect* (a TTL too low to be sure it
//!   reached the host) is held even when it is next in line, and is
//!   delivered only once the receiver acknowledges it; a normal copy of the
//!   same bytes replaces it;
//! - the urgent byte (before the urgent pointer) is taken out of the stream,
//!   as Linux does, unless `--stream-urgent` says otherwise;
//! - a hole becomes a *gap* (reported, never papered over: the window
//!   restarts after it) when the receiver has acknowledged past it, when the
//!   direction's holding limits run out (the session is marked over its
//!   limits and counted), or when the flow ends;
//! - past `--stream-depth` bytes a direction is no longer reassembled: its
//!   stream rules take each later packet alone (`Placed::unstreamed`), as
//!   Suricata inspects a packet it did not add to the stream;
//! - a direction that starts with TLS records is followed record by record
//!   (`tls`): ciphertext is not scanned once the handshake is real, and
//!   anything that is not a record resumes scanning.
//!
//! Under memory pressure the idlest directions give way, least recently
//! active first: a new direction evicts the idlest session, a direction
//! that needs a window takes the idlest one's, one that needs to hold data
//! takes the idlest one's held chunks. What that loses is counted; a
//! direction whose data went uninspected says so (`Placed::exception`), so
//! that inline the exception policy can act.

pub mod checksum;
pub mod policy;

use crate::applayer::tls::follower::{Run, TlsFollower, CLIENT_HELLO, SERVER_HELLO};
pub use checksum::{ChecksumMode, Checksums, CHECKSUM_SAMPLE};
use policy::{HostPolicies, OsPolicy, UrgentPolicy};
use std::net::{IpAddr, Ipv4Addr};

use crate::flow::tcp::Dir;

/// Marks a slot direction without a session yet.
const NIL: u32 = u32::MAX;
/// Marks a slot direction that will not be reassembled (midstream without
/// `--midstream on`, no session left, RST, no window to be had): its
/// stream rules fall back to matching packet by packet.
const REFUSED: u32 = u32::MAX - 1;
/// Marks a slot direction whose session was evicted for an idler one's
/// sake: its stream rules take packets alone, and its data is an exception.
const EVICTED: u32 = u32::MAX - 2;
/// Marks a slot direction that is finished (ciphertext, reset): it takes
/// nothing more, and needs no session for that.
const DONE: u32 = u32::MAX - 3;
/// Marks a slot direction past `--stream-depth`: it takes nothing more,
/// and its stream rules take each later packet alone, as Suricata inspects
/// a packet it did not add to the stream.
const DEPTH: u32 = u32::MAX - 4;

fn is_session(h: u32) -> bool {
    h < DEPTH
}

/// Out-of-order pieces one direction holds at most.
pub const MAX_HELD: usize = 16;
/// Bytes in one chunk of held out-of-order data.
pub const CHUNK: usize = 2048;
/// The activity lists, least recently active first: every open session;
/// those holding a window block; those holding out-of-order data. Each
/// eviction takes the head of the list of what it needs, in O(1).
const LISTS: usize = 3;
const OPEN: usize = 0;
const WINDOWS: usize = 1;
const HOLDING: usize = 2;

/// Stream bounds and policies, per worker.
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
    /// Which copy of overlapping data each receiving host keeps.
    pub policies: HostPolicies,
    pub urgent: UrgentPolicy,
    /// Inline (IPS): the first copy always wins.
    pub inline: bool,
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
            policies: HostPolicies::default(),
            urgent: UrgentPolicy::default(),
            inline: false,
        }
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
    /// bytes and with different ones.
    pub overlaps_same: u64,
    pub overlaps_different: u64,
    /// Overlaps with held bytes the host's policy settled for the new copy.
    pub overlaps_new_won: u64,
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
    /// Directions that turned to TLS ciphertext (not scanned from there),
    /// and TLS directions that lost record sync (scanned again).
    pub ciphertext: u64,
    pub tls_resync: u64,
    /// Segments kept out for a bad TCP checksum, and workers whose
    /// `--checksum auto` found offloaded checksums and stopped verifying.
    pub checksum_bad: u64,
    pub checksum_off: u64,
    /// Suspect (low TTL) segments held for the receiver's word; those a
    /// normal copy with other bytes replaced (an insertion caught); those
    /// never acknowledged (dropped unseen).
    pub suspect_held: u64,
    pub suspect_replaced: u64,
    pub suspect_unacked: u64,
    /// Urgent bytes taken out of the stream.
    pub urgent_removed: u64,
    /// Under memory pressure: sessions, window blocks and held data taken
    /// from the idlest directions.
    pub evicted_sessions: u64,
    pub evicted_windows: u64,
    pub evicted_held: u64,
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
        self.overlaps_new_won += o.overlaps_new_won;
        self.gaps += o.gaps;
        self.over_limits += o.over_limits;
        self.sessions_full += o.sessions_full;
        self.midstream_skipped += o.midstream_skipped;
        self.depth_reached += o.depth_reached;
        self.ciphertext += o.ciphertext;
        self.tls_resync += o.tls_resync;
        self.checksum_bad += o.checksum_bad;
        self.checksum_off += o.checksum_off;
        self.suspect_held += o.suspect_held;
        self.suspect_replaced += o.suspect_replaced;
        self.suspect_unacked += o.suspect_unacked;
        self.urgent_removed += o.urgent_removed;
        self.evicted_sessions += o.evicted_sessions;
        self.evicted_windows += o.evicted_windows;
        self.evicted_held += o.evicted_held;
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
    /// The session's direction is done (depth, ciphertext, flow end,
    /// eviction): its matching state can go.
    Done(u32),
}

/// One TCP segment of a flow direction.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub seq: u32,
    /// The acknowledgement it carries for the other direction, if the flow
    /// tracker believes it.
    pub ack: Option<u32>,
    pub payload: &'a [u8],
    /// It may not have reached the receiver (low TTL): held until the
    /// receiver acknowledges it.
    pub suspect: bool,
    /// The sequence number of its urgent byte (URG: the byte before the
    /// urgent pointer).
    pub urgent: Option<u32>,
    /// The receiving host, whose policy settles overlaps.
    pub receiver: IpAddr,
}

impl<'a> Segment<'a> {
    /// A plain segment: believed, no urgent data.
    pub fn new(seq: u32, ack: Option<u32>, payload: &'a [u8]) -> Self {
        Segment {
            seq,
            ack,
            payload,
            suspect: false,
            urgent: None,
            receiver: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// What became of a segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    /// Some of its bytes differ from bytes already delivered or held.
    pub overlap_different: bool,
    /// Its direction is not reassembled: stream rules take the packet alone.
    pub unstreamed: bool,
    /// Its direction lost data unseen (evicted, or a gap the holding limits
    /// forced): it cannot be inspected whole.
    pub exception: bool,
    /// A TLS direction lost record sync on its bytes: scanned from here.
    pub tls_lost_sync: bool,
    /// It replaced a suspect copy that said something else.
    pub replaced_suspect: bool,
    /// It was next in line, whole and unsuspected: its bytes went to the
    /// matcher as they are, from its own first byte (unless depth,
    /// ciphertext or an urgent byte cut them, which the matcher sees by
    /// their count).
    pub in_order: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Held {
    off: u64,
    len: u16,
    chunk: u32,
    /// How far the segment it came from reached before and after it (the
    /// policies compare whole segments).
    head: u16,
    tail: u16,
    /// From a suspect segment: delivered only once acknowledged.
    suspect: bool,
}

impl Held {
    fn end(&self) -> u64 {
        self.off + u64::from(self.len)
    }

    fn segment(&self) -> (u64, u64) {
        (
            self.off - u64::from(self.head),
            self.end() + u64::from(self.tail),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Status {
    #[default]
    Active,
    /// Into ciphertext, or reset: nothing more is taken.
    Finished,
    /// Past the depth: nothing more is taken; its packets go to stream
    /// rules one by one.
    Depth,
    /// No window could be had: nothing more is taken, and the direction's
    /// stream rules take each packet alone.
    Overflow,
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
    tls: TlsFollower,
    over_limit: bool,
    /// A hole was skipped: the next delivery says so.
    gap_pending: bool,
    /// Nothing delivered yet: the next delivery says so.
    fresh: bool,
    /// Where the session belongs: its flow slot and direction.
    slot: u32,
    to_client: bool,
    /// Neighbours in each activity list (least recent first), and which
    /// lists it is in.
    links: [(u32, u32); LISTS],
    member: u8,
    policy: OsPolicy,
    /// The stream offset of an urgent byte still to come out.
    urgent: Option<u64>,
    /// Some of its data went unseen (held data evicted, a forced gap).
    lost: bool,
    /// The most separate stretches of data it held at once: the one
    /// delivered from, and each island out of order beyond a hole
    /// (Suricata's `max_regions`; 0 until the first byte).
    max_regions: u8,
}

impl Session {
    fn dir(&self) -> Dir {
        if self.to_client {
            Dir::ToClient
        } else {
            Dir::ToServer
        }
    }

    /// Stream offset of sequence number `seq` (relative to the next byte).
    fn offset_of(&self, seq: u32) -> i64 {
        self.delivered as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    /// Whether the receiver has acknowledged up to stream offset `end`.
    fn acked_to(&self, end: u64) -> bool {
        self.acked.is_some_and(|a| {
            let end_seq = self
                .next_seq
                .wrapping_add(end.saturating_sub(self.delivered) as u32);
            seq_ge(a, end_seq)
        })
    }
}

/// `a` is after `b` in sequence space.
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The most new bytes one delivery carries: half the window (at least 32),
/// so a block is one and a half windows.
/// The piece when no stream rule needs the window (the app layer alone).
const APP_PIECE: usize = 8192;

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
    /// the session (or NIL / REFUSED / EVICTED / DONE).
    owners: Vec<u64>,
    handles: Vec<[u32; 2]>,
    sessions: Vec<Session>,
    session_pool: Pool,
    /// (head, tail) of each activity list.
    lists: [(u32, u32); LISTS],
    blocks: Vec<u8>,
    block_pool: Pool,
    chunks: Vec<u8>,
    chunk_pool: Pool,
    /// Bytes one session costs with the matcher's state.
    session_bytes: usize,
    /// Bytes in a window block: the window and one piece of new bytes.
    block: usize,
    /// New bytes handed over at once at most.
    piece: usize,
    /// No window is read (the parsers alone): bytes past a direction's
    /// first go on uncopied.
    direct: bool,
    /// Per flow slot: which directions parsed their TLS hello (bit 0 to
    /// the server, bit 1 to the client).
    hellos: Vec<u8>,
    /// A TLS direction lost record sync while placing this segment.
    tls_lost_sync: bool,
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
        let w = cfg.window.max(64);
        Reassembly::with_pieces(cfg, flows, matcher_state, w, piece_len(w), false)
    }

    /// Reassembly for the app layer's parsers alone (no stream rule):
    /// nothing confirms on a window, so past a direction's first bytes
    /// (kept whole for a protocol probe) the bytes go on straight from
    /// their segments, uncopied.
    pub fn for_parsers(cfg: StreamConfig, flows: usize) -> Self {
        Reassembly::with_pieces(cfg, flows, 0, 64, APP_PIECE, true)
    }

    fn with_pieces(
        cfg: StreamConfig,
        flows: usize,
        matcher_state: usize,
        window: usize,
        piece: usize,
        direct: bool,
    ) -> Self {
        let cfg = StreamConfig { window, ..cfg };
        let session_bytes = std::mem::size_of::<Session>() + matcher_state;
        let n_sessions = (cfg.memcap / session_bytes).max(1);
        let block = window + piece;
        let n_blocks = (cfg.reassembly_memcap / 2 / block).max(1);
        let n_chunks = (cfg.reassembly_memcap / 2 / CHUNK).max(1);
        Reassembly {
            cfg,
            owners: vec![0; flows],
            handles: vec![[NIL; 2]; flows],
            hellos: vec![0; flows],
            // Filled as the pool hands sessions out (it hands out 0, 1, 2 …
            // first), so start-up does not write every one.
            sessions: Vec::with_capacity(n_sessions),
            session_pool: Pool::new(n_sessions),
            lists: [(NIL, NIL); LISTS],
            blocks: vec![0; n_blocks * block],
            block_pool: Pool::new(n_blocks),
            chunks: vec![0; n_chunks * CHUNK],
            chunk_pool: Pool::new(n_chunks),
            session_bytes,
            block,
            piece,
            direct,
            tls_lost_sync: false,
            counters: StreamCounters::default(),
        }
    }

    /// Directions being reassembled now.
    pub fn sessions_in_use(&self) -> u64 {
        self.session_pool.in_use()
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

    fn unlink(&mut self, l: usize, h: u32) {
        let (prev, next) = {
            let s = &mut self.sessions[h as usize];
            if s.member & (1 << l) == 0 {
                return;
            }
            s.member &= !(1 << l);
            std::mem::replace(&mut s.links[l], (NIL, NIL))
        };
        if prev == NIL {
            self.lists[l].0 = next;
        } else {
            self.sessions[prev as usize].links[l].1 = next;
        }
        if next == NIL {
            self.lists[l].1 = prev;
        } else {
            self.sessions[next as usize].links[l].0 = prev;
        }
    }

    /// Puts `h` at the back of list `l` (the most recently active).
    fn push_back(&mut self, l: usize, h: u32) {
        self.unlink(l, h);
        let tail = self.lists[l].1;
        {
            let s = &mut self.sessions[h as usize];
            s.links[l] = (tail, NIL);
            s.member |= 1 << l;
        }
        if tail == NIL {
            self.lists[l].0 = h;
        } else {
            self.sessions[tail as usize].links[l].1 = h;
        }
        self.lists[l].1 = h;
    }

    /// The session was just active: it goes to the back of every list it
    /// is in.
    fn touch(&mut self, h: u32) {
        for l in 0..LISTS {
            if self.sessions[h as usize].member & (1 << l) != 0 && self.lists[l].1 != h {
                self.push_back(l, h);
            }
        }
    }

    /// The idlest session of list `l` other than `not`.
    fn idlest(&self, l: usize, not: u32) -> Option<u32> {
        let head = self.lists[l].0;
        let v = if head == not && head != NIL {
            self.sessions[head as usize].links[l].1
        } else {
            head
        };
        (v != NIL).then_some(v)
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
                if is_session(h) {
                    self.release(h);
                }
            }
            self.owners[s] = flow_id;
            self.hellos[s] = 0;
        }
        self.handles[s][dir as usize]
    }

    /// Frees a session's block, chunks and the session itself.
    fn release(&mut self, h: u32) {
        self.sessions[h as usize].status = Status::Finished;
        self.free_buffers(h);
        for l in 0..LISTS {
            self.unlink(l, h);
        }
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
            self.unlink(WINDOWS, h);
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
        if !is_session(h) {
            return false;
        }
        let Some(sess) = self.sessions.get(h as usize) else {
            return false;
        };
        let rel = i64::from(seq.wrapping_sub(sess.next_seq) as i32);
        sess.status == Status::Active && rel + len as i64 <= 0
    }

    /// Takes one segment of flow `flow_id` (table slot `slot`) sent in
    /// `dir`. `isn` is the sender's SYN sequence number if it was seen.
    /// Newly contiguous bytes (of either direction: an acknowledgement can
    /// release the other's suspect bytes) go to `ev`.
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
        self.tls_lost_sync = false;
        // The acknowledgement tells what the receiver of the other
        // direction already has.
        if let Some(ack) = seg.ack {
            let peer = self.handle(slot, flow_id, dir.peer());
            if is_session(peer) {
                let p = &mut self.sessions[peer as usize];
                if p.acked.is_none_or(|a| seq_gt(ack, a)) {
                    p.acked = Some(ack);
                    // Suspect bytes the receiver now vouches for go out.
                    if p.n_held > 0 && p.held[0].suspect {
                        self.pull_held(peer, ev);
                        self.update_memuse();
                    }
                }
            }
        }
        if !seg.payload.is_empty() {
            self.data(slot, flow_id, dir, isn, seg, &mut placed, ev);
            self.update_memuse();
        }
        placed.tls_lost_sync = std::mem::take(&mut self.tls_lost_sync);
        placed
    }

    /// A segment's payload, for `segment`.
    #[allow(clippy::too_many_arguments)]
    fn data(
        &mut self,
        slot: u32,
        flow_id: u64,
        dir: Dir,
        isn: Option<u32>,
        seg: &Segment<'_>,
        placed: &mut Placed,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let mut h = self.handle(slot, flow_id, dir);
        if h == NIL {
            h = self.open(slot, dir, isn, seg, ev);
            self.handles[slot as usize][dir as usize] = h;
        }
        match h {
            REFUSED => {
                placed.unstreamed = true;
                return;
            }
            EVICTED => {
                placed.unstreamed = true;
                placed.exception = true;
                return;
            }
            DONE => return,
            DEPTH => {
                placed.unstreamed = true;
                return;
            }
            _ => {}
        }
        self.touch(h);
        let s = &mut self.sessions[h as usize];
        if let (Some(u), false) = (seg.urgent, self.cfg.urgent == UrgentPolicy::Inline) {
            let off = s.offset_of(u);
            if off >= s.delivered as i64 {
                s.urgent = Some(off as u64);
            }
        }
        self.place(h, seg, placed, ev);
        let s = &self.sessions[h as usize];
        placed.exception |= s.lost;
        if self.handles[slot as usize][dir as usize] == REFUSED {
            // It ran out of room for a window: packets alone from here.
            placed.unstreamed = true;
            placed.exception = true;
        }
    }

    fn open(
        &mut self,
        slot: u32,
        dir: Dir,
        isn: Option<u32>,
        seg: &Segment<'_>,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) -> u32 {
        let start = match (isn, self.cfg.midstream) {
            (Some(i), _) => i.wrapping_add(1),
            (None, true) => seg.seq,
            (None, false) => {
                self.counters.midstream_skipped += 1;
                return REFUSED;
            }
        };
        let h = match self.session_pool.get() {
            Some(h) => h,
            None => match self.evict_session(ev) {
                Some(h) => h,
                None => {
                    self.counters.sessions_full += 1;
                    return REFUSED;
                }
            },
        };
        let policy = if self.cfg.inline {
            OsPolicy::First
        } else {
            self.cfg.policies.for_host(seg.receiver)
        };
        let fresh = Session {
            next_seq: start,
            block: NIL,
            fresh: true,
            slot,
            to_client: dir == Dir::ToClient,
            links: [(NIL, NIL); LISTS],
            member: 0,
            policy,
            ..Session::default()
        };
        match self.sessions.get_mut(h as usize) {
            Some(s) => *s = fresh,
            // Never past the capacity reserved at start: no reallocation.
            None => self.sessions.push(fresh),
        }
        self.push_back(OPEN, h);
        h
    }

    /// The pool is empty: the idlest session gives way (its direction is
    /// matched packet by packet from now, an exception inline). Returns
    /// the freed session.
    fn evict_session(&mut self, ev: &mut impl FnMut(StreamEvent<'_>)) -> Option<u32> {
        let v = self.idlest(OPEN, NIL)?;
        let (slot, dir) = {
            let s = &self.sessions[v as usize];
            (s.slot as usize, s.dir())
        };
        if self.handles.get(slot).map(|h| h[dir as usize]) == Some(v) {
            self.handles[slot][dir as usize] = EVICTED;
        }
        ev(StreamEvent::Done(v));
        self.release(v);
        self.counters.evicted_sessions += 1;
        self.session_pool.get()
    }

    /// The block pool is empty: the idlest direction with a window gives it
    /// up (its next bytes start afresh, after a gap).
    fn evict_window(&mut self, h: u32) -> Option<u32> {
        let v = self.idlest(WINDOWS, h)?;
        self.unlink(WINDOWS, v);
        let s = &mut self.sessions[v as usize];
        let b = std::mem::replace(&mut s.block, NIL);
        s.block_len = 0;
        s.gap_pending = true;
        self.counters.evicted_windows += 1;
        (b != NIL).then_some(b)
    }

    /// The chunk pool is empty: the idlest direction holding data ahead of
    /// a hole drops it, unseen (an exception inline).
    fn evict_held(&mut self, h: u32) -> Option<u32> {
        let v = self.idlest(HOLDING, h)?;
        let n = u64::from(self.sessions[v as usize].n_held);
        while self.sessions[v as usize].n_held > 0 {
            self.drop_first_held(v);
        }
        self.sessions[v as usize].lost = true;
        self.counters.evicted_held += n;
        self.chunk_pool.get()
    }

    /// Puts the segment's bytes where they belong.
    fn place(
        &mut self,
        h: u32,
        seg: &Segment<'_>,
        placed: &mut Placed,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let (delivered, acked_past) = {
            let s = &self.sessions[h as usize];
            (s.delivered, s.acked.is_some_and(|a| seq_gt(a, s.next_seq)))
        };
        let mut off = self.sessions[h as usize].offset_of(seg.seq);
        let mut data = seg.payload;
        if off < 0 {
            // Bytes before the stream's start (a SYN's data we did not take).
            let cut = (-off).min(data.len() as i64) as usize;
            data = &data[cut..];
            off = 0;
        }
        let mut off = off as u64;
        if data.is_empty() {
            return;
        }
        let end = off + data.len() as u64;
        let whole = (off, end);
        // Bytes already delivered: compare what the window still has.
        if off < delivered {
            let upto = end.min(delivered);
            match self.compare_delivered(h, off, &data[..(upto - off) as usize]) {
                Some(false) => {
                    self.counters.overlaps_different += 1;
                    placed.overlap_different = true;
                }
                _ => self.counters.overlaps_same += 1,
            }
            if end <= delivered {
                self.counters.retransmissions += 1;
                return;
            }
            data = &data[(upto - off) as usize..];
            off = upto;
        }
        if seg.suspect {
            // Held for the receiver's word, even when next in line; past
            // the holding limits it is simply not kept.
            self.counters.suspect_held += 1;
            self.hold(h, off, data, whole, true, placed);
            self.pull_held(h, ev);
            return;
        }
        let next_in_line = off == delivered;
        if off > delivered {
            self.counters.out_of_order += 1;
            if acked_past {
                // The receiver has the hole's bytes; we never will.
                self.flush_held(h, ev);
                if self.sessions[h as usize].delivered < off {
                    self.skip_to(h, off);
                }
            } else if !self.hold(h, off, data, whole, false, placed) {
                // Past the holding limits: what is held goes out past gaps
                // the receiver never acknowledged, unseen bytes.
                self.mark_over_limit(h);
                self.sessions[h as usize].lost = true;
                self.flush_held(h, ev);
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
            if end <= d || self.sessions[h as usize].status != Status::Active {
                return;
            }
            if off < d {
                data = &data[(d - off) as usize..];
                off = d;
            }
        }
        placed.in_order = next_in_line && data.len() == seg.payload.len();
        self.deliver_run(h, off, data, whole, placed, ev);
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

    /// Holds `data` at `off` (at or ahead of the delivered point) around
    /// what is already held, from a segment spanning `whole`; false if the
    /// direction's limits or the arena ran out.
    fn hold(
        &mut self,
        h: u32,
        off: u64,
        data: &[u8],
        whole: (u64, u64),
        suspect: bool,
        placed: &mut Placed,
    ) -> bool {
        let end = off + data.len() as u64;
        let mut at = off;
        let mut i = 0;
        while at < end {
            let (n_held, next) = {
                let s = &self.sessions[h as usize];
                // The held pieces are sorted and disjoint.
                while i < usize::from(s.n_held) && s.held[i].end() <= at {
                    i += 1;
                }
                (
                    usize::from(s.n_held),
                    s.held[..usize::from(s.n_held)].get(i).copied(),
                )
            };
            match next {
                Some(p) if p.off <= at => {
                    at = self.overlap_held(
                        h,
                        i,
                        at,
                        &data[(at - off) as usize..],
                        end,
                        whole,
                        suspect,
                        placed,
                    );
                }
                _ => {
                    let stop = next.map_or(end, |p| p.off.min(end));
                    let len = ((stop - at) as usize).min(CHUNK);
                    if n_held == MAX_HELD {
                        return false;
                    }
                    let Some(c) = self.chunk_pool.get().or_else(|| self.evict_held(h)) else {
                        return false;
                    };
                    let src = &data[(at - off) as usize..][..len];
                    self.chunks[c as usize * CHUNK..][..len].copy_from_slice(src);
                    let gap = |x: u64| u16::try_from(x).unwrap_or(u16::MAX);
                    let s = &mut self.sessions[h as usize];
                    s.held.copy_within(i..n_held, i + 1);
                    s.held[i] = Held {
                        off: at,
                        len: len as u16,
                        chunk: c,
                        head: gap(at - whole.0),
                        tail: gap(whole.1.saturating_sub(at + len as u64)),
                        suspect,
                    };
                    s.n_held += 1;
                    if s.n_held == 1 {
                        self.push_back(HOLDING, h);
                    }
                    i += 1;
                    at += len as u64;
                }
            }
        }
        let s = &mut self.sessions[h as usize];
        let held = &s.held[..usize::from(s.n_held)];
        let mut edge = s.delivered;
        let mut regions = 1u8;
        for p in held {
            regions += u8::from(p.off > edge);
            edge = edge.max(p.end());
        }
        s.max_regions = s.max_regions.max(regions);
        true
    }

    /// The most separate stretches of data each direction (client's
    /// first) held at once: 1 for a stream that came in order (or not at
    /// all), one more per island beyond a hole.
    pub fn max_regions(&self, slot: u32, flow_id: u64) -> [u8; 2] {
        let s = slot as usize;
        let mut out = [1, 1];
        if self.owners.get(s) != Some(&flow_id) {
            return out;
        }
        for (o, &h) in out.iter_mut().zip(&self.handles[s]) {
            if let Some(sess) = self.sessions.get(h as usize).filter(|_| is_session(h)) {
                *o = sess.max_regions.max(1);
            }
        }
        out
    }

    /// New bytes `mine` (from stream offset `at`, of a segment spanning
    /// `whole` whose bytes here end at `end`) meet held piece `i`, which
    /// starts at or before `at`. Which copy stays: a normal copy beats a
    /// suspect one, a suspect one never beats a normal one, else the
    /// receiving host's policy. Returns where the overlap ends.
    #[allow(clippy::too_many_arguments)]
    fn overlap_held(
        &mut self,
        h: u32,
        i: usize,
        at: u64,
        mine: &[u8],
        end: u64,
        whole: (u64, u64),
        suspect: bool,
        placed: &mut Placed,
    ) -> u64 {
        let (p, policy) = {
            let s = &self.sessions[h as usize];
            (s.held[i], s.policy)
        };
        let upto = end.min(p.end());
        let mine = &mine[..(upto - at) as usize];
        let start = p.chunk as usize * CHUNK + (at - p.off) as usize;
        let same = self.chunks[start..][..mine.len()] == *mine;
        if same {
            self.counters.overlaps_same += 1;
        } else {
            self.counters.overlaps_different += 1;
            placed.overlap_different = true;
            let (old_start, old_end) = p.segment();
            let new_wins = match (p.suspect, suspect) {
                (true, false) => true,
                (false, true) => false,
                _ => policy.new_wins(whole.0, whole.1, old_start, old_end),
            };
            if new_wins {
                self.chunks[start..][..mine.len()].copy_from_slice(mine);
                self.counters.overlaps_new_won += 1;
                if p.suspect && !suspect {
                    self.counters.suspect_replaced += 1;
                    placed.replaced_suspect = true;
                }
            }
        }
        // A normal copy over the whole of a suspect piece vouches for it.
        if p.suspect && !suspect && at <= p.off && upto >= p.end() {
            self.sessions[h as usize].held[i].suspect = false;
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
    /// that has become contiguous (where they overlap, the host's policy
    /// picks the copy).
    fn deliver_run(
        &mut self,
        h: u32,
        off: u64,
        data: &[u8],
        whole: (u64, u64),
        placed: &mut Placed,
        ev: &mut impl FnMut(StreamEvent<'_>),
    ) {
        debug_assert_eq!(off, self.sessions[h as usize].delivered);
        let end = off + data.len() as u64;
        let mut at = off;
        while at < end && self.sessions[h as usize].status == Status::Active {
            let first = {
                let s = &self.sessions[h as usize];
                (s.n_held > 0).then(|| s.held[0])
            };
            match first {
                Some(p) if p.off <= at => {
                    let upto = self.overlap_held(
                        h,
                        0,
                        at,
                        &data[(at - off) as usize..],
                        end,
                        whole,
                        false,
                        placed,
                    );
                    self.pull_held(h, ev);
                    let d = self.sessions[h as usize].delivered;
                    if d < upto {
                        // A suspect piece still waits: the rest waits too,
                        // held behind it.
                        let rest = &data[(upto - off) as usize..];
                        if !rest.is_empty() {
                            self.hold(h, upto, rest, whole, false, placed);
                        }
                        return;
                    }
                    at = d.max(upto);
                }
                _ => {
                    let stop = first.map_or(end, |p| p.off.min(end));
                    let piece = &data[(at - off) as usize..(stop - off) as usize];
                    self.push(h, piece, ev);
                    at = stop;
                }
            }
        }
        self.pull_held(h, ev);
    }

    /// Delivers held pieces that start at the delivered point; a suspect
    /// one only once the receiver has acknowledged it.
    fn pull_held(&mut self, h: u32, ev: &mut impl FnMut(StreamEvent<'_>)) {
        loop {
            let (p, delivered) = {
                let s = &self.sessions[h as usize];
                if s.n_held == 0 || s.status != Status::Active {
                    return;
                }
                let p = s.held[0];
                if p.off > s.delivered || (p.suspect && !s.acked_to(p.end())) {
                    return;
                }
                (p, s.delivered)
            };
            self.drop_first_held(h);
            if p.end() > delivered {
                let skip = (delivered - p.off) as usize;
                let len = p.len as usize - skip;
                // The chunk is back in the pool, but nothing takes it before
                // this copy: push reads it first.
                let mut tmp = [0u8; CHUNK];
                tmp[..len].copy_from_slice(&self.chunks[p.chunk as usize * CHUNK + skip..][..len]);
                self.push(h, &tmp[..len], ev);
            }
        }
    }

    fn drop_first_held(&mut self, h: u32) {
        let s = &mut self.sessions[h as usize];
        let n = usize::from(s.n_held);
        let c = s.held[0].chunk;
        s.held.copy_within(1..n, 0);
        s.n_held -= 1;
        if s.n_held == 0 {
            self.unlink(HOLDING, h);
        }
        self.chunk_pool.put(c);
    }

    /// Delivers every held piece in order, each hole before one a gap;
    /// suspect pieces the receiver never acknowledged are dropped unseen.
    fn flush_held(&mut self, h: u32, ev: &mut impl FnMut(StreamEvent<'_>)) {
        loop {
            self.pull_held(h, ev);
            let (p, active) = {
                let s = &self.sessions[h as usize];
                (
                    (s.n_held > 0).then(|| (s.held[0], s.acked_to(s.held[0].end()))),
                    s.status == Status::Active,
                )
            };
            let Some((p, acked)) = p.filter(|_| active) else {
                return;
            };
            if p.suspect && !acked {
                self.drop_first_held(h);
                self.counters.suspect_unacked += 1;
            } else if p.off > self.sessions[h as usize].delivered {
                self.skip_to(h, p.off);
            } else {
                return;
            }
        }
    }

    /// Appends bytes at the delivered point, taking out the urgent byte
    /// if they hold it (as the receiving host does).
    fn push(&mut self, h: u32, mut data: &[u8], ev: &mut impl FnMut(StreamEvent<'_>)) {
        loop {
            let s = &mut self.sessions[h as usize];
            let Some(u) = s.urgent else {
                break;
            };
            if u < s.delivered {
                s.urgent = None;
                break;
            }
            let k = (u - s.delivered) as usize;
            if k >= data.len() {
                break;
            }
            self.push_plain(h, &data[..k], ev);
            let s = &mut self.sessions[h as usize];
            if s.status != Status::Active {
                return;
            }
            // One sequence number that is no stream byte: what is held
            // beyond it moves back one.
            s.next_seq = s.next_seq.wrapping_add(1);
            s.urgent = None;
            let n = usize::from(s.n_held);
            for p in s.held[..n].iter_mut().filter(|p| p.off > u) {
                p.off -= 1;
            }
            if self.cfg.urgent == UrgentPolicy::Gap {
                s.gap_pending = true;
                s.block_len = 0;
                s.block_start = s.delivered;
            }
            self.counters.urgent_removed += 1;
            data = &data[k + 1..];
        }
        self.push_plain(h, data, ev);
    }

    /// Whether the other direction of `h`'s flow parsed its TLS hello.
    fn peer_hello(&self, h: u32) -> bool {
        let s = &self.sessions[h as usize];
        let peer_bit = if s.to_client { 1 } else { 2 };
        self.hellos
            .get(s.slot as usize)
            .is_some_and(|b| b & peer_bit != 0)
    }

    /// Appends bytes at the delivered point to the window and hands them
    /// to the matcher, in pieces small enough that each is seen with at
    /// least `--stream-window` bytes before it (the block holds the window
    /// and one piece). TLS ciphertext moves the stream on unscanned.
    fn push_plain(&mut self, h: u32, mut data: &[u8], ev: &mut impl FnMut(StreamEvent<'_>)) {
        let bs = self.block;
        let w = self.piece;
        while !data.is_empty() {
            if self.sessions[h as usize].status != Status::Active {
                return;
            }
            let mut take = data.len().min(w);
            if self.cfg.depth > 0 {
                let room = self
                    .cfg
                    .depth
                    .saturating_sub(self.sessions[h as usize].delivered);
                take = take.min(room as usize);
            }
            let peer_hello = self.peer_hello(h);
            let (run, hello_now, skipped_before) = {
                let s = &mut self.sessions[h as usize];
                let mine = if s.to_client {
                    SERVER_HELLO
                } else {
                    CLIENT_HELLO
                };
                let skipped = s.tls.skipped;
                let run = s.tls.next_run(&data[..take], s.delivered, mine, peer_hello);
                if std::mem::take(&mut s.tls.lost_sync) {
                    self.counters.tls_resync += 1;
                    self.tls_lost_sync = true;
                    // Plaintext after skipped ciphertext does not follow on.
                    if skipped {
                        s.gap_pending = true;
                        s.block_len = 0;
                        s.block_start = s.delivered;
                    }
                }
                (run, s.tls.hello, skipped)
            };
            if hello_now {
                let s = &self.sessions[h as usize];
                let bit = if s.to_client { 2 } else { 1 };
                if let Some(b) = self.hellos.get_mut(s.slot as usize) {
                    *b |= bit;
                }
            }
            let take = match run {
                Run::Skip(n) => {
                    if !skipped_before {
                        self.counters.ciphertext += 1;
                    }
                    let s = &mut self.sessions[h as usize];
                    s.delivered += n as u64;
                    s.next_seq = s.next_seq.wrapping_add(n as u32);
                    s.block_len = 0;
                    s.block_start = s.delivered;
                    data = &data[n..];
                    self.check_depth(h, ev);
                    continue;
                }
                Run::Scan(n) => n,
            };
            // Without stream rules, past the first bytes (which a
            // protocol probe may want whole) nothing reads the window:
            // the bytes go to the app layer straight from the segment.
            if take > 0 && self.direct && self.sessions[h as usize].delivered >= 64 {
                let s = &mut self.sessions[h as usize];
                let gap = std::mem::take(&mut s.gap_pending);
                let fresh = std::mem::take(&mut s.fresh);
                let base = s.delivered;
                s.delivered += take as u64;
                s.next_seq = s.next_seq.wrapping_add(take as u32);
                s.block_len = 0;
                s.block_start = s.delivered;
                self.counters.bytes += take as u64;
                ev(StreamEvent::Data(Delivery {
                    session: h,
                    dir: s.dir(),
                    window: &data[..take],
                    base,
                    new_from: 0,
                    gap,
                    fresh,
                }));
                data = &data[take..];
                self.check_depth(h, ev);
                continue;
            }
            if take > 0 {
                if self.sessions[h as usize].block == NIL {
                    let Some(b) = self.block_pool.get().or_else(|| self.evict_window(h)) else {
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
                    self.push_back(WINDOWS, h);
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
                    dir: s.dir(),
                    window: &blk[..s.block_len as usize],
                    base: s.block_start,
                    new_from,
                    gap,
                    fresh,
                }));
            }
            data = &data[take..];
            self.check_depth(h, ev);
        }
    }

    /// Past `--stream-depth` the direction is finished.
    fn check_depth(&mut self, h: u32, ev: &mut impl FnMut(StreamEvent<'_>)) {
        let s = &self.sessions[h as usize];
        if self.cfg.depth > 0 && s.delivered >= self.cfg.depth && s.status == Status::Active {
            self.counters.depth_reached += 1;
            self.finish(h, Status::Depth, ev);
        }
    }

    /// The direction takes nothing more (`status` says why): the matcher
    /// lets go of its state, the session goes back to the pool, and the
    /// flow's entry says what became of the direction.
    fn finish(&mut self, h: u32, status: Status, ev: &mut impl FnMut(StreamEvent<'_>)) {
        let (slot, dir) = {
            let s = &mut self.sessions[h as usize];
            if s.status != Status::Active {
                return;
            }
            s.status = status;
            (s.slot as usize, s.dir())
        };
        ev(StreamEvent::Done(h));
        if self.handles.get(slot).map(|x| x[dir as usize]) == Some(h) {
            self.handles[slot][dir as usize] = match status {
                Status::Overflow => REFUSED,
                Status::Depth => DEPTH,
                _ => DONE,
            };
        }
        self.release(h);
    }

    /// The flow in `slot` was reset (a RST at the receiver's next byte):
    /// what is held goes to the matcher and neither direction takes more.
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
            if is_session(h) {
                self.flush_held(h, ev);
                self.finish(h, Status::Finished, ev);
            }
            self.handles[s][dir as usize] = NIL;
        }
        self.update_memuse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::HostPolicies;

    const ISN: u32 = 1000;

    fn small() -> Reassembly {
        with_policy("linux")
    }

    fn with_policy(p: &str) -> Reassembly {
        Reassembly::new(
            StreamConfig {
                window: 64,
                policies: HostPolicies::parse(&[p.to_string()]).unwrap(),
                ..StreamConfig::default()
            },
            8,
            0,
        )
    }

    /// What a delivery callback saw: the bytes, with `|` at each gap.
    fn text(out: &mut String) -> impl FnMut(StreamEvent<'_>) + '_ {
        |e| {
            if let StreamEvent::Data(d) = e {
                if d.gap {
                    out.push('|');
                }
                out.push_str(&String::from_utf8_lossy(&d.window[d.new_from..]));
            }
        }
    }

    /// A client segment at stream offset `rel`.
    fn at(rel: u32, b: &[u8]) -> Segment<'_> {
        Segment::new(ISN + 1 + rel, None, b)
    }

    /// Feeds whole segments to the client direction of flow 7 in slot 0.
    fn feed_segs(r: &mut Reassembly, segs: &[Segment<'_>]) -> (String, Vec<Placed>) {
        let mut out = String::new();
        let placed = segs
            .iter()
            .map(|s| r.segment(0, 7, Dir::ToServer, Some(ISN), s, &mut text(&mut out)))
            .collect();
        (out, placed)
    }

    /// Feeds segments `(seq offset from the stream start, bytes)` to the
    /// client direction; returns the bytes delivered, with `|` at each gap.
    fn feed(r: &mut Reassembly, segs: &[(u32, &[u8])]) -> (String, Vec<Placed>) {
        let mut out = String::new();
        let mut placed = Vec::new();
        for &(rel, b) in segs {
            let seg = Segment::new(ISN + 1 + rel, None, b);
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
        let ack = Segment::new(5000, Some(ISN + 1 + 6), &[]);
        r.segment(0, 7, Dir::ToClient, Some(4999), &ack, &mut |_| {});
        assert_eq!(feed(&mut r, &[(6, b"gh")]).0, "|gh");
        assert_eq!(r.counters.gaps, 1);
    }

    #[test]
    fn the_window_keeps_the_last_bytes_and_pieces_fit_it() {
        let mut r = small();
        let data: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut seen = Vec::new();
        let seg = Segment::new(ISN + 1, None, &data);
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
    fn for_parsers_the_bytes_past_the_first_go_on_uncopied() {
        let mut r = Reassembly::for_parsers(StreamConfig::default(), 8);
        let data: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut seen = Vec::new();
        let mut windows = Vec::new();
        for (at, part) in [
            (0usize, &data[..40]),
            (40, &data[40..1500]),
            (1500, &data[1500..]),
        ] {
            let seg = Segment::new(ISN + 1 + at as u32, None, part);
            r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut |e| {
                if let StreamEvent::Data(d) = e {
                    windows.push((d.base, d.window.len(), d.new_from));
                    seen.extend_from_slice(&d.window[d.new_from..]);
                }
            });
        }
        assert_eq!(seen, data);
        // The first bytes in the window (a probe may want them whole),
        // the rest straight from their segments.
        assert_eq!(windows, [(0, 40, 0), (0, 1500, 40), (1500, 1500, 0)]);
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
    fn the_most_islands_held_at_once_are_counted_as_regions() {
        let mut r = small();
        assert_eq!(r.max_regions(0, 7), [1, 1]);
        // In order: one region.
        feed(&mut r, &[(0, b"ab")]);
        assert_eq!(r.max_regions(0, 7), [1, 1]);
        // Two islands beyond holes, then one touching the second: three.
        feed(&mut r, &[(4, b"cd"), (8, b"ef"), (10, b"gh")]);
        assert_eq!(r.max_regions(0, 7), [3, 1]);
        // The holes fill: the most stays.
        let (out, _) = feed(&mut r, &[(2, b"xy"), (6, b"zz")]);
        assert_eq!(out, "xycdzzefgh");
        assert_eq!(r.max_regions(0, 7), [3, 1]);
        // Another flow in the slot starts again.
        assert_eq!(r.max_regions(0, 8), [1, 1]);
    }

    #[test]
    fn midstream_flows_are_refused_unless_asked_for() {
        let mut r = small();
        let seg = Segment::new(77, None, b"data");
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
                let seg = Segment::new(ISN.wrapping_add(1 + a as u32), None, &data[a..b]);
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
            let seg = Segment::new(
                rng.next() as u32,
                (rng.below(2) == 0).then(|| rng.next() as u32),
                &junk[..n],
            );
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
    fn different_overlaps_follow_the_receivers_policy() {
        // Over delivered bytes the old ones stay, whatever the policy.
        let mut r = small();
        let (out, placed) = feed(&mut r, &[(0, b"abcd"), (2, b"XYef")]);
        assert_eq!(out, "abcdef");
        assert!(placed[1].overlap_different);
        // Over held bytes, Linux: a copy over the same span leaves the
        // first; one that starts before the held one replaces it.
        let mut r = small();
        let (out, placed) = feed(&mut r, &[(4, b"ef"), (4, b"EF"), (0, b"abcdXF")]);
        assert_eq!(out, "abcdXF");
        assert!(placed[1].overlap_different && placed[2].overlap_different);
        assert_eq!(r.counters.overlaps_different, 2);
        assert_eq!(r.counters.overlaps_new_won, 1);
        // `first` (and inline) keeps the first copy; `last` the last one.
        let mut r = with_policy("first");
        let (out, _) = feed(&mut r, &[(4, b"ef"), (4, b"EF"), (0, b"abcdXF")]);
        assert_eq!(out, "abcdef");
        let mut r = with_policy("last");
        assert_eq!(
            feed(&mut r, &[(4, b"ef"), (4, b"EF"), (0, b"abcd")]).0,
            "abcdEF"
        );
        let mut r = with_policy("old-linux");
        assert_eq!(
            feed(&mut r, &[(4, b"ef"), (4, b"EF"), (0, b"abcd")]).0,
            "abcdEF"
        );
    }

    #[test]
    fn the_policy_is_the_receiving_hosts() {
        let mut r = Reassembly::new(
            StreamConfig {
                window: 64,
                policies: HostPolicies::parse(&["10.0.0.0/8=first".into()]).unwrap(),
                ..StreamConfig::default()
            },
            8,
            0,
        );
        let to = |ip: &str| ip.parse::<IpAddr>().unwrap();
        for (slot, host, want) in [(0, "10.1.1.1", "abcdef"), (1, "192.0.2.1", "abcdXF")] {
            let mut out = String::new();
            for (rel, b) in [(4u32, &b"ef"[..]), (0, b"abcdXF")] {
                let seg = Segment {
                    receiver: to(host),
                    ..at(rel, b)
                };
                r.segment(
                    slot,
                    7 + u64::from(slot),
                    Dir::ToServer,
                    Some(ISN),
                    &seg,
                    &mut text(&mut out),
                );
            }
            assert_eq!(out, want, "{host}");
        }
    }

    #[test]
    fn suspect_bytes_wait_for_the_receivers_word() {
        let mut r = small();
        let suspect = |rel, b| Segment {
            suspect: true,
            ..at(rel, b)
        };
        // A low-TTL copy at the next byte is held, not delivered; the real
        // copy replaces it and goes out.
        let (out, placed) = feed_segs(&mut r, &[suspect(0, b"JUNK"), at(0, b"evil")]);
        assert_eq!(out, "evil");
        assert!(placed[1].replaced_suspect);
        assert_eq!(
            (r.counters.suspect_held, r.counters.suspect_replaced),
            (1, 1)
        );
        // A suspect copy nobody contradicts goes out once acknowledged.
        let (out, _) = feed_segs(&mut r, &[suspect(4, b"more")]);
        assert_eq!(out, "");
        let mut out = String::new();
        let ack = Segment::new(5000, Some(ISN + 1 + 8), &[]);
        r.segment(0, 7, Dir::ToClient, Some(4999), &ack, &mut text(&mut out));
        assert_eq!(out, "more");
        // Never acknowledged: not delivered, even at the end.
        assert_eq!(feed_segs(&mut r, &[suspect(8, b"lost")]).0, "");
        assert_eq!(end(&mut r), "");
        assert_eq!(r.counters.suspect_unacked, 1);
        assert_eq!(r.counters.chunks, 0);
    }

    #[test]
    fn the_urgent_byte_comes_out_of_the_stream() {
        let urgent = |rel: u32, b: &'static [u8], byte: u32| Segment {
            urgent: Some(ISN + 1 + byte),
            ..at(rel, b)
        };
        // In order: "evXil" with X urgent reads "evil", and what follows
        // still lands where it belongs.
        let mut r = small();
        let (out, _) = feed_segs(&mut r, &[urgent(0, b"evXil", 2), at(5, b"!!")]);
        assert_eq!(out, "evil!!");
        assert_eq!(r.counters.urgent_removed, 1);
        // Out of order: the tail first, then the urgent segment.
        let mut r = small();
        let (out, _) = feed_segs(&mut r, &[at(3, b"il"), at(5, b"!"), urgent(0, b"evX", 2)]);
        assert_eq!(out, "evil!");
        // Inline keeps it; gap restarts matching after it.
        let mut cfg = StreamConfig {
            window: 64,
            urgent: UrgentPolicy::Inline,
            ..StreamConfig::default()
        };
        let mut r = Reassembly::new(cfg, 8, 0);
        assert_eq!(feed_segs(&mut r, &[urgent(0, b"evXil", 2)]).0, "evXil");
        cfg.urgent = UrgentPolicy::Gap;
        let mut r = Reassembly::new(cfg, 8, 0);
        assert_eq!(feed_segs(&mut r, &[urgent(0, b"evXil", 2)]).0, "ev|il");
    }

    #[test]
    fn sessions_run_out_and_the_idlest_gives_way() {
        let mut r = Reassembly::new(
            StreamConfig {
                memcap: 1,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        assert_eq!(r.capacity(), 1);
        let seg = at(0, b"x");
        let mut done = 0;
        let mut count = |e: StreamEvent<'_>| done += usize::from(matches!(e, StreamEvent::Done(_)));
        assert!(
            !r.segment(0, 7, Dir::ToServer, Some(ISN), &seg, &mut count)
                .unstreamed
        );
        let p = r.segment(1, 8, Dir::ToServer, Some(ISN), &seg, &mut count);
        assert!(!p.unstreamed, "the newcomer takes the idle one's session");
        assert_eq!(
            (r.counters.evicted_sessions, r.counters.sessions_full),
            (1, 0)
        );
        assert_eq!(done, 1, "the matcher lets go of the evicted state");
        // The evicted direction goes on packet by packet, an exception.
        let p = r.segment(0, 7, Dir::ToServer, Some(ISN), &at(1, b"y"), &mut |_| {});
        assert!(p.unstreamed && p.exception);
        r.end(0, 7, &mut |_| {});
        r.end(1, 8, &mut |_| {});
        assert_eq!(r.counters.sessions, 0);
    }

    #[test]
    fn a_direction_that_needs_a_window_takes_the_idlest_ones() {
        // Room for one window block.
        let mut r = Reassembly::new(
            StreamConfig {
                window: 64,
                reassembly_memcap: 2 * 2 * 64,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        let mut out = String::new();
        r.segment(
            0,
            7,
            Dir::ToServer,
            Some(ISN),
            &at(0, b"abc"),
            &mut text(&mut out),
        );
        let p = r.segment(
            1,
            8,
            Dir::ToServer,
            Some(ISN),
            &at(0, b"abc"),
            &mut text(&mut out),
        );
        assert!(
            !p.unstreamed && !p.exception,
            "a window lost is no byte lost"
        );
        assert_eq!(r.counters.evicted_windows, 1);
        // The first direction gets it back; its matching restarts.
        r.segment(
            0,
            7,
            Dir::ToServer,
            Some(ISN),
            &at(3, b"def"),
            &mut text(&mut out),
        );
        assert_eq!(out, "abcabc|def");
        assert_eq!(r.counters.evicted_windows, 2);
        r.end(1, 8, &mut |_| {});
        r.end(0, 7, &mut |_| {});
        assert_eq!((r.counters.sessions, r.counters.blocks), (0, 0));
    }

    #[test]
    fn held_data_gives_way_to_a_busier_direction() {
        // Two chunks in the arena.
        let mut r = Reassembly::new(
            StreamConfig {
                window: 64,
                reassembly_memcap: 2 * 2 * CHUNK,
                ..StreamConfig::default()
            },
            8,
            0,
        );
        // Flow 7 holds two pieces ahead of a hole and goes quiet.
        for rel in [10u32, 20] {
            r.segment(0, 7, Dir::ToServer, Some(ISN), &at(rel, b"x"), &mut |_| {});
        }
        // Flow 8 needs to hold one: flow 7's go, unseen.
        r.segment(1, 8, Dir::ToServer, Some(ISN), &at(10, b"y"), &mut |_| {});
        assert_eq!(r.counters.evicted_held, 2);
        let p = r.segment(0, 7, Dir::ToServer, Some(ISN), &at(0, b"z"), &mut |_| {});
        assert!(p.exception, "flow 7 lost bytes nobody saw");
        r.end(0, 7, &mut |_| {});
        r.end(1, 8, &mut |_| {});
        assert_eq!(r.counters.chunks, 0);
    }

    #[test]
    fn tls_ciphertext_is_skipped_only_after_both_hellos() {
        fn record(kind: u8, body: &[u8]) -> Vec<u8> {
            let mut r = vec![kind, 3, 3];
            r.extend_from_slice(&(body.len() as u16).to_be_bytes());
            r.extend_from_slice(body);
            r
        }
        fn hello(kind: u8) -> Vec<u8> {
            let mut b = vec![kind, 0, 0, 40, 3, 3];
            b.extend_from_slice(&[0x5a; 40]);
            record(22, &b)
        }
        let mut client = hello(1);
        client.extend(record(20, &[1]));
        client.extend(record(23, b"secret-bytes"));
        let server = hello(2);
        let run = |with_server: bool| {
            let mut r = small();
            let mut got = Vec::new();
            let mut grab = |e: StreamEvent<'_>| {
                if let StreamEvent::Data(d) = e {
                    if d.dir == Dir::ToServer {
                        got.extend_from_slice(&d.window[d.new_from..]);
                    }
                }
            };
            if with_server {
                let s = Segment::new(9001, None, &server);
                r.segment(0, 7, Dir::ToClient, Some(9000), &s, &mut grab);
            }
            let c = Segment::new(ISN + 1, None, &client);
            r.segment(0, 7, Dir::ToServer, Some(ISN), &c, &mut grab);
            (got, r.counters.ciphertext)
        };
        let (got, ciphertext) = run(true);
        let mut want = hello(1);
        want.extend_from_slice(&[20, 3, 3, 0, 1, 23, 3, 3, 0, 12]);
        assert_eq!(got, want, "headers scanned, bodies skipped");
        assert_eq!(ciphertext, 1);
        // No ServerHello seen: nothing is taken for ciphertext.
        assert_eq!(run(false), (client.clone(), 0));
        // A fake prefix in front of cleartext blinds nothing, and says so.
        let mut fake = vec![0x16, 3, 1, 0, 0, 0x17, 3, 3, 0, 0];
        fake.extend_from_slice(b"GET /x HTTP/1.1\r\n");
        let mut r = small();
        let mut out = String::new();
        let p = r.segment(
            0,
            7,
            Dir::ToServer,
            Some(ISN),
            &at(0, &fake),
            &mut text(&mut out),
        );
        assert!(out.ends_with("GET /x HTTP/1.1\r\n"));
        assert!(p.tls_lost_sync);
        assert_eq!(r.counters.tls_resync, 1);
    }
}
