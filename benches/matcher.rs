//! Matcher benchmark. Generates AI-ingestion traffic (at least 1M packets
//! unless told) and runs it, from memory on one thread, through:
//! - baseline: a raw Hyperscan block scan of every packet's payload bytes
//!   with the ET Open prefilter database (the fast patterns, nothing
//!   confirmed, no decode, no flows);
//! - the worker pipeline with no rules;
//! - the worker pipeline with an empty rule set, the app layer off and on
//!   (reassembly and HTTP parsing, no rule to match: what parsing costs);
//! - the worker pipeline with the shipped rules (signatures/);
//! - the worker pipeline with ET Open as it loaded before the app layer
//!   (its rules on other protocols than http, the app layer off), and with
//!   every ET Open rule the engine loads now, the app layer on;
//! - both rule sets again with reassembly off: stream rules matched packet
//!   by packet, which is what streaming costs against.
//!
//! It also prints what streaming holds: stream state and window bytes per
//! reassembled direction, the scratch, and what 1M concurrent flows would
//! take at that size.
//!
//! Figures are the best of several runs, given as ratios to the raw scan
//! and to the no-rules pipeline measured in the same process.
//! The ET Open folder is ../shared/corpora/et-open next to the project, or
//! TOLLGATE_ET_OPEN; without it the ET rows are left out (and say so).
//!
//!     cargo bench --bench matcher [-- PACKETS]

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tollgate::decode::decode;
use tollgate::detect::Engine;
use tollgate::flow::EndReason;
use tollgate::io::RawPacket;
use tollgate::stats::WorkerCounters;
use tollgate::worker::Worker;

const RUNS: usize = 3;

use common::load_rules as load;

/// ET Open as it loaded before the app layer: its rule files without the
/// rules on `http` (then skipped as needing a parser), in a folder of
/// their own.
fn before_app_layer(et: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-et-before-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    for e in std::fs::read_dir(et).expect("ET Open folder").flatten() {
        let p = e.path();
        let name = p.file_name().expect("a file name").to_owned();
        if p.extension().is_some_and(|x| x == "rules") {
            let text = std::fs::read_to_string(&p).expect("rules file");
            let kept: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("alert http "))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(dir.join(name), kept).expect("write");
        } else if p.is_file() {
            std::fs::copy(&p, dir.join(name)).expect("copy");
        }
    }
    dir
}

fn pipeline(
    frames: &[(u64, Vec<u8>)],
    engine: Option<&Arc<Engine>>,
    streaming: bool,
) -> WorkerCounters {
    pipeline_app(frames, engine, streaming, true)
}

fn pipeline_app(
    frames: &[(u64, Vec<u8>)],
    engine: Option<&Arc<Engine>>,
    streaming: bool,
    app_layer: bool,
) -> WorkerCounters {
    let mut cfg = common::one_worker();
    cfg.stream.enabled = streaming;
    cfg.app.enabled = app_layer;
    let mut w = Worker::new(cfg, None);
    if let Some(e) = engine {
        w = w.with_engine(e.clone()).expect("scratch");
    }
    common::feed(&mut w, frames.iter().map(|(ts, f)| RawPacket::new(f, *ts)));
    w.finish(EndReason::Shutdown).0
}

