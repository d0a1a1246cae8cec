//! The worker pipeline: what one pinned core does to each burst, whatever
//! the packet source. Stages run a burst at a time — decode every packet,
//! then account every packet to its flow, then hand out verdicts — so each
//! stage's code and data stay hot. The caller acts on the verdicts (sends
//! or frees the packets) and reports what its sink refused. Nothing here allocates, locks, logs or
//! makes a syscall per packet: counters are plain fields, flow records leave
//! through a bounded ring with `try_send` (a full ring is counted, the worker
//! never waits), and the clock is the packets' own, read once per burst.

use crate::applayer::{AppConfig, AppLayer};
use crate::decode::{
    addr_to_ip, decode, ipv4_checksum_ok, tcp_checksum_ok, DecodeAnomaly, DecodeError, Decoded,
    Network,
};
use crate::defrag::{Defrag, DefragConfig, FragFate};
use crate::detect::reload::{SwapCounters, WorkerReload};
use crate::detect::stream::StreamScanner;
use crate::detect::{Engine, PacketView};
use crate::eve::{AlertRecord, Anomaly, AnomalyRecord, Event, EventTuple, FlowSnap, PktSrc};
use crate::flow::bits::FlowBits;
use crate::flow::tcp::{Dir, Fate, Why};
use crate::flow::{EndReason, FlowRecord, FlowTable, Timeouts};
use crate::io::{DropReason, NicCheck, RawPacket, Verdict, BURST_SIZE};
use crate::policy::enforce::WorkerPolicy;
use crate::reassembly::policy::UrgentPolicy;
use crate::reassembly::{ChecksumMode, Checksums, Reassembly, Segment, StreamConfig, StreamEvent};
use crate::rss::SoftRss;
use crate::scoring::{features, ScoringLink, WorkerScoring};
use crate::stats::{Latency, WorkerCounters};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;

mod events;
mod handoff;
mod inspect;
mod reload;

pub use crate::defrag::handoff::{handoff_mesh, Datagram, Handoff, MAX_HELD_FRAGMENTS};
use crate::defrag::handoff::{FragVerdict, HeldFragments, HELD_MAX};
use crate::detect::matcher::{match_rules, match_stream, Matcher};
pub use crate::events::EventRings;
use events::*;
pub use inspect::PacketChecks;
use inspect::*;

pub use crate::io::Mode;

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
    /// The app layer's limits (on: parsed when the streams are).
    pub app: AppConfig,
    /// VLAN ids are part of a flow's key.
    pub vlan_tracking: bool,
}

/// Flows expired per burst at most, so a mass timeout is spread over bursts
/// instead of stalling one.
const EXPIRE_BUDGET: usize = 256;

pub struct Worker {
    cfg: WorkerConfig,
    flows: FlowTable,
    counters: WorkerCounters,
    events: EventRings,
    now_ns: u64,
    latency: Latency,
    rules: Option<Matcher>,
    defrag: Defrag,
    rss: SoftRss,
    handoff: Option<Handoff>,
    /// Datagrams other workers handed over, in capture-time order, waiting
    /// for this worker's own packets to reach their time (preallocated).
    held: Vec<Datagram>,
    /// Inline: fragments waiting for their datagram's verdict from the
    /// worker that owns its flow.
    held_frags: HeldFragments,
    /// TCP reassembly, when some rule matches the stream or the app layer
    /// parses it.
    stream: Option<Reassembly>,
    /// The app layer's parsers, fed by reassembly.
    app: Option<AppLayer>,
    checks: PacketChecks,
    /// This worker's rings to and from the scorer, and its flows' feature
    /// accumulators.
    scoring: Option<WorkerScoring>,
    /// Where reloaded rules come from (a matcher built off this core).
    reload: Option<WorkerReload>,
    /// The segmentation policy (zones, decisions, counters per pair).
    policy: Option<WorkerPolicy>,
    swaps: SwapCounters,
}

impl Worker {
    /// Everything the worker needs is allocated here, once.
    pub fn new(cfg: WorkerConfig, events: Option<Sender<Event>>) -> Self {
        Worker::with_rings(cfg, EventRings::single(events))
    }

