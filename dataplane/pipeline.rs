//! The one pipeline builder `replay` and `run` share: the workers (each
//! with the rules, its end of the fragment hand-off mesh and its link to
//! the scorer), the rings from them to the EVE writer, the writer, and the
//! scorer's job. Only the packet source and sink differ between the two
//! (ARCHITECTURE.md): they start what is built here on their own threads or
//! lcores and feed it.

use crate::defrag::handoff::handoff_mesh;
use crate::detect::reload::{Reloader, RulesReload};
use crate::detect::Engine;
use crate::eve::{Engines, EveSettings, EveWriter, Sources};
use crate::events::EventRings;
use crate::handover::ReloadThread;
use crate::io::Mode;
use crate::policy::enforce::{PolicyReloader, PolicySetup};
use crate::scoring::{ScorerJob, ScoringConfig};
use crate::worker::{ExceptionPolicy, MalformedPolicy, Worker, WorkerConfig};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What both commands configure, borrowed from their own configs.
pub struct PipelineSpec<'a> {
    pub workers: usize,
    pub mode: Mode,
    pub flow_capacity: usize,
    pub timeouts: crate::flow::Timeouts,
    pub malformed: MalformedPolicy,
    pub defrag: crate::defrag::DefragConfig,
    pub stream: crate::reassembly::StreamConfig,
    pub app: crate::applayer::AppConfig,
    pub vlan_tracking: bool,
    pub checksum: crate::reassembly::ChecksumMode,
    pub exception: ExceptionPolicy,
    /// Off: workers count and forward without decoding (`run --inspect off`).
    pub inspect: bool,
    /// Entries of the table that spreads packets to workers.
    pub reta_size: usize,
    pub engine: Option<&'a Arc<Engine>>,
    pub scoring: &'a ScoringConfig,
    /// Set by SIGUSR2: the scorer reloads its model.
    pub reload: &'a Arc<AtomicBool>,
    /// How to reload the rules (SIGUSR2), when there are rules.
    pub rules_reload: Option<&'a RulesReload>,
    /// The segmentation policy, when there is one.
    pub policy: Option<&'a PolicySetup>,
    pub eve: Option<&'a Path>,
    pub eve_settings: &'a EveSettings,
    /// What `in_iface` / `pcap_filename` name.
    pub sources: Sources,
    /// Workers wait for room on a full event ring rather than lose the
    /// event: replay, where a file can be paused (a wire cannot).
    pub events_wait: bool,
}

/// What was built, nothing started but the EVE writer.
pub struct Pipeline {
    /// Worker k, with everything it holds allocated.
    pub workers: Vec<Worker>,
    pub eve: Option<EveWriter>,
    /// The scorer, to be started on a thread or an lcore.
    pub scorer: Option<ScorerJob>,
    /// The rules' reloader, linked to every worker, to be started.
    pub reloader: Option<Reloader>,
    /// The policy's reloader, linked to every worker, to be started.
    pub policy_reloader: Option<PolicyReloader>,
}

/// Why a pipeline could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The EVE output could not be opened.
    Eve(std::path::PathBuf, std::io::Error),
    /// The scoring stage's input (a model or features file) was refused.
    Scoring(String),
    /// A worker could not be built (a Hyperscan scratch).
    Config(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Eve(p, e) => write!(f, "{}: cannot create EVE output: {e}", p.display()),
            BuildError::Scoring(s) | BuildError::Config(s) => f.write_str(s),
        }
    }
}

