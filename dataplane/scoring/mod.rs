//! The scoring stage: workers publish a fixed-size feature record per flow
//! (`features`) over one bounded ring each; the scorer, a thread of its
//! own, drains the rings in batches, scores each record with the loaded
//! model (`model`: XGBoost JSON, evaluated exactly as XGBoost does), raises
//! an EVE alert at or above the threshold and, inline with
//! `--score-action drop`, sends a verdict back to the flow's worker over
//! that worker's own ring. A full ring drops the record or verdict and
//! counts it: a worker never waits. SIGUSR2 (the reload flag) makes the
//! scorer load its model files again between two batches; records that
//! arrive meanwhile wait in their rings, so none is lost.
//!
//! The prompt classifier (`prompt`) rides on the same thread: workers hand
//! over each LLM request's prompt text (`text`) when its body is complete,
//! and a prompt scoring at or above its threshold raises an alert (sids
//! 9,210,000 and up) and, inline with `--score-action drop`, a verdict on
//! its flow, as a flow record's score does.

pub use crate::flow::features;
pub mod anomaly;
pub mod hosts;
pub mod model;
pub mod prompt;
mod pyword;
pub mod text;

use crate::decode::addr_to_ip;
use crate::events::{Event, PromptAlert, ScoreAlert, NGRAM_ROOM};
use crate::io::Mode;
use crossbeam_channel::{bounded, Receiver, Select, Sender, TrySendError};
use features::{FeatureRecord, FEATURES, N_FEATURES};
use hdrhistogram::Histogram;
use model::Model;
use prompt::{PromptModel, PromptScratch, TOP_NGRAMS};
use serde_json::{json, Map, Value};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The alerts the scorer raises: gid 1, signature ids from this one on
/// (9,200,000–9,209,999 are reserved for the scorer; the shipped rules
/// use 9,100,000 and up).
pub const SCORE_GID: u32 = 1;
pub const SCORE_SID: u32 = 9_200_001;
/// The prompt classifier's alerts (9,210,000–9,219,999).
pub const PROMPT_SID: u32 = 9_210_001;
/// The anomaly detector's alerts (9,220,000–9,229,999).
pub const ANOMALY_SID: u32 = 9_220_001;
/// The flow model's threshold when neither `--score-threshold` nor the
/// model file gives one.
pub const DEFAULT_THRESHOLD: f32 = 0.9;
pub use crate::flow::ANY_GENERATION;
/// Default head room for a prompt's text (`--prompt-bytes`).
pub const PROMPT_BYTES: usize = 8 << 10;

/// Records a worker's ring to the scorer holds.
pub const FEATURE_RING: usize = 4096;
/// Verdicts the scorer's ring back to a worker holds.
pub const VERDICT_RING: usize = 1024;
/// Records the scorer takes from one ring before looking at the others.
const BATCH: usize = 64;
/// Score buckets in the stats: [0, 0.1), [0.1, 0.2) … [0.9, 1]; scores of
/// regression models are clamped into [0, 1] for counting.
pub const BUCKETS: usize = 10;
/// Features an alert names as contributing most.
use crate::events::TOP;

/// What a high score does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreAction {
    #[default]
    Alert,
    /// Alert, and inline (`--mode ips`) drop the flow's later packets.
    Drop,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoringConfig {
    /// An XGBoost model, or an anomaly detector's state (told apart by
    /// content): `--model`.
    pub model: Option<PathBuf>,
    /// Overrides the flow model file's own threshold (else
    /// `DEFAULT_THRESHOLD`).
    pub threshold: Option<f32>,
    /// The anomaly detector's state file: loaded when it exists (else the
    /// detector starts learning), saved at exit and at each reload.
    pub anomaly_state: Option<PathBuf>,
    /// Records per Half-Space Trees window (learning takes two).
    pub learn_window: u64,
    /// Overrides the learnt anomaly threshold.
    pub anomaly_threshold: Option<f32>,
    /// Clients the per-host table holds (0: no host features).
    pub host_table: usize,
    pub action: ScoreAction,
    /// Core to pin the scorer to.
    pub core: Option<usize>,
    /// Send a record each time a flow has carried this many more bytes.
    pub feature_bytes: u64,
    /// Send a record when this long has passed since a flow's last one.
    pub feature_interval_ns: u64,
    /// Send an early record after a flow's first this many packets (0:
    /// none): an inline verdict then still finds the flow running.
    pub feature_packets: u32,
    pub features_out: Option<PathBuf>,
    /// The prompt classifier's model file (`--prompt-model`).
    pub prompt_model: Option<PathBuf>,
    /// Overrides the prompt model file's own threshold.
    pub prompt_threshold: Option<f32>,
    /// A prompt's head sent whole up to this many bytes; a longer one also
    /// sends its last quarter of that.
    pub prompt_bytes: usize,
    /// Prompt records (text buffers) per worker (`--prompt-ring`).
    pub prompt_ring: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            model: None,
            threshold: None,
            anomaly_state: None,
            learn_window: 10_000,
            anomaly_threshold: None,
            host_table: hosts::HOSTS,
            action: ScoreAction::Alert,
            core: None,
            feature_bytes: 10 << 20,
            feature_interval_ns: 60_000_000_000,
            feature_packets: 0,
            features_out: None,
            prompt_model: None,
            prompt_threshold: None,
            prompt_bytes: PROMPT_BYTES,
            prompt_ring: text::PROMPT_RING,
        }
    }
}

impl ScoringConfig {
    /// The stage runs when there is a model to score with or records to
    /// write.
    pub fn enabled(&self) -> bool {
        self.flows() || self.prompt_model.is_some()
    }

    /// Whether workers send flow feature records.
    pub fn flows(&self) -> bool {
        self.model.is_some() || self.features_out.is_some() || self.anomaly_state.is_some()
    }
}

/// A block verdict for one flow, addressed so that a slot holding a later
/// flow is never hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreVerdict {
    pub slot: u32,
    pub flow_id: u64,
    pub generation: u32,
}

