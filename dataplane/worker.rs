//! The worker pipeline: what one pinned core does to each burst, whatever
//! the packet source. Stages run a burst at a time — decode every packet,
//! then account every packet to its flow, then hand out verdicts — so each
//! stage's code and data stay hot. The caller acts on the verdicts (sends
//! or frees the packets) and reports what its sink refused. Nothing here allocates, locks, logs or
//! makes a syscall per packet: counters are plain fields, flow records leave
//! through a bounded ring with `try_send` (a full ring is counted, the worker
//! never waits), and the clock is the packets' own, read once per burst.

use crate::decode::{
    addr_to_ip, decode, ipv4_checksum_ok, tcp_checksum_ok, DecodeAnomaly, DecodeError, Decoded,
    Network,
};
use crate::defrag::{Defrag, DefragConfig, MAX_DATAGRAM};
use crate::detect::content::Inspection;
use crate::detect::stream::{Pending, StreamScanner};
use crate::detect::threshold::{Seen, ThresholdTable};
use crate::detect::{Confirm, Engine, PacketView};
use crate::eve::{AlertRecord, Anomaly, AnomalyRecord, Event, EventTuple};
use crate::flow::bits::FlowBits;
use crate::flow::tcp::{Dir, Fate, Why};
use crate::flow::{EndReason, FlowRecord, FlowTable, Timeouts};
use crate::io::{DropReason, NicCheck, RawPacket, Verdict, BURST_SIZE};
use crate::reassembly::policy::UrgentPolicy;
use crate::reassembly::{
    ChecksumMode, Checksums, Delivery, Reassembly, Segment, StreamConfig, StreamEvent,
};
use crate::rss::SoftRss;
use crate::rules::Action;
use crate::scoring::{ScoringLink, WorkerScoring};
use crate::stats::{Latency, WorkerCounters};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use hyperscan::prelude::Scratch;
use std::sync::Arc;

/// Observe only, or forward and drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Ids,
    Ips,
}

/// What happens to traffic that cannot be inspected whole (memory
/// pressure took some of it unseen): Suricata's exception policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExceptionPolicy {
    /// Inline, drop the packet and every later one of its flow.
    DropFlow,
    /// Inline, drop the packet.
    DropPacket,
    /// Let it through (counted).
    #[default]
    Pass,
}

/// What happens to a packet the decoder rejects (after it is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MalformedPolicy {
    #[default]
    Pass,
    /// Drop it; only meaningful inline (`--mode ips`).
    Drop,
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    pub id: u16,
    pub mode: Mode,
    pub flow_capacity: usize,
    pub timeouts: Timeouts,
    pub malformed: MalformedPolicy,
    /// Off: count and forward every packet without decoding or tracking it
    /// (`run --inspect off`, the baseline for what inspection costs).
    pub inspect: bool,
    pub defrag: DefragConfig,
    /// Workers in the run: a reassembled datagram goes to the one its
    /// 5-tuple hashes to.
    pub workers: u16,
    /// Entries in the redirection table that spreads packets to workers: the
    /// ports' own where they spread in hardware, else `rss::RETA_SIZE`.
    pub reta_size: usize,
    /// TCP reassembly bounds (used when a rule matches the stream).
    pub stream: StreamConfig,
    pub checksum: ChecksumMode,
    /// What an IPS does with traffic it cannot inspect whole.
    pub exception: ExceptionPolicy,
}

/// A reassembled datagram on its way to the worker that owns its flow.
pub struct Datagram {
    buf: Vec<u8>,
    ts_ns: u64,
    pass: u16,
}

/// One worker's end of the handoff mesh: rings to every other worker, its
/// own inbound ring, and the shared pool of buffers datagrams travel in.
pub struct Handoff {
    to: Vec<Option<Sender<Datagram>>>,
    from: Receiver<Datagram>,
    pool_put: Sender<Vec<u8>>,
    pool_get: Receiver<Vec<u8>>,
}

/// Handed-over datagrams a worker holds for time order; past this many it
/// accounts the oldest at once rather than grow.
const HELD_MAX: usize = 256;

/// Datagrams a worker's inbound handoff ring holds.
const HANDOFF_RING: usize = 64;

/// Builds the handoff mesh for `workers` workers, with `buffers` datagram
/// buffers allocated now (none later).
pub fn handoff_mesh(workers: usize, buffers: usize) -> Vec<Handoff> {
    let (pool_put, pool_get) = bounded(buffers);
    for _ in 0..buffers {
        let _ = pool_put.try_send(Vec::with_capacity(MAX_DATAGRAM + 1024));
    }
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| bounded(HANDOFF_RING)).unzip();
    rxs.into_iter()
        .enumerate()
        .map(|(k, from)| Handoff {
            to: txs
                .iter()
                .enumerate()
                .map(|(j, t)| (j != k).then(|| t.clone()))
                .collect(),
            from,
            pool_put: pool_put.clone(),
            pool_get: pool_get.clone(),
        })
        .collect()
}

/// Flows expired per burst at most, so a mass timeout is spread over bursts
/// instead of stalling one.
const EXPIRE_BUDGET: usize = 256;

pub struct Worker {
    cfg: WorkerConfig,
    flows: FlowTable,
    counters: WorkerCounters,
    events: Option<Sender<Event>>,
    now_ns: u64,
    latency: Latency,
    rules: Option<Rules>,
    defrag: Defrag,
    rss: SoftRss,
    handoff: Option<Handoff>,
    /// Datagrams other workers handed over, in capture-time order, waiting
    /// for this worker's own packets to reach their time (preallocated).
    held: Vec<Datagram>,
    /// TCP reassembly, when some rule matches the stream.
    stream: Option<Reassembly>,
    checks: PacketChecks,
    /// This worker's rings to and from the scorer, and its flows' feature
    /// accumulators.
    scoring: Option<WorkerScoring>,
}

/// Keys a worker's threshold table counts at once (about 1 MB); past
/// them, expired windows make room, else the match alerts and is counted.
const THRESHOLD_KEYS: usize = 16_384;

/// A stream hit that does not confirm is retried on the next bytes only
/// if it ended this close to the end of what has arrived.
const PENDING_TAIL: u64 = 1024;

/// The shared rule engine and this worker's own state for matching it.
struct Rules {
    engine: Arc<Engine>,
    scratch: Option<Scratch>,
    /// This worker's copies of the rules' pcre expressions, its step
    /// budget and what ran into limits.
    inspection: Inspection,
    /// Match counts for rules with a threshold or detection_filter.
    thresholds: ThresholdTable,
    /// Hyperscan stream state of every reassembled direction.
    scanner: Option<StreamScanner>,
    /// One packet's (or one delivery's) matching rules, every one of them
    /// (sized to the rule count at start: pushing never allocates).
    cands: Vec<u32>,
    /// Those that alert, before the log cap.
    hits: Vec<u32>,
    /// Stream hits to confirm: the rule and where its fast pattern ended.
    tries: Vec<(u32, u64)>,
    /// `seen[rule] == epoch`: the rule is in `tries` already.
    seen: Vec<u32>,
    epoch: u32,
    /// Alerts past `packet-alert-max` on one packet: evaluated and acted
    /// on, not logged.
    alerts_discarded: u64,
}

