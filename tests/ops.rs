//! End-to-end tests of what an operator of a long-running box relies on:
//! EVE reaching the file while the process runs (seen by a real `tail`),
//! SIGHUP reopening it as logrotate expects, SIGINT/SIGTERM stopping a
//! replay cleanly, `--eve -`, appending across restarts, stats events,
//! the Community ID, and every event validating against Suricata's EVE
//! schema. Real binary, real signals (`kill`), real files.

mod common;
use common::{
    bin, eve_lines, exit_within, ip, s, signal, validate_eve, wait_until, Scratch, SEC, T0,
};
use serde_json::Value;
use std::io::{BufRead, BufReader};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tollgate::craft::{Capture, Route, Side, TcpConversation};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap")
}

/// `n` short TCP conversations, one starting every `spacing_ns` of
/// capture time (each closed within milliseconds).
fn paced(n: usize, spacing_ns: u64) -> Capture {
    let mut cap = Capture::new();
    for i in 0..n {
        let r = Route::new(ip("10.1.0.1"), ip("10.9.0.1"));
        let mut c = TcpConversation::new(r, 30000 + i as u16, 8000, T0 + i as u64 * spacing_ns);
        c.handshake()
            .send(Side::Client, b"POST /v1/embeddings HTTP/1.1\r\n\r\n", 1448)
            .send(Side::Server, b"HTTP/1.1 200 OK\r\n\r\n", 1448)
            .close(Side::Client);
        cap.extend(c.into_packets());
    }
    cap
}

fn flows(events: &[Value]) -> usize {
    events.iter().filter(|e| e["event_type"] == "flow").count()
}

fn count_flow_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""event_type":"flow""#))
        .count()
}