/// A worker's end of the stage.
#[derive(Debug)]
pub struct ScoringLink {
    tx: Sender<FeatureRecord>,
    verdicts: Receiver<ScoreVerdict>,
    pub feature_bytes: u64,
    pub feature_interval_ns: u64,
    /// Send an early record after a flow's first this many packets (0:
    /// none).
    pub feature_packets: u32,
    /// Whether flow feature records are wanted (a flow model or
    /// `--features-out`); without, only prompts go.
    pub flows: bool,
    /// The prompt rings, when there is a prompt model (the worker takes
    /// them: `Worker::with_scoring`).
    pub prompts: Option<text::PromptPort>,
}

/// A worker's part of the stage: its link, and the feature accumulators
/// of its flows, one per flow-table slot (allocated only when scoring).
#[derive(Debug)]
pub struct WorkerScoring {
    pub link: ScoringLink,
    worker: u16,
    features: Vec<features::FlowFeatures>,
}

impl WorkerScoring {
    pub fn new(link: ScoringLink, flows: usize, worker: u16) -> Self {
        // Without flow records (a prompt model alone) no slot has an
        // accumulator: nothing is counted or sent per packet.
        let flows = if link.flows { flows } else { 0 };
        WorkerScoring {
            link,
            worker,
            features: vec![features::FlowFeatures::default(); flows],
        }
    }

    fn offer(&self, rec: FeatureRecord, c: &mut LinkCounters) {
        if self.link.offer(rec) {
            c.records += 1;
        } else {
            c.dropped += 1;
        }
    }

    /// Accounts a packet of the flow in `up.slot` and publishes a record
    /// when the flow has carried another `--feature-bytes` or gone
    /// `--feature-interval` since its last one.
    pub fn packet(
        &mut self,
        flows: &crate::flow::FlowTable,
        c: &mut LinkCounters,
        up: &crate::flow::Update,
        payload: &[u8],
        tcp_flags: Option<u8>,
        ts: u64,
    ) {
        let Some(ff) = self.features.get_mut(up.slot as usize) else {
            return;
        };
        if up.created {
            // The slot held another flow before.
            *ff = features::FlowFeatures::default();
            ff.sent_ns = ts;
        }
        ff.packet(up.dir, ts, up.created, payload, tcp_flags);
        let trigger = if self.link.feature_packets > 0 && ff.packets == self.link.feature_packets {
            features::Trigger::Packets
        } else if up.bytes.saturating_sub(ff.sent_bytes) >= self.link.feature_bytes {
            features::Trigger::Bytes
        } else if ts.saturating_sub(ff.sent_ns) >= self.link.feature_interval_ns {
            features::Trigger::Interval
        } else {
            return;
        };
        ff.sent_bytes = up.bytes;
        ff.sent_ns = ts;
        let ff = *ff;
        if let Some(r) = flows.snapshot(up.slot) {
            self.offer(r.feature_record(self.worker, trigger, ts, &ff), c);
        }
    }

    /// Counts alerts on the flow in `slot`, per hit bucket.
    pub fn add_hits(&mut self, slot: u32, hits: &features::Hits) {
        if let Some(ff) = self.features.get_mut(slot as usize) {
            ff.add_hits(hits);
        }
    }

    /// The flow `r` ended, with `hits` more alerts (its streams' flush):
    /// its last record goes out; `wait` (shutdown) waits for room.
    pub fn ended(
        &mut self,
        r: &crate::flow::FlowRecord,
        hits: &features::Hits,
        wait: bool,
        c: &mut LinkCounters,
    ) {
        let Some(ff) = self.features.get(r.slot as usize) else {
            return;
        };
        let mut ff = *ff;
        ff.add_hits(hits);
        let rec = r.feature_record(self.worker, features::Trigger::End, r.end_ns, &ff);
        if !wait {
            self.offer(rec, c);
        } else if self.link.send(rec) {
            c.records += 1;
        } else {
            c.dropped += 1;
        }
    }

    /// Applies the verdicts the scorer sent: a flow still in its slot
    /// (same generation and id) has its later packets dropped; one whose
    /// slot moved on is counted stale.
    pub fn take_verdicts(&self, flows: &mut crate::flow::FlowTable, c: &mut LinkCounters) {
        while let Some(v) = self.link.verdict() {
            if flows.mark_score_drop(v.slot, v.flow_id, v.generation) {
                c.verdicts_applied += 1;
            } else {
                c.verdicts_stale += 1;
            }
        }
    }
}

/// What a worker counted about the stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub records: u64,
    /// Records lost to a full ring.
    pub dropped: u64,
    /// Verdicts that found their flow, and those whose slot had moved on.
    pub verdicts_applied: u64,
    pub verdicts_stale: u64,
    /// Prompts handed to the scorer, lost to a full ring, and cut to head
    /// and tail.
    pub prompts: u64,
    pub prompts_dropped: u64,
    pub prompts_cut: u64,
}

impl LinkCounters {
    pub fn add(&mut self, o: &LinkCounters) {
        self.records += o.records;
        self.dropped += o.dropped;
        self.verdicts_applied += o.verdicts_applied;
        self.verdicts_stale += o.verdicts_stale;
        self.prompts += o.prompts;
        self.prompts_dropped += o.prompts_dropped;
        self.prompts_cut += o.prompts_cut;
    }

    /// Counts what a worker's prompt offer did.
    pub fn offered(&mut self, o: text::Offered) {
        match o {
            text::Offered::Sent { cut } => {
                self.prompts += 1;
                self.prompts_cut += u64::from(cut);
            }
            text::Offered::RingFull => self.prompts_dropped += 1,
        }
    }
}

impl ScoringLink {
    /// A link with no scorer behind it: the caller holds the other ends of
    /// both rings (tests, benchmarks, a scorer of its own).
    pub fn detached(
        capacity: usize,
        cfg: &ScoringConfig,
    ) -> (ScoringLink, Receiver<FeatureRecord>, Sender<ScoreVerdict>) {
        let (tx, rx) = bounded(capacity);
        let (vtx, vrx) = bounded(VERDICT_RING);
        let link = ScoringLink {
            tx,
            verdicts: vrx,
            feature_bytes: cfg.feature_bytes,
            feature_interval_ns: cfg.feature_interval_ns,
            feature_packets: cfg.feature_packets,
            flows: true,
            prompts: None,
        };
        (link, rx, vtx)
    }