impl Rules {
    /// Starts a new set of stream hits (`seen` marks reset in O(1)).
    fn next_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
    }

    /// Adds a stream hit to `tries` unless its rule is there already.
    fn try_hit(&mut self, rule: u32, end: u64) {
        if let Some(s) = self.seen.get_mut(rule as usize) {
            if *s != self.epoch {
                *s = self.epoch;
                self.tries.push((rule, end));
            }
        }
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        if let (Some(sc), Some(s)) = (self.scanner.take(), self.scratch.as_ref()) {
            sc.close(s);
        }
    }
}

/// Matches one packet of flow `flow_id`, stamped `ts`, and reports each
/// alert to `alert(rule, blocked)`. Stream rules are tried on the packet
/// only when `with_stream_rules` (its direction is not reassembled).
/// Returns whether the packet is blocked, and how many bit sets found the
/// flow full.
fn match_rules(
    rules: &mut Rules,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    with_stream_rules: bool,
    ids: (u64, u64),
    alert: impl FnMut(u32, bool, usize),
) -> (bool, u64) {
    let Rules {
        engine,
        scratch,
        inspection,
        cands,
        ..
    } = rules;
    cands.clear();
    engine.match_packet(
        scratch.as_ref(),
        inspection,
        view,
        with_stream_rules,
        |ri| cands.push(ri as u32),
    );
    decide(rules, view, mode, bits, ids, alert)
}

/// Matches a direction's newly reassembled bytes: the stream database
/// finds fast patterns ending in them (also across segment boundaries),
/// and each hit's rule is confirmed on the retained window. A hit that
/// does not confirm yet is tried again on the next bytes while it is in
/// the window; one whose rule reaches before the window is counted.
fn match_stream(
    rules: &mut Rules,
    d: &Delivery<'_>,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    ids: (u64, u64),
    alert: impl FnMut(u32, bool, usize),
) -> (bool, u64) {
    if rules.scanner.is_none() || rules.scratch.is_none() {
        return (false, 0);
    }
    rules.next_epoch();
    rules.tries.clear();
    rules.cands.clear();
    let restart = d.gap || d.fresh;
    // Hits still waiting for more bytes (a restart forgets them all), then
    // the new ones, each rule once.
    if let Some(sc) = rules.scanner.as_mut() {
        sc.forget_pending_before(d.session, d.base);
    }
    if !restart {
        let mut pending = [(0u32, 0u64); crate::detect::stream::PENDING];
        let mut np = 0;
        if let Some(sc) = rules.scanner.as_ref() {
            for p in sc.pending(d.session) {
                pending[np] = (p.rule, p.end);
                np += 1;
            }
        }
        for &(rule, end) in &pending[..np] {
            rules.try_hit(rule, end);
        }
    }
    let at = d.base + d.new_from as u64;
    {
        let Rules {
            scanner,
            scratch,
            tries,
            seen,
            epoch,
            ..
        } = rules;
        let (Some(sc), Some(scratch)) = (scanner.as_mut(), scratch.as_ref()) else {
            return (false, 0);
        };
        sc.scan(
            scratch,
            d.session,
            restart,
            &d.window[d.new_from..],
            at,
            |rule, end| {
                if let Some(s) = seen.get_mut(rule as usize) {
                    if *s != *epoch {
                        *s = *epoch;
                        tries.push((rule, end));
                    }
                }
            },
        );
    }
    let Rules {
        engine,
        inspection,
        scanner,
        tries,
        cands,
        ..
    } = rules;
    let Some(sc) = scanner.as_mut() else {
        return (false, 0);
    };
    for &(rule, end) in tries.iter() {
        let Some(r) = engine.rules.get(rule as usize) else {
            continue;
        };
        match r.holds_stream(view, inspection, d.base) {
            Confirm::Yes => {
                sc.drop_pending(d.session, rule);
                cands.push(rule);
            }
            Confirm::No => {
                // Only a hit near the end of what has arrived can be waiting
                // for bytes still to come (a pcre or content after it).
                let arrived = d.base + d.window.len() as u64;
                if arrived - end.min(arrived) < PENDING_TAIL {
                    sc.add_pending(d.session, Pending { rule, end });
                } else {
                    sc.drop_pending(d.session, rule);
                }
            }
            Confirm::OutsideWindow => {
                sc.counters.unconfirmable += 1;
                sc.drop_pending(d.session, rule);
            }
        }
    }
    decide(rules, view, mode, bits, ids, alert)
}

/// Turns confirmed candidates (`rules.cands`) into actions and alerts, as
/// Suricata orders them: rules run in flowbit order (those that set bits
/// before those that test them) against the flow's `bits`, which they
/// update; a match its threshold holds back neither alerts nor acts,
/// though its flowbits are set; a matching pass rule silences the packet;
/// a drop or reject rule blocks it inline. Every candidate is evaluated;
/// only the alerts logged are capped (`packet-alert-max`), keeping drops
/// first, then by priority.
fn decide(
    rules: &mut Rules,
    view: &PacketView<'_>,
    mode: Mode,
    bits: &mut FlowBits,
    (flow_id, ts): (u64, u64),
    mut alert: impl FnMut(u32, bool, usize),
) -> (bool, u64) {
    let Rules {
        engine,
        thresholds,
        cands,
        hits,
        alerts_discarded,
        ..
    } = rules;
    cands.sort_unstable_by_key(|&ri| (engine.rules[ri as usize].bits_order, ri));
    hits.clear();
    let (mut pass, mut drop, mut lost) = (false, false, 0);
    for &ri in cands.iter() {
        let r = &engine.rules[ri as usize];
        if !r.bits_hold(bits) {
            continue;
        }
        lost += r.apply_bits(bits);
        if let Some(t) = &r.threshold {
            let seen = Seen {
                rule: ri,
                src: view.src,
                dst: view.dst,
                flow_id,
                ts_ns: ts,
            };
            if !thresholds.allow(t, &seen) {
                continue;
            }
        }
        match r.action {
            Action::Pass => pass = true,
            Action::Drop | Action::Reject => drop = true,
            Action::Alert => {}
        }
        if !r.noalert {
            hits.push(ri);
        }
    }
    if pass {
        return (false, lost);
    }
    let blocked = drop && mode == Mode::Ips;
    let max = engine.config.packet_alert_max;
    if hits.len() > max {
        // Keep what matters most: drops and rejects, then by priority.
        hits.sort_unstable_by_key(|&ri| {
            let r = &engine.rules[ri as usize];
            let acts = matches!(r.action, Action::Drop | Action::Reject);
            (!acts, r.priority, ri)
        });
        *alerts_discarded += (hits.len() - max) as u64;
        hits.truncate(max);
    }
    for &ri in hits.iter() {
        alert(ri, blocked, engine.hit_class(ri));
    }
    (blocked, lost)
}

/// A packet's or a flow direction's addresses, as alerts and rule headers
/// need them: an `EventTuple` whose time, flow and worker are set per event.
#[derive(Debug, Clone, Copy)]
struct Tuple(EventTuple);

