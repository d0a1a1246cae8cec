//! The scoring stage end to end: the binary replays captures with a model,
//! and the stats JSON, EVE and `--features-out` say what it scored,
//! alerted, dropped and reloaded.

mod common;
use common::{s, signal, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tollgate::craft::{Capture, Route, Side, TcpConversation};
use tollgate::scoring::features::FEATURES;

const T0: u64 = 1_767_225_600_000_000_000;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// A one-leaf binary:logistic model: every flow scores sigmoid(`leaf`).
fn constant_model(leaf: f32) -> String {
    format!(
        r#"{{"learner":{{"feature_names":["duration"],"feature_types":["float"],
        "gradient_booster":{{"model":{{"trees":[{{"base_weights":[{leaf}],"default_left":[0],
        "left_children":[-1],"right_children":[-1],"split_conditions":[{leaf}],
        "split_indices":[0],"split_type":[0]}}]}},"name":"gbtree"}},
        "learner_model_param":{{"base_score":"[5E-1]","num_class":"0","num_feature":"1","num_target":"1"}},
        "objective":{{"name":"binary:logistic"}}}},"version":[3,2,0]}}"#
    )
}

/// One client uploading `segments` segments of 1,000 bytes, `gap_ns` apart.
fn upload(segments: usize, gap_ns: u64) -> Capture {
    let mut c = TcpConversation::new(
        Route::new(ip("10.1.0.5"), ip("203.0.113.9")),
        40000,
        8080,
        T0,
    )
    .gap(gap_ns);
    c.handshake();
    for _ in 0..segments {
        c.send(Side::Client, &[b'u'; 1000], 1000);
    }
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    cap
}

fn eve(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgboost/binary_logistic.json")
}

#[test]
fn every_flow_is_scored_and_written_for_training() {
    let dir = Scratch::new("score-sample");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let (st, ev, out) = (dir.path("s.json"), dir.path("e.json"), dir.path("f.jsonl"));
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&ev);
    let o = bin()
        .args([
            "replay",
            s(&sample),
            "--workers",
            "2",
            "--stats-interval",
            "0",
        ])
        .args(["--model", s(&fixture()), "--score-threshold", "0.5"])
        .args([
            "--stats-json",
            s(&st),
            "--eve",
            s(&ev),
            "--features-out",
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = common::read_json(&st);
    let sc = &st["scoring"];
    let flows = st["flows"]["created"].as_u64().unwrap();
    assert_eq!(sc["records"], flows, "one end record per flow: {sc}");
    assert_eq!(sc["scored"], sc["records"]);
    assert_eq!(sc["dropped"], 0);
    let buckets: u64 = sc["buckets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(buckets, flows);
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, flows);
    for l in &lines {
        let f = l["features"].as_object().unwrap();
        assert_eq!(f.len(), FEATURES.len());
        assert!(l["flow_id"].is_u64() && l["src_ip"].is_string());
    }
    let alerts: Vec<_> = eve(&ev)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == tollgate::scoring::SCORE_SID)
        .collect();
    assert_eq!(alerts.len() as u64, sc["alerts"].as_u64().unwrap());
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert!(a["tollgate"]["score"].as_f64().unwrap() >= 0.5);
        assert_eq!(a["tollgate"]["model"], "binary_logistic.json");
        assert!(!a["tollgate"]["top_features"].as_array().unwrap().is_empty());
    }
}