    /// Offers a record without waiting; false (the caller counts it) when
    /// the ring is full.
    pub fn offer(&self, r: FeatureRecord) -> bool {
        match self.tx.try_send(r) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Sends a record, waiting for room: only at shutdown.
    pub fn send(&self, r: FeatureRecord) -> bool {
        self.tx.send(r).is_ok()
    }

    /// The next verdict waiting, if any.
    pub fn verdict(&self) -> Option<ScoreVerdict> {
        self.verdicts.try_recv().ok()
    }
}

/// What the scorer counted.
#[derive(Debug, Clone, Default)]
pub struct ScorerReport {
    /// The flow model's records scored, alerts, verdicts.
    pub tally: Tally,
    pub reloads: u64,
    pub reload_errors: Vec<String>,
    pub model: Option<String>,
    /// The flow model's alert threshold in use at the end.
    pub threshold: Option<f32>,
    pub features_out_error: Option<String>,
    /// Nanoseconds per record (scoring and alert building), p50 and p99.
    pub ns_p50: u64,
    pub ns_p99: u64,
    /// Seconds the scorer spent on records, for records per second.
    pub busy_seconds: f64,
    /// The prompt classifier's side, when it ran.
    pub prompts: Option<PromptReport>,
    /// The anomaly detector's side, when it ran.
    pub anomaly: Option<AnomalyReport>,
    /// The host table's, when it ran.
    pub hosts: Option<HostReport>,
}

/// What the anomaly detector did.
#[derive(Debug, Clone, Default)]
pub struct AnomalyReport {
    pub tally: Tally,
    /// Records it has seen (learning, calibrating and live) over its whole
    /// life (a loaded state's too), its phase and threshold at the end.
    pub records: u64,
    pub phase: &'static str,
    pub threshold: f32,
    pub window: u64,
    pub state: Option<String>,
    pub saves: u64,
    pub errors: Vec<String>,
}

/// What the host table held and lost.
#[derive(Debug, Clone, Default)]
pub struct HostReport {
    pub entries: usize,
    pub bytes: usize,
    pub counters: hosts::HostCounters,
}

/// What each of the scorer's models counted: the flow model, the prompt
/// classifier and the anomaly detector alike.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub scored: u64,
    pub alerts: u64,
    /// Scores by tenth: [0, 0.1) … [0.9, 1] (clamped into [0, 1]).
    pub buckets: [u64; BUCKETS],
    pub verdicts_sent: u64,
    pub verdicts_dropped: u64,
    /// Alerts lost to a full EVE ring.
    pub events_dropped: u64,
}

impl Tally {
    /// Counts one score.
    fn score(&mut self, s: f32) {
        self.scored += 1;
        self.buckets[((s.clamp(0.0, 1.0) * BUCKETS as f32) as usize).min(BUCKETS - 1)] += 1;
    }

    /// Counts a verdict sent or lost to a full ring.
    fn verdict(&mut self, sent: bool) {
        if sent {
            self.verdicts_sent += 1;
        } else {
            self.verdicts_dropped += 1;
        }
    }

    /// Its stats JSON fields, into `v`: scored, alerts, buckets, verdicts
    /// {sent, dropped}, events_dropped.
    fn write_json(&self, v: &mut Value) {
        v["scored"] = json!(self.scored);
        v["alerts"] = json!(self.alerts);
        let mut m = Map::new();
        for (k, n) in self.buckets.iter().enumerate() {
            m.insert(format!("{:.1}", k as f64 / 10.0), json!(n));
        }
        v["buckets"] = Value::Object(m);
        v["verdicts"]["sent"] = json!(self.verdicts_sent);
        v["verdicts"]["dropped"] = json!(self.verdicts_dropped);
        v["events_dropped"] = json!(self.events_dropped);
    }
}

/// What the scorer counted of prompts.
#[derive(Debug, Clone, Default)]
pub struct PromptReport {
    pub tally: Tally,
    pub reloads: u64,
    pub reload_errors: Vec<String>,
    pub model: String,
    pub threshold: f32,
    /// Nanoseconds per prompt (vectorising, scoring, alert building).
    pub ns_p50: u64,
    pub ns_p99: u64,
    pub busy_seconds: f64,
    /// Bytes of prompt text scored.
    pub bytes: u64,
}

impl PromptReport {
    fn to_json(&self, link: &LinkCounters) -> Value {
        let t = &self.tally;
        let mut v = json!({
            "records": link.prompts,
            "dropped": link.prompts_dropped,
            "cut": link.prompts_cut,
            "bytes": self.bytes,
            "ns_per_prompt": {"p50": self.ns_p50, "p99": self.ns_p99},
            "prompts_per_second_busy": if self.busy_seconds > 0.0 { t.scored as f64 / self.busy_seconds } else { 0.0 },
            "model": self.model,
            "threshold": self.threshold,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
        });
        t.write_json(&mut v);
        v
    }
}

impl ScorerReport {
    /// The stats JSON's "scoring" object, with the workers' side.
    pub fn to_json(&self, link: &LinkCounters) -> Value {
        let t = &self.tally;
        let mut v = json!({
            "records": link.records,
            "dropped": link.dropped,
            "ns_per_record": {"p50": self.ns_p50, "p99": self.ns_p99},
            "records_per_second_busy": if self.busy_seconds > 0.0 { t.scored as f64 / self.busy_seconds } else { 0.0 },
            "verdicts": {
                "applied": link.verdicts_applied,
                "stale": link.verdicts_stale,
            },
            "model": self.model,
            "threshold": self.threshold,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
        });
        t.write_json(&mut v);
        if let Some(p) = &self.prompts {
            v["prompts"] = p.to_json(link);
        }
        if let Some(a) = &self.anomaly {
            v["anomaly"] = json!({
                "records_seen": a.records,
                "phase": a.phase,
                "threshold": a.threshold,
                "window": a.window,
                "state": a.state,
                "saves": a.saves,
                "errors": a.errors,
            });
            a.tally.write_json(&mut v["anomaly"]);
        }
        if let Some(h) = &self.hosts {
            v["hosts"] = json!({
                "entries": h.entries,
                "bytes": h.bytes,
                "flows_noted": h.counters.flows_noted,
                "hosts_evicted": h.counters.hosts_evicted,
                "peers_evicted": h.counters.peers_evicted,
            });
        }
        v
    }
}