impl Tuple {
    fn of_packet(d: &Decoded) -> Self {
        Tuple(EventTuple {
            network: d.network,
            proto: d.proto,
            src: d.src,
            dst: d.dst,
            src_port: d.src_port,
            dst_port: d.dst_port,
            vlan: d.vlan,
            vlan_count: d.vlan_count,
            vni: d.vni,
            ..EventTuple::default()
        })
    }

    /// The flow's tuple as the sender in `dir` sees it.
    fn of_flow(r: &FlowRecord, dir: Dir) -> Self {
        let t = Tuple(r.tuple(0, 0));
        if dir == Dir::ToServer {
            t
        } else {
            t.reversed()
        }
    }

    fn reversed(self) -> Self {
        let t = self.0;
        Tuple(EventTuple {
            src: t.dst,
            dst: t.src,
            src_port: t.dst_port,
            dst_port: t.src_port,
            ..t
        })
    }

    fn view<'a>(&self, to_server: bool, established: bool, payload: &'a [u8]) -> PacketView<'a> {
        let t = &self.0;
        PacketView {
            proto: t.proto,
            src: addr_to_ip(t.network, &t.src),
            dst: addr_to_ip(t.network, &t.dst),
            src_port: t.src_port,
            dst_port: t.dst_port,
            to_server,
            established,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            payload,
        }
    }

    /// Where an event on this tuple happened.
    fn at(&self, ts_ns: u64, flow_id: u64, worker: u16) -> EventTuple {
        EventTuple {
            ts_ns,
            flow_id,
            worker,
            ..self.0
        }
    }

    fn alert(
        &self,
        ts_ns: u64,
        flow_id: u64,
        worker: u16,
        rule: u32,
        blocked: bool,
    ) -> AlertRecord {
        AlertRecord {
            at: self.at(ts_ns, flow_id, worker),
            rule,
            blocked,
        }
    }
}

/// What a stream event does to the matcher: new bytes are matched, a
/// finished direction's state is let go. Returns whether a drop rule
/// matched.
#[allow(clippy::too_many_arguments)]
fn on_stream_event(
    ev: StreamEvent<'_>,
    rules: &mut Rules,
    tuple: &Tuple,
    tuple_dir: Dir,
    established: bool,
    bits: &mut FlowBits,
    ids: (u64, u64),
    hits: &mut [u16; 4],
    out: Out<'_>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) -> bool {
    match ev {
        StreamEvent::Done(session) => {
            if let Some(sc) = rules.scanner.as_mut() {
                sc.release(session);
            }
            false
        }
        StreamEvent::Data(d) => {
            let t = if d.dir == tuple_dir {
                *tuple
            } else {
                tuple.reversed()
            };
            let view = t.view(d.dir == Dir::ToServer, established, d.window);
            let (flow_id, ts) = ids;
            let alert = |rule, b, class: usize| {
                counters.alerts += 1;
                let a = t.alert(ts, flow_id, cfg.id, rule, b);
                out.emit(counters, Event::Alert(a));
                hits[class] += 1;
            };
            let (blocked, lost) = match_stream(rules, &d, &view, cfg.mode, bits, ids, alert);
            counters.flowbits_full += lost;
            blocked
        }
    }
}

/// A flow ended: what its streams still hold is matched (each hole a gap),
/// their sessions go back, its feature record goes to the scorer and its
/// flow record out.
fn flow_ended(
    r: &FlowRecord,
    stream: Option<&mut Reassembly>,
    rules: Option<&mut Rules>,
    scoring: Option<&mut WorkerScoring>,
    events: &Option<Sender<Event>>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) {
    let mut hits = [0u16; 4];
    if let (Some(re), Some(rules)) = (stream, rules) {
        let out = Out {
            events,
            wait: false,
        };
        hits = flow_streams_end(r, re, rules, out, counters, cfg);
    }
    if let Some(ws) = scoring {
        ws.ended(r, &hits, false, &mut counters.scoring);
    }
    offer(events, counters, r);
}

/// Flushes an ended flow's streams into the matcher and frees them.
fn flow_streams_end(
    r: &FlowRecord,
    re: &mut Reassembly,
    rules: &mut Rules,
    out: Out<'_>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) -> [u16; 4] {
    let mut hits = [0u16; 4];
    if r.proto != 6 {
        return hits;
    }
    let tuple = Tuple::of_flow(r, Dir::ToServer);
    let established = r.tcp.is_some_and(|t| t.state.is_established());
    let mut bits = r.bits;
    re.end(r.slot, r.flow_id, &mut |ev| {
        on_stream_event(
            ev,
            rules,
            &tuple,
            Dir::ToServer,
            established,
            &mut bits,
            (r.flow_id, r.end_ns),
            &mut hits,
            out,
            counters,
            cfg,
        );
    });
    hits
}

/// What stage 2 needs to account a whole packet to its flow and match it
/// against the rules: borrowed from the worker's fields for one call.
struct Inspector<'a> {
    flows: &'a mut FlowTable,
    rules: Option<&'a mut Rules>,
    stream: Option<&'a mut Reassembly>,
    checks: &'a mut PacketChecks,
    scoring: Option<&'a mut WorkerScoring>,
    events: &'a Option<Sender<Event>>,
    counters: &'a mut WorkerCounters,
    cfg: &'a WorkerConfig,
}

/// A worker's checksum policies: IPv4 headers and TCP segments are
/// judged apart (a capture can have offloaded TCP checksums and good IP
/// ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketChecks {
    pub ip: Checksums,
    pub tcp: Checksums,
}

impl PacketChecks {
    pub fn new(mode: ChecksumMode) -> Self {
        PacketChecks {
            ip: Checksums::new(mode),
            tcp: Checksums::new(mode),
        }
    }

    /// Whether a packet's IPv4 header checksum passes (the NIC's word
    /// where it gave one).
    fn ip_ok(&mut self, frame: &[u8], d: &Decoded, nic: NicCheck) -> bool {
        if d.network != Network::Ipv4 {
            return true;
        }
        // For a VXLAN tenant frame the NIC's flags speak of the outer packet.
        let nic = if d.vni.is_some() {
            NicCheck::Unknown
        } else {
            nic
        };
        self.ip.admit(|| match nic {
            NicCheck::Good => true,
            NicCheck::Bad => false,
            NicCheck::Unknown => ipv4_checksum_ok(frame, d),
        })
    }
}

/// The urgent byte's sequence number of a TCP segment with URG set: the
/// byte before the urgent pointer (RFC 6093: what every stack does).
fn urgent_seq(d: &Decoded) -> Option<u32> {
    let t = d.tcp;
    (t.flags & crate::decode::tcp::URG != 0 && t.urgent > 0)
        .then(|| t.seq.wrapping_add(u32::from(t.urgent) - 1))
}

