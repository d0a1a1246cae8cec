//! EVE benchmark, on generated AI-ingestion traffic (at least 1M packets
//! unless told) matched by the shipped rules:
//! - the writer alone: the pipeline's own events (flows, alerts,
//!   anomalies) pushed through a ring to a running writer that formats
//!   them to a file, without and with `--community-id`; the baseline is
//!   writing the same lines, already formatted, through the same buffered
//!   file (the I/O floor);
//! - the writer alone to the other outputs: Redis (LPUSH onto a list,
//!   PUBLISH on a channel, a redis-server started here when one is
//!   installed) and a Unix stream socket read by a thread here, against
//!   the same writer to a file, taking turns;
//! - end to end: `replay` of the same capture with one worker, EVE off
//!   (baseline), on, and on with the Community ID, in the same process.
//!
//!     cargo bench --bench eve [-- PACKETS]

mod common;

use serde_json::json;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use tollgate::decode::addr_to_ip;
use tollgate::detect::Engine;
use tollgate::eve::community_id::community_id;
use tollgate::eve::{EveCounters, EveOutput, EveWriter, Event};
use tollgate::flow::EndReason;
use tollgate::io::pcap::Records;
use tollgate::io::RawPacket;
use tollgate::replay::{replay, ReplayConfig};
use tollgate::worker::Worker;

const RUNS: usize = 3;
/// At least this many events through the writer, so its time is not noise.
const WRITER_EVENTS: usize = 300_000;

fn shipped_engine() -> Arc<Engine> {
    common::load_rules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures"))
}

/// Pushes `events` through one ring to a writer with `out`; the events it
/// wrote.
fn write_all(events: &[Event], out: &EveOutput, engine: &Arc<Engine>) -> u64 {
    let c = write_counted(events, out, engine);
    c.flow + c.alert + c.tx + c.anomaly + c.engine
}

fn write_counted(events: &[Event], out: &EveOutput, engine: &Arc<Engine>) -> EveCounters {
    let (tx, rx) = crossbeam_channel::bounded(65_536);
    let w = EveWriter::spawn(out, vec![rx], Some(Arc::clone(engine))).expect("EVE output");
    for e in events {
        tx.send(e.clone()).expect("writer running");
    }
    drop(tx);
    w.join().expect("EVE written")
}

/// A redis-server on a free port, without persistence; None when Redis is
/// not installed (the section is skipped, said so).
fn redis_server() -> Option<(std::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    None
}