/// The running scorer.
pub struct Scorer {
    handle: JoinHandle<ScorerReport>,
}

/// Asks every running scorer to reload its model (SIGHUP does this).
pub fn reload_flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// A scorer ready to run on a thread or lcore of the caller's choosing.
pub struct ScorerJob {
    state: State,
    rxs: Vec<Receiver<FeatureRecord>>,
    prompt_rxs: Vec<Receiver<text::PromptRecord>>,
    reload: Arc<AtomicBool>,
}

impl ScorerJob {
    /// Loads the model (a failure is a start-up error) and builds one ring
    /// pair per worker. `events` is the scorer's own ring to the EVE
    /// writer; `reload` is polled between batches.
    pub fn new(
        cfg: &ScoringConfig,
        workers: usize,
        mode: Mode,
        events: Option<Sender<Event>>,
        reload: Arc<AtomicBool>,
    ) -> Result<(ScorerJob, Vec<ScoringLink>), String> {
        // `--model` takes either kind of flow model, told apart by content.
        let (model, loaded_detector) = match cfg.model.as_deref() {
            Some(p) if is_anomaly_state(p) => (None, Some(anomaly::Detector::load(p)?)),
            Some(p) => (Some(Model::load(p)?), None),
            None => (None, None),
        };
        if loaded_detector.is_some() && cfg.anomaly_state.is_some() {
            return Err(
                "--model is an anomaly detector's state and --anomaly-state gives another: give one"
                    .into(),
            );
        }
        let detector = match (&cfg.anomaly_state, loaded_detector) {
            (_, Some(d)) => Some(d),
            (Some(p), None) if p.exists() => Some(anomaly::Detector::load(p)?),
            (Some(_), None) => Some(anomaly::Detector::new(1, cfg.learn_window)),
            (None, None) => None,
        };
        let threshold = cfg
            .threshold
            .or_else(|| model.as_ref().and_then(|m| m.threshold))
            .unwrap_or(DEFAULT_THRESHOLD);
        // Its records, phase and threshold are read off it at the end.
        let anomaly_report = detector.as_ref().map(|d| AnomalyReport {
            window: d.window,
            state: cfg
                .anomaly_state
                .as_ref()
                .or(cfg.model.as_ref())
                .map(|p| p.display().to_string()),
            ..AnomalyReport::default()
        });
        let mut hosts =
            (cfg.host_table > 0 && cfg.flows()).then(|| hosts::HostTable::new(cfg.host_table));
        if let (Some(h), Some(d)) = (hosts.as_mut(), detector.as_ref()) {
            h.import_peers(&d.peers);
        }
        let prompt = cfg
            .prompt_model
            .as_deref()
            .map(PromptModel::load)
            .transpose()?;
        let out = cfg
            .features_out
            .as_ref()
            .map(|p| {
                std::fs::File::create(p)
                    .map(BufWriter::new)
                    .map_err(|e| format!("{}: cannot create: {e}", p.display()))
            })
            .transpose()?;
        let mut links = Vec::with_capacity(workers);
        let mut rxs = Vec::with_capacity(workers);
        let mut verdict_txs = Vec::with_capacity(workers);
        let mut sinks = Vec::new();
        let mut prompt_rxs = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = bounded(if cfg.flows() { FEATURE_RING } else { 1 });
            let (vtx, vrx) = bounded(VERDICT_RING);
            let prompts = prompt.as_ref().map(|_| {
                let (port, sink) =
                    text::prompt_ring(cfg.prompt_ring, cfg.prompt_bytes, cfg.prompt_bytes / 4);
                prompt_rxs.push(sink.full.clone());
                sinks.push(sink);
                port
            });
            links.push(ScoringLink {
                tx,
                verdicts: vrx,
                feature_bytes: cfg.feature_bytes,
                feature_interval_ns: cfg.feature_interval_ns,
                feature_packets: cfg.feature_packets,
                flows: cfg.flows(),
                prompts,
            });
            rxs.push(rx);
            verdict_txs.push(vtx);
        }
        let prompt_report = prompt.as_ref().map(|m| PromptReport {
            model: m.name.clone(),
            threshold: cfg.prompt_threshold.unwrap_or(m.threshold as f32),
            ..PromptReport::default()
        });
        let state = State {
            model_path: if model.is_some() {
                cfg.model.clone()
            } else {
                None
            },
            anomaly_path: if detector.is_some() && model.is_none() && cfg.anomaly_state.is_none() {
                cfg.model.clone()
            } else {
                None
            },
            model,
            model_generation: 0,
            threshold,
            threshold_override: cfg.threshold,
            detector,
            anomaly_save: cfg.anomaly_state.clone(),
            anomaly_threshold: cfg.anomaly_threshold,
            hosts,
            drop: cfg.action == ScoreAction::Drop && mode == Mode::Ips,
            events,
            verdicts: verdict_txs,
            out,
            report: ScorerReport {
                prompts: prompt_report,
                anomaly: anomaly_report,
                ..ScorerReport::default()
            },
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?,
            prompt,
            prompt_path: cfg.prompt_model.clone(),
            prompt_generation: 0,
            prompt_threshold: cfg.prompt_threshold,
            scratch: PromptScratch::default(),
            sinks,
            prompt_hist: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .map_err(|e| e.to_string())?,
        };
        Ok((
            ScorerJob {
                state,
                rxs,
                prompt_rxs,
                reload,
            },
            links,
        ))
    }

    /// Scores until every worker's link is gone and their rings are
    /// drained.
    pub fn run(self) -> ScorerReport {
        run(self.state, self.rxs, self.prompt_rxs, &self.reload)
    }
}

