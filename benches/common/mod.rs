//! What the benchmarks share: best-of-N timing, the one-worker pipeline
//! configuration, and feeding packets from memory to a worker in bursts.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tollgate::craft::Capture;
use tollgate::detect::Engine;
use tollgate::flow::Timeouts;
use tollgate::gen::{generate, GenConfig};
use tollgate::io::{RawPacket, Verdict, BURST_SIZE};
use tollgate::replay::ReplayConfig;
use tollgate::rules::classification;
use tollgate::rules::vars::Vars;
use tollgate::worker::{Worker, WorkerConfig};

/// Packets a benchmark generates: its first numeric argument, else 1M.
pub fn target_packets() -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000)
}

/// Realistic AI-ingestion traffic from the generator, at least `packets`
/// packets of it, flows starting over a minute.
#[allow(dead_code)] // each bench uses its own subset
pub fn generated(seed: u64, packets: usize) -> Capture {
    generate(&GenConfig {
        seed,
        flows: 1,
        packets: Some(packets),
        duration_ns: 60_000_000_000,
    })
    .0
}

/// `cap` written to `dir/c.pcap`, to replay as `replay --workers 1` does
/// with the worker on core 0 (the end-to-end runs' baseline).
#[allow(dead_code)] // each bench uses its own subset
pub fn one_worker_replay(dir: &Path, cap: &Capture) -> ReplayConfig {
    let pcap = dir.join("c.pcap");
    cap.write_pcap(&pcap).expect("write capture");
    ReplayConfig {
        files: vec![pcap],
        workers: 1,
        cores: vec![0],
        ..ReplayConfig::default()
    }
}

/// Runs `f` `runs` times; the best time in seconds and the last result.
#[allow(dead_code)] // each bench uses its own subset
pub fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("runs > 0"))
}

/// One worker as `replay --workers 1` runs it, with room for the
/// generator's flows.
#[allow(dead_code)] // each bench uses its own subset
pub fn one_worker() -> WorkerConfig {
    WorkerConfig {
        id: 0,
        mode: Default::default(),
        flow_capacity: 65_536,
        timeouts: Timeouts::default(),
        malformed: Default::default(),
        inspect: true,
        defrag: Default::default(),
        workers: 1,
        reta_size: tollgate::rss::RETA_SIZE,
        stream: Default::default(),
        app: Default::default(),
        vlan_tracking: true,
        checksum: Default::default(),
        exception: Default::default(),
    }
}

/// Hands `pkts` to `w` a burst at a time, as a reader does.
#[allow(dead_code)] // each bench uses its own subset
pub fn feed<'a>(w: &mut Worker, pkts: impl IntoIterator<Item = RawPacket<'a>>) {
    let mut verdicts = [Verdict::Forward; BURST_SIZE];
    let mut burst = [RawPacket::new(&[], 0); BURST_SIZE];
    let mut n = 0;
    for p in pkts {
        burst[n] = p;
        n += 1;
        if n == BURST_SIZE {
            w.process_burst(&burst, 0, &mut verdicts);
            n = 0;
        }
    }
    if n > 0 {
        w.process_burst(&burst[..n], 0, &mut verdicts);
    }
}

/// The rules of folder `dir` with its classification.config, Suricata's
/// default variables; what loaded is said on stderr.
#[allow(dead_code)] // each bench uses its own subset
pub fn load_rules(dir: &Path) -> Arc<Engine> {
    let class_file = dir.join("classification.config");
    let classes = std::fs::read_to_string(&class_file)
        .map_err(|e| e.to_string())
        .and_then(|t| classification::parse(&t))
        .unwrap_or_else(|e| panic!("{}: {e}", class_file.display()));
    let (engine, report) =
        Engine::load(&[dir], &Vars::suricata_defaults(), &classes).expect("rules load");
    eprintln!(
        "{}: {} rules loaded of {} read, {} patterns, {} by address, {} every packet",
        dir.display(),
        report.loaded,
        report.read,
        report.patterns,
        report.address_indexed,
        report.without_prefilter
    );
    Arc::new(engine)
}