#[test]
fn a_tail_of_eve_sees_flows_while_the_replay_runs() {
    let dir = Scratch::new("ops-tail");
    // Six conversations a second apart, played in real time: about 5 s.
    let pcap = dir.write("c.pcap", &paced(6, SEC).to_pcap());
    let eve = dir.path("eve.json");
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--closed-timeout", "0"])
        .args(["--eve-flush", "200ms", "--stats-interval", "0"])
        .args(["--eve", s(&eve)])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // What a SIEM's shipper does: follow the file by name.
    let mut tail = Command::new("tail")
        .args(["-F", "-n", "+1", "-s", "0.05", s(&eve)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail runs");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Flow records (each conversation's http events come before it).
    let next_flow = || loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("tail saw a flow event");
        if line.contains(r#""event_type":"flow""#) {
            break line;
        }
    };
    let first = next_flow();
    let running = child.try_wait().unwrap().is_none();
    assert!(
        running,
        "the first event reached the file only when the replay ended"
    );
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event_type"], "flow");
    assert_eq!(v["src_port"], 30000, "the first conversation first");
    assert!(exit_within(&mut child, Duration::from_secs(60)).success());
    // The rest follow, in the order they ended (one worker).
    let mut ports = vec![v["src_port"].as_u64().unwrap()];
    while ports.len() < 6 {
        let line = next_flow();
        let v: Value = serde_json::from_str(&line).unwrap();
        ports.push(v["src_port"].as_u64().unwrap());
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(ports, (30000..30006).collect::<Vec<_>>());
}

#[test]
fn sigint_and_sigterm_stop_a_replay_cleanly() {
    for sig in ["INT", "TERM"] {
        let dir = Scratch::new(&format!("ops-stop-{sig}"));
        // 40 conversations half a second apart: 20 s in real time.
        let cap = paced(40, SEC / 2);
        let pcap = dir.write("c.pcap", &cap.to_pcap());
        let (eve, st) = (dir.path("eve.json"), dir.path("stats.json"));
        let mut child = bin()
            .args(["replay", s(&pcap), "--speed", "1", "--closed-timeout", "0"])
            .args(["--eve-flush", "100ms", "--stats-interval", "1h"])
            .args(["--eve", s(&eve), "--stats-json", s(&st)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || count_flow_lines(&eve) >= 2),
            "SIG{sig}: the replay got going"
        );
        signal(&child, sig);
        let status = exit_within(&mut child, Duration::from_secs(20));
        let out = child.wait_with_output().unwrap();
        assert!(
            status.success(),
            "SIG{sig}: exit {status}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(summary.contains("packets rx"), "SIG{sig}: {summary}");
        let stats: Value = common::read_json(&st);
        let read = stats["capture"]["records"].as_u64().unwrap();
        assert!(
            read > 0 && read < cap.sorted().len() as u64,
            "SIG{sig}: stopped part way ({read} records)"
        );
        // Every flow begun is in EVE, the one cut short too.
        let events = eve_lines(&eve);
        let created = stats["flows"]["created"].as_u64().unwrap();
        assert_eq!(stats["flows"]["ended"], created, "SIG{sig}");
        assert_eq!(flows(&events) as u64, created, "SIG{sig}");
        assert!(created < 40, "SIG{sig}");
        assert_eq!(
            events.last().unwrap()["event_type"],
            "stats",
            "SIG{sig}: the final stats event is written"
        );
        assert_eq!(
            events.last().unwrap()["stats"]["decoder"]["pkts"],
            read,
            "SIG{sig}"
        );
    }
}

#[test]
fn sighup_reopens_eve_for_logrotate_create_and_copytruncate() {
    let dir = Scratch::new("ops-rotate");
    // Seven conversations 2 s apart, in real time: a flow event about
    // every 2 s, the last at the end (about 12 s).
    let pcap = dir.write("c.pcap", &paced(7, 2 * SEC).to_pcap());
    let eve = dir.path("eve.json");
    let (rotated, copied) = (dir.path("eve.json.1"), dir.path("eve.json.2"));
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--closed-timeout", "0"])
        .args(["--eve-flush", "100ms", "--stats-interval", "0"])
        .args(["--eve", s(&eve)])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(30);
    assert!(wait_until(limit, || count_flow_lines(&eve) == 1));
    // logrotate `create`: move the file away, then signal (no --model:
    // SIGHUP only reopens, it must not end the process).
    std::fs::rename(&eve, &rotated).unwrap();
    signal(&child, "HUP");
    assert!(
        wait_until(limit, || count_flow_lines(&eve) == 1),
        "the next event went to a new file"
    );
    // logrotate `copytruncate`: copy, then truncate in place, no signal.
    std::fs::copy(&eve, &copied).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&eve)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(
        exit_within(&mut child, limit).success(),
        "SIGHUP is no stop"
    );
    assert_eq!(count_flow_lines(&rotated), 1);
    assert_eq!(count_flow_lines(&copied), 1);
    let rest = std::fs::read(&eve).unwrap();
    assert_eq!(
        rest.first(),
        Some(&b'{'),
        "appended: written at the new end, no hole of NULs"
    );
    assert_eq!(count_flow_lines(&eve), 5, "nothing lost");
    let ports: Vec<u64> = [&rotated, &copied, &eve]
        .iter()
        .flat_map(|p| eve_lines(p))
        .filter(|e| e["event_type"] == "flow")
        .map(|e| e["src_port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, (30000..30007).collect::<Vec<_>>());
}

#[test]
fn eve_to_stdout_and_the_summary_to_stderr() {
    let out = bin()
        .args([
            "replay",
            s(&sample()),
            "--eve",
            "-",
            "--stats-interval",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(flows(&events), 42, "every flow of the sample");
    assert!(String::from_utf8_lossy(&out.stderr).contains("packets rx"));
    assert!(!Path::new("-").exists(), "no file named '-'");
}

#[test]
fn eve_is_appended_to_across_restarts() {
    let dir = Scratch::new("ops-append");
    let eve = dir.path("eve.json");
    for _ in 0..2 {
        let out = bin()
            .args(["replay", s(&sample()), "--stats-interval", "0"])
            .args(["--eve", s(&eve)])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    assert_eq!(flows(&eve_lines(&eve)), 84);
}

#[test]
fn stats_events_come_every_interval_and_not_when_off() {
    let dir = Scratch::new("ops-stats");
    // About 1.5 s in real time.
    let pcap = dir.write("c.pcap", &paced(4, SEC / 2).to_pcap());
    let eve = dir.path("eve.json");
    let run = |interval: &str| {
        let _ = std::fs::remove_file(&eve);
        let out = bin()
            .args(["replay", s(&pcap), "--speed", "1"])
            .args(["--stats-interval", interval, "--eve", s(&eve)])
            .output()
            .unwrap();
        assert!(out.status.success());
        eve_lines(&eve)
            .into_iter()
            .filter(|e| e["event_type"] == "stats")
            .collect::<Vec<_>>()
    };
    let stats = run("300ms");
    assert!(stats.len() >= 3, "{} stats events", stats.len());
    let pkts: Vec<u64> = stats
        .iter()
        .map(|e| e["stats"]["decoder"]["pkts"].as_u64().unwrap())
        .collect();
    assert!(pkts.windows(2).all(|w| w[0] <= w[1]), "{pkts:?}");
    let last = stats.last().unwrap();
    assert_eq!(
        last["stats"]["decoder"]["pkts"],
        paced(4, SEC / 2).sorted().len() as u64,
        "the last one at the end has every packet"
    );
    assert_eq!(last["stats"]["flow"]["total"], 4);
    assert_eq!(last["tollgate"]["stats"]["flows"]["created"], 4);
    // Off: no stats lines on stderr and no stats events.
    assert!(run("0").is_empty());
}

#[test]
fn community_id_direction_and_source_on_the_samples_events() {
    let dir = Scratch::new("ops-cid");
    let eve = dir.path("eve.json");
    let run = |extra: &[&str]| {
        let _ = std::fs::remove_file(&eve);
        let out = bin()
            .args(["replay", s(&sample()), "--stats-interval", "0"])
            .args(["--eve", s(&eve)])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        eve_lines(&eve)
    };
    let plain = run(&[]);
    assert!(plain.iter().all(|e| e.get("community_id").is_none()));
    let events = run(&["--community-id"]);
    let alerts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert_eq!(
        alerts.len(),
        3,
        "the key, the override, the system-prompt request"
    );
    for a in &alerts {
        assert_eq!(a["direction"], "to_server", "{a}");
        assert_eq!(a["pkt_src"], "wire/pcap");
        assert_eq!(a["pcap_filename"], s(&sample()));
        // Its flow's event carries the same ID and says it alerted.
        let flow = events
            .iter()
            .find(|e| e["event_type"] == "flow" && e["flow_id"] == a["flow_id"])
            .unwrap();
        assert_eq!(flow["community_id"], a["community_id"]);
        assert_eq!(flow["flow"]["alerted"], true);
        // Its `flow` object: the flow so far, client first.
        let af = &a["flow"];
        assert_eq!(af["start"], flow["flow"]["start"]);
        assert_eq!(af["src_ip"], flow["src_ip"]);
        assert_eq!(af["dest_port"], flow["dest_port"]);
        let so_far = af["pkts_toserver"].as_u64().unwrap();
        assert!(so_far >= 1 && so_far <= flow["flow"]["pkts_toserver"].as_u64().unwrap());
        // Computed independently, by the spec's own recipe in Python.
        let want = python_community_id(a, 0);
        assert_eq!(a["community_id"], want.as_str(), "{a}");
    }
    assert!(events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .all(|e| e["community_id"].is_string()));
    let seeded = run(&["--community-id", "--community-id-seed", "7"]);
    let a = seeded.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(a["community_id"], python_community_id(a, 7).as_str());
    assert_ne!(a["community_id"], alerts[0]["community_id"]);
}

/// Community ID v1 of an event's TCP/UDP tuple, by Python's hashlib.
fn python_community_id(e: &Value, seed: u16) -> String {
    let prog = r#"
import base64, hashlib, ipaddress, struct, sys
seed, src, sp, dst, dp, proto = sys.argv[1:]
a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
sp, dp = int(sp), int(dp)
if (a.packed, sp) > (b.packed, dp):
    a, b, sp, dp = b, a, dp, sp
data = struct.pack('!H', int(seed)) + a.packed + b.packed + bytes([int(proto), 0]) + struct.pack('!HH', sp, dp)
print('1:' + base64.b64encode(hashlib.sha1(data).digest()).decode())
"#;
    let proto = match e["proto"].as_str().unwrap() {
        "TCP" => "6",
        "UDP" => "17",
        p => panic!("not TCP or UDP: {p}"),
    };
    let out = Command::new("python3")
        .args(["-c", prog, &seed.to_string()])
        .arg(e["src_ip"].as_str().unwrap())
        .arg(e["src_port"].to_string())
        .arg(e["dest_ip"].as_str().unwrap())
        .arg(e["dest_port"].to_string())
        .arg(proto)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A one-leaf binary:logistic model that scores every flow sigmoid(4).
const ALWAYS_HIGH: &str = r#"{"learner":{"feature_names":["duration"],"feature_types":["float"],
"gradient_booster":{"model":{"trees":[{"base_weights":[4.0],"default_left":[0],
"left_children":[-1],"right_children":[-1],"split_conditions":[4.0],
"split_indices":[0],"split_type":[0]}]},"name":"gbtree"},
"learner_model_param":{"base_score":"[5E-1]","num_class":"0","num_feature":"1","num_target":"1"},
"objective":{"name":"binary:logistic"}},"version":[3,2,0]}"#;

#[test]
fn every_event_type_validates_against_suricatas_schema() {
    let dir = Scratch::new("ops-schema");
    let model = dir.write("m.json", ALWAYS_HIGH.as_bytes());
    for extensions in [true, false] {
        let on = if extensions { "on" } else { "off" };
        let mut files = Vec::new();
        // The sample observing and inline (flow, alert, anomaly, stats,
        // with the ips section), and scored (model alerts).
        for (k, extra) in [
            vec!["--community-id"],
            vec!["--mode", "ips"],
            vec!["--model", s(&model)],
        ]
        .into_iter()
        .enumerate()
        {
            let eve = dir.path(&format!("eve-{on}-{k}.json"));
            let out = bin()
                .args(["replay", s(&sample()), "--eve", s(&eve)])
                .args(["--eve-extensions", on])
                .args(&extra)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            files.push(eve);
        }
        // A worker's alerts lost to a full ring (an `engine` event): the
        // replay waits for room rather than lose one, so it is written
        // here with the writer's own function.
        let engine = dir.path(&format!("engine-{on}.json"));
        let mut buf = Vec::new();
        let style = tollgate::eve::EveStyle {
            extensions,
            ..Default::default()
        };
        tollgate::eve::write_alerts_lost(&mut buf, 1, 12, T0, &style).unwrap();
        std::fs::write(&engine, buf).unwrap();
        files.push(engine);

        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        if let Some(summary) = validate_eve(&paths, extensions) {
            for t in ["flow", "alert", "anomaly", "stats", "engine"] {
                assert!(
                    summary["by_type"][t].as_u64().unwrap_or(0) > 0,
                    "no {t} event (extensions {on}): {summary}"
                );
            }
        }
        let all: Vec<Value> = paths.iter().flat_map(|p| eve_lines(p)).collect();
        assert_eq!(
            all.iter().any(|e| e.get("tollgate").is_some()),
            extensions,
            "the tollgate object only with extensions"
        );
        assert!(all
            .iter()
            .any(|e| e["alert"]["signature_id"] == tollgate::scoring::SCORE_SID));
        assert!(all.iter().any(|e| e["stats"]["ips"]["blocked"].is_u64()));
    }
}

#[test]
fn eve_types_writes_those_types_and_the_same_events_of_them() {
    let dir = Scratch::new("ops-types");
    let run = |name: &str, types: Option<&str>| {
        let eve = dir.path(name);
        let mut c = bin();
        c.args(["replay", s(&sample()), "--eve", s(&eve)]);
        if let Some(t) = types {
            c.args(["--eve-types", t]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eve_lines(&eve)
    };
    let of = |events: &[Value], t: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["event_type"] == t)
            .cloned()
            .collect()
    };
    let all = run("all.json", None);
    for t in [
        "alert", "anomaly", "flow", "http", "dns", "fileinfo", "stats",
    ] {
        assert!(!of(&all, t).is_empty(), "the sample has no {t} event");
    }
    let some = run("some.json", Some("alert,dns,fileinfo"));
    let mut kinds: Vec<&str> = some
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, ["alert", "dns", "fileinfo"]);
    // What is written of a type is what `all` writes of it (stats carry
    // the time of the run, the rest is the capture's).
    for t in ["alert", "dns", "fileinfo"] {
        assert_eq!(of(&some, t), of(&all, t), "{t} events differ");
    }
    // Flow records only; and a name that is no type is refused, named.
    let flows = run("flow.json", Some("flow"));
    assert!(flows.iter().all(|e| e["event_type"] == "flow"));
    assert_eq!(flows, of(&all, "flow"));
    let out = bin()
        .args(["replay", s(&sample()), "--eve-types", "alert,alerts"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown EVE type `alerts`"), "{err}");
}

/// `GET path` from the metrics endpoint: (status line, content type, body).
fn scrape(addr: &str, path: &str) -> (String, String, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ct = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_string();
    (status, ct, body.to_string())
}

/// `name{worker="k"}`'s value in a scrape.
fn sample_value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn prometheus_metrics_are_scraped_during_a_paced_replay() {
    let dir = Scratch::new("metrics");
    let mut child = bin()
        .args(["replay", s(&sample()), "--speed", "10", "--workers", "2"])
        .args(["--metrics", "127.0.0.1:0", "--stats-interval", "0"])
        .args(["--stats-json", s(&dir.path("stats.json"))])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(a) = line.trim().strip_prefix("metrics: http://") {
            break a.trim_end_matches("/metrics").to_string();
        }
    };
    // The sample lasts 58 s of capture time: about 6 s at --speed 10. The
    // first snapshots come with the monitor's first tick.
    let t0 = Instant::now();
    let (status, ct, first) = loop {
        let r = scrape(&addr, "/metrics");
        if r.2.contains("tollgate_packets_rx") || t0.elapsed() > Duration::from_secs(3) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(
        first.contains("# TYPE tollgate_packets_rx counter"),
        "{first}"
    );
    let rx = |b: &str| {
        (0..2)
            .map(|k| sample_value(b, &format!("tollgate_packets_rx_total{{worker=\"{k}\"}}")))
            .sum::<Option<f64>>()
    };
    let t0 = Instant::now();
    let mut seen = rx(&first).unwrap();
    let mut grew = false;
    while !grew && t0.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(300));
        let (_, _, b) = scrape(&addr, "/metrics");
        let now = rx(&b).unwrap();
        assert!(now >= seen, "a counter went back: {seen} then {now}");
        grew |= now > seen && seen > 0.0;
        seen = now;
    }
    assert!(grew, "packets counted while the replay ran");
    assert!(scrape(&addr, "/other").0.starts_with("HTTP/1.1 404"));
    let _ = std::io::copy(&mut err, &mut std::io::sink());
    assert!(child.wait().unwrap().success());
    // What was scraped is what the stats JSON says at the end, or less.
    let st: Value = common::read_json(dir.path("stats.json"));
    assert!(seen <= st["packets"]["rx"].as_f64().unwrap());
}

#[test]
fn a_metrics_address_already_taken_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = bin()
        .args(["replay", s(&sample()), "--metrics", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&format!("--metrics {addr}: ")), "{e}");
}