impl Scorer {
    /// Builds the stage (`ScorerJob::new`) and starts it on a thread of its
    /// own, pinned to `cfg.core` when given.
    pub fn spawn(
        cfg: &ScoringConfig,
        workers: usize,
        mode: Mode,
        events: Option<Sender<Event>>,
        reload: Arc<AtomicBool>,
    ) -> Result<(Scorer, Vec<ScoringLink>), String> {
        let (job, links) = ScorerJob::new(cfg, workers, mode, events, reload)?;
        Ok((Scorer::start(job, cfg.core)?, links))
    }

    /// Starts a prepared job on a thread of its own, pinned to `core` when
    /// given.
    pub fn start(job: ScorerJob, core: Option<usize>) -> Result<Scorer, String> {
        let handle = std::thread::Builder::new()
            .name("tollgate-scorer".into())
            .spawn(move || {
                if let Some(id) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                job.run()
            })
            .map_err(|e| format!("cannot start the scorer: {e}"))?;
        Ok(Scorer { handle })
    }

    /// Waits for the scorer: it ends once every worker's link is gone and
    /// their rings are drained.
    pub fn join(self) -> ScorerReport {
        self.handle.join().unwrap_or_else(|_| ScorerReport {
            reload_errors: vec!["the scorer thread panicked".into()],
            ..ScorerReport::default()
        })
    }
}

struct State {
    model: Option<Model>,
    model_path: Option<PathBuf>,
    model_generation: u32,
    threshold: f32,
    /// `--score-threshold`, else each loaded model's own.
    threshold_override: Option<f32>,
    detector: Option<anomaly::Detector>,
    /// Where a detector given to `--model` came from (reloaded on SIGUSR2).
    anomaly_path: Option<PathBuf>,
    /// `--anomaly-state`: where the detector is saved.
    anomaly_save: Option<PathBuf>,
    anomaly_threshold: Option<f32>,
    hosts: Option<hosts::HostTable>,
    drop: bool,
    events: Option<Sender<Event>>,
    verdicts: Vec<Sender<ScoreVerdict>>,
    out: Option<BufWriter<std::fs::File>>,
    report: ScorerReport,
    hist: Histogram<u64>,
    prompt: Option<PromptModel>,
    prompt_path: Option<PathBuf>,
    prompt_generation: u32,
    /// `--prompt-threshold`, else each loaded file's own.
    prompt_threshold: Option<f32>,
    scratch: PromptScratch,
    /// Per worker: where its scored prompt records go back.
    sinks: Vec<text::PromptSink>,
    prompt_hist: Histogram<u64>,
}

fn run(
    mut st: State,
    rxs: Vec<Receiver<FeatureRecord>>,
    prompt_rxs: Vec<Receiver<text::PromptRecord>>,
    reload: &AtomicBool,
) -> ScorerReport {
    let mut sel = Select::new();
    for rx in &rxs {
        sel.recv(rx);
    }
    for rx in &prompt_rxs {
        sel.recv(rx);
    }
    let n = rxs.len();
    let mut live = rxs.len() + prompt_rxs.len();
    while live > 0 {
        if reload.swap(false, Ordering::AcqRel) {
            st.reload();
        }
        let op = match sel.select_timeout(Duration::from_millis(50)) {
            Ok(op) => op,
            Err(_) => continue,
        };
        let i = op.index();
        if i >= n {
            let rx = &prompt_rxs[i - n];
            match op.recv(rx) {
                Ok(r) => {
                    st.prompt(r);
                    for r in rx.try_iter().take(BATCH - 1) {
                        st.prompt(r);
                    }
                }
                Err(_) => {
                    sel.remove(i);
                    live -= 1;
                }
            }
            continue;
        }
        match op.recv(&rxs[i]) {
            Ok(r) => {
                st.record(&r);
                for r in rxs[i].try_iter().take(BATCH - 1) {
                    st.record(&r);
                }
            }
            Err(_) => {
                sel.remove(i);
                live -= 1;
            }
        }
    }
    if let Some(mut out) = st.out.take() {
        if let Err(e) = out.flush() {
            st.report.features_out_error = Some(e.to_string());
        }
    }
    st.report.ns_p50 = st.hist.value_at_quantile(0.5);
    st.report.ns_p99 = st.hist.value_at_quantile(0.99);
    st.report.model = st.model.as_ref().map(|m| m.name.clone());
    st.report.threshold = st.model.as_ref().map(|_| st.threshold);
    st.save_detector();
    if let (Some(d), Some(a)) = (&st.detector, st.report.anomaly.as_mut()) {
        a.records = d.records;
        a.phase = d.phase.name();
        a.threshold = st.anomaly_threshold.unwrap_or(d.threshold);
    }
    if let Some(h) = &st.hosts {
        st.report.hosts = Some(HostReport {
            entries: h.entries(),
            bytes: h.bytes(),
            counters: h.counters,
        });
    }
    if let Some(p) = st.report.prompts.as_mut() {
        p.ns_p50 = st.prompt_hist.value_at_quantile(0.5);
        p.ns_p99 = st.prompt_hist.value_at_quantile(0.99);
    }
    st.report
}

impl State {
    /// Loads every model file again; a file that fails leaves its model
    /// in use.
    fn reload(&mut self) {
        if let Some(path) = &self.model_path {
            match Model::load(path) {
                Ok(m) => {
                    self.threshold = self
                        .threshold_override
                        .or(m.threshold)
                        .unwrap_or(DEFAULT_THRESHOLD);
                    self.model = Some(m);
                    self.model_generation += 1;
                    self.report.reloads += 1;
                }
                Err(e) => self.report.reload_errors.push(e),
            }
        }
        if let Some(path) = &self.anomaly_path {
            match anomaly::Detector::load(path) {
                Ok(d) => {
                    self.detector = Some(d);
                    self.report.reloads += 1;
                }
                Err(e) => self.report.reload_errors.push(e),
            }
        }
        // A learning detector is not reloaded but saved: a checkpoint.
        self.save_detector();
        if let (Some(path), Some(rep)) = (&self.prompt_path, self.report.prompts.as_mut()) {
            match PromptModel::load(path) {
                Ok(m) => {
                    rep.threshold = self.prompt_threshold.unwrap_or(m.threshold as f32);
                    rep.model = m.name.clone();
                    self.prompt = Some(m);
                    self.prompt_generation += 1;
                    rep.reloads += 1;
                }
                Err(e) => rep.reload_errors.push(e),
            }
        }
    }