impl Inspector<'_> {
    /// Reports an anomaly on the packet (the tuple of its sender).
    fn anomaly(&mut self, tuple: &Tuple, ts: u64, flow_id: u64, event: Anomaly, blocked: bool) {
        let at = tuple.at(ts, flow_id, self.cfg.id);
        offer_event(
            self.events,
            self.counters,
            Event::Anomaly(AnomalyRecord { at, event, blocked }),
        );
    }

    /// Accounts a whole packet (or a rebuilt datagram: one packet of its
    /// flow) and matches it: its TCP payload goes through reassembly to
    /// the stream rules, the packet itself to the packet rules. What the
    /// receiving host would not take (a bad checksum, a segment the TCP
    /// tracker refuses) is not used, and inline it is dropped: what leaves
    /// the box is what was inspected. Returns why an IPS verdict drops the
    /// packet, if one does.
    fn inspect(
        &mut self,
        d: &Decoded,
        pkt: &RawPacket<'_>,
        now: u64,
        pass: u16,
    ) -> Option<DropReason> {
        let (frame, ts) = (pkt.data, pkt.ts_ns);
        let ips = self.cfg.mode == Mode::Ips;
        let at = {
            let Inspector {
                flows,
                rules,
                stream,
                scoring,
                events,
                counters,
                cfg,
                ..
            } = self;
            flows.locate(d, ts, now, pass, &mut |r| {
                flow_ended(
                    r,
                    stream.as_deref_mut(),
                    rules.as_deref_mut(),
                    scoring.as_deref_mut(),
                    events,
                    counters,
                    cfg,
                )
            })
        };
        let start = d.payload_offset as usize;
        let payload = frame
            .get(start..start + d.payload_len as usize)
            .unwrap_or(&[]);
        let tuple = Tuple::of_packet(d);
        if d.anomalies != 0 {
            for a in DecodeAnomaly::ALL.into_iter().filter(|&a| d.has(a)) {
                self.anomaly(&tuple, ts, at.flow_id, Anomaly::Decode(a), false);
            }
        }
        // Checksums before anything is believed. A TCP retransmission of
        // bytes already delivered is checked only if it disagrees (below),
        // so a flood of them costs no checksum work.
        let tcp = d.proto == 6;
        let retransmission = tcp
            && !payload.is_empty()
            && d.tcp.flags
                & (crate::decode::tcp::SYN | crate::decode::tcp::FIN | crate::decode::tcp::RST)
                == 0
            && self.stream.as_deref().is_some_and(|re| {
                re.is_retransmission(at.slot, at.flow_id, at.dir, d.tcp.seq, payload.len())
            });
        let nic_l4 = if d.vni.is_some() {
            NicCheck::Unknown
        } else {
            pkt.l4_checksum
        };
        // A replay pass shifts the addresses the pipeline sees, not the
        // frame's: the checksum is the frame's own.
        let original = if pass == 0 {
            *d
        } else {
            let mut o = *d;
            o.offset_addresses(0u16.wrapping_sub(pass));
            o
        };
        let verify = || match nic_l4 {
            NicCheck::Good => true,
            NicCheck::Bad => false,
            NicCheck::Unknown => tcp_checksum_ok(frame, &original),
        };
        let ip_ok = self.checks.ip_ok(frame, d, pkt.ip_checksum);
        let tcp_ok = !tcp || !ip_ok || retransmission || self.checks.tcp.admit(verify);
        let up = self
            .flows
            .update(at, d, frame.len() as u32, ts, now, ip_ok && tcp_ok);
        if let Some(ws) = self.scoring.as_deref_mut() {
            let flags = tcp.then_some(d.tcp.flags);
            ws.packet(
                self.flows,
                &mut self.counters.scoring,
                &up,
                payload,
                flags,
                ts,
            );
        }
        if let (Some(why), true) = (up.dropped, ips) {
            return Some(why);
        }
        // What the host would not take: reported, not used, dropped inline.
        let mut verdict = None;
        let refusal = if !ip_ok {
            Some((Anomaly::Ipv4BadChecksum, DropReason::InvalidChecksum))
        } else {
            up.fate.why().map(|w| {
                let reason = if w == Why::BadChecksum {
                    DropReason::InvalidChecksum
                } else {
                    DropReason::Insertion
                };
                (Anomaly::Tcp(w), reason)
            })
        };
        if let Some((anomaly, reason)) = refusal {
            self.anomaly(&tuple, ts, up.flow_id, anomaly, ips);
            if ips {
                return Some(reason);
            }
        }
        if !ip_ok || matches!(up.fate, Fate::Refused(_)) {
            return None;
        }
        let urgent = if tcp { urgent_seq(d) } else { None };
        let urgent_policy = self.cfg.stream.urgent;
        if urgent.is_some() && !payload.is_empty() && urgent_policy != UrgentPolicy::Inline {
            let blocked = ips && urgent_policy == UrgentPolicy::Drop;
            self.anomaly(&tuple, ts, up.flow_id, Anomaly::StreamUrgentData, blocked);
            if blocked {
                return Some(DropReason::Insertion);
            }
        }
        // The payload the host takes: none of a SYN's without Fast Open.
        let payload = if matches!(up.fate, Fate::DataRefused(_)) {
            &[][..]
        } else {
            payload
        };
        let suspect = matches!(up.fate, Fate::Suspect(_));
        let Inspector {
            flows,
            rules,
            stream,
            checks,
            scoring,
            events,
            counters,
            cfg,
        } = self;
        let rules = rules.as_deref_mut()?;
        let mut bits = flows.bits(up.slot);
        let before = bits;
        let ids = (up.flow_id, ts);
        // Alerts per signature class, for the flow's features.
        let mut hits = [0u16; 4];
        // Stream rules take the packet alone unless its direction is
        // reassembled (not TCP, no reassembly, or a refused direction).
        let mut with_stream_rules = true;
        if let (true, Some(re)) = (tcp, stream.as_deref_mut()) {
            let seg = Segment {
                seq: d.tcp.seq,
                ack: up.ack,
                payload,
                suspect,
                urgent,
                receiver: d.dst_ip(),
            };
            let isn = flows.tcp_isn(up.slot, up.dir);
            let mut stream_drop = false;
            let mut on_event = |ev: StreamEvent<'_>| {
                stream_drop |= on_stream_event(
                    ev,
                    rules,
                    &tuple,
                    up.dir,
                    up.established,
                    &mut bits,
                    ids,
                    &mut hits,
                    Out {
                        events,
                        wait: false,
                    },
                    counters,
                    cfg,
                );
            };
            let placed = re.segment(up.slot, up.flow_id, up.dir, isn, &seg, &mut on_event);
            if up.rst {
                re.reset(up.slot, up.flow_id, &mut on_event);
            }
            with_stream_rules = placed.unstreamed;
            if stream_drop {
                verdict = Some(DropReason::Rule);
            }
            let mut notes: [Option<(Anomaly, bool)>; 4] = [None; 4];
            if placed.overlap_different && retransmission && !checks.tcp.admit(verify) {
                // A corrupt copy the receiver drops: no conflict.
            } else if placed.overlap_different {
                if ips && verdict.is_none() {
                    verdict = Some(DropReason::StreamOverlap);
                }
                notes[0] = Some((Anomaly::StreamOverlapDifferentData, ips));
            }
            if placed.replaced_suspect {
                notes[1] = Some((Anomaly::StreamInsertionReplaced, false));
            }
            if placed.tls_lost_sync {
                notes[2] = Some((Anomaly::TlsRecordInvalid, false));
            }
            if placed.exception {
                counters.exception_stream += 1;
                let act = match cfg.exception {
                    ExceptionPolicy::Pass => None,
                    ExceptionPolicy::DropPacket => Some(DropReason::ExceptionPolicy),
                    ExceptionPolicy::DropFlow => {
                        flows.mark_exception(up.slot);
                        Some(DropReason::ExceptionPolicy)
                    }
                };
                if ips && verdict.is_none() {
                    verdict = act;
                }
                notes[3] = Some((Anomaly::ExceptionPolicy, ips && act.is_some()));
            }
            for (event, blocked) in notes.into_iter().flatten() {
                offer_event(
                    events,
                    counters,
                    Event::Anomaly(AnomalyRecord {
                        at: tuple.at(ts, up.flow_id, cfg.id),
                        event,
                        blocked,
                    }),
                );
            }
        }
        if !suspect {
            let view = PacketView {
                tcp_flags: if tcp { d.tcp.flags } else { 0 },
                icmp_type: d.icmp_type,
                icmp_code: d.icmp_code,
                ..tuple.view(up.dir == Dir::ToServer, up.established, payload)
            };
            let on_alert = |rule, blocked, class: usize| {
                counters.alerts += 1;
                let alert = tuple.alert(ts, up.flow_id, cfg.id, rule, blocked);
                offer_event(events, counters, Event::Alert(alert));
                hits[class] += 1;
            };
            let (blocked, lost) = match_rules(
                rules,
                &view,
                cfg.mode,
                &mut bits,
                with_stream_rules,
                ids,
                on_alert,
            );
            counters.flowbits_full += lost;
            if blocked && verdict.is_none() {
                verdict = Some(DropReason::Rule);
            }
        }
        if let (true, Some(ws)) = (hits != [0; 4], scoring.as_deref_mut()) {
            ws.add_hits(up.slot, &hits);
        }
        if bits != before {
            flows.set_bits(up.slot, bits);
        }
        if verdict == Some(DropReason::Rule) {
            flows.mark_dropped(up.slot);
        }
        verdict.filter(|_| ips)
    }

    /// A reassembled datagram: decoded and inspected like a whole packet.
    fn datagram(&mut self, frame: &[u8], ts: u64, now: u64, pass: u16) -> Option<DropReason> {
        match decode(frame) {
            Ok(mut d) if d.is_ip() && !d.fragment => {
                if pass != 0 {
                    d.offset_addresses(pass);
                }
                self.inspect(&d, &RawPacket::new(frame, ts), now, pass)
            }
            _ => None,
        }
    }
}

