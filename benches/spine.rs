//! Replay benchmark. Generates AI-ingestion traffic (`tollgate gen`: API
//! calls, streamed replies, dataset uploads, model pulls, TLS, DNS,
//! background; at least 1M packets unless told), writes it to a temp file,
//! and measures in one process:
//! - baseline: what the reader alone does — walk the records, decode, hash
//!   with Toeplitz and pick a worker — on one thread, no worker processing;
//! - the worker pipeline alone (decode, flow table, accounting) over packets
//!   already in memory, one thread: what one core can take;
//! - the full replay (reader, rings, pinned workers, flow table, accounting)
//!   with 1 and 2 workers, without and with EVE output.
//!
//! Each figure is the best of several runs; replay figures are also given as
//! a ratio to the baseline, since these machines are shared and noisy.
//! Prints a JSON object and a Markdown table.
//!
//!     cargo bench --bench spine [-- PACKETS]

mod common;

use serde_json::json;
use tollgate::decode::decode;
use tollgate::flow::EndReason;
use tollgate::io::pcap::Records;
use tollgate::io::RawPacket;
use tollgate::reassembly::ChecksumMode;
use tollgate::replay::{replay, ReplayConfig};
use tollgate::rss::{Reta, Toeplitz, SYMMETRIC_KEY};
use tollgate::stats::Latency;
use tollgate::worker::{Worker, WorkerConfig};

const RUNS: usize = 5;

/// "p50 / p99 / p99.9" per packet, in nanoseconds.
fn quantiles(l: &Latency) -> String {
    let j = l.packet_json();
    format!("{} / {} / {}", j["p50"], j["p99"], j["p999"])
}

fn main() {
    let target = common::target_packets();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("spine.pcap");
    let cap = common::generated(1, target);
    let bytes = cap.to_pcap();
    std::fs::write(&path, &bytes).expect("write capture");
    let packets = cap.packets.len() as u64;
    let wire_bytes: u64 = cap.packets.iter().map(|(_, f)| f.len() as u64).sum();
    drop(cap);

    // Baseline: read (from memory, as the reader does after loading),
    // decode, hash, pick a worker.
    let t = Toeplitz::new(&SYMMETRIC_KEY);
    let reta = Reta::new(2);
    let (base_s, spread) = common::best(RUNS, || {
        let buf = std::fs::read(&path).expect("read capture");
        let mut per = [0u64; 2];
        for r in Records::new(&buf).expect("header").flatten() {
            let data = &buf[r.offset..r.offset + r.caplen as usize];
            let k = decode(data).map_or(0, |d| reta.queue(t.hash_packet(&d)));
            per[usize::from(k)] += 1;
        }
        per
    });

    let mut rows = vec![];
    let mut results = vec![];
    let base_pps = packets as f64 / base_s;
    rows.push((
        "read + decode + dispatch only (baseline)".to_string(),
        base_s,
        1.0,
        "-".to_string(),
    ));

    // The worker pipeline alone, fed from memory in bursts.
    let buf = std::fs::read(&path).expect("read capture");
    let recs: Vec<_> = Records::new(&buf).expect("header").flatten().collect();
    // With checksums verified (the default) and without: what believing
    // only what the host would take costs.
    for (name, checksum) in [
        ("worker pipeline alone", ChecksumMode::Auto),
        ("worker pipeline alone, checksums off", ChecksumMode::Off),
    ] {
        let (worker_s, (wc, wl)) = common::best(RUNS, || {
            let mut w = Worker::new(
                WorkerConfig {
                    checksum,
                    ..common::one_worker()
                },
                None,
            );
            common::feed(
                &mut w,
                recs.iter()
                    .map(|r| RawPacket::new(&buf[r.offset..r.offset + r.caplen as usize], r.ts_ns)),
            );
            w.finish(EndReason::Shutdown)
        });
        assert_eq!(wc.rx_packets, packets);
        let worker_ratio = (packets as f64 / worker_s) / base_pps;
        rows.push((
            format!("{name}, 1 thread, from memory"),
            worker_s,
            worker_ratio,
            quantiles(&wl),
        ));
        results.push(json!({
            "name": name, "workers": 1, "eve": false, "seconds": worker_s,
            "pps": packets as f64 / worker_s, "gbps": wire_bytes as f64 * 8.0 / worker_s / 1e9,
            "ratio_to_baseline": worker_ratio, "flows": wc.flows.created,
            "ns_per_packet": worker_s * 1e9 / packets as f64,
        }));
    }
    drop(recs);
    drop(buf);
    for (workers, eve, inspect) in [
        (1usize, false, false),
        (2, false, false),
        (1, false, true),
        (2, false, true),
        (1, true, true),
        (2, true, true),
    ] {
        let cfg = ReplayConfig {
            inspect,
            files: vec![path.clone()],
            workers,
            cores: if workers <= core_affinity::get_core_ids().map_or(0, |c| c.len()) {
                (0..workers).collect()
            } else {
                vec![]
            },
            eve: eve.then(|| dir.join("eve.json")),
            ..ReplayConfig::default()
        };
        let (secs, report) = common::best(RUNS, || replay(&cfg, |_, _, _| {}).expect("replay"));
        let rx: u64 = report.workers.iter().map(|w| w.rx_packets).sum();
        assert_eq!(rx, packets, "every packet replayed");
        let flows: u64 = report.workers.iter().map(|w| w.flows.created).sum();
        let name = format!(
            "replay, {workers} worker(s){}{}",
            if eve { ", EVE flow records on" } else { "" },
            if inspect {
                ""
            } else {
                ", reader alone (workers count and let go)"
            }
        );
        let ratio = (packets as f64 / secs) / base_pps;
        let latency = Latency::merged(&report.latency);
        rows.push((name.clone(), secs, ratio, quantiles(&latency)));
        results.push(json!({
            "name": name, "workers": workers, "eve": eve, "seconds": secs,
            "pps": packets as f64 / secs, "gbps": wire_bytes as f64 * 8.0 / secs / 1e9,
            "ratio_to_baseline": ratio,
            "latency_ns": latency.packet_json(),
            "burst_latency_ns": latency.burst_json(), "flows": flows,
        }));
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let out = json!({
        "machine": {"cores": cores},
        "capture": {"packets": packets, "bytes": wire_bytes, "dispatch_spread_2_workers": spread},
        "baseline": {"seconds": base_s, "pps": base_pps, "gbps": wire_bytes as f64 * 8.0 / base_s / 1e9},
        "replay": results,
        "runs_per_figure": RUNS,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!(
        "{packets} packets, {:.1} MB, {cores} cores, best of {RUNS}",
        wire_bytes as f64 / 1e6
    );
    println!();
    println!("| run | seconds | Mpps | Gbit/s | vs baseline | p50 / p99 / p99.9 ns per packet |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, secs, ratio, lat) in rows {
        println!(
            "| {name} | {secs:.3} | {:.2} | {:.2} | {ratio:.2} | {lat} |",
            packets as f64 / secs / 1e6,
            wire_bytes as f64 * 8.0 / secs / 1e9
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