#[test]
fn inline_a_high_score_drops_the_rest_of_the_flow() {
    let dir = Scratch::new("score-ips");
    let model = dir.write("high.json", constant_model(8.0).as_bytes());
    // Played in real time (5 ms between packets), so verdicts come back
    // while the flow still runs, as on a wire.
    let pcap = dir.write("c.pcap", &upload(40, 5_000_000).to_pcap());
    let st = dir.path("s.json");
    let o = bin()
        .args([
            "replay",
            s(&pcap),
            "--stats-interval",
            "0",
            "--mode",
            "ips",
            "--speed",
            "1",
        ])
        .args([
            "--model",
            s(&model),
            "--score-action",
            "drop",
            "--feature-bytes",
            "5000",
        ])
        .args(["--stats-json", s(&st)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = common::read_json(&st);
    let dropped = st["packets"]["dropped"]["score"].as_u64().unwrap();
    assert!(dropped > 0, "{}", st["scoring"]);
    let rx = st["packets"]["rx"].as_u64().unwrap();
    let tx = st["packets"]["tx"].as_u64().unwrap();
    assert_eq!(rx, tx + dropped);
    assert!(st["scoring"]["verdicts"]["applied"].as_u64().unwrap() >= 1);
    assert_eq!(st["scoring"]["verdicts"]["stale"], 0);
}

#[test]
fn an_early_record_after_the_first_packets_reaches_the_scorer() {
    let dir = Scratch::new("score-early");
    let pcap = dir.write("c.pcap", &upload(20, 1_000_000).to_pcap());
    let (st, out) = (dir.path("s.json"), dir.path("f.jsonl"));
    let o = bin()
        .args(["replay", s(&pcap), "--stats-interval", "0"])
        .args(["--features-out", s(&out), "--feature-packets", "5"])
        .args(["--stats-json", s(&st)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let triggers: Vec<&str> = recs
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(
        triggers,
        ["packets", "end"],
        "one early record, then the end's"
    );
    let f = &recs[0]["features"];
    let pkts = f["pkts_toserver"].as_f64().unwrap() + f["pkts_toclient"].as_f64().unwrap();
    assert_eq!(pkts, 5.0, "{f}");
    assert_eq!(recs[0]["flow_id"], recs[1]["flow_id"]);
    // Without the flag, only the end's.
    let o = bin()
        .args(["replay", s(&pcap), "--stats-interval", "0"])
        .args(["--features-out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);
}

#[test]
fn inline_a_verdict_on_an_early_record_drops_most_of_the_flow() {
    let dir = Scratch::new("score-early-ips");
    let model = dir.write("high.json", constant_model(8.0).as_bytes());
    // 40 segments 5 ms apart, played in real time; no --feature-bytes
    // record comes before the end (10 MiB), only the early one.
    let pcap = dir.write("c.pcap", &upload(40, 5_000_000).to_pcap());
    let (st, ev) = (dir.path("s.json"), dir.path("e.json"));
    let _ = std::fs::remove_file(&ev);
    let o = bin()
        .args(["replay", s(&pcap), "--stats-interval", "0", "--speed", "1"])
        .args([
            "--mode",
            "ips",
            "--model",
            s(&model),
            "--score-action",
            "drop",
        ])
        .args(["--feature-packets", "4"])
        .args(["--stats-json", s(&st), "--eve", s(&ev)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = common::read_json(&st);
    let dropped = st["packets"]["dropped"]["score"].as_u64().unwrap_or(0);
    let rx = st["packets"]["rx"].as_u64().unwrap();
    // The handshake's 3 and the first data segment pass; the verdict is
    // back within a few of the 40 segments that follow.
    assert!(dropped >= 30, "{dropped} of {rx}: {}", st["scoring"]);
    assert_eq!(st["scoring"]["verdicts"]["applied"], 1);
    let alerts: Vec<Value> = eve(&ev)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == tollgate::scoring::SCORE_SID)
        .collect();
    assert_eq!(alerts[0]["tollgate"]["trigger"], "packets");
    assert_eq!(alerts[0]["alert"]["action"], "blocked");
}

#[test]
fn sigusr2_reloads_the_model_mid_run_without_losing_records_and_sighup_does_not() {
    let dir = Scratch::new("score-reload");
    let model = dir.write("m.json", constant_model(-8.0).as_bytes());
    // 2 s of capture time, played in real time; a record every 2,000 bytes.
    let pcap = dir.write("c.pcap", &upload(100, 10_000_000).to_pcap());
    let (st, ev) = (dir.path("s.json"), dir.path("e.json"));
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&ev);
    let mut child = bin()
        .args(["replay", s(&pcap), "--stats-interval", "0", "--speed", "1"])
        .args(["--model", s(&model), "--feature-bytes", "2000"])
        .args(["--stats-json", s(&st), "--eve", s(&ev)])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // SIGHUP reopens the logs (as Suricata's does); it reloads nothing.
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&model, constant_model(8.0)).unwrap();
    signal(&child, "USR2");
    assert!(child.wait().unwrap().success());
    let st = common::read_json(&st);
    let sc = &st["scoring"];
    assert_eq!(sc["reloads"], 1, "{sc}");
    assert_eq!(sc["scored"], sc["records"], "no record lost");
    let (alerts, scored) = (
        sc["alerts"].as_u64().unwrap(),
        sc["scored"].as_u64().unwrap(),
    );
    assert!(alerts > 0 && alerts < scored, "{alerts} of {scored}");
    let gens: Vec<_> = eve(&ev)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == tollgate::scoring::SCORE_SID)
        .map(|e| e["tollgate"]["model_generation"].as_u64().unwrap())
        .collect();
    assert!(
        gens.iter().all(|&g| g == 1),
        "only the reloaded model alerts"
    );
}

#[test]
fn bad_models_and_flags_are_refused_at_start() {
    let dir = Scratch::new("score-bad");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let dart = dir.write(
        "dart.json",
        constant_model(1.0)
            .replace("\"gbtree\"}", "\"dart\"}")
            .as_bytes(),
    );
    let o = bin()
        .args(["replay", s(&sample), "--model", s(&dart)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dart.json") && err.contains("dart"), "{err}");
    let o = bin()
        .args([
            "replay",
            s(&sample),
            "--model",
            s(&fixture()),
            "--score-action",
            "drop",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--mode ips"));
    let o = bin()
        .args(["replay", s(&sample), "--score-threshold", "high"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
