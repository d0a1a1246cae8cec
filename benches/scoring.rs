//! Scoring benchmark, on generated AI-ingestion traffic (at least 1M
//! packets unless told):
//! - the model alone: XGBoost evaluation of real feature records, one
//!   thread, for each fixture model and the shipped flow model (records per
//!   second on one core); the host table alone; the anomaly detector alone;
//! - the scorer thread: the same records pushed through a worker's ring to
//!   a running scorer (ring, batching, host table, scoring, histogram),
//!   with the host table off and on, and with the anomaly detector too;
//! - end to end: `replay` of the same capture with one worker, scoring off
//!   (baseline) and on (the shipped model with the host table; then with
//!   the anomaly detector as well), in the same process.
//!
//!     cargo bench --bench scoring [-- PACKETS]

mod common;

use serde_json::json;
use std::path::Path;
use tollgate::flow::EndReason;
use tollgate::io::RawPacket;
use tollgate::replay::{replay, ReplayConfig};
use tollgate::scoring::anomaly::Detector;
use tollgate::scoring::features::FeatureRecord;
use tollgate::scoring::hosts::HostTable;
use tollgate::scoring::model::Model;
use tollgate::scoring::{reload_flag, Scorer, ScoringConfig, ScoringLink};
use tollgate::worker::{Mode, Worker};

const RUNS: usize = 3;