    /// Scores one prompt, alerts (and sends a verdict) at or above the
    /// threshold, and gives the record back to its worker.
    fn prompt(&mut self, r: text::PromptRecord) {
        let worker = usize::from(r.at.worker);
        if let (Some(model), Some(rep)) = (&self.prompt, self.report.prompts.as_mut()) {
            let t0 = Instant::now();
            // A cut prompt's head and tail are scored apart, the higher
            // counting: an instruction appended to a long document is not
            // drowned by the document.
            let head = (r.head as usize).min(r.text.len());
            let parts: [&[u8]; 2] = if r.cut() {
                [&r.text[..head], r.text.get(head + 1..).unwrap_or_default()]
            } else {
                [&r.text, &[]]
            };
            let mut best: Option<prompt::Scored<'_>> = None;
            for part in parts {
                if part.is_empty() && best.is_some() {
                    continue;
                }
                let sc = model.score_prompt(part, &mut self.scratch);
                if best
                    .as_ref()
                    .is_none_or(|b| sc.0.probability > b.0.probability)
                {
                    best = Some(sc);
                }
            }
            let Some((sc, top, part)) = best else {
                return;
            };
            let p = sc.probability as f32;
            rep.tally.score(p);
            rep.bytes += r.text.len() as u64;
            if p >= rep.threshold {
                rep.tally.alerts += 1;
                let mut alert = PromptAlert {
                    at: r.at,
                    tx_id: r.tx_id,
                    score: p,
                    threshold: rep.threshold,
                    model_generation: self.prompt_generation,
                    model_name: [0; 64],
                    prompt_bytes: r.len,
                    top: [(0, 0.0); TOP_NGRAMS],
                    ngrams: [0; NGRAM_ROOM * TOP_NGRAMS],
                    blocked: false,
                };
                let n = model.name.len().min(63);
                alert.model_name[..n].copy_from_slice(&model.name.as_bytes()[..n]);
                let cols: Vec<u32> = top.iter().map(|t| t.0).collect();
                model.ngrams_of(part, &mut self.scratch, &cols, |i, g| {
                    let g = &g[..crate::scoring::text::char_floor(g, NGRAM_ROOM)];
                    alert.ngrams[i * NGRAM_ROOM..i * NGRAM_ROOM + g.len()].copy_from_slice(g);
                    alert.top[i] = (g.len() as u8, top[i].1 as f32);
                });
                let v = ScoreVerdict {
                    slot: r.slot,
                    flow_id: r.at.flow_id,
                    generation: ANY_GENERATION,
                };
                alert.blocked = block(self.drop, &self.verdicts, r.at.worker, v, &mut rep.tally);
                emit(&self.events, Event::Prompt(Box::new(alert)), &mut rep.tally);
            }
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            rep.busy_seconds += ns as f64 / 1e9;
            let _ = self.prompt_hist.record(ns.max(1));
        }
        if let Some(s) = self.sinks.get(worker) {
            s.give_back(r);
        }
    }

    /// Saves the detector to `--anomaly-state`, counting the outcome.
    fn save_detector(&mut self) {
        if let (Some(d), Some(path), Some(a)) = (
            self.detector.as_mut(),
            &self.anomaly_save,
            self.report.anomaly.as_mut(),
        ) {
            if let Some(h) = &self.hosts {
                d.peers = h.export_peers();
            }
            match d.save(path) {
                Ok(()) => a.saves += 1,
                Err(e) => a.errors.push(e),
            }
        }
    }