/// Accounts held datagrams stamped before `upto_ns` (all of them with
/// u64::MAX), in time order, and returns their buffers to the pool.
fn release_held(
    held: &mut Vec<Datagram>,
    upto_ns: u64,
    now_ns: u64,
    inspector: &mut Inspector<'_>,
    pool: Option<&Sender<Vec<u8>>>,
) {
    let n = held
        .iter()
        .take_while(|d| d.ts_ns < upto_ns || upto_ns == u64::MAX)
        .count();
    for dg in held.drain(..n) {
        // Its fragments were forwarded by the worker that reassembled it, so
        // a drop verdict here can only stop the flow's later packets.
        let _ = inspector.datagram(&dg.buf, dg.ts_ns, now_ns.max(dg.ts_ns), dg.pass);
        if let Some(p) = pool {
            let _ = p.try_send(dg.buf);
        }
    }
}

/// Where a worker's events go: its ring to the EVE writer, and whether to
/// wait for room (only at shutdown; on the hot path a full ring drops and
/// counts).
#[derive(Clone, Copy)]
struct Out<'a> {
    events: &'a Option<Sender<Event>>,
    wait: bool,
}

impl Out<'_> {
    fn emit(&self, c: &mut WorkerCounters, ev: Event) {
        match (self.events, self.wait) {
            (Some(tx), true) => match tx.send(ev) {
                Ok(()) => c.events_sent += 1,
                Err(_) => c.events_dropped += 1,
            },
            _ => offer_event(self.events, c, ev),
        }
    }
}

/// Sends a flow record without waiting; counts what a full ring loses.
fn offer(events: &Option<Sender<Event>>, c: &mut WorkerCounters, r: &FlowRecord) {
    offer_event(events, c, Event::Flow(*r));
}

fn offer_event(events: &Option<Sender<Event>>, c: &mut WorkerCounters, ev: Event) {
    if let Some(tx) = events {
        match tx.try_send(ev) {
            Ok(()) => c.events_sent += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => c.events_dropped += 1,
        }
    }
}

impl Worker {
    /// Everything the worker needs is allocated here, once.
    pub fn new(cfg: WorkerConfig, events: Option<Sender<Event>>) -> Self {
        Worker {
            flows: FlowTable::new(cfg.flow_capacity, cfg.timeouts, cfg.id),
            cfg,
            counters: WorkerCounters::default(),
            events,
            now_ns: 0,
            latency: Latency::new(),
            defrag: Defrag::new(cfg.defrag),
            rss: SoftRss::with_reta_size(cfg.workers.max(1), cfg.reta_size),
            handoff: None,
            held: Vec::with_capacity(HELD_MAX),
            rules: None,
            stream: None,
            checks: PacketChecks::new(cfg.checksum),
            scoring: None,
        }
    }

    /// Publishes flow feature records to the scorer and takes its verdicts.
    pub fn with_scoring(mut self, link: ScoringLink) -> Self {
        self.scoring = Some(WorkerScoring::new(link, self.flows.capacity(), self.cfg.id));
        self
    }

    /// Matches packets against the rules of `engine`, with a scratch of
    /// this worker's own (allocated here, once).
    pub fn with_engine(mut self, engine: Arc<Engine>) -> Result<Self, String> {
        let keys = if engine.has_thresholds() {
            THRESHOLD_KEYS
        } else {
            0
        };
        let mut scanner = None;
        let state = StreamScanner::session_bytes(&engine)?;
        if let Some(state) = state.filter(|_| self.cfg.stream.enabled) {
            let re = Reassembly::new(self.cfg.stream, self.flows.capacity(), state);
            scanner = StreamScanner::new(&engine, re.capacity())?;
            self.stream = Some(re);
        }
        let n = engine.rules.len();
        self.rules = Some(Rules {
            scratch: engine.scratch()?,
            inspection: engine.inspection(),
            thresholds: ThresholdTable::new(keys),
            scanner,
            cands: Vec::with_capacity(n),
            hits: Vec::with_capacity(n),
            tries: Vec::with_capacity(n),
            seen: vec![0; n],
            epoch: 0,
            alerts_discarded: 0,
            engine,
        });
        Ok(self)
    }

    /// Joins the handoff mesh (needed with more than one worker, so that a
    /// datagram reassembled here reaches the worker that owns its flow).
    pub fn with_handoff(mut self, h: Handoff) -> Self {
        self.handoff = Some(h);
        self
    }

    /// The inbound handoff ring, for loops that wait on it with others.
    pub fn handoff_receiver(&self) -> Option<Receiver<Datagram>> {
        self.handoff.as_ref().map(|h| h.from.clone())
    }

