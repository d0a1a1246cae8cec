//! Replay: capture files through the same worker pipeline a NIC feeds. A
//! reader thread reads each capture in chunks of whole records (1 MiB, so
//! a capture of any size replays in bounded memory, and what a worker
//! reads is still in cache from the read), finds every record,
//! hashes it with the
//! symmetric Toeplitz function a NIC uses and hands bursts of descriptors
//! (offset, length, timestamp — never copies of packets) over bounded
//! lock-free rings to the worker that RSS would pick. Workers run pinned, one
//! per core; flow records go to the event writer over rings of their own.
//! In replay the reader waits when a worker's ring is full — a file can be
//! paused, a wire cannot — so every run of the same input is deterministic.
//! Time is capture time: the reader sends idle workers a tick each second
//! of capture time so their flows time out even when no packet reaches them.

use crate::defrag::DefragConfig;
use crate::eve::{EveCounters, EveWriter};
use crate::flow::{EndReason, Timeouts, MAX_WORKERS};
use crate::io::chunks::ChunkReader;
use crate::io::linktype::to_ethernet;
use crate::io::pcap::{check_header, CaptureError, Records};
use crate::io::{CountingSink, PacketSink, RawPacket, Verdict, BURST_SIZE};
use crate::rss::SoftRss;
use crate::stats::{CaptureCounters, Latency, WorkerCounters};
use crate::worker::{MalformedPolicy, Mode, Worker, MAX_HELD_FRAGMENTS};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bursts a worker's input ring holds: 1,024 packets, a millisecond or
/// two of a worker's time. Short, so the bytes a worker takes were read
/// into the chunk a moment before and are still in cache (with 256 bursts,
/// 11 MB of packets stood between the read and the worker, and every
/// packet came from memory).
const RING_BURSTS: usize = 32;
/// How long the reader first waits before trying a full ring again; each
/// worker's nap then adapts between the bounds below so that a nap lets
/// the worker take a quarter to three quarters of its ring: long enough
/// that the reader does not wake for one burst at a time, short enough
/// that the worker never runs dry.
const FULL_RING_NAP: Duration = Duration::from_micros(100);
const MIN_NAP: Duration = Duration::from_micros(25);
const MAX_NAP: Duration = Duration::from_millis(2);
/// A worker publishes a counters snapshot every this many bursts.
const PUBLISH_EVERY: u64 = 64;
/// And at least this often while bursts come.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);
/// Capture time between idle ticks to a worker.
const TICK_NS: u64 = 1_000_000_000;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the workers take it.
    Max,
    /// The capture's own timing, times this factor (2.0 = twice as fast).
    Multiplier(f64),
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub files: Vec<PathBuf>,
    pub workers: usize,
    /// Core ids to pin worker k to (`cores[k]`); empty means unpinned.
    pub cores: Vec<usize>,
    pub mode: Mode,
    pub eve: Option<PathBuf>,
    pub flow_capacity: usize,
    pub timeouts: Timeouts,
    pub speed: Speed,
    pub loops: u16,
    pub malformed: MalformedPolicy,
    pub defrag: DefragConfig,
    pub stream: crate::reassembly::StreamConfig,
    pub app: crate::applayer::AppConfig,
    pub vlan_tracking: bool,
    pub checksum: crate::reassembly::ChecksumMode,
    pub exception: crate::worker::ExceptionPolicy,
    /// Rules to match, shared by every worker.
    pub engine: Option<std::sync::Arc<crate::detect::Engine>>,
    pub scoring: crate::scoring::ScoringConfig,
    /// Set (by SIGUSR2) to have the scorer reload its model.
    pub reload: Arc<std::sync::atomic::AtomicBool>,
    /// How to reload the rules (SIGUSR2, `tollgate reload`).
    pub rules_reload: Option<crate::detect::reload::RulesReload>,
    /// The segmentation policy (`--policy`) and its reload.
    pub policy: Option<crate::policy::enforce::PolicySetup>,
    pub eve_settings: crate::eve::EveSettings,
    /// Set (by SIGINT or SIGTERM) to stop reading: what was read is
    /// processed, flows end and every output is written.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Records' bytes read from a capture at a time (`CHUNK_BYTES`): what
    /// a replay holds of a file, plus what queued bursts point into.
    pub chunk_bytes: usize,
    /// Workers decode and inspect (false: they count and forward each
    /// packet, no more: what the reader alone costs, for benchmarks).
    pub inspect: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            files: Vec::new(),
            workers: 1,
            cores: Vec::new(),
            mode: Mode::Ids,
            eve: None,
            flow_capacity: 65_536,
            timeouts: Timeouts::default(),
            speed: Speed::Max,
            loops: 1,
            malformed: MalformedPolicy::Pass,
            defrag: DefragConfig::default(),
            stream: crate::reassembly::StreamConfig::default(),
            app: crate::applayer::AppConfig::default(),
            vlan_tracking: true,
            checksum: crate::reassembly::ChecksumMode::Auto,
            exception: crate::worker::ExceptionPolicy::Pass,
            scoring: crate::scoring::ScoringConfig::default(),
            reload: crate::scoring::reload_flag(),
            rules_reload: None,
            policy: None,
            engine: None,
            eve_settings: crate::eve::EveSettings::default(),
            stop: Default::default(),
            chunk_bytes: CHUNK_BYTES,
            inspect: true,
        }
    }
}

