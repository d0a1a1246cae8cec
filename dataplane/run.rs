//! `tollgate run`: the worker pipeline on NIC ports through DPDK. One port is
//! an IDS tap (inspect, free); two ports are an IPS bump in the wire (what
//! comes in on one leaves by the other unless a verdict drops it). Worker k
//! runs on worker lcore k and owns RX queue k and TX queue k on every port.
//! Where the ports can spread with the symmetric RSS key, each worker polls
//! its own queues and nothing is shared. Where they cannot (net_pcap, VFs
//! that refuse a key) the main lcore reads queue 0 of each port, spreads the
//! packets to the workers with the same software RSS the replay reader uses,
//! and transmits what the workers hand back. Every packet is accounted for
//! per worker: a dispatch ring or TX queue that stays full is a drop charged
//! to the worker the packet was meant for. Nothing past the packet source
//! and sink differs from replay.

use crate::cli::PipelineSettings;
use crate::eve::{EveCounters, EveWriter};
use crate::flow::{EndReason, MAX_WORKERS};
use crate::io::dpdk::{
    self, free_bulk, rx_burst, tx_burst, ChecksumFlags, Eal, LcoreJob, Mbuf, MbufBurst, Mempool,
    Port, PortId, PortReport, PortStats, QueueId, MBUF_DATA_ROOM,
};
use crate::io::{DropReason, RawPacket, Verdict, BURST_SIZE};
use crate::rss::SoftRss;
use crate::stats::{Latency, WorkerCounters};
use crate::worker::{Mode, Worker, MAX_HELD_FRAGMENTS};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Times a TX burst is retried while the queue takes nothing.
const TX_RETRIES: u32 = 8;
/// Bursts a software-dispatch ring holds, each way.
const RING_BURSTS: usize = 64;
/// After a stop, a worker drains its queues for at most this many more
/// bursts: a source that never runs dry (a line-rate link, a replaying vdev)
/// must not hold the stop up.
const DRAIN_BURSTS: u32 = 1024;
/// How often an idle worker moves its clock on (flow timeouts).
const TICK_NS: u64 = 1_000_000;
/// How often workers publish a counters snapshot.
const PUBLISH_NS: u64 = 100_000_000;
/// Largest frame a port must fit in one mbuf: MTU plus Ethernet, two VLAN
/// tags and the CRC.
const L2_OVERHEAD: u32 = 14 + 8 + 4;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub eal_args: Vec<String>,
    pub workers: Option<usize>,
    pub settings: PipelineSettings,
    pub flow_capacity: usize,
    pub eve: Option<PathBuf>,
    pub inspect: bool,
    /// Pool size; `None` sizes it from ports, queues and rings.
    pub mbufs: Option<u32>,
    /// Rules to match, shared by every worker.
    pub engine: Option<Arc<crate::detect::Engine>>,
    pub duration: Option<Duration>,
    pub idle_exit: Option<Duration>,
    pub scoring: crate::scoring::ScoringConfig,
    /// Set (by SIGUSR2) to have the scorer reload its model.
    pub reload: Arc<AtomicBool>,
    /// How to reload the rules (SIGUSR2, `tollgate reload`).
    pub rules_reload: Option<crate::detect::reload::RulesReload>,
    /// The segmentation policy (`--policy`) and its reload.
    pub policy: Option<crate::policy::enforce::PolicySetup>,
    pub eve_settings: crate::eve::EveSettings,
}

/// Why a run could not start (bad input: exit 2) or failed (exit 1).
#[derive(Debug)]
pub enum RunError {
    Input(String),
    Failure(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Input(s) | RunError::Failure(s) => f.write_str(s),
        }
    }
}

/// One port at the end of a run.
#[derive(Debug, Clone)]
pub struct PortSummary {
    pub report: PortReport,
    pub stats: PortStats,
    pub xstats: Vec<(String, u64)>,
}

#[derive(Debug)]
pub struct RunReport {
    pub mode: Mode,
    pub software_dispatch: bool,
    pub workers: Vec<WorkerCounters>,
    pub latency: Vec<Latency>,
    pub seconds: f64,
    pub ports: Vec<PortSummary>,
    pub eve: Option<EveCounters>,
    pub eve_error: Option<String>,
    /// Why the run stopped: "signal", "duration", "idle".
    pub stopped_by: &'static str,
    pub scoring: Option<crate::scoring::ScorerReport>,
}