    /// Accounts a datagram another worker reassembled, and returns its buffer.
    pub fn accept(&mut self, dg: Datagram) {
        // Held until this worker's own packets reach the datagram's time, so
        // it meets its flow as the wire ordered them (after the handshake).
        if self.held.len() == HELD_MAX {
            let oldest = self.held[0].ts_ns;
            self.release(oldest.saturating_add(1));
        }
        let at = self.held.partition_point(|d| d.ts_ns <= dg.ts_ns);
        self.held.insert(at, dg);
    }

    /// Accounts held datagrams stamped before `upto_ns` (all: u64::MAX).
    fn release(&mut self, upto_ns: u64) {
        let Worker {
            flows,
            events,
            counters,
            now_ns,
            handoff,
            held,
            rules,
            stream,
            checks,
            scoring,
            cfg,
            ..
        } = self;
        let mut inspector = Inspector {
            flows,
            rules: rules.as_mut(),
            stream: stream.as_mut(),
            checks,
            scoring: scoring.as_mut(),
            events,
            counters,
            cfg,
        };
        let pool = handoff.as_ref().map(|h| &h.pool_put);
        release_held(held, upto_ns, *now_ns, &mut inspector, pool);
    }

    /// Takes what other workers handed over, without waiting.
    pub fn poll_handoffs(&mut self) {
        while let Some(dg) = self.handoff.as_ref().and_then(|h| h.from.try_recv().ok()) {
            self.accept(dg);
        }
    }

    /// This worker will reassemble nothing more: it lets go of its rings to
    /// the others, then takes what they still hand over until every one of
    /// them has done the same.
    pub fn close_handoffs(&mut self) {
        let Some(rx) = self.handoff.as_mut().map(|h| {
            h.to.clear();
            h.from.clone()
        }) else {
            return;
        };
        for dg in rx.iter() {
            self.accept(dg);
        }
        self.release(u64::MAX);
    }

    /// Bytes one reassembled direction takes: its session with the
    /// matcher's state, and its window block once it carries data.
    pub fn stream_bytes_per_direction(&self) -> Option<(usize, usize)> {
        self.stream.as_ref().map(Reassembly::bytes_per_direction)
    }