/// Errors that stop a replay before it starts.
#[derive(Debug)]
pub enum ReplayError {
    Capture(PathBuf, CaptureError),
    Eve(PathBuf, std::io::Error),
    Thread(std::io::Error),
    Config(String),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Capture(p, e) => write!(f, "{}: {e}", p.display()),
            ReplayError::Eve(p, e) => write!(f, "{}: cannot create EVE output: {e}", p.display()),
            ReplayError::Thread(e) => write!(f, "cannot start a thread: {e}"),
            ReplayError::Config(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ReplayError {}

/// What a finished replay reports.
#[derive(Debug)]
pub struct ReplayReport {
    pub capture: CaptureCounters,
    pub workers: Vec<WorkerCounters>,
    /// Per worker, in worker order.
    pub latency: Vec<Latency>,
    /// Wall-clock seconds from the first read to the last worker's end.
    pub seconds: f64,
    pub eve: Option<EveCounters>,
    /// The EVE writer's error, if writing failed part-way.
    pub eve_error: Option<String>,
    /// Files that ended early (cut mid-record, corrupt, unreadable): every
    /// whole record before the problem was processed.
    pub capture_errors: Vec<String>,
    /// The scoring stage's report, when it ran.
    pub scoring: Option<crate::scoring::ScorerReport>,
}

/// Progress the reader publishes for the monitor.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// A chunk of a capture the workers read packets from; once every burst
/// that points into it is done, its memory goes back to the reader for
/// the next chunk (no page faults and no zeroing per chunk).
pub struct Pooled {
    data: Vec<u8>,
    back: Sender<Vec<u8>>,
}

impl Pooled {
    fn new(data: Vec<u8>, back: &Sender<Vec<u8>>) -> Pooled {
        Pooled {
            data,
            back: back.clone(),
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A full pool (more chunks in flight than it keeps) frees it.
        let _ = self.back.try_send(std::mem::take(&mut self.data));
    }
}

/// Chunk buffers the reader keeps for reuse: enough for the chunks that
/// queued bursts point into (about one per 1,000 packets of lag, times
/// the workers).
const POOL_CHUNKS: usize = 64;

/// A worker's view of one packet in a loaded capture.
#[derive(Debug, Clone, Copy, Default)]
struct Desc {
    offset: usize,
    len: u32,
    ts_ns: u64,
    /// The record's number across the replay, from 1 (EVE `pcap_cnt`).
    cnt: u64,
    /// Which capture file it is in (EVE `pcap_filename`).
    file: u16,
}

/// What crosses a worker's input ring: up to `BURST_SIZE` descriptors into
/// one loaded capture, or (with none) a tick that moves capture time on.
struct Burst {
    buf: Option<Arc<Pooled>>,
    pass: u16,
    now_ns: u64,
    len: usize,
    descs: [Desc; BURST_SIZE],
}

impl Burst {
    fn new(buf: Option<Arc<Pooled>>, pass: u16) -> Self {
        Burst {
            buf,
            pass,
            now_ns: 0,
            len: 0,
            descs: [Desc::default(); BURST_SIZE],
        }
    }
}

/// Checks every file before anything starts: it must exist, be readable and
/// start like a pcap or pcapng of a link type the reader takes.
pub fn check_files(files: &[PathBuf]) -> Result<u64, ReplayError> {
    let mut total = 0;
    for p in files {
        let err = |e| ReplayError::Capture(p.clone(), e);
        let mut f = std::fs::File::open(p).map_err(|e| err(CaptureError::Io(e)))?;
        let meta = f.metadata().map_err(|e| err(CaptureError::Io(e)))?;
        if meta.is_dir() {
            return Err(err(CaptureError::Io(std::io::Error::other(
                "is a directory",
            ))));
        }
        let mut head = Vec::with_capacity(64);
        (&mut f)
            .take(64)
            .read_to_end(&mut head)
            .map_err(|e| err(CaptureError::Io(e)))?;
        check_header(&head).map_err(err)?;
        total += meta.len();
    }
    Ok(total)
}

/// Replays the files and returns the counters. `on_tick` is called from the
/// calling thread about every 100 ms with the latest per-worker snapshots,
/// for stats lines and progress bars.
pub fn replay(
    cfg: &ReplayConfig,
    mut on_tick: impl FnMut(&[WorkerCounters], &Progress, f64),
) -> Result<ReplayReport, ReplayError> {
    if cfg.workers == 0 || cfg.workers > MAX_WORKERS {
        return Err(ReplayError::Config(format!(
            "--workers must be between 1 and {MAX_WORKERS}"
        )));
    }
    if cfg.files.is_empty() {
        return Err(ReplayError::Config("no capture file given".into()));
    }
    let file_bytes = check_files(&cfg.files)?;
    let progress = Arc::new(Progress::default());
    progress.bytes_total.store(
        file_bytes.saturating_mul(u64::from(cfg.loops)),
        Ordering::Relaxed,
    );

    // Rings: reader -> worker, worker -> event writer, worker -> monitor.
    let mut burst_tx = Vec::with_capacity(cfg.workers);
    let mut burst_rx = Vec::with_capacity(cfg.workers);
    for _ in 0..cfg.workers {
        let (tx, rx) = bounded::<Burst>(RING_BURSTS);
        burst_tx.push(tx);
        burst_rx.push(rx);
    }
    let spec = crate::pipeline::PipelineSpec {
        workers: cfg.workers,
        mode: cfg.mode,
        flow_capacity: cfg.flow_capacity,
        timeouts: cfg.timeouts,
        malformed: cfg.malformed,
        defrag: cfg.defrag,
        stream: cfg.stream,
        app: cfg.app,
        vlan_tracking: cfg.vlan_tracking,
        checksum: cfg.checksum,
        exception: cfg.exception,
        inspect: cfg.inspect,
        reta_size: crate::rss::RETA_SIZE,
        engine: cfg.engine.as_ref(),
        scoring: &cfg.scoring,
        reload: &cfg.reload,
        rules_reload: cfg.rules_reload.as_ref(),
        policy: cfg.policy.as_ref(),
        eve: cfg.eve.as_deref(),
        eve_settings: &cfg.eve_settings,
        sources: crate::eve::Sources::Files(
            cfg.files.iter().map(|f| f.display().to_string()).collect(),
        ),
        events_wait: true,
    };
    let built = crate::pipeline::build(&spec).map_err(|e| match e {
        crate::pipeline::BuildError::Eve(p, e) => ReplayError::Eve(p, e),
        crate::pipeline::BuildError::Scoring(s) | crate::pipeline::BuildError::Config(s) => {
            ReplayError::Config(s)
        }
    })?;
    let eve = built.eve;
    let reloaders = crate::pipeline::start_reloaders(
        built.reloader,
        built.policy_reloader,
        cfg.rules_reload.as_ref(),
    )
    .map_err(ReplayError::Thread)?;
    let scorer = built
        .scorer
        .map(|job| crate::scoring::Scorer::start(job, cfg.scoring.core))
        .transpose()
        .map_err(ReplayError::Config)?;
    let (snap_tx, snap_rx) = bounded::<(usize, WorkerCounters)>(cfg.workers * 16);

    let start = Instant::now();
    let mut workers: Vec<JoinHandle<(WorkerCounters, Latency)>> = Vec::with_capacity(cfg.workers);
    for (k, (rx, w)) in burst_rx.into_iter().zip(built.workers).enumerate() {
        let core = cfg.cores.get(k).copied();
        let snaps = snap_tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("tollgate-w{k}"))
            .spawn(move || {
                if let Some(id) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                run_worker(w, rx, snaps, k)
            })
            .map_err(ReplayError::Thread)?;
        workers.push(h);
    }
    drop(snap_tx);

    let reader = {
        let cfg = cfg.clone();
        let progress = Arc::clone(&progress);
        std::thread::Builder::new()
            .name("tollgate-reader".into())
            .spawn(move || read_captures(&cfg, burst_tx, &progress))
            .map_err(ReplayError::Thread)?
    };

    // Monitor: collect snapshots, call back about every 100 ms, and write
    // an EVE stats event every stats interval.
    let mut latest = vec![WorkerCounters::default(); cfg.workers];
    let stats_tx = eve.as_ref().and_then(EveWriter::lines);
    let mut stats_due = crate::stats::EveStats::new(&cfg.eve_settings, cfg.mode == Mode::Ips);
    loop {
        match snap_rx.recv_timeout(Duration::from_millis(100)) {
            Ok((k, c)) => {
                latest[k] = c;
                while let Ok((k, c)) = snap_rx.try_recv() {
                    latest[k] = c;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        on_tick(&latest, &progress, start.elapsed().as_secs_f64());
        stats_due.tick(&latest, None, stats_tx.as_ref(), false);
    }

    let mut finals = Vec::with_capacity(cfg.workers);
    let mut latency = Vec::with_capacity(cfg.workers);
    for h in workers {
        let (c, l) = h
            .join()
            .map_err(|_| ReplayError::Thread(std::io::Error::other("worker panicked")))?;
        finals.push(c);
        latency.push(l);
    }
    let seconds = start.elapsed().as_secs_f64();
    reloaders
        .into_iter()
        .for_each(crate::handover::ReloadThread::stop);
    // The last stats event, with every count final.
    stats_due.tick(&finals, None, stats_tx.as_ref(), true);
    drop(stats_tx);
    // The workers are gone, so are their rings: the scorer drains and ends.
    let scoring = scorer.map(crate::scoring::Scorer::join);
    let (capture, capture_errors) = reader
        .join()
        .map_err(|_| ReplayError::Thread(std::io::Error::other("reader panicked")))?;
    let (eve, eve_error) = match eve.map(EveWriter::join) {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    Ok(ReplayReport {
        capture,
        workers: finals,
        latency,
        seconds,
        eve,
        eve_error,
        capture_errors,
        scoring,
    })
}

/// A capture record held (inline) for its datagram's verdict.
type HeldRecord = Option<(Arc<Pooled>, Desc)>;

fn run_worker(
    mut w: Worker,
    rx: Receiver<Burst>,
    snaps: Sender<(usize, WorkerCounters)>,
    k: usize,
) -> (WorkerCounters, Latency) {
    let mut bursts: u64 = 0;
    let mut published = Instant::now();
    let mut sink = CountingSink::default();
    let mut verdicts = [Verdict::Forward; BURST_SIZE];
    let snapshot = |w: &Worker, sink: &CountingSink| {
        let mut c = w.counters();
        c.sink_packets = sink.count();
        c
    };
    let handoffs = w.handoff_receiver();
    // Until every other worker has closed its side of the mesh.
    let mut handoffs_open = handoffs.is_some();
    // Inline, packets that completed a datagram another worker judges wait
    // here (a record of the capture each) for the verdict.
    let mut waiting: Vec<HeldRecord> = vec![None; MAX_HELD_FRAGMENTS];
    let release = |w: &mut Worker, waiting: &mut [HeldRecord], sink: &mut CountingSink| {
        w.take_released(|token, forward| {
            if let Some((buf, d)) = waiting.get_mut(usize::from(token)).and_then(Option::take) {
                if forward {
                    let data = buf.get(d.offset..d.offset + d.len as usize).unwrap_or(&[]);
                    sink.send(&RawPacket::new(data, d.ts_ns));
                }
            }
        });
    };
    loop {
        // Wait for a burst, taking handed-over datagrams meanwhile.
        let b = match (&handoffs, handoffs_open) {
            (Some(h), true) => {
                crossbeam_channel::select! {
                    recv(rx) -> b => match b {
                        Ok(b) => b,
                        Err(_) => break,
                    },
                    recv(h) -> dg => {
                        match dg {
                            Ok(dg) => w.accept(dg),
                            Err(_) => handoffs_open = false,
                        }
                        continue;
                    }
                }
            }
            _ => match rx.recv() {
                Ok(b) => b,
                Err(_) => break,
            },
        };
        if let Some(buf) = &b.buf {
            let mut raw = [RawPacket::new(&[], 0); BURST_SIZE];
            let n = b.len.min(BURST_SIZE);
            for (slot, d) in raw.iter_mut().zip(&b.descs[..n]) {
                *slot = RawPacket {
                    pcap_cnt: d.cnt,
                    source: d.file,
                    ..RawPacket::new(
                        buf.get(d.offset..d.offset + d.len as usize).unwrap_or(&[]),
                        d.ts_ns,
                    )
                };
            }
            w.process_burst(&raw[..n], b.pass, &mut verdicts);
            for ((p, v), d) in raw[..n].iter().zip(&verdicts).zip(&b.descs) {
                match *v {
                    Verdict::Forward => sink.send(p),
                    Verdict::Hold(token) => {
                        if let Some(slot) = waiting.get_mut(usize::from(token)) {
                            *slot = Some((Arc::clone(buf), *d));
                        }
                    }
                    Verdict::Drop(_) => {}
                }
            }
        }
        release(&mut w, &mut waiting, &mut sink);
        if b.now_ns != 0 {
            w.tick(b.now_ns);
        }
        bursts += 1;
        // Every PUBLISH_EVERY bursts, and at least every PUBLISH_INTERVAL
        // of a slow (paced, or quiet) replay: metrics and stats move while
        // it runs.
        if bursts % PUBLISH_EVERY == 0 || published.elapsed() >= PUBLISH_INTERVAL {
            // Never waits: a monitor that is behind just misses a snapshot.
            let _ = snaps.try_send((k, snapshot(&w, &sink)));
            published = Instant::now();
        }
    }
    w.close_handoffs();
    release(&mut w, &mut waiting, &mut sink);
    let (mut c, latency) = w.finish(EndReason::Shutdown);
    c.sink_packets = sink.count();
    let _ = snaps.try_send((k, c));
    (c, latency)
}

/// Paces a replay to the capture's own clock.
struct Pacer {
    factor: f64,
    first_ts: Option<u64>,
    start: Instant,
}

impl Pacer {
    /// How long to wait before a packet stamped `ts_ns` is due.
    fn wait_for(&mut self, ts_ns: u64) -> Option<Duration> {
        let first = *self.first_ts.get_or_insert(ts_ns);
        let offset = ts_ns.saturating_sub(first) as f64 / self.factor;
        // A factor too small for the gap (or a gap past what Duration
        // holds) waits as long as a Duration can say, never panics.
        let wait = Duration::try_from_secs_f64(offset / 1e9).unwrap_or(Duration::MAX);
        let due = self.start.checked_add(wait)?;
        let now = Instant::now();
        (due > now).then(|| due - now)
    }
}

/// Per-worker bursts being filled by the reader.
struct Dispatch {
    tx: Vec<Sender<Burst>>,
    pending: Vec<Burst>,
    last_sent_ns: Vec<u64>,
    /// Per worker, how long to nap on its full ring.
    naps: Vec<Duration>,
}

impl Dispatch {
    fn flush(&mut self, k: usize, now_ns: u64) {
        let b = &mut self.pending[k];
        if b.len == 0 {
            return;
        }
        let full = std::mem::replace(b, Burst::new(b.buf.clone(), b.pass));
        self.send(k, full, now_ns);
    }

    fn flush_all(&mut self, now_ns: u64) {
        for k in 0..self.pending.len() {
            self.flush(k, now_ns);
        }
    }

    fn send(&mut self, k: usize, mut b: Burst, now_ns: u64) {
        b.now_ns = now_ns;
        self.last_sent_ns[k] = now_ns;
        // A full ring means the worker has RING_BURSTS bursts (milliseconds
        // of work) queued: the reader naps and tries again rather than
        // parking on the channel, which would make the worker pay a futex
        // wake-up for every burst it takes while the ring stays full.
        loop {
            match self.tx[k].try_send(b) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) => {
                    b = back;
                    let nap = &mut self.naps[k];
                    std::thread::sleep(*nap);
                    let left = self.tx[k].len();
                    if left > RING_BURSTS * 3 / 4 {
                        *nap = (*nap * 2).min(MAX_NAP);
                    } else if left < RING_BURSTS / 4 {
                        *nap = (*nap / 2).max(MIN_NAP);
                    }
                }
                // A worker only hangs up if it died; the join reports that.
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Once per second of capture time: sends every partly filled burst (a
    /// NIC's rx_burst returns what it has, it does not wait for 32) and moves
    /// capture time on for workers that have had nothing for a while.
    fn tick(&mut self, now_ns: u64) {
        for k in 0..self.tx.len() {
            if self.pending[k].len > 0 {
                self.flush(k, now_ns);
            } else if now_ns.saturating_sub(self.last_sent_ns[k]) >= TICK_NS {
                self.send(k, Burst::new(None, 0), now_ns);
            }
        }
    }

    fn start_buffer(&mut self, buf: &Arc<Pooled>, pass: u16) {
        for b in &mut self.pending {
            *b = Burst::new(Some(Arc::clone(buf)), pass);
        }
    }
}

fn read_captures(
    cfg: &ReplayConfig,
    tx: Vec<Sender<Burst>>,
    progress: &Progress,
) -> (CaptureCounters, Vec<String>) {
    let mut rss = SoftRss::new(cfg.workers as u16);
    let n = tx.len();
    // Chunk buffers come back here when the workers are done with them.
    let (pool_tx, pool_rx) = bounded::<Vec<u8>>(POOL_CHUNKS);
    let mut disp = Dispatch {
        tx,
        pending: (0..n).map(|_| Burst::new(None, 0)).collect(),
        last_sent_ns: vec![0; n],
        naps: vec![FULL_RING_NAP; n],
    };
    let mut counters = CaptureCounters::default();
    let mut errors = Vec::new();
    let mut pacer = match cfg.speed {
        Speed::Max => None,
        Speed::Multiplier(f) => Some(Pacer {
            factor: f,
            first_ts: None,
            start: Instant::now(),
        }),
    };
    // Capture time seen on pass 0, to shift later passes past it.
    let (mut min_ts, mut max_ts) = (u64::MAX, 0u64);
    let mut shift = 0u64;
    let mut now_ns = 0u64;
    let mut last_tick = 0u64;
    let mut bytes_done = 0u64;

    for pass in 0..cfg.loops {
        if cfg.stop.load(Ordering::Relaxed) {
            break;
        }
        if pass == 1 && min_ts != u64::MAX {
            shift = max_ts - min_ts + TICK_NS;
        }
        for (file, path) in cfg.files.iter().enumerate() {
            if cfg.stop.load(Ordering::Relaxed) {
                break;
            }
            // The file in chunks of whole records, so a capture of any size
            // replays in bounded memory; a chunk of another link type is
            // rewritten as Ethernet; the error that cut one short waits for
            // its records.
            let reader = std::fs::File::open(path)
                .map_err(CaptureError::Io)
                .and_then(|f| ChunkReader::new(f, cfg.chunk_bytes));
            let mut reader = match reader {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if pass == 0 {
                counters.files += 1;
            }
            let records_at_start = counters.records;
            'chunks: loop {
                let chunk = match reader.next_chunk_in(pool_rx.try_recv().unwrap_or_default()) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        if pass == 0 {
                            counters.truncated_files += 1;
                            errors.push(format!("{}: {e}", path.display()));
                        }
                        break;
                    }
                };
                let mut cut_short = None;
                // Errors of a rewritten chunk are reported as found.
                let mut byte_shift = chunk.file_offset as i64 - chunk.preamble as i64;
                let buf = match to_ethernet(&chunk.buf) {
                    Ok(None) => Arc::new(Pooled::new(chunk.buf, &pool_tx)),
                    Ok(Some(r)) => {
                        cut_short = r.cut_short;
                        byte_shift = 0;
                        Arc::new(Pooled::new(r.capture, &pool_tx))
                    }
                    Err(e) => {
                        errors.push(format!("{}: {e}", path.display()));
                        break;
                    }
                };
                let records_before = counters.records - records_at_start;
                let chunk_start = chunk.file_offset;
                disp.start_buffer(&buf, pass);
                let mut records = match Records::new(&buf) {
                    Ok(r) => r,
                    Err(e) => {
                        errors.push(format!("{}: {e}", path.display()));
                        break;
                    }
                };
                let mut file_ends = false;
                while let Some(rec) = records.next() {
                    let rec = match rec {
                        Ok(r) => r,
                        Err(e) => {
                            if pass == 0 {
                                counters.truncated_files += 1;
                                let e = e.in_file(records_before, byte_shift);
                                errors.push(format!("{}: {e}", path.display()));
                            }
                            file_ends = true;
                            break;
                        }
                    };
                    let ts = rec.ts_ns + shift * u64::from(pass);
                    if pass == 0 {
                        min_ts = min_ts.min(rec.ts_ns);
                        max_ts = max_ts.max(rec.ts_ns);
                    }
                    now_ns = now_ns.max(ts);
                    if let Some(p) = pacer.as_mut() {
                        if let Some(wait) = p.wait_for(ts) {
                            disp.flush_all(now_ns);
                            // In slices, so a stop is not kept waiting.
                            let until = Instant::now() + wait;
                            while !cfg.stop.load(Ordering::Relaxed) {
                                let left = until.saturating_duration_since(Instant::now());
                                if left.is_zero() {
                                    break;
                                }
                                std::thread::sleep(left.min(Duration::from_millis(50)));
                            }
                        }
                    }
                    let data = buf
                        .get(rec.offset..rec.offset + rec.caplen as usize)
                        .unwrap_or(&[]);
                    // One worker takes everything: no decode to steer by.
                    let k = if n == 1 {
                        0
                    } else {
                        usize::from(rss.steer(data, pass))
                    };
                    let b = &mut disp.pending[k];
                    b.descs[b.len] = Desc {
                        offset: rec.offset,
                        len: rec.caplen,
                        ts_ns: ts,
                        cnt: counters.records + 1,
                        file: u16::try_from(file).unwrap_or(u16::MAX),
                    };
                    b.len += 1;
                    if b.len == BURST_SIZE {
                        disp.flush(k, now_ns);
                    }
                    counters.records += 1;
                    counters.bytes += u64::from(rec.caplen);
                    if now_ns >= last_tick + TICK_NS {
                        disp.tick(now_ns);
                        last_tick = now_ns;
                    }
                    // SIGINT/SIGTERM: stop reading; what was read is processed
                    // and every flow ends as at the end of the captures.
                    if counters.records % 64 == 0 && cfg.stop.load(Ordering::Relaxed) {
                        file_ends = true;
                        break;
                    }
                    if counters.records % 4096 == 0 {
                        let at = (records.position() as i64 + byte_shift).max(0) as u64;
                        progress
                            .bytes_read
                            .store(bytes_done + at.max(chunk_start), Ordering::Relaxed);
                    }
                }
                if let (Some(e), 0) = (cut_short, pass) {
                    counters.truncated_files += 1;
                    errors.push(format!("{}: {e}", path.display()));
                }
                // Bursts point into this chunk: send them before the next.
                disp.flush_all(now_ns);
                if file_ends {
                    break 'chunks;
                }
            }
            bytes_done += std::fs::metadata(path).map_or(0, |m| m.len());
            progress.bytes_read.store(bytes_done, Ordering::Relaxed);
        }
    }
    (counters, errors)
}

/// Records' bytes read from a capture at a time: what a replay holds of
/// it (plus what queued bursts still point into). Small enough that the
/// chunk the kernel just copied is still in the reader's cache while it
/// walks the records, and in the shared cache when a worker reads them
/// (32 MiB chunks went to memory and back: the worker's checksum and scan
/// waited on every line).
pub const CHUNK_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_waits_for_capture_time() {
        let mut p = Pacer {
            factor: 1000.0,
            first_ts: None,
            start: Instant::now(),
        };
        assert!(
            p.wait_for(5_000_000_000).is_none(),
            "the first packet is due at once"
        );
        // 10 s of capture time at 1000x is 10 ms of wall time.
        let w = p.wait_for(15_000_000_000).unwrap();
        assert!(w <= Duration::from_millis(10));
        assert!(p.wait_for(5_000_000_000).is_none());
    }

    #[test]
    fn a_capture_is_read_in_chunks_and_every_record_counts_once() {
        use crate::craft::{Capture, Route, Side, TcpConversation};
        let dir = std::env::temp_dir().join(format!("tollgate-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cap = Capture::new();
        let route = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for i in 0..40u16 {
            let mut c =
                TcpConversation::new(route.clone(), 40_000 + i, 80, 1_700_000_000_000_000_000);
            c.handshake();
            c.send(Side::Client, &vec![b'x'; 60_000], 1400);
            c.close(Side::Client);
            cap.extend(c.into_packets());
        }
        let bytes = cap.to_pcap();
        assert!(bytes.len() > 3 << 19, "several chunks of 512 KiB");
        let whole = dir.join("whole.pcap");
        std::fs::write(&whole, &bytes).unwrap();
        let cut = dir.join("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let run = |chunk_bytes: usize, file: &PathBuf| {
            let cfg = ReplayConfig {
                files: vec![file.clone()],
                chunk_bytes,
                ..ReplayConfig::default()
            };
            replay(&cfg, |_, _, _| {}).unwrap()
        };
        // Whole: every record, the same as read in one chunk.
        let (small, big) = (run(0, &whole), run(CHUNK_BYTES, &whole));
        assert_eq!(small.capture.records, big.capture.records);
        assert_eq!(small.capture.bytes, big.capture.bytes);
        let w = |r: &ReplayReport| WorkerCounters::sum(&r.workers);
        assert_eq!(w(&small).flows.created, 40);
        assert_eq!(w(&small).flows.created, w(&big).flows.created);
        // Cut: the whole records before it, and its place in the file.
        let r = run(0, &cut);
        assert_eq!(r.capture.records, big.capture.records - 1);
        assert_eq!(r.capture.truncated_files, 1);
        let e = &r.capture_errors[0];
        let last = big.capture.records;
        let at = Records::new(&bytes)
            .unwrap()
            .filter_map(Result::ok)
            .last()
            .unwrap()
            .offset
            - 16;
        assert!(e.contains(&format!("record {last} at byte {at} ")), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_and_foreign_files_fail_before_starting() {
        let err = check_files(&[PathBuf::from("/nonexistent/x.pcap")]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.pcap"));
        assert!(check_files(&[PathBuf::from("/")])
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }
}