    fn record(&mut self, r: &FeatureRecord) {
        let t0 = Instant::now();
        let mut r = *r;
        if let Some(h) = &mut self.hosts {
            h.observe(&mut r);
        }
        let score = self.model.as_ref().map(|m| m.score(&r.values));
        let (anomaly, anomalous) = match &mut self.detector {
            Some(d) => {
                let (s, alert) = d.observe(&r.values);
                let alert = match (self.anomaly_threshold, s) {
                    (Some(t), Some(s)) => d.phase == anomaly::Phase::Live && s >= t,
                    _ => alert,
                };
                (s, alert)
            }
            None => (None, false),
        };
        if let Some(out) = &mut self.out {
            if self.report.features_out_error.is_none() {
                if let Err(e) = writeln!(out, "{}", record_json(&r, score, anomaly)) {
                    self.report.features_out_error = Some(e.to_string());
                }
            }
        }
        // A verdict for this record's flow, were it to block.
        let v = ScoreVerdict {
            slot: r.slot,
            flow_id: r.at.flow_id,
            generation: r.generation,
        };
        if let Some(score) = score {
            let t = &mut self.report.tally;
            t.score(score);
            if score >= self.threshold {
                t.alerts += 1;
                let blocked = block(self.drop, &self.verdicts, r.at.worker, v, t);
                let mut contrib = [0.0f32; N_FEATURES];
                if let Some(m) = &self.model {
                    m.contributions(&r.values, &mut contrib);
                }
                let name = self.model.as_ref().map_or("model", |m| m.name.as_str());
                let alert = score_alert(
                    &r,
                    score,
                    self.threshold,
                    self.model_generation,
                    name,
                    &contrib,
                    blocked,
                    false,
                );
                emit(&self.events, Event::Score(alert), &mut self.report.tally);
            }
        }
        // The detector runs with its report: `new` makes both.
        let (Some(d), Some(a)) = (&self.detector, self.report.anomaly.as_mut()) else {
            return self.busy(t0, score.is_some());
        };
        if let Some(s) = anomaly {
            a.tally.score(s);
        }
        if anomalous {
            let mut contrib = [0.0f32; N_FEATURES];
            d.contributions(&r.values, &mut contrib);
            let threshold = self.anomaly_threshold.unwrap_or(d.threshold);
            a.tally.alerts += 1;
            let blocked = block(self.drop, &self.verdicts, r.at.worker, v, &mut a.tally);
            let name = a
                .state
                .as_deref()
                .and_then(|p| std::path::Path::new(p).file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("half-space-trees");
            let alert = score_alert(
                &r,
                anomaly.unwrap_or(1.0),
                threshold,
                0,
                name,
                &contrib,
                blocked,
                true,
            );
            emit(&self.events, Event::Score(alert), &mut a.tally);
        }
        self.busy(t0, score.is_some() || anomaly.is_some());
    }

    /// Counts the time since `t0` as scoring, when something was scored.
    fn busy(&mut self, t0: Instant, scored: bool) {
        if scored {
            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.report.busy_seconds += ns as f64 / 1e9;
            let _ = self.hist.record(ns.max(1));
        }
    }
}

/// Inline (`--score-action drop`), sends the block verdict `v` to
/// `worker`'s ring and counts it in `t`; whether the flow is blocked (a
/// full ring loses the verdict, and the flow goes on).
fn block(
    drop: bool,
    verdicts: &[Sender<ScoreVerdict>],
    worker: u16,
    v: ScoreVerdict,
    t: &mut Tally,
) -> bool {
    if !drop {
        return false;
    }
    let sent = verdicts
        .get(usize::from(worker))
        .is_some_and(|tx| tx.try_send(v).is_ok());
    t.verdict(sent);
    sent
}

/// Hands an alert to the EVE writer, counting in `t` what a full ring
/// loses.
fn emit(events: &Option<Sender<Event>>, ev: Event, t: &mut Tally) {
    if events.as_ref().is_some_and(|tx| tx.try_send(ev).is_err()) {
        t.events_dropped += 1;
    }
}

/// Whether `path` holds an anomaly detector's state (else it is taken
/// for an XGBoost model, whose loader says what is wrong with it).
fn is_anomaly_state(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    anomaly::Detector::is_state(&String::from_utf8_lossy(&head[..n]))
}

/// A model alert for `r`, naming the features with the largest positive
/// contributions.
#[allow(clippy::too_many_arguments)]
fn score_alert(
    r: &FeatureRecord,
    score: f32,
    threshold: f32,
    generation: u32,
    model: &str,
    contrib: &[f32; N_FEATURES],
    blocked: bool,
    anomaly: bool,
) -> ScoreAlert {
    let mut top = [(0u8, f32::NAN, 0.0f32); TOP];
    for (i, &c) in contrib.iter().enumerate() {
        if let Some(k) = top.iter().position(|t| c > t.2) {
            top.copy_within(k..TOP - 1, k + 1);
            top[k] = (i as u8, r.values[i], c);
        }
    }
    let mut name = [0u8; 64];
    let n = crate::scoring::text::char_floor(model.as_bytes(), 63);
    name[..n].copy_from_slice(&model.as_bytes()[..n]);
    ScoreAlert {
        at: r.at,
        score,
        threshold,
        model_generation: generation,
        model_name: name,
        trigger: r.trigger,
        top,
        blocked,
        anomaly,
    }
}

/// A record as one `--features-out` line: flow id, tuple, trigger and
/// every feature by name (missing as null).
pub fn record_json(r: &FeatureRecord, score: Option<f32>, anomaly: Option<f32>) -> Value {
    let mut f = Map::new();
    for (k, feat) in FEATURES.iter().enumerate() {
        let v = r.values[k];
        f.insert(
            feat.name.into(),
            if v.is_nan() { Value::Null } else { json!(v) },
        );
    }
    let a = &r.at;
    let mut v = json!({
        "timestamp": crate::events::format_timestamp(a.ts_ns),
        "flow_start": crate::events::format_timestamp(r.start_ns),
        "flow_id": a.flow_id,
        "generation": r.generation,
        "worker": a.worker,
        "trigger": r.trigger.name(),
        "src_ip": addr_to_ip(a.network, &a.src).to_string(),
        "src_port": a.src_port,
        "dest_ip": addr_to_ip(a.network, &a.dst).to_string(),
        "dest_port": a.dst_port,
        "proto": crate::events::proto_name(a.proto),
        "features": f,
    });
    // What the loaded models made of it, for evaluating them offline.
    if let Some(s) = score {
        v["score"] = json!(s);
    }
    if let Some(s) = anomaly {
        v["anomaly"] = json!(s);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{Route, Side, TcpConversation};
    use crate::flow::EventTuple;
    use crate::flow::{EndReason, Timeouts};
    use crate::io::{DropReason, RawPacket, Verdict};
    use crate::worker::{MalformedPolicy, Worker, WorkerConfig};

    /// A one-leaf model: every flow scores sigmoid(`leaf`).
    pub fn constant_model(leaf: f32) -> String {
        format!(
            r#"{{"learner":{{"feature_names":["duration"],"feature_types":["float"],
            "gradient_booster":{{"model":{{"trees":[{{"base_weights":[{leaf}],"default_left":[0],
            "left_children":[-1],"right_children":[-1],"split_conditions":[{leaf}],
            "split_indices":[0],"split_type":[0]}}]}},"name":"gbtree"}},
            "learner_model_param":{{"base_score":"5E-1","num_class":"0","num_feature":"1"}},
            "objective":{{"name":"binary:logistic"}}}},"version":[2,1,0]}}"#
        )
    }

    fn worker(id: u16, mode: Mode) -> Worker {
        Worker::new(
            WorkerConfig {
                id,
                mode,
                flow_capacity: 4,
                timeouts: Timeouts::default(),
                malformed: MalformedPolicy::Pass,
                inspect: true,
                defrag: Default::default(),
                workers: 1,
                reta_size: crate::rss::RETA_SIZE,
                stream: Default::default(),
                app: Default::default(),
                vlan_tracking: true,
                checksum: Default::default(),
                exception: Default::default(),
            },
            None,
        )
    }

    fn run(w: &mut Worker, pkts: &[(u64, Vec<u8>)]) -> Vec<Verdict> {
        let raw: Vec<_> = pkts.iter().map(|(ts, f)| RawPacket::new(f, *ts)).collect();
        let mut v = vec![Verdict::Forward; pkts.len()];
        w.process_burst(&raw, 0, &mut v);
        v
    }

    #[test]
    fn a_full_ring_drops_records_and_counts_them() {
        let (link, rx, _v) = ScoringLink::detached(3, &ScoringConfig::default());
        let mut w = worker(0, Mode::Ids).with_scoring(link);
        let r = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Ten UDP flows in a 4-slot table: six are evicted (records), and
        // the four left end at shutdown (waiting for room: see below).
        let pkts: Vec<_> = (0..10u16)
            .map(|p| (u64::from(p), r.udp(1000 + p, 53, b"q")))
            .collect();
        run(&mut w, &pkts);
        let c = w.counters();
        assert_eq!((c.scoring.records, c.scoring.dropped), (3, 3));
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.trigger == features::Trigger::End));
        // Shutdown waits for room: a drain thread takes them all.
        let drain = std::thread::spawn(move || rx.iter().count());
        let (c, _) = w.finish(EndReason::Shutdown);
        assert_eq!(drain.join().unwrap(), 4);
        assert_eq!((c.scoring.records, c.scoring.dropped), (7, 3));
    }

    #[test]
    fn verdicts_reach_the_flows_worker_and_only_that_flow() {
        let dir = std::env::temp_dir().join(format!("tollgate-scorer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("high.json");
        std::fs::write(&path, constant_model(10.0)).unwrap();
        let cfg = ScoringConfig {
            model: Some(path),
            threshold: Some(0.5),
            action: ScoreAction::Drop,
            feature_bytes: 1000,
            ..ScoringConfig::default()
        };
        let (scorer, mut links) = Scorer::spawn(&cfg, 2, Mode::Ips, None, reload_flag()).unwrap();
        let l1 = links.pop().unwrap();
        let l0 = links.pop().unwrap();
        let mut w1 = worker(1, Mode::Ips).with_scoring(l1);
        let mut w0 = worker(0, Mode::Ips).with_scoring(l0);
        // A TCP flow on worker 1 sends a record every 1,000 bytes.
        let route = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut c = TcpConversation::new(route.clone(), 40000, 443, 1_000_000_000);
        c.handshake().send(Side::Client, &[b'x'; 3000], 1000);
        let first = c.into_packets();
        let mut c2 = TcpConversation::new(route, 40000, 443, 2_000_000_000).isn(5, 9);
        c2.send(Side::Client, &[b'y'; 100], 100);
        let later = c2.into_packets();
        run(&mut w1, &first);
        // Wait for the verdict to come back, then take it in a burst.
        let t0 = Instant::now();
        while w1.counters().scoring.verdicts_applied == 0 && t0.elapsed() < Duration::from_secs(5) {
            w1.tick(0);
            std::thread::sleep(Duration::from_millis(5));
        }
        let c1 = w1.counters();
        assert!(c1.scoring.verdicts_applied >= 1, "{:?}", c1.scoring);
        assert_eq!(c1.scoring.verdicts_stale, 0);
        let v = run(&mut w1, &later);
        assert!(
            v.iter().all(|v| *v == Verdict::Drop(DropReason::Score)),
            "{v:?}"
        );
        assert_eq!(
            w0.counters().scoring,
            LinkCounters::default(),
            "nothing for worker 0"
        );
        w0.tick(0);
        assert_eq!(w0.counters().scoring.verdicts_applied, 0);
        drop(w0.finish(EndReason::Shutdown));
        drop(w1.finish(EndReason::Shutdown));
        let rep = scorer.join();
        assert!(rep.tally.verdicts_sent >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reload_that_fails_keeps_the_model_in_use() {
        let dir = std::env::temp_dir().join(format!("tollgate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        std::fs::write(&path, constant_model(8.0)).unwrap();
        let cfg = ScoringConfig {
            model: Some(path.clone()),
            threshold: Some(0.5),
            ..ScoringConfig::default()
        };
        let reload = reload_flag();
        let (scorer, mut links) =
            Scorer::spawn(&cfg, 1, Mode::Ids, None, Arc::clone(&reload)).unwrap();
        let link = links.pop().unwrap();
        std::fs::write(&path, "{ not a model").unwrap();
        reload.store(true, Ordering::Release);
        let rec = FeatureRecord {
            at: EventTuple {
                flow_id: 1,
                proto: 6,
                src_port: 1,
                dst_port: 2,
                ..EventTuple::default()
            },
            start_ns: 0,
            slot: 0,
            generation: 1,
            trigger: features::Trigger::End,
            values: [0.0; N_FEATURES],
        };
        // The flag is up before any record: the scorer's loop sees it on
        // its next turn, whichever comes first.
        for _ in 0..10 {
            assert!(link.send(rec));
        }
        drop(link);
        let rep = scorer.join();
        assert_eq!(rep.reloads, 0);
        assert_eq!(rep.reload_errors.len(), 1, "{:?}", rep.reload_errors);
        assert!(rep.reload_errors[0].contains("m.json"));
        assert_eq!(
            (rep.tally.scored, rep.tally.alerts),
            (10, 10),
            "the old model still scores"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_verdict_for_an_earlier_flow_in_the_slot_is_stale() {
        let (link, rx, vtx) = ScoringLink::detached(64, &ScoringConfig::default());
        let mut w = worker(0, Mode::Ips).with_scoring(link);
        let r = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Fill the 4 slots, then a fifth flow evicts the oldest and takes
        // its slot.
        let pkts: Vec<_> = (0..5u16)
            .map(|p| (u64::from(p), r.udp(1000 + p, 53, b"q")))
            .collect();
        run(&mut w, &pkts);
        let gone = rx.try_recv().unwrap();
        assert_eq!(gone.trigger, features::Trigger::End);
        vtx.send(ScoreVerdict {
            slot: gone.slot,
            flow_id: gone.at.flow_id,
            generation: gone.generation,
        })
        .unwrap();
        // The fifth flow's next packet: the stale verdict must not drop it.
        let v = run(&mut w, &[(9, r.udp(1004, 53, b"q"))]);
        assert_eq!(v, vec![Verdict::Forward]);
        let c = w.counters();
        assert_eq!(
            (c.scoring.verdicts_applied, c.scoring.verdicts_stale),
            (0, 1)
        );
    }
}