    /// A worker whose events leave by `rings` (alerts on a ring of their
    /// own).
    pub fn with_rings(cfg: WorkerConfig, mut events: EventRings) -> Self {
        events.set_worker(cfg.id);
        let mut flows = FlowTable::new(cfg.flow_capacity, cfg.timeouts, cfg.id);
        flows.track_vlans(cfg.vlan_tracking);
        flows.tcp_policy(cfg.stream.midstream, cfg.stream.inline);
        Worker {
            flows,
            cfg,
            counters: WorkerCounters::default(),
            events,
            now_ns: 0,
            latency: Latency::new(),
            defrag: Defrag::new(cfg.defrag),
            rss: SoftRss::with_reta_size(cfg.workers.max(1), cfg.reta_size),
            handoff: None,
            held: Vec::with_capacity(HELD_MAX),
            held_frags: HeldFragments::new(),
            rules: None,
            stream: None,
            app: None,
            checks: PacketChecks::new(cfg.checksum),
            scoring: None,
            reload: None,
            policy: None,
            swaps: SwapCounters::default(),
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
        let mut sessions = None;
        let state = StreamScanner::session_bytes(&engine)?;
        let app = self.cfg.app.enabled;
        if self.cfg.stream.enabled && (state.is_some() || app) {
            let re = match state {
                Some(state) => Reassembly::new(self.cfg.stream, self.flows.capacity(), state),
                None => Reassembly::for_parsers(self.cfg.stream, self.flows.capacity()),
            };
            sessions = state.map(|_| re.capacity());
            self.stream = Some(re);
            if app {
                let mut cfg = self.cfg.app;
                cfg.http.keep_bodies = engine.reads_bodies();
                cfg.http.hashes |= engine.file_hashes_needed();
                self.app = Some(AppLayer::new(cfg, self.flows.capacity()));
            }
        }
        self.rules = Some(Matcher::new(engine, sessions)?);
        Ok(self)
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
        if let Some(a) = &self.app {
            c.app = a.counters();
        }
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
        c.rules_swap = self.swaps;
        c
    }

    /// Runs a burst through the pipeline and writes a verdict per packet
    /// into `verdicts` (which must be at least as long). `pass` is the
    /// replay pass (`--loop`), 0 on live traffic. Bursts longer than
    /// `BURST_SIZE` are taken in slices.
    pub fn process_burst(&mut self, pkts: &[RawPacket<'_>], pass: u16, verdicts: &mut [Verdict]) {
        self.poll_reload(pkts.len());
        self.poll_verdicts();
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

        // The burst's bytes are asked for all at once, a load per cache
        // line: independent loads whose misses overlap, where decoding and
        // checksumming packet by packet wait out one miss after another (a
        // packet's bytes were written by the reader, or the NIC, elsewhere).
        // Every byte is read by the checksum and the scan anyway.
        let warm = pkts
            .iter()
            .fold(0u8, |a, p| p.data.iter().step_by(64).fold(a, |a, &b| a ^ b));
        std::hint::black_box(warm);

        // Stage 1: decode the burst.
        for (i, p) in pkts.iter().enumerate() {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += p.data.len() as u64;
            match decode(p.data) {
                Ok(mut d) => {
                    if pass != 0 {
                        d.offset_addresses(pass);
                    }
                    self.counters.decoded.count(&d);
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
            held_frags,
            rules,
            stream,
            app,
            checks,
            scoring,
            policy,
            cfg,
            ..
        } = self;
        // Verdicts the scorer sent since the last burst.
        if let Some(ws) = scoring.as_ref() {
            ws.take_verdicts(flows, &mut counters.scoring);
        }
        let mut rule_drop: [Option<DropReason>; BURST_SIZE] = [None; BURST_SIZE];
        let mut hold: [Option<u16>; BURST_SIZE] = [None; BURST_SIZE];
        for i in 0..n {
            *now_ns = (*now_ns).max(pkts[i].ts_ns);
            let d = &decoded[i];
            if errors[i].is_some() || !d.is_ip() {
                // Non-IP traffic passes, counted, unless the policy drops it.
                let ips = cfg.mode == Mode::Ips;
                if errors[i].is_none() && policy.as_ref().is_some_and(|p| p.non_ip(ips)) {
                    rule_drop[i] = Some(DropReason::Policy);
                }
                continue;
            }
            let ts = pkts[i].ts_ns;
            let mut inspector = Inspector {
                flows,
                rules: rules.as_mut(),
                stream: stream.as_mut(),
                app: app.as_mut(),
                checks,
                scoring: scoring.as_mut(),
                policy: policy.as_ref(),
                events,
                counters,
                cfg,
            };
            if !held.is_empty() {
                release_held(held, ts, *now_ns, &mut inspector, handoff.as_ref());
            }
            if !d.fragment {
                rule_drop[i] = inspector.inspect(d, &pkts[i], *now_ns, pass);
                continue;
            }
            let (r, h) = fragment(
                &mut inspector,
                defrag,
                rss,
                handoff.as_ref(),
                held_frags,
                d,
                &pkts[i],
                *now_ns,
                pass,
            );
            (rule_drop[i], hold[i]) = (r, h);
        }

        // Stage 3: verdicts.
        for ((i, p), out) in pkts.iter().enumerate().zip(verdicts.iter_mut()) {
            let verdict = match (errors[i], self.cfg.mode, self.cfg.malformed) {
                (Some(_), Mode::Ips, MalformedPolicy::Drop) => Verdict::Drop(DropReason::Malformed),
                _ if rule_drop[i].is_some() => {
                    Verdict::Drop(rule_drop[i].unwrap_or(DropReason::Rule))
                }
                _ => match hold[i] {
                    Some(token) => Verdict::Hold(token),
                    None => Verdict::Forward,
                },
            };
            match verdict {
                Verdict::Forward => {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += p.data.len() as u64;
                }
                Verdict::Drop(r) => self.counters.dropped[r.index()] += 1,
                // Counted when its datagram's verdict comes back.
                Verdict::Hold(_) => {}
            }
            *out = verdict;
        }

        self.expire();
    }

    /// Moves the clock on without packets (a source's idle tick) and runs
    /// timeouts.
    pub fn tick(&mut self, now_ns: u64) {
        self.poll_reload(0);
        self.poll_verdicts();
        if let Some(ws) = &self.scoring {
            ws.take_verdicts(&mut self.flows, &mut self.counters.scoring);
        }
        self.now_ns = self.now_ns.max(now_ns);
        self.events
            .report_lost(&mut self.counters.emit, self.now_ns);
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
            app,
            scoring,
            cfg,
            ..
        } = self;
        flows.expire(*now_ns, EXPIRE_BUDGET, &mut |r| {
            flow_ended(
                r,
                stream.as_mut(),
                rules.as_mut(),
                app.as_mut(),
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
            app,
            scoring,
            cfg,
            ..
        } = &mut self;
        flows.flush(reason, &mut |r| {
            // What the streams still hold is matched first.
            let mut hits = [0u16; features::HIT_BUCKETS];
            let mut r = *r;
            if let (Some(re), Some(rules)) = (stream.as_mut(), rules.as_mut()) {
                // Shutdown: their alerts wait for room like the records.
                let out = Out {
                    events,
                    wait: true,
                    prompts: scoring.as_ref().and_then(|w| w.link.prompts.as_ref()),
                };
                hits = flow_streams_end(&r, re, rules, app.as_mut(), out, counters, cfg);
            }
            if let Some(a) = app.as_mut() {
                r.app_proto = a.release(r.slot, r.flow_id);
            }
            let r = &r;
            if let Some(ws) = scoring.as_mut() {
                // The scorer is draining: waiting here loses nothing.
                ws.ended(r, &hits, true, &mut counters.scoring);
            }
            events.send(&mut counters.emit, Event::Flow(*r));
        });
        // Alerts a full ring lost, if any, are said in EVE before the end.
        let now = self.now_ns;
        self.events.report_lost(&mut self.counters.emit, now);
        (self.counters(), self.latency)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::craft::{Route, Side, TcpConversation};
    use crate::flow::FlowState;

    pub(super) fn cfg(mode: Mode, malformed: MalformedPolicy) -> WorkerConfig {
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
            app: crate::applayer::AppConfig::default(),
            vlan_tracking: true,
            checksum: ChecksumMode::Auto,
            exception: ExceptionPolicy::Pass,
        }
    }

    fn raw(pkts: &[(u64, Vec<u8>)]) -> Vec<RawPacket<'_>> {
        pkts.iter().map(|(ts, f)| RawPacket::new(f, *ts)).collect()
    }

    /// Runs packets through and returns their verdicts.
    pub(super) fn run(w: &mut Worker, pkts: &[(u64, Vec<u8>)], pass: u16) -> Vec<Verdict> {
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
        assert_eq!((c.emit.sent, c.emit.dropped), (1, 2));
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
        assert_eq!(c.emit.sent, 2);
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
            reply: None,
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
        assert_eq!(c.emit.dropped, 0);
        assert_eq!(c.stream.gaps, 3);
    }

    #[test]
    fn flow_records_cannot_take_an_alerts_room_and_lost_alerts_are_said() {
        let rule = r#"alert udp any any -> any any (msg:"x"; content:"zzz"; sid:1;)"#;
        let engine = Arc::new(crate::detect::load_text(rule, &Default::default()).0);
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        let (atx, arx) = crossbeam_channel::bounded(4);
        let mut w = Worker::with_rings(
            cfg(Mode::Ids, MalformedPolicy::Pass),
            EventRings::split(rtx, atx),
        )
        .with_engine(engine)
        .unwrap();
        let r = Route::new("10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap());
        // Four alerts fit their ring; flow records fill theirs at once.
        let quiet: Vec<_> = (0..40u16)
            .map(|p| (0u64, r.udp(1000 + p, 53, b"q")))
            .collect();
        run(&mut w, &quiet, 0);
        w.tick(3_600_000_000_000);
        let loud: Vec<_> = (0..10u16)
            .map(|p| (3_600_000_000_001u64, r.udp(2000 + p, 53, b"zzz")))
            .collect();
        run(&mut w, &loud, 0);
        let c = w.counters();
        assert_eq!(c.alerts, 10);
        assert_eq!(
            c.emit.alerts_dropped, 6,
            "only alerts beyond their own ring"
        );
        assert_eq!(rrx.len(), 1, "the record ring stayed full");
        let alerts: Vec<_> = arx.try_iter().collect();
        assert_eq!(alerts.len(), 4);
        assert!(alerts.iter().all(|e| matches!(e, Event::Alert(_))));
        // With room again, the loss is said before the next alert.
        run(&mut w, &[(3_600_000_000_002, r.udp(3000, 53, b"zzz"))], 0);
        let next: Vec<_> = arx.try_iter().collect();
        assert!(
            matches!(
                next[0],
                Event::AlertsLost {
                    lost: 6,
                    worker: 0,
                    ..
                }
            ),
            "{next:?}"
        );
        assert!(matches!(next[1], Event::Alert(_)));
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