fn redis_cmd(port: u16, args: &[&str]) -> String {
    std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let target = common::target_packets();
    let cap = common::generated(5, target);
    let frames = cap.sorted();
    let packets = frames.len();
    let engine = shipped_engine();

    // The pipeline's own events: the generated traffic's (flows: it is
    // clean) and the committed sample's (alerts and an anomaly too), taken
    // in turn until there are enough to time the writer on.
    let sample = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap"))
        .expect("pcaps/sample.pcap");
    let sample_frames: Vec<(u64, Vec<u8>)> = Records::new(&sample)
        .expect("sample")
        .map(|r| r.expect("record"))
        .map(|r| {
            (
                r.ts_ns,
                sample[r.offset..r.offset + r.caplen as usize].to_vec(),
            )
        })
        .collect();
    let mut pipeline_events = Vec::new();
    for fs in [&frames, &sample_frames] {
        let (tx, rx) = crossbeam_channel::bounded(1 << 22);
        let mut w = Worker::new(common::one_worker(), Some(tx))
            .with_engine(Arc::clone(&engine))
            .expect("engine scratch");
        common::feed(&mut w, fs.iter().map(|(ts, f)| RawPacket::new(f, *ts)));
        drop(w.finish(EndReason::Shutdown));
        pipeline_events.extend(rx.try_iter());
    }
    let events: Vec<Event> = pipeline_events
        .iter()
        .cloned()
        .cycle()
        .take(pipeline_events.len().max(WRITER_EVENTS))
        .collect();
    let n = events.len() as f64;
    let alerts = events
        .iter()
        .filter(|e| matches!(e, Event::Alert(_)))
        .count();

    let dir = std::env::temp_dir().join(format!("tollgate-bench-eve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("eve.json");
    let fresh = |p: &Path| {
        let _ = std::fs::remove_file(p);
    };

    // The writer alone, without and with the Community ID.
    let plain = EveOutput::file(&file);
    let mut cid = EveOutput::file(&file);
    cid.style.community_id = Some(0);
    let (plain_s, wrote) = common::best(RUNS, || {
        fresh(&file);
        write_all(&events, &plain, &engine)
    });
    let lines: Vec<String> = BufReader::new(std::fs::File::open(&file).expect("EVE"))
        .lines()
        .map(|l| l.expect("line"))
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    // Every event written is a line (a TLS or DNS event whose text was
    // let go is neither).
    assert_eq!(wrote as usize, lines.len());
    let (cid_s, _) = common::best(RUNS, || {
        fresh(&file);
        write_all(&events, &cid, &engine)
    });
    // The Community ID alone, on the events' own tuples.
    let tuples: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Flow(r) => Some(r.tuple(0, 0)),
            Event::Alert(a) => Some(a.at),
            _ => None,
        })
        .collect();
    let (cid_alone_s, len) = common::best(RUNS, || {
        tuples
            .iter()
            .map(|t| {
                community_id(
                    0,
                    addr_to_ip(t.network, &t.src),
                    addr_to_ip(t.network, &t.dst),
                    t.proto,
                    t.src_port,
                    t.dst_port,
                )
                .len()
            })
            .sum::<usize>()
    });
    assert!(len > 0);
    let cid_alone_ns = cid_alone_s * 1e9 / tuples.len() as f64;

    // The other outputs against the file, taking turns.
    let redis = redis_server();
    let sock = dir.join("eve.sock");
    let mut sinks: Vec<(&str, EveOutput)> = vec![(
        "unix-stream socket",
        EveOutput::file(Path::new(&format!("unix-stream:{}", sock.display()))),
    )];
    if let Some((_, port)) = &redis {
        sinks.push((
            "Redis LPUSH (list)",
            EveOutput::file(Path::new(&format!("redis://127.0.0.1:{port}/bench"))),
        ));
        sinks.push((
            "Redis PUBLISH (channel)",
            EveOutput::file(Path::new(&format!(
                "redis://127.0.0.1:{port}/bench?mode=publish"
            ))),
        ));
    } else {
        eprintln!("redis-server not installed: the Redis rows are skipped");
    }
    let mut file_s = f64::MAX;
    let mut sink_s = vec![f64::MAX; sinks.len()];
    for _ in 0..RUNS {
        fresh(&file);
        let t = std::time::Instant::now();
        write_all(&events, &plain, &engine);
        file_s = file_s.min(t.elapsed().as_secs_f64());
        for (i, (name, out)) in sinks.iter().enumerate() {
            // A reader that keeps up, for the socket.
            let reader = name.starts_with("unix").then(|| {
                fresh(&sock);
                let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
                std::thread::spawn(move || {
                    let (mut c, _) = l.accept().expect("accept");
                    std::io::copy(&mut c, &mut std::io::sink()).expect("read")
                })
            });
            let t = std::time::Instant::now();
            let c = write_counted(&events, out, &engine);
            sink_s[i] = sink_s[i].min(t.elapsed().as_secs_f64());
            assert_eq!(c.sink.sent as usize, lines.len(), "{name}: {:?}", c.sink);
            if let Some(r) = reader {
                assert_eq!(r.join().expect("reader") as usize, bytes);
            }
            if let Some((_, port)) = &redis {
                if name.contains("LPUSH") {
                    assert_eq!(
                        redis_cmd(*port, &["LLEN", "bench"]),
                        lines.len().to_string()
                    );
                }
                redis_cmd(*port, &["DEL", "bench"]);
            }
        }
    }
    if let Some((mut child, _)) = redis {
        let _ = child.kill();
        let _ = child.wait();
    }

    // The floor: the same lines, already formatted, through the same
    // buffered append to a file.
    let raw = dir.join("raw.json");
    let (raw_s, _) = common::best(RUNS, || {
        fresh(&raw);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&raw)
            .expect("raw file");
        let mut out = BufWriter::with_capacity(1 << 20, f);
        for l in &lines {
            out.write_all(l.as_bytes()).expect("write");
            out.write_all(b"\n").expect("write");
        }
        out.flush().expect("flush");
    });

    let ends_per_packet = pipeline_events.len() as f64 / (packets + sample_frames.len()) as f64;

    // End to end: one worker, EVE off, on, on with the Community ID.
    let base = ReplayConfig {
        engine: Some(Arc::clone(&engine)),
        ..common::one_worker_replay(&dir, &cap)
    };
    // The three take turns, so a busy moment of a shared machine does not
    // land on one of them alone; each keeps its best time.
    let on = ReplayConfig {
        eve: Some(file.clone()),
        ..base.clone()
    };
    let mut on_cid = on.clone();
    on_cid.eve_settings.community_id = Some(0);
    let (mut off_s, mut on_s, mut cid_e2e_s) = (f64::MAX, f64::MAX, f64::MAX);
    let mut written = 0;
    for _ in 0..RUNS {
        for (cfg, best) in [
            (&base, &mut off_s),
            (&on, &mut on_s),
            (&on_cid, &mut cid_e2e_s),
        ] {
            fresh(&file);
            let (s, rep) = common::best(1, || replay(cfg, |_, _, _| {}).expect("replay"));
            *best = best.min(s);
            if let Some(c) = rep.eve {
                written = c.flow + c.alert + c.tx + c.anomaly;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pps = |s: f64| packets as f64 / s;
    let out = json!({
        "machine": {"cores": cores},
        "capture": {"packets": packets, "pipeline_events": pipeline_events.len(), "events_per_packet": ends_per_packet},
        "writer_input": {"events": events.len(), "alerts": alerts, "eve_bytes": bytes},
        "runs_per_figure": RUNS,
        "writer_alone": {
            "raw_write_lines_per_second": n / raw_s,
            "events_per_second": n / plain_s,
            "events_per_second_community_id": n / cid_s,
            "ratio_to_raw_write": raw_s / plain_s,
            "ratio_community_id_to_plain": plain_s / cid_s,
            "community_id_ns_per_event": (cid_s - plain_s) * 1e9 / n,
            "community_id_alone_ns": cid_alone_ns,
            "community_id_writer_ns_per_packet": (cid_s - plain_s) * 1e9 / n * ends_per_packet,
        },
        "writer_to_outputs": {
            "file_events_per_second": n / file_s,
            "outputs": sinks.iter().zip(&sink_s).map(|((name, _), s)| json!({
                "output": name,
                "events_per_second": n / s,
                "ratio_to_file": file_s / s,
            })).collect::<Vec<_>>(),
        },
        "end_to_end": {
            "eve_off_pps": pps(off_s),
            "eve_on_pps": pps(on_s),
            "eve_on_community_id_pps": pps(cid_e2e_s),
            "ratio_eve_on_to_off": off_s / on_s,
            "ratio_community_id_to_eve_on": on_s / cid_e2e_s,
            "events_written": written,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!(
        "{packets} packets ({} events from the pipeline); the writer timed on {} events ({alerts} alerts), {:.1} MB of EVE; {cores} cores, best of {RUNS}",
        pipeline_events.len(),
        events.len(),
        bytes as f64 / 1e6
    );
    println!();
    println!("| EVE writer, one thread, to a file | events/s | vs raw write |");
    println!("|---|---:|---:|");
    println!(
        "| raw write of the same lines (baseline) | {:.0} | 1.00 |",
        n / raw_s
    );
    println!(
        "| writer, formatting | {:.0} | {:.2} |",
        n / plain_s,
        raw_s / plain_s
    );
    println!(
        "| writer, formatting, --community-id | {:.0} | {:.2} |",
        n / cid_s,
        raw_s / cid_s
    );
    println!();
    println!(
        "--community-id: {:.0} ns more per event on the writer thread ({:.2}x its events/s), {:.1} ns per packet of traffic; workers do none of it",
        (cid_s - plain_s) * 1e9 / n,
        plain_s / cid_s,
        (cid_s - plain_s) * 1e9 / n * ends_per_packet
    );
    println!("the Community ID alone (SHA-1, base64): {cid_alone_ns:.0} ns per event");
    println!();
    println!("| EVE writer, one thread, by output | events/s | vs file |");
    println!("|---|---:|---:|");
    println!("| file (baseline) | {:.0} | 1.00 |", n / file_s);
    for ((name, _), s) in sinks.iter().zip(&sink_s) {
        println!("| {name} | {:.0} | {:.2} |", n / s, file_s / s);
    }
    println!();
    println!("| replay, 1 worker, shipped rules | Mpps | vs EVE off |");
    println!("|---|---:|---:|");
    println!("| EVE off (baseline) | {:.3} | 1.00 |", pps(off_s) / 1e6);
    println!("| EVE on | {:.3} | {:.2} |", pps(on_s) / 1e6, off_s / on_s);
    println!(
        "| EVE on, --community-id | {:.3} | {:.2} |",
        pps(cid_e2e_s) / 1e6,
        off_s / cid_e2e_s
    );
}