/// An unbounded channel when `on`: how a reloader tells the EVE writer of
/// each new engine or policy.
fn channel_if<T>(on: bool) -> (Option<Sender<T>>, Option<Receiver<T>>) {
    if on {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// Starts the threads of the reloaders a pipeline was built with (the
/// rules', when `rules` says how to reload them, and the policy's).
pub fn start_reloaders(
    rules_reloader: Option<Reloader>,
    policy_reloader: Option<PolicyReloader>,
    rules: Option<&RulesReload>,
) -> std::io::Result<Vec<ReloadThread>> {
    let mut threads = Vec::new();
    if let (Some(r), Some(rr)) = (rules_reloader, rules) {
        threads.push(r.start(Arc::clone(&rr.trigger))?);
    }
    if let Some(p) = policy_reloader {
        threads.push(p.start()?);
    }
    Ok(threads)
}

/// Builds the pipeline `spec` describes.
pub fn build(spec: &PipelineSpec<'_>) -> Result<Pipeline, BuildError> {
    let n = spec.workers;
    let event_ring = spec.flow_capacity.clamp(1024, 65_536);
    let scoring = spec.scoring.enabled() && spec.inspect;
    let mut scorer_events = None;
    // New engines reach the EVE writer before any worker can use them.
    let (engine_tx, engine_rx) = channel_if(spec.rules_reload.is_some() && spec.engine.is_some());
    let (policy_tx, policy_rx) = channel_if(spec.policy.is_some());
    let (rings, eve) = match spec.eve {
        Some(path) => {
            let (mut rings, mut rxs, texts) = EventRings::for_workers(n, event_ring);
            for r in &mut rings {
                r.set_wait(spec.events_wait);
                r.set_types(spec.eve_settings.types);
            }
            if scoring {
                let (tx, rx) = bounded(event_ring);
                scorer_events = Some(tx);
                rxs.push(rx);
            }
            let out = spec.eve_settings.output(path, spec.sources.clone());
            let w = EveWriter::spawn_with(
                &out,
                rxs,
                Engines::new(spec.engine.cloned(), engine_rx)
                    .with_policy(spec.policy.map(|p| Arc::clone(&p.policy)), policy_rx),
                texts,
            )
            .map_err(|e| BuildError::Eve(path.to_path_buf(), e))?;
            (rings, Some(w))
        }
        None => ((0..n).map(|_| EventRings::default()).collect(), None),
    };
    let (scorer, links) = if scoring {
        let (job, links) = ScorerJob::new(
            spec.scoring,
            n,
            spec.mode,
            scorer_events,
            Arc::clone(spec.reload),
        )
        .map_err(BuildError::Scoring)?;
        (Some(job), links.into_iter().map(Some).collect())
    } else {
        (None, Vec::new())
    };
    let mut links: Vec<Option<_>> = links;
    // With several workers, a datagram reassembled on one may belong to
    // another's flow: they hand it over through the mesh.
    let mut mesh: Vec<Option<_>> = if n > 1 {
        handoff_mesh(n, 16 * n).into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut reloader = match (spec.rules_reload, spec.engine) {
        (Some(r), Some(e)) => Some(Reloader::new(
            Arc::clone(&r.loader),
            Arc::clone(e),
            // Without EVE there is no writer to tell.
            engine_tx.filter(|_| spec.eve.is_some()),
            Arc::clone(&r.status),
        )),
        _ => None,
    };
    let mut policy_reloader = spec
        .policy
        .filter(|_| spec.inspect)
        .map(|p| PolicyReloader::new(p.clone(), policy_tx.filter(|_| spec.eve.is_some())));
    let mut workers = Vec::with_capacity(n);
    for (k, events) in rings.into_iter().enumerate() {
        let cfg = WorkerConfig {
            id: k as u16,
            mode: spec.mode,
            flow_capacity: spec.flow_capacity,
            timeouts: spec.timeouts,
            malformed: spec.malformed,
            inspect: spec.inspect,
            defrag: spec.defrag,
            workers: n as u16,
            reta_size: spec.reta_size,
            stream: spec.stream,
            app: spec.app,
            vlan_tracking: spec.vlan_tracking,
            checksum: spec.checksum,
            exception: spec.exception,
        };
        // Everything a worker holds is built here, before its thread
        // starts, so a failure (a Hyperscan scratch) is a start-up error.
        let mut w = Worker::with_rings(cfg, events);
        if let Some(e) = spec.engine {
            w = w
                .with_engine(Arc::clone(e))
                .map_err(|e| BuildError::Config(format!("Hyperscan scratch: {e}")))?;
        }
        if let Some(h) = mesh.get_mut(k).and_then(Option::take) {
            w = w.with_handoff(h);
        }
        if let Some(link) = links.get_mut(k).and_then(Option::take) {
            w = w.with_scoring(link);
        }
        if let Some(r) = reloader.as_mut().filter(|_| spec.inspect) {
            let link = r.link(w.stream_sessions());
            w = w.with_reload(link);
        }
        if let Some(p) = policy_reloader.as_mut() {
            w = w.with_policy(p.worker());
        }
        workers.push(w);
    }
    Ok(Pipeline {
        workers,
        eve,
        scorer,
        reloader,
        policy_reloader,
    })
}