    /// Processing-time histograms so far.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    pub fn id(&self) -> u16 {
        self.cfg.id
    }

    /// The worker's capture-time clock.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// A copy of the counters, flow-table counters folded in.
    /// `sink_packets` is the caller's to fill: the sink is its.
    pub fn counters(&self) -> WorkerCounters {
        let mut c = self.counters;
        c.flows = self.flows.counters;
        c.flows_active = self.flows.active();
        c.frag = self.defrag.counters;
        if let Some(r) = &self.rules {
            c.alerts_thresholded = r.thresholds.suppressed;
            c.alerts_discarded = r.alerts_discarded;
            c.inspection = r.inspection.counters;
            c.threshold_table_full = r.thresholds.full;
            if let Some(sc) = &r.scanner {
                c.stream_match = sc.counters;
            }
        }
        if let Some(re) = &self.stream {
            c.stream = re.counters;
        }
        c.stream.checksum_bad = self.checks.tcp.bad;
        c.stream.checksum_off = u64::from(self.checks.tcp.turned_off);
        c.ipv4_checksum_bad = self.checks.ip.bad;
        c.ipv4_checksum_off = u64::from(self.checks.ip.turned_off);
        c
    }

    /// Runs a burst through the pipeline and writes a verdict per packet
    /// into `verdicts` (which must be at least as long). `pass` is the
    /// replay pass (`--loop`), 0 on live traffic. Bursts longer than
    /// `BURST_SIZE` are taken in slices.
    pub fn process_burst(&mut self, pkts: &[RawPacket<'_>], pass: u16, verdicts: &mut [Verdict]) {
        for (chunk, out) in pkts.chunks(BURST_SIZE).zip(verdicts.chunks_mut(BURST_SIZE)) {
            // The monotonic clock is read twice per burst (vDSO, no syscall).
            let start = std::time::Instant::now();
            self.process_chunk(chunk, pass, out);
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.latency.record_burst(ns, chunk.len() as u64);
        }
    }

    /// The sink refused forwarded packets (a full TX queue): they move from
    /// tx to dropped(tx_full).
    pub fn tx_failed(&mut self, packets: u64, bytes: u64) {
        self.counters.tx_packets -= packets.min(self.counters.tx_packets);
        self.counters.tx_bytes -= bytes.min(self.counters.tx_bytes);
        self.counters.dropped[DropReason::TxFull.index()] += packets;
    }

    fn process_chunk(&mut self, pkts: &[RawPacket<'_>], pass: u16, verdicts: &mut [Verdict]) {
        if !self.cfg.inspect {
            for (p, out) in pkts.iter().zip(verdicts.iter_mut()) {
                let len = p.data.len() as u64;
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += len;
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += len;
                *out = Verdict::Forward;
            }
            return;
        }
        let n = pkts.len();
        let mut decoded = [Decoded::default(); BURST_SIZE];
        let mut errors: [Option<DecodeError>; BURST_SIZE] = [None; BURST_SIZE];

        // Stage 1: decode the burst.
        for (i, p) in pkts.iter().enumerate() {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += p.data.len() as u64;
            match decode(p.data) {
                Ok(mut d) => {
                    if pass != 0 {
                        d.offset_addresses(pass);
                    }
                    self.count_layers(&d);
                    decoded[i] = d;
                }
                Err(e) => {
                    self.counters.decode_errors[e.index()] += 1;
                    errors[i] = Some(e);
                }
            }
        }

        // Stage 2: flows. The clock moves packet by packet (never back), so
        // a burst that spans a gap in capture time still times flows out
        // where they went idle.
        let Worker {
            flows,
            events,
            counters,
            now_ns,
            defrag,
            rss,
            handoff,
            held,
            rules,
            stream,
            checks,
            scoring,
            cfg,
            ..
        } = self;
        // Verdicts the scorer sent since the last burst.
        if let Some(ws) = scoring.as_ref() {
            ws.take_verdicts(flows, &mut counters.scoring);
        }
        let mut rule_drop: [Option<DropReason>; BURST_SIZE] = [None; BURST_SIZE];
        for i in 0..n {
            *now_ns = (*now_ns).max(pkts[i].ts_ns);
            let d = &decoded[i];
            if errors[i].is_some() || !d.is_ip() {
                continue;
            }
            let ts = pkts[i].ts_ns;
            let mut inspector = Inspector {
                flows,
                rules: rules.as_mut(),
                stream: stream.as_mut(),
                checks,
                scoring: scoring.as_mut(),
                events,
                counters,
                cfg,
            };
            if !held.is_empty() {
                let pool = handoff.as_ref().map(|h| &h.pool_put);
                release_held(held, ts, *now_ns, &mut inspector, pool);
            }
            if !d.fragment {
                rule_drop[i] = inspector.inspect(d, &pkts[i], *now_ns, pass);
                continue;
            }
            // A fragment: reassemble; a whole datagram goes to the worker
            // its 5-tuple hashes to (fragments were spread on addresses).
            let Some(dg) = defrag.fragment(pkts[i].data, d, *now_ns, pass) else {
                continue;
            };
            let owner = rss.queue_for(dg, pass);
            match handoff
                .as_ref()
                .and_then(|h| h.to.get(usize::from(owner))?.as_ref().map(|t| (h, t)))
            {
                None => {
                    // Dropping the fragment that completes a blocked datagram
                    // keeps the receiver from ever reassembling it.
                    rule_drop[i] = inspector.datagram(dg, ts, *now_ns, pass);
                }
                Some((h, to)) => {
                    let sent = h.pool_get.try_recv().ok().and_then(|mut buf| {
                        buf.clear();
                        buf.extend_from_slice(dg);
                        to.try_send(Datagram {
                            buf,
                            ts_ns: ts,
                            pass,
                        })
                        .ok()
                    });
                    if sent.is_some() {
                        defrag.counters.handoffs += 1;
                    } else {
                        defrag.counters.handoff_drops += 1;
                    }
                }
            }
        }

        // Stage 3: verdicts.
        for ((i, p), out) in pkts.iter().enumerate().zip(verdicts.iter_mut()) {
            let verdict = match (errors[i], self.cfg.mode, self.cfg.malformed) {
                (Some(_), Mode::Ips, MalformedPolicy::Drop) => Verdict::Drop(DropReason::Malformed),
                _ if rule_drop[i].is_some() => {
                    Verdict::Drop(rule_drop[i].unwrap_or(DropReason::Rule))
                }
                _ => Verdict::Forward,
            };
            match verdict {
                Verdict::Forward => {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += p.data.len() as u64;
                }
                Verdict::Drop(r) => self.counters.dropped[r.index()] += 1,
            }
            *out = verdict;
        }

        self.expire();
    }

    fn count_layers(&mut self, d: &Decoded) {
        let c = &mut self.counters.decoded;
        if d.vlan_count > 0 {
            c.vlan_tagged += 1;
        }
        if d.vni.is_some() {
            c.vxlan += 1;
        }
        match d.network {
            Network::Arp => c.arp += 1,
            Network::Ipv4 => c.ipv4 += 1,
            Network::Ipv6 => c.ipv6 += 1,
        }
        if !d.is_ip() {
            return;
        }
        if d.fragment {
            match d.network {
                Network::Ipv6 => c.ipv6_fragments += 1,
                _ => c.ipv4_fragments += 1,
            }
            return;
        }
        match d.proto {
            6 => c.tcp += 1,
            17 => c.udp += 1,
            1 if d.network == Network::Ipv4 => c.icmpv4 += 1,
            58 if d.network == Network::Ipv6 => c.icmpv6 += 1,
            _ => c.other_ip += 1,
        }
    }

    /// Moves the clock on without packets (a source's idle tick) and runs
    /// timeouts.
    pub fn tick(&mut self, now_ns: u64) {
        if let Some(ws) = &self.scoring {
            ws.take_verdicts(&mut self.flows, &mut self.counters.scoring);
        }
        self.now_ns = self.now_ns.max(now_ns);
        self.release(self.now_ns.saturating_add(1));
        self.expire();
    }

    fn expire(&mut self) {
        let Worker {
            flows,
            events,
            counters,
            now_ns,
            stream,
            rules,
            scoring,
            cfg,
            ..
        } = self;
        flows.expire(*now_ns, EXPIRE_BUDGET, &mut |r| {
            flow_ended(
                r,
                stream.as_mut(),
                rules.as_mut(),
                scoring.as_mut(),
                events,
                counters,
                cfg,
            )
        });
        self.defrag.expire(self.now_ns);
    }

    /// Ends every flow with `reason` and returns the final counters and
    /// latency. Off the hot path, so here the worker does wait for room in
    /// the event ring: shutdown records are not dropped.
    pub fn finish(mut self, reason: EndReason) -> (WorkerCounters, Latency) {
        let Worker {
            flows,
            events,
            counters,
            stream,
            rules,
            scoring,
            cfg,
            ..
        } = &mut self;
        flows.flush(reason, &mut |r| {
            // What the streams still hold is matched first.
            let mut hits = [0u16; 4];
            if let (Some(re), Some(rules)) = (stream.as_mut(), rules.as_mut()) {
                // Shutdown: their alerts wait for room like the records.
                let out = Out { events, wait: true };
                hits = flow_streams_end(r, re, rules, out, counters, cfg);
            }
            if let Some(ws) = scoring.as_mut() {
                // The scorer is draining: waiting here loses nothing.
                ws.ended(r, &hits, true, &mut counters.scoring);
            }
            if let Some(tx) = events {
                match tx.send(Event::Flow(*r)) {
                    Ok(()) => counters.events_sent += 1,
                    Err(_) => counters.events_dropped += 1,
                }
            }
        });
        (self.counters(), self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{Route, Side, TcpConversation};
    use crate::flow::FlowState;

    fn cfg(mode: Mode, malformed: MalformedPolicy) -> WorkerConfig {
        WorkerConfig {
            id: 0,
            mode,
            flow_capacity: 64,
            timeouts: Timeouts::default(),
            malformed,
            inspect: true,
            defrag: DefragConfig::default(),
            workers: 1,
            reta_size: crate::rss::RETA_SIZE,
            stream: StreamConfig::default(),
            checksum: ChecksumMode::Auto,
            exception: ExceptionPolicy::Pass,
        }
    }

    fn raw(pkts: &[(u64, Vec<u8>)]) -> Vec<RawPacket<'_>> {
        pkts.iter().map(|(ts, f)| RawPacket::new(f, *ts)).collect()
    }

    /// Runs packets through and returns their verdicts.
    fn run(w: &mut Worker, pkts: &[(u64, Vec<u8>)], pass: u16) -> Vec<Verdict> {
        let mut v = vec![Verdict::Forward; pkts.len()];
        w.process_burst(&raw(pkts), pass, &mut v);
        v
    }

    fn conversation() -> Vec<(u64, Vec<u8>)> {
        let r = Route::new("10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap());
        let mut c = TcpConversation::new(r, 40000, 8000, 1_000_000_000);
        c.handshake()
            .send(Side::Client, &[b'x'; 3000], 1448)
            .close(Side::Client);
        let mut p = c.into_packets();
        let mut bad = p[3].1.clone();
        bad.truncate(40); // cut inside the TCP header: shorter than IPv4 says
        p.push((p.last().unwrap().0 + 1, bad));
        p
    }

    #[test]
    fn every_packet_is_accounted_for() {
        let pkts = conversation();
        for (mode, pol, dropped) in [
            (Mode::Ids, MalformedPolicy::Pass, 0),
            (Mode::Ips, MalformedPolicy::Pass, 0),
            (Mode::Ips, MalformedPolicy::Drop, 1),
        ] {
            let mut w = Worker::new(cfg(mode, pol), None);
            let verdicts = run(&mut w, &pkts, 0);
            let (c, _) = w.finish(EndReason::Shutdown);
            assert_eq!(c.rx_packets, pkts.len() as u64);
            assert_eq!(c.rx_packets, c.tx_packets + c.dropped_total());
            assert_eq!(c.dropped[DropReason::Malformed.index()], dropped);
            let forwarded = verdicts.iter().filter(|v| **v == Verdict::Forward).count();
            assert_eq!(forwarded as u64, c.tx_packets);
            if dropped == 1 {
                assert_eq!(
                    *verdicts.last().unwrap(),
                    Verdict::Drop(DropReason::Malformed)
                );
            }
            assert_eq!(c.decode_errors[DecodeError::Ipv4Truncated.index()], 1);
            assert_eq!(c.decoded.tcp, pkts.len() as u64 - 1);
            assert_eq!(c.flows.created, 1);
            assert_eq!(c.flows.ended, 1);
        }
    }

    #[test]
    fn records_reach_the_ring_and_a_full_ring_is_counted() {
        let pkts = conversation();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), Some(tx));
        let r = Route::new("10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap());
        let udp: Vec<_> = (0..3u16).map(|p| (0u64, r.udp(p, 53, b"q"))).collect();
        run(&mut w, &udp, 0);
        // Jump an hour: all three UDP flows time out in one burst, and the
        // one-slot ring takes one of them.
        w.tick(3_600_000_000_000);
        let c = w.counters();
        assert_eq!((c.events_sent, c.events_dropped), (1, 2));
        let Event::Flow(rec) = rx.try_recv().unwrap() else {
            panic!("a flow record");
        };
        assert_eq!(rec.reason, EndReason::Timeout);
        run(&mut w, &pkts, 0);
        let handle = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
        let (c, _) = w.finish(EndReason::Shutdown);
        let rest = handle.join().unwrap();
        assert_eq!(rest.len(), 1, "shutdown records wait for room");
        assert!(matches!(rest[0], Event::Flow(r) if r.state == FlowState::Closed));
        assert_eq!(c.events_sent, 2);
    }

    #[test]
    fn a_handed_over_datagram_waits_for_its_place_in_time() {
        // Another worker reassembled the client's data segment and handed
        // it over before this worker saw the handshake: held, it meets the
        // flow after the SYN (one flow, started by the SYN), not before it.
        let pkts = conversation();
        let (data_ts, data) = pkts[3].clone();
        let (tx, rx) = crossbeam_channel::bounded(16);
        let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), Some(tx));
        w.accept(Datagram {
            buf: data,
            ts_ns: data_ts,
            pass: 0,
        });
        let rest: Vec<_> = pkts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, p)| p.clone())
            .collect();
        run(&mut w, &rest[..3], 0);
        assert_eq!(w.held.len(), 1, "the handshake is older than the datagram");
        run(&mut w, &rest[3..], 0);
        assert!(w.held.is_empty(), "a later packet releases it");
        let (c, _) = w.finish(EndReason::Shutdown);
        let recs: Vec<_> = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Flow(r) if r.proto == 6 => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0].start_ns, pkts[0].0, "the SYN opened the flow");
        assert_eq!(recs[0].state, FlowState::Closed);
        let to_server = pkts
            .iter()
            .filter(|(_, f)| decode(f).is_ok_and(|d| d.dst_port == 8000))
            .count() as u64;
        assert_eq!(recs[0].pkts_toserver, to_server);
        assert_eq!(c.rx_packets, rest.len() as u64, "datagrams are not rx");
    }

    /// One stream rule: "zzz" anywhere in a TCP stream.
    fn zzz_engine() -> Arc<Engine> {
        let rule = r#"alert tcp any any -> any any (msg:"x"; content:"zzz"; sid:1;)"#;
        Arc::new(crate::detect::load_text(rule, &Default::default()).0)
    }

    #[test]
    fn the_nics_checksum_verdict_is_taken_where_it_gives_one() {
        let engine = zzz_engine();
        let mut pkts = conversation();
        pkts.pop(); // the truncated one
        let data = |f: &[u8]| decode(f).is_ok_and(|d| d.payload_len > 0);
        let with = |pkts: &[(u64, Vec<u8>)], hint: NicCheck| {
            let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), None)
                .with_engine(Arc::clone(&engine))
                .unwrap();
            let raw: Vec<_> = pkts
                .iter()
                .map(|(ts, f)| RawPacket {
                    l4_checksum: hint,
                    ..RawPacket::new(f, *ts)
                })
                .collect();
            let mut v = vec![Verdict::Forward; raw.len()];
            w.process_burst(&raw, 0, &mut v);
            w.counters().stream
        };
        let segments = pkts.iter().filter(|(_, f)| data(f)).count() as u64;
        // Valid checksums the NIC calls bad: every segment kept out, the
        // handshake too, as the NIC says.
        let c = with(&pkts, NicCheck::Bad);
        assert_eq!((c.checksum_bad, c.bytes), (pkts.len() as u64, 0));
        // Broken checksums the NIC calls good: taken, no software check.
        let mut broken = pkts.clone();
        for (_, f) in broken.iter_mut().filter(|(_, f)| data(f)) {
            f[50] ^= 0xff;
        }
        let c = with(&broken, NicCheck::Good);
        assert_eq!((c.checksum_bad, c.bytes), (0, 3000));
        // No word from the NIC: software finds them broken.
        let c = with(&broken, NicCheck::Unknown);
        assert_eq!((c.checksum_bad, c.bytes), (segments, 0));
    }

    #[test]
    fn alerts_from_the_shutdown_flush_wait_for_room() {
        let engine = zzz_engine();
        // Three flows, each with "zzz" held behind a hole that never fills:
        // only the shutdown flush matches it.
        let mut pkts = Vec::new();
        for port in 0..3u16 {
            let r = Route::new("10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap());
            let mut c = TcpConversation::new(r, 41000 + port, 8000, 1_000_000_000);
            c.handshake();
            let (seq, ack) = (c.client_seq(), c.server_seq());
            c.raw(Side::Client, seq + 10, ack, 0x18, b"zzz");
            pkts.extend(c.into_packets());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), Some(tx))
            .with_engine(engine)
            .unwrap();
        run(&mut w, &pkts, 0);
        let drain = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
        let (c, _) = w.finish(EndReason::Shutdown);
        let events = drain.join().unwrap();
        let alerts = events
            .iter()
            .filter(|e| matches!(e, Event::Alert(_)))
            .count();
        assert_eq!(alerts, 3, "one per flow, none lost to the one-slot ring");
        assert_eq!(c.events_dropped, 0);
        assert_eq!(c.stream.gaps, 3);
    }

    #[test]
    fn replay_passes_make_distinct_flows() {
        let pkts = conversation();
        let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), None);
        run(&mut w, &pkts, 0);
        run(&mut w, &pkts, 1);
        assert_eq!(w.counters().flows.created, 2);
    }

    #[test]
    fn refused_transmits_become_tx_full_drops() {
        let pkts = conversation();
        let mut w = Worker::new(cfg(Mode::Ips, MalformedPolicy::Pass), None);
        run(&mut w, &pkts, 0);
        w.tx_failed(2, 120);
        let c = w.counters();
        assert_eq!(c.dropped[DropReason::TxFull.index()], 2);
        assert_eq!(c.rx_packets, c.tx_packets + c.dropped_total());
    }
}