fn main() {
    let target = common::target_packets();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/xgboost");
    let cap = common::generated(3, target);
    let frames = cap.sorted();
    let packets = frames.len();

    // Real records: the pipeline's, with a record every 64 KiB of a flow
    // so long uploads contribute several.
    let cfg = ScoringConfig {
        feature_bytes: 64 << 10,
        ..ScoringConfig::default()
    };
    let (link, rx, _verdicts) = ScoringLink::detached(1 << 16, &cfg);
    let mut w = Worker::new(common::one_worker(), None).with_scoring(link);
    common::feed(&mut w, frames.iter().map(|(ts, f)| RawPacket::new(f, *ts)));
    drop(w.finish(EndReason::Shutdown));
    let records: Vec<FeatureRecord> = rx.try_iter().collect();
    let n = records.len() as f64;

    // The worker alone, from memory: what computing and publishing the
    // records costs it (the ring is big enough to lose none).
    let feed = |with: bool| {
        let mut w = Worker::new(common::one_worker(), None);
        let mut keep = None;
        if with {
            let (link, rx, v) = ScoringLink::detached(1 << 16, &cfg);
            w = w.with_scoring(link);
            keep = Some((rx, v));
        }
        common::feed(&mut w, frames.iter().map(|(ts, f)| RawPacket::new(f, *ts)));
        let c = w.finish(EndReason::Shutdown).0;
        drop(keep);
        c.rx_packets
    };
    let (worker_off, _) = common::best(RUNS, || feed(false));
    let (worker_on, _) = common::best(RUNS, || feed(true));

    let mut rows: Vec<(String, f64)> = Vec::new();
    let shipped = root.join("signatures/flow-model.json");
    for path in [
        fixtures.join("binary_logistic.json"),
        fixtures.join("squarederror.json"),
        shipped.clone(),
    ] {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let m = Model::load(&path).expect("model");
        let (s, sum) = common::best(RUNS, || {
            records
                .iter()
                .map(|r| f64::from(m.score(&r.values)))
                .sum::<f64>()
        });
        assert!(sum.is_finite());
        rows.push((
            format!(
                "model alone: {name} ({} trees, depth {})",
                m.trees(),
                m.max_depth
            ),
            n / s,
        ));
    }

    // The host table and the anomaly detector alone.
    let (s, _) = common::best(RUNS, || {
        let mut t = HostTable::new(tollgate::scoring::hosts::HOSTS);
        for r in &records {
            let mut r = *r;
            t.observe(&mut r);
        }
        t.counters.flows_noted
    });
    rows.push(("host table alone (16,384 hosts)".into(), n / s));
    let window = (records.len() as u64 / 4).max(1);
    let (s, _) = common::best(RUNS, || {
        let mut d = Detector::new(1, window);
        records.iter().filter(|r| d.observe(&r.values).1).count()
    });
    rows.push((
        format!("anomaly detector alone (window {window}: learning half, scoring half)"),
        n / s,
    ));

    // The scorer thread, fed through one ring as fast as it drains.
    let dir = std::env::temp_dir().join(format!("tollgate-bench-scoring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("hst.json");
    let thread = |name: &str, cfg: ScoringConfig| {
        let (secs, scored) = common::best(RUNS, || {
            let _ = std::fs::remove_file(&state);
            let (scorer, mut links) =
                Scorer::spawn(&cfg, 1, Mode::Ids, None, reload_flag()).expect("scorer");
            let link = links.pop().expect("one link");
            for r in &records {
                link.send(*r);
            }
            drop(link);
            let rep = scorer.join();
            rep.tally.scored + rep.anomaly.map_or(0, |a| a.tally.scored)
        });
        assert!(scored as usize >= records.len());
        (name.to_string(), n / secs)
    };
    let scfg = ScoringConfig {
        model: Some(shipped.clone()),
        threshold: Some(2.0), // no alerts: this measures scoring, not EVE
        ..ScoringConfig::default()
    };
    rows.push(thread(
        "scorer thread, shipped model, host table off",
        ScoringConfig {
            host_table: 0,
            ..scfg.clone()
        },
    ));
    rows.push(thread(
        "scorer thread, shipped model, host table on",
        scfg.clone(),
    ));
    rows.push(thread(
        "scorer thread, shipped model, host table and anomaly detector",
        ScoringConfig {
            anomaly_state: Some(state.clone()),
            learn_window: window,
            anomaly_threshold: Some(1.0),
            ..scfg.clone()
        },
    ));

    // End to end: replay with scoring off, then on.
    let base = common::one_worker_replay(&dir, &cap);
    let (off_s, _) = common::best(RUNS, || replay(&base, |_, _, _| {}).expect("replay"));
    let on = ReplayConfig {
        scoring: ScoringConfig {
            model: Some(shipped.clone()),
            core: Some(1),
            feature_packets: 8,
            ..ScoringConfig::default()
        },
        ..base.clone()
    };
    let (on_s, rep) = common::best(RUNS, || replay(&on, |_, _, _| {}).expect("replay"));
    let scorer = rep.scoring.expect("scorer report");
    let both = ReplayConfig {
        scoring: ScoringConfig {
            anomaly_state: Some(state.clone()),
            learn_window: window,
            ..on.scoring.clone()
        },
        ..base.clone()
    };
    let (both_s, _) = common::best(RUNS, || {
        let _ = std::fs::remove_file(&state);
        replay(&both, |_, _, _| {}).expect("replay")
    });
    let _ = std::fs::remove_dir_all(&dir);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let out = json!({
        "machine": {"cores": cores},
        "capture": {"packets": packets, "records": records.len()},
        "runs_per_figure": RUNS,
        "records_per_second": rows.iter().map(|(k, v)| json!({"name": k, "records_per_second": v})).collect::<Vec<_>>(),
        "worker_alone": {
            "features_off_ns_per_packet": worker_off * 1e9 / packets as f64,
            "features_on_ns_per_packet": worker_on * 1e9 / packets as f64,
            "ratio_on_to_off": worker_off / worker_on,
        },
        "end_to_end": {
            "scoring_off_pps": packets as f64 / off_s,
            "scoring_on_pps": packets as f64 / on_s,
            "ratio_on_to_off": off_s / on_s,
            "with_anomaly_detector_pps": packets as f64 / both_s,
            "ratio_with_anomaly_detector_to_off": off_s / both_s,
            "records_scored": scorer.tally.scored,
            "scorer_ns_per_record": {"p50": scorer.ns_p50, "p99": scorer.ns_p99},
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!(
        "{packets} packets, {} feature records, {cores} cores, best of {RUNS}",
        records.len()
    );
    println!();
    println!("| run | records/s |");
    println!("|---|---:|");
    for (name, rps) in &rows {
        println!("| {name} | {:.0} |", rps);
    }
    println!();
    println!(
        "worker pipeline alone, from memory: {:.0} ns/packet without feature records, {:.0} with ({:.2}x)",
        worker_off * 1e9 / packets as f64,
        worker_on * 1e9 / packets as f64,
        worker_off / worker_on
    );
    println!();
    println!("| replay, 1 worker | Mpps | vs scoring off |");
    println!("|---|---:|---:|");
    println!(
        "| scoring off (baseline) | {:.3} | 1.00 |",
        packets as f64 / off_s / 1e6
    );
    println!(
        "| scoring on: shipped model, host table, --feature-packets 8 (scorer on core 1) | {:.3} | {:.2} |",
        packets as f64 / on_s / 1e6,
        off_s / on_s
    );
    println!(
        "| and the anomaly detector | {:.3} | {:.2} |",
        packets as f64 / both_s / 1e6,
        off_s / both_s
    );
}