fn main() {
    let target = common::target_packets();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let et = std::env::var_os("TOLLGATE_ET_OPEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/corpora/et-open"));
    let frames = common::generated(1, target).sorted();
    let packets = frames.len() as f64;
    let payloads: Vec<(usize, usize, usize)> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, (_, f))| {
            let d = decode(f).ok()?;
            let start = d.payload_offset as usize;
            Some((i, start, start + d.payload_len as usize))
        })
        .filter(|&(i, a, b)| b > a && b <= frames[i].1.len())
        .collect();
    let payload_bytes: usize = payloads.iter().map(|(_, a, b)| b - a).sum();

    let shipped = load(&root.join("signatures"));
    let et_engine = et.is_dir().then(|| load(&et));
    if et_engine.is_none() {
        eprintln!("{}: not found; ET Open rows left out", et.display());
    }

    let mut rows: Vec<(String, f64, u64)> = Vec::new();
    let raw_s = et_engine.as_ref().map(|e| {
        let db = e
            .ungrouped_prefilter()
            .expect("compile")
            .expect("ET Open has fast patterns");
        let (s, hits) = common::best(RUNS, || {
            payloads
                .iter()
                .map(|&(i, a, b)| db.scan(&frames[i].1[a..b]))
                .sum::<u64>()
        });
        rows.push((
            "raw Hyperscan block scan of the payloads, ET Open fast patterns (baseline)".into(),
            s,
            hits,
        ));
        s
    });
    let (none_s, c) = common::best(RUNS, || pipeline(&frames, None, true));
    assert_eq!(c.rx_packets as f64, packets);
    rows.push(("pipeline, no rules".into(), none_s, c.alerts));
    // The app layer's own cost: an empty rule set (so reassembly runs for
    // the parser alone), parsing off and on, taking turns.
    let empty_dir = std::env::temp_dir().join(format!("tollgate-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty_dir).expect("temp folder");
    std::fs::write(empty_dir.join("empty.rules"), "").expect("write");
    std::fs::write(empty_dir.join("classification.config"), "").expect("write");
    let empty = load(&empty_dir);
    let (mut off_s, mut on_s) = (f64::MAX, f64::MAX);
    let mut app = WorkerCounters::default();
    for _ in 0..RUNS {
        let t = std::time::Instant::now();
        pipeline_app(&frames, Some(&empty), true, false);
        off_s = off_s.min(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        app = pipeline_app(&frames, Some(&empty), true, true);
        on_s = on_s.min(t.elapsed().as_secs_f64());
    }
    rows.push(("pipeline, empty rule set, app layer off".into(), off_s, 0));
    rows.push((
        "pipeline, empty rule set, app layer on".into(),
        on_s,
        app.app.http.txs,
    ));
    if et.is_dir() {
        let before = load(&before_app_layer(&et));
        let (s, c) = common::best(RUNS, || pipeline_app(&frames, Some(&before), true, false));
        rows.push((
            "pipeline, ET Open before the app layer (no http rules, app layer off), streaming"
                .into(),
            s,
            c.alerts,
        ));
    }
    let mut sets = vec![("shipped rules", &shipped)];
    if let Some(e) = &et_engine {
        sets.push(("ET Open (loadable rules, http ones included)", e));
    }
    let mut stream_counters = Vec::new();
    for (name, e) in &sets {
        let (s, c) = common::best(RUNS, || pipeline(&frames, Some(e), false));
        rows.push((
            format!("pipeline, {name}, stream rules per packet (no reassembly)"),
            s,
            c.alerts,
        ));
        let (s, c) = common::best(RUNS, || pipeline(&frames, Some(e), true));
        rows.push((format!("pipeline, {name}, streaming"), s, c.alerts));
        stream_counters.push((name.to_string(), c));
    }

    // What streaming holds, at the largest rule set's state size.
    let biggest = et_engine.as_ref().unwrap_or(&shipped);
    let w = Worker::new(common::one_worker(), None)
        .with_engine(biggest.clone())
        .expect("scratch");
    let (session, window) = w.stream_bytes_per_direction().unwrap_or((0, 0));
    let scratch = biggest
        .scratch()
        .ok()
        .flatten()
        .and_then(|s| s.size().ok())
        .unwrap_or(0);
    let per_flow = 2 * (session + window);
    let memory = json!({
        "rules": if et_engine.is_some() { "ET Open" } else { "shipped" },
        "session_bytes_per_direction": session,
        "window_bytes_per_direction": window,
        "scratch_bytes_per_worker": scratch,
        "bytes_per_flow_both_directions": per_flow,
        "gib_for_1m_concurrent_flows": per_flow as f64 * 1e6 / (1u64 << 30) as f64,
    });
    let streams: Vec<_> = stream_counters
        .iter()
        .map(|(name, c)| {
            json!({
                "rules": name,
                "bytes_reassembled": c.stream.bytes,
                "sessions_full": c.stream.sessions_full,
                "state_bytes_peak": c.stream.memuse_peak,
                "scans": c.stream_match.scans,
                "unconfirmable": c.stream_match.unconfirmable,
            })
        })
        .collect();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let results: Vec<_> = rows
        .iter()
        .map(|(name, s, hits)| {
            json!({
                "name": name, "seconds": s, "pps": packets / s,
                "ns_per_packet": s * 1e9 / packets,
                "ratio_to_raw_scan": raw_s.map(|r| r / s),
                "ratio_to_no_rules": none_s / s,
                "hits_or_alerts": hits,
            })
        })
        .collect();
    let out = json!({
        "machine": {"cores": cores},
        "capture": {"packets": packets, "payload_packets": payloads.len(), "payload_bytes": payload_bytes},
        "runs_per_figure": RUNS,
        "results": results,
        "stream_memory": memory,
        "streams": streams,
        "app_layer": {
            "http_transactions": app.app.http.txs,
            "http_flows": app.app.flows[tollgate::applayer::AppProto::Http as usize],
            "on_vs_off": off_s / on_s,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!(
        "{packets} packets, {:.1} MB of payload, {cores} cores, 1 thread, best of {RUNS}",
        payload_bytes as f64 / 1e6
    );
    println!();
    println!("| run | Mpps | ns/packet | vs raw scan | vs no rules | hits / alerts |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, s, hits) in &rows {
        println!(
            "| {name} | {:.2} | {:.0} | {} | {:.2} | {hits} |",
            packets / s / 1e6,
            s * 1e9 / packets,
            raw_s.map_or("-".into(), |r| format!("{:.2}", r / s)),
            none_s / s
        );
    }
    println!();
    println!(
        "stream state per direction: {session} B session (Hyperscan state and pending hits included) + {window} B window; scratch {scratch} B per worker; 1M concurrent flows, both directions carrying data: {:.1} GiB",
        per_flow as f64 * 1e6 / (1u64 << 30) as f64
    );
}