/// Capture time for live traffic: the TSC, read once per burst, on the wall
/// clock's epoch.
#[derive(Debug, Clone, Copy)]
struct Clock {
    tsc0: u64,
    ns0: u64,
    hz: u64,
}

impl Clock {
    fn start() -> Clock {
        let ns0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Clock {
            tsc0: dpdk::tsc(),
            ns0,
            hz: dpdk::tsc_hz().max(1),
        }
    }

    fn now_ns(&self) -> u64 {
        let ticks = dpdk::tsc().wrapping_sub(self.tsc0);
        self.ns0 + (u128::from(ticks) * 1_000_000_000 / u128::from(self.hz)) as u64
    }
}

fn hugepages_reserved() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("HugePages_Total:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// What a worker needs on its lcore.
struct WorkerSetup {
    k: usize,
    worker: Worker,
    clock: Clock,
    snaps: Sender<(usize, WorkerCounters)>,
}

impl WorkerSetup {
    fn publish(&self, w: &Worker, sink: u64) {
        let mut c = w.counters();
        c.sink_packets = sink;
        // Never waits: a monitor that is behind just misses a snapshot.
        let _ = self.snaps.try_send((self.k, c));
    }
}

/// The pipeline's view of a burst of mbufs: their bytes, the burst's
/// time, and what the NIC found of their checksums.
fn raw_burst(pkts: &[Option<Mbuf>], now_ns: u64, port: PortId) -> [RawPacket<'_>; BURST_SIZE] {
    let mut raw = [RawPacket::new(&[], now_ns); BURST_SIZE];
    let flags = ChecksumFlags::get();
    for (slot, m) in raw.iter_mut().zip(pkts) {
        if let Some(m) = m {
            let (l4, ip) = m.checksums(&flags);
            *slot = RawPacket {
                l4_checksum: l4,
                ip_checksum: ip,
                source: port.0,
                ..RawPacket::new(m.data(), now_ns)
            };
        }
    }
    raw
}

/// Where a held mbuf goes once its verdict lets it through.
#[derive(Debug, Clone, Copy)]
enum Exit {
    /// Out of a TX queue of this worker's.
    Tx(PortId, QueueId),
    /// Back to the main lcore, which transmits on the peer of this port.
    Back(PortId),
}

/// Inline, mbufs that completed an IP datagram another worker is judging,
/// by token, until the verdict comes back.
struct Waiting {
    slots: Vec<Option<(Mbuf, Exit)>>,
}

impl Waiting {
    fn new() -> Self {
        Waiting {
            slots: (0..MAX_HELD_FRAGMENTS).map(|_| None).collect(),
        }
    }

    fn keep(&mut self, token: u16, m: Option<Mbuf>, exit: Exit) {
        if let (Some(slot), Some(m)) = (self.slots.get_mut(usize::from(token)), m) {
            *slot = Some((m, exit));
        }
    }
}

/// Sends or frees the held mbufs whose verdict came back (the worker has
/// counted them); returns the packets the sink took.
fn release_waiting(w: &mut Worker, waiting: &mut Waiting, back: Option<&Sender<MbufBurst>>) -> u64 {
    let mut done = [(0u16, false); MAX_HELD_FRAGMENTS];
    let mut n = 0;
    w.take_released(|token, forward| {
        if n < done.len() {
            done[n] = (token, forward);
            n += 1;
        }
    });
    let mut sink = 0;
    for &(token, forward) in &done[..n] {
        let Some((m, exit)) = waiting
            .slots
            .get_mut(usize::from(token))
            .and_then(Option::take)
        else {
            continue;
        };
        if !forward {
            continue; // dropped: the mbuf goes back to its pool here
        }
        let bytes = m.data().len() as u64;
        match exit {
            Exit::Tx(port, queue) => {
                let mut one = [Some(m)];
                let (sent, refused, _) = tx_burst(port, queue, &mut one, TX_RETRIES);
                if refused > 0 {
                    w.tx_failed(refused as u64, bytes);
                }
                sink += sent as u64;
            }
            Exit::Back(port) => {
                let mut b = MbufBurst::new(port);
                b.mbufs[0] = Some(m);
                b.len = 1;
                let sent = match back {
                    Some(s) => s.try_send(b).is_ok(),
                    None => false,
                };
                if sent {
                    sink += 1;
                } else {
                    w.tx_failed(1, bytes);
                }
            }
        }
    }
    sink
}

/// Hands one received burst to the pipeline and acts on the verdicts:
/// forwarded packets leave by `out` (IPS) or are freed (IDS), dropped ones
/// are freed, held ones wait in `waiting`. Returns the packets the sink
/// took.
fn process_and_act(
    w: &mut Worker,
    pkts: &mut [Option<Mbuf>],
    (now_ns, port): (u64, PortId),
    out: Option<(PortId, QueueId)>,
    waiting: &mut Waiting,
) -> u64 {
    let n = pkts.len();
    let mut verdicts = [Verdict::Forward; BURST_SIZE];
    {
        let raw = raw_burst(pkts, now_ns, port);
        w.process_burst(&raw[..n], 0, &mut verdicts);
    }
    let mut tx: [Option<Mbuf>; BURST_SIZE] = [const { None }; BURST_SIZE];
    let mut forwarded = 0;
    for (m, v) in pkts.iter_mut().zip(&verdicts) {
        match *v {
            Verdict::Forward => {
                if out.is_some() {
                    tx[forwarded] = m.take();
                }
                forwarded += 1;
            }
            // Only inline, so `out` names the peer port.
            Verdict::Hold(token) => {
                if let Some((port, queue)) = out {
                    waiting.keep(token, m.take(), Exit::Tx(port, queue));
                }
            }
            Verdict::Drop(_) => {}
        }
    }
    // What did not move into `tx` (drops; everything on a tap) goes back
    // to the pool in one call.
    free_bulk(pkts);
    match out {
        Some((port, queue)) if forwarded > 0 => {
            let (sent, refused, bytes) = tx_burst(port, queue, &mut tx[..forwarded], TX_RETRIES);
            if refused > 0 {
                w.tx_failed(refused as u64, bytes);
            }
            sent as u64
        }
        _ => forwarded as u64,
    }
}

/// What the ports counted, summed, for the EVE stats event.
fn capture_counters(ports: &[Port]) -> crate::stats::PortCounters {
    let mut c = crate::stats::PortCounters::default();
    for p in ports {
        let s = p.stats();
        c.packets += s.ipackets;
        c.drops += s.imissed + s.rx_nombuf;
        c.errors += s.ierrors;
    }
    c
}

/// Worker k polling its own queue on every port (RSS, or one worker).
fn poll_loop(
    mut s: WorkerSetup,
    ports: Vec<PortId>,
    forward: bool,
    stop: Arc<AtomicBool>,
) -> (WorkerCounters, Latency) {
    let q = QueueId(s.k as u16);
    let mut rx: [Option<Mbuf>; BURST_SIZE] = [const { None }; BURST_SIZE];
    let mut sink = 0u64;
    let mut last_tick = 0u64;
    let mut last_pub = 0u64;
    let mut empty_rounds = 0u32;
    let mut drained = 0u32;
    let mut waiting = Waiting::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            drained += 1;
            if drained > DRAIN_BURSTS {
                break;
            }
        }
        s.worker.poll_handoffs();
        let mut got = 0;
        for (pi, &port) in ports.iter().enumerate() {
            let n = rx_burst(port, q, &mut rx);
            if n == 0 {
                continue;
            }
            got += n;
            let now = s.clock.now_ns();
            let out = forward.then(|| (ports[1 - pi], q));
            sink += process_and_act(&mut s.worker, &mut rx[..n], (now, port), out, &mut waiting);
        }
        sink += release_waiting(&mut s.worker, &mut waiting, None);
        let now = s.clock.now_ns();
        if got == 0 {
            // After a stop, keep polling until the queues are dry: drain.
            if stopping {
                empty_rounds += 1;
                if empty_rounds > 4 {
                    break;
                }
            }
            if now.saturating_sub(last_tick) >= TICK_NS {
                s.worker.tick(now);
                last_tick = now;
            }
        } else {
            empty_rounds = 0;
        }
        if now.saturating_sub(last_pub) >= PUBLISH_NS {
            s.publish(&s.worker, sink);
            last_pub = now;
        }
    }
    finish(s, sink, &mut waiting, None)
}

fn finish(
    s: WorkerSetup,
    mut sink: u64,
    waiting: &mut Waiting,
    back: Option<&Sender<MbufBurst>>,
) -> (WorkerCounters, Latency) {
    let WorkerSetup {
        mut worker,
        snaps,
        k,
        ..
    } = s;
    // Datagrams other workers reassembled for this one's flows come first,
    // and the verdicts on fragments held here.
    worker.close_handoffs();
    sink += release_waiting(&mut worker, waiting, back);
    let (mut c, latency) = worker.finish(EndReason::Shutdown);
    c.sink_packets = sink;
    let _ = snaps.try_send((k, c));
    (c, latency)
}

/// Worker k fed by the main lcore's software dispatch.
fn ring_loop(
    mut s: WorkerSetup,
    input: Receiver<MbufBurst>,
    back: Option<Sender<MbufBurst>>,
) -> (WorkerCounters, Latency) {
    let mut sink = 0u64;
    let mut last_pub = 0u64;
    let mut waiting = Waiting::new();
    loop {
        match input.recv_timeout(Duration::from_millis(1)) {
            Ok(mut b) => {
                let n = b.len.min(BURST_SIZE);
                match &back {
                    None => {
                        sink += process_and_act(
                            &mut s.worker,
                            &mut b.mbufs[..n],
                            (b.now_ns, b.port),
                            None,
                            &mut waiting,
                        )
                    }
                    Some(back) => {
                        // Verdicts first; the main lcore transmits what is
                        // forwarded, on the peer port.
                        let mut verdicts = [Verdict::Forward; BURST_SIZE];
                        {
                            let raw = raw_burst(&b.mbufs[..n], b.now_ns, b.port);
                            s.worker.process_burst(&raw[..n], 0, &mut verdicts);
                        }
                        let mut out = MbufBurst::new(b.port);
                        for (m, v) in b.mbufs[..n].iter_mut().zip(&verdicts) {
                            let m = m.take();
                            match *v {
                                Verdict::Forward => {
                                    out.mbufs[out.len] = m;
                                    out.len += 1;
                                }
                                Verdict::Hold(token) => {
                                    waiting.keep(token, m, Exit::Back(b.port));
                                }
                                Verdict::Drop(_) => {}
                            }
                        }
                        if out.len > 0 {
                            let len = out.len as u64;
                            match back.try_send(out) {
                                Ok(()) => sink += len,
                                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                                    let bytes = b
                                        .mbufs
                                        .iter()
                                        .flatten()
                                        .map(|m| m.data().len() as u64)
                                        .sum();
                                    s.worker.tx_failed(len, bytes);
                                }
                            }
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => s.worker.tick(s.clock.now_ns()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        s.worker.poll_handoffs();
        sink += release_waiting(&mut s.worker, &mut waiting, back.as_ref());
        let now = s.clock.now_ns();
        if now.saturating_sub(last_pub) >= PUBLISH_NS {
            s.publish(&s.worker, sink);
            last_pub = now;
        }
    }
    finish(s, sink, &mut waiting, back.as_ref())
}

/// What the main lcore lost on a worker's behalf in software dispatch.
#[derive(Debug, Clone, Copy, Default)]
struct Charges {
    ring_full: u64,
    ring_full_bytes: u64,
    tx_refused: u64,
    tx_refused_bytes: u64,
}

impl Charges {
    fn apply(&self, c: &mut WorkerCounters) {
        c.rx_packets += self.ring_full;
        c.rx_bytes += self.ring_full_bytes;
        c.dropped[DropReason::RingFull.index()] += self.ring_full;
        c.tx_packets -= self.tx_refused.min(c.tx_packets);
        c.tx_bytes -= self.tx_refused_bytes.min(c.tx_bytes);
        c.dropped[DropReason::TxFull.index()] += self.tx_refused;
        c.sink_packets -= self.tx_refused.min(c.sink_packets);
    }
}

pub fn run(
    cfg: &RunConfig,
    mut on_tick: impl FnMut(&[WorkerCounters], f64),
) -> Result<RunReport, RunError> {
    let input = RunError::Input;
    let no_huge = cfg.eal_args.iter().any(|a| a == "--no-huge");
    let eal = Eal::init(&cfg.eal_args).map_err(|e| {
        if !no_huge && hugepages_reserved().unwrap_or(0) == 0 {
            input(format!(
                "{e}: no hugepages are reserved; run scripts/hugepages.sh as root to reserve \
                 them, or add --no-huge -m 512 to the EAL arguments for a small test run"
            ))
        } else {
            input(format!("{e} (check the EAL arguments after --)"))
        }
    })?;
    let ports = eal.ports();
    let forward = cfg.settings.mode == Mode::Ips;
    match (ports.len(), forward) {
        (0, _) => {
            return Err(input(
                "the EAL found no port: allow a NIC with -a PCI_ADDRESS (bound to vfio-pci, \
                 scripts/bind-vfs.sh) or add a vdev, e.g. --vdev net_pcap0,rx_pcap=IN.pcap"
                    .into(),
            ))
        }
        (1, true) => {
            return Err(input(
                "--mode ips needs two ports (a bump in the wire); one port runs as an IDS tap"
                    .into(),
            ))
        }
        (1 | 2, _) => {}
        (n, _) => {
            return Err(input(format!(
                "the EAL found {n} ports; Tollgate runs on one (IDS tap) or two (IPS pair)"
            )))
        }
    }
    let mut lcores = eal.worker_lcores();
    // --scorer-core names an lcore of -l: the scorer runs there, not a worker.
    let scorer_lcore = match cfg.scoring.core {
        Some(c) if cfg.scoring.enabled() && cfg.inspect => {
            let Some(i) = lcores.iter().position(|&l| l as usize == c) else {
                return Err(input(format!(
                    "--scorer-core {c} is not a worker lcore of the EAL's -l ({}); under run \
                     the scorer takes one of them",
                    lcores
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            };
            Some(lcores.remove(i))
        }
        _ => None,
    };
    if lcores.is_empty() {
        return Err(input(
            "no worker lcore: give the EAL at least two, e.g. -l 0-1 (the first is the main lcore)"
                .into(),
        ));
    }
    if lcores.len() > MAX_WORKERS {
        return Err(input(format!("at most {MAX_WORKERS} worker lcores")));
    }
    let n_workers = lcores.len();
    if let Some(w) = cfg.workers {
        if w != n_workers {
            return Err(input(format!(
                "--workers {w} but the EAL gives {n_workers} worker lcore(s) (-l): under run, \
                 workers follow the lcores"
            )));
        }
    }

    // Spread in hardware where every port can.
    let infos: Vec<_> = ports
        .iter()
        .map(|&p| dpdk::port_info(p).map_err(|e| input(e.to_string())))
        .collect::<Result<_, _>>()?;
    for i in &infos {
        if u32::from(i.mtu) + L2_OVERHEAD > u32::from(MBUF_DATA_ROOM) {
            return Err(input(format!(
                "port {} MTU {} needs frames of up to {} bytes, more than one mbuf's {}-byte data \
                 room; lower the port MTU (scattered RX is not enabled)",
                i.name,
                i.mtu,
                u32::from(i.mtu) + L2_OVERHEAD,
                MBUF_DATA_ROOM
            )));
        }
    }
    // Both directions of a flow may enter by different ports: their tables
    // must send a hash to the same queue, which holds when they are the same
    // size or the worker count divides both.
    let same_tables = infos.windows(2).all(|w| {
        w[0].reta_size == w[1].reta_size
            || (n_workers.is_power_of_two()
                && usize::from(w[0].reta_size) % n_workers == 0
                && usize::from(w[1].reta_size) % n_workers == 0)
    });
    let hw_rss = n_workers == 1
        || (same_tables
            && infos.iter().all(|i| {
                usize::from(i.max_rx_queues) >= n_workers
                    && usize::from(i.max_tx_queues) >= n_workers
                    && i.rss_offloads & dpdk::wanted_rss_hf() != 0
            }));
    let queues = if hw_rss { n_workers as u16 } else { 1 };

    // Enough mbufs for every descriptor, every ring slot and the lcore caches.
    let ring_mbufs = if hw_rss {
        0
    } else {
        (2 * RING_BURSTS * BURST_SIZE * n_workers * ports.len()) as u32
    };
    let needed = (ports.len() as u32 * u32::from(queues) * dpdk::mbufs_per_queue()
        + ring_mbufs
        + (n_workers as u32 + 1) * (256 + 2 * BURST_SIZE as u32)
        + 1024)
        .next_power_of_two()
        - 1;
    let pool_size = cfg.mbufs.unwrap_or(needed);
    let socket = infos.first().map_or(0, |i| i.socket.max(0));
    let pool = Mempool::new(&eal, "tollgate_mbufs", pool_size, socket)
        .map_err(|e| input(e.to_string()))?;

    let mut port_objs = Vec::new();
    let mut reports = Vec::new();
    for &p in &ports {
        let (port, report) = Port::configure(p, queues, hw_rss && n_workers > 1, &pool)
            .map_err(|e| input(e.to_string()))?;
        eprintln!("tollgate: {}", describe_port(&report));
        port_objs.push(port);
        reports.push(report);
    }
    if !hw_rss {
        let why: Vec<String> = infos
            .iter()
            .filter(|i| {
                usize::from(i.max_rx_queues) < n_workers
                    || i.rss_offloads & dpdk::wanted_rss_hf() == 0
            })
            .map(|i| i.name.clone())
            .collect();
        eprintln!(
            "tollgate: warning: {} cannot spread {n_workers} queues with RSS: the main lcore \
             reads queue 0 and spreads packets to the workers in software",
            why.join(", ")
        );
    }
    eprintln!(
        "tollgate: {} on {} port(s), {n_workers} worker(s) on lcore(s) {}, {} mbufs, inspection {}",
        if forward { "IPS" } else { "IDS" },
        ports.len(),
        lcores
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        pool.size(),
        if cfg.inspect { "on" } else { "off" },
    );

    // in_iface: each port's name, by port id.
    let mut names = Vec::new();
    for (p, info) in ports.iter().zip(&infos) {
        let at = usize::from(p.0);
        if names.len() <= at {
            names.resize(at + 1, String::new());
        }
        names[at] = info.name.clone();
    }
    let spec = crate::pipeline::PipelineSpec {
        workers: n_workers,
        mode: cfg.settings.mode,
        flow_capacity: cfg.flow_capacity,
        timeouts: cfg.settings.timeouts,
        malformed: cfg.settings.malformed,
        defrag: cfg.settings.defrag,
        stream: cfg.settings.stream,
        app: cfg.settings.app,
        vlan_tracking: cfg.settings.vlan_tracking,
        checksum: cfg.settings.checksum,
        exception: cfg.settings.exception,
        inspect: cfg.inspect,
        // In hardware, the NIC's table decides; in software, SoftRss's.
        reta_size: if hw_rss && n_workers > 1 {
            usize::from(infos[0].reta_size.max(1))
        } else {
            crate::rss::RETA_SIZE
        },
        engine: cfg.engine.as_ref(),
        scoring: &cfg.scoring,
        reload: &cfg.reload,
        rules_reload: cfg.rules_reload.as_ref(),
        policy: cfg.policy.as_ref(),
        eve: cfg.eve.as_deref(),
        eve_settings: &cfg.eve_settings,
        sources: crate::eve::Sources::Ports(names),
        events_wait: false,
    };
    let built = crate::pipeline::build(&spec).map_err(|e| match e {
        crate::pipeline::BuildError::Eve(..) | crate::pipeline::BuildError::Scoring(_) => {
            input(e.to_string())
        }
        crate::pipeline::BuildError::Config(s) => RunError::Failure(s),
    })?;
    let eve = built.eve;
    let reloaders = crate::pipeline::start_reloaders(
        built.reloader,
        built.policy_reloader,
        cfg.rules_reload.as_ref(),
    )
    .map_err(|e| RunError::Failure(format!("reloader thread: {e}")))?;

    // The scorer: on its lcore (--scorer-core), else on a thread of its own.
    enum ScorerRun {
        Lcore(LcoreJob<crate::scoring::ScorerReport>),
        Thread(crate::scoring::Scorer),
    }
    let scorer = match built.scorer {
        Some(job) => Some(match scorer_lcore {
            Some(lc) => ScorerRun::Lcore(
                eal.launch(lc, move || job.run())
                    .map_err(|e| RunError::Failure(e.to_string()))?,
            ),
            None => ScorerRun::Thread(
                crate::scoring::Scorer::start(job, None).map_err(RunError::Failure)?,
            ),
        }),
        None => None,
    };
    let clock = Clock::start();
    let stop = Arc::new(AtomicBool::new(false));
    let (snap_tx, snap_rx) = bounded::<(usize, WorkerCounters)>(n_workers * 16);
    let mut dispatch_tx = Vec::new();
    let mut back_rx = Vec::new();
    let mut jobs: Vec<LcoreJob<(WorkerCounters, Latency)>> = Vec::new();
    for (k, (&lcore, worker)) in lcores.iter().zip(built.workers).enumerate() {
        let setup = WorkerSetup {
            k,
            worker,
            clock,
            snaps: snap_tx.clone(),
        };
        let job = if hw_rss {
            let ports = ports.clone();
            let stop = Arc::clone(&stop);
            eal.launch(lcore, move || poll_loop(setup, ports, forward, stop))
        } else {
            let (tx, rx) = bounded::<MbufBurst>(RING_BURSTS);
            dispatch_tx.push(tx);
            let back = if forward {
                let (btx, brx) = bounded::<MbufBurst>(RING_BURSTS);
                back_rx.push(brx);
                Some(btx)
            } else {
                None
            };
            eal.launch(lcore, move || ring_loop(setup, rx, back))
        };
        jobs.push(job.map_err(|e| RunError::Failure(e.to_string()))?);
    }
    drop(snap_tx);

    // The main lcore: software dispatch (if needed) and the monitor.
    let started = Instant::now();
    let mut rss = SoftRss::new(n_workers as u16);
    let mut charges = vec![Charges::default(); n_workers];
    let mut latest = vec![WorkerCounters::default(); n_workers];
    let mut last_rx_total = 0u64;
    let mut last_activity = Instant::now();
    let mut last_monitor = Instant::now();
    let mut rx: [Option<Mbuf>; BURST_SIZE] = [const { None }; BURST_SIZE];
    // One burst being filled per worker, allocated once.
    let mut pending: Vec<Option<MbufBurst>> = (0..n_workers).map(|_| None).collect();
    let stats_tx = eve.as_ref().and_then(EveWriter::lines);
    let mut stats_due =
        crate::stats::EveStats::new(&cfg.eve_settings, cfg.settings.mode == Mode::Ips);
    let stopped_by;
    loop {
        if !hw_rss {
            let now_ns = clock.now_ns();
            for &port in &ports {
                let n = rx_burst(port, QueueId(0), &mut rx);
                if n == 0 {
                    continue;
                }
                dispatch(
                    &mut rss,
                    port,
                    now_ns,
                    &mut rx[..n],
                    &dispatch_tx,
                    &mut pending,
                    &mut charges,
                    (&back_rx, &ports),
                );
            }
            for (k, brx) in back_rx.iter().enumerate() {
                while let Ok(mut b) = brx.try_recv() {
                    transmit_returned(&mut b, &ports, &mut charges[k]);
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        if last_monitor.elapsed() >= Duration::from_millis(100) {
            last_monitor = Instant::now();
            while let Ok((k, c)) = snap_rx.try_recv() {
                latest[k] = c;
            }
            let shown: Vec<WorkerCounters> = latest
                .iter()
                .zip(&charges)
                .map(|(c, ch)| {
                    let mut c = *c;
                    ch.apply(&mut c);
                    c
                })
                .collect();
            on_tick(&shown, started.elapsed().as_secs_f64());
            let capture = capture_counters(&port_objs);
            stats_due.tick(&shown, Some(&capture), stats_tx.as_ref(), false);
            let rx_total = capture.packets;
            if rx_total != last_rx_total {
                last_rx_total = rx_total;
                last_activity = Instant::now();
            }
            if dpdk::stop_requested() {
                stopped_by = "signal";
                break;
            }
            if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
                stopped_by = "duration";
                break;
            }
            if cfg.idle_exit.is_some_and(|d| last_activity.elapsed() >= d) {
                stopped_by = "idle";
                break;
            }
        }
    }

    // Drain: workers finish what they hold; in software dispatch the main
    // lcore keeps transmitting what comes back until every worker is done.
    stop.store(true, Ordering::Relaxed);
    drop(dispatch_tx);
    let mut open: Vec<usize> = (0..back_rx.len()).collect();
    while !open.is_empty() {
        open.retain(|&k| loop {
            match back_rx[k].try_recv() {
                Ok(mut b) => transmit_returned(&mut b, &ports, &mut charges[k]),
                Err(crossbeam_channel::TryRecvError::Empty) => break true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break false,
            }
        });
    }
    let mut workers = Vec::with_capacity(n_workers);
    let mut latency = Vec::with_capacity(n_workers);
    for (k, job) in jobs.into_iter().enumerate() {
        let (mut c, l) = job
            .join()
            .ok_or_else(|| RunError::Failure(format!("worker {k} returned nothing")))?;
        charges[k].apply(&mut c);
        workers.push(c);
        latency.push(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    reloaders
        .into_iter()
        .for_each(crate::handover::ReloadThread::stop);
    stats_due.tick(
        &workers,
        Some(&capture_counters(&port_objs)),
        stats_tx.as_ref(),
        true,
    );
    drop(stats_tx);
    let scoring = scorer.map(|s| match s {
        ScorerRun::Lcore(j) => j.join().unwrap_or_default(),
        ScorerRun::Thread(t) => t.join(),
    });
    let (eve, eve_error) = match eve.map(EveWriter::join) {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let ports_out = port_objs
        .iter()
        .zip(reports)
        .map(|(p, report)| PortSummary {
            report,
            stats: p.stats(),
            xstats: p.xstats(),
        })
        .collect();
    for mut p in port_objs {
        p.stop();
    }
    drop(pool);
    drop(eal);
    Ok(RunReport {
        mode: cfg.settings.mode,
        software_dispatch: !hw_rss,
        workers,
        latency,
        seconds,
        ports: ports_out,
        eve,
        eve_error,
        stopped_by,
        scoring,
    })
}

/// Sends what a worker forwarded out of the port facing the one it came in
/// by (IPS: two ports); what the queue refuses is charged to that worker.
fn transmit_returned(b: &mut MbufBurst, ports: &[PortId], charge: &mut Charges) {
    let peer = if b.port == ports[0] {
        ports[1]
    } else {
        ports[0]
    };
    let n = b.len.min(BURST_SIZE);
    let (_, refused, bytes) = tx_burst(peer, QueueId(0), &mut b.mbufs[..n], TX_RETRIES);
    charge.tx_refused += refused as u64;
    charge.tx_refused_bytes += bytes;
}

/// Spreads one received burst to the workers' rings by software RSS.
/// `pending` holds one burst per worker (empty between calls): a received
/// burst of at most `BURST_SIZE` fits in any one of them.
///
/// A worker's full ring makes the main lcore wait, moving what the workers
/// return out meanwhile (so no worker ever waits on it): the port's own
/// queue holds what arrives, as it would ahead of a busy worker with
/// hardware RSS, and what overflows it is counted by the port (`imissed`).
/// Dropping here instead would lose packets a slower worker could still
/// take, and would make a replayed vdev lossy. A ring whose worker is gone
/// is a drop charged to it.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    rss: &mut SoftRss,
    port: PortId,
    now_ns: u64,
    pkts: &mut [Option<Mbuf>],
    rings: &[Sender<MbufBurst>],
    pending: &mut [Option<MbufBurst>],
    charges: &mut [Charges],
    (back, ports): (&[Receiver<MbufBurst>], &[PortId]),
) {
    for m in pkts.iter_mut() {
        let Some(m) = m.take() else { continue };
        let k = usize::from(rss.steer(m.data(), 0)).min(rings.len() - 1);
        let b = pending[k].get_or_insert_with(|| {
            let mut b = MbufBurst::new(port);
            b.now_ns = now_ns;
            b
        });
        b.mbufs[b.len] = Some(m);
        b.len += 1;
    }
    for (k, b) in pending.iter_mut().enumerate() {
        let Some(mut b) = b.take() else {
            continue;
        };
        loop {
            match rings[k].try_send(b) {
                Ok(()) => break,
                Err(TrySendError::Full(again)) => {
                    b = again;
                    for (j, brx) in back.iter().enumerate() {
                        while let Ok(mut r) = brx.try_recv() {
                            transmit_returned(&mut r, ports, &mut charges[j]);
                        }
                    }
                    std::hint::spin_loop();
                }
                Err(TrySendError::Disconnected(lost)) => {
                    charges[k].ring_full += lost.len as u64;
                    charges[k].ring_full_bytes += lost
                        .mbufs
                        .iter()
                        .flatten()
                        .map(|m| m.data().len() as u64)
                        .sum::<u64>();
                    break;
                }
            }
        }
    }
}

fn describe_port(r: &PortReport) -> String {
    let rss = if r.rss_hf == 0 {
        "no RSS".to_string()
    } else {
        format!(
            "RSS hash types 0x{:x}, symmetric key {}",
            r.rss_hf,
            if r.key_accepted {
                "accepted"
            } else {
                "not read back (check the PMD)"
            }
        )
    };
    format!(
        "port {} (driver {}, socket {}): {} RX / {} TX queue(s), {rss}, MTU {}, RX offloads 0x{:x}, TCP checksums checked by {}, link {}",
        r.info.name,
        r.info.driver,
        r.info.socket,
        r.rx_queues,
        r.tx_queues,
        r.info.mtu,
        r.info.rx_offload_capa,
        if r.rx_checksum { "the NIC" } else { "software" },
        if r.link_up { format!("up {} Mbit/s", r.link_speed_mbps) } else { "down".into() },
    )
}
