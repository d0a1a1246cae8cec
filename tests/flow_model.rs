//! The shipped flow model (signatures/flow-model.json) and the anomaly
//! detector, end to end: the binary generates labelled captures, replays
//! them with the model, and what it scored and alerted is checked against
//! the generator's ground truth and against XGBoost's own scores.

mod common;
use common::{bin, eve_lines, read_json, s, Scratch};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("signatures/flow-model.json")
}

fn run(args: &[&str]) {
    let o = bin().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Replays `pcap` with the shipped model, early records after 8 packets,
/// and `extra`.
fn replay_shipped(pcap: &Path, extra: &[&str]) {
    let model = shipped();
    let mut args = vec!["replay", s(pcap), "--stats-interval", "0"];
    args.extend(["--model", s(&model), "--feature-packets", "8"]);
    args.extend(extra);
    run(&args);
}

/// A record's or truth line's flow: tuple and first packet's time.
fn flow_key(v: &Value, start: &str) -> String {
    format!(
        "{} {} {} {} {} {}",
        v["src_ip"], v["src_port"], v["dest_ip"], v["dest_port"], v["proto"], v[start]
    )
}

/// Generates `seed`'s capture with `attacks` (None: benign only) into
/// `dir`; returns the capture and its truth file.
fn generate(dir: &Scratch, seed: u32, flows: u32, attacks: Option<&str>) -> (PathBuf, PathBuf) {
    let (pcap, truth) = (
        dir.path(&format!("g{seed}.pcap")),
        dir.path(&format!("g{seed}.truth.jsonl")),
    );
    let (seed, flows) = (seed.to_string(), flows.to_string());
    let mut args = vec!["gen", "--seed", &seed, "--flows", &flows, "--out", s(&pcap)];
    args.extend(["--truth", s(&truth)]);
    if let Some(a) = attacks {
        args.extend(["--attacks", a]);
    }
    run(&args);
    (pcap, truth)
}

#[test]
fn the_shipped_model_scores_a_fixed_capture_as_xgboost_did_and_catches_its_attacks() {
    let dir = Scratch::new("flow-model-fixed");
    // The capture the fixture's records came from (scripts/train_flow_model.py
    // --fixture-features): the generator is deterministic by seed.
    let (pcap, truth) = generate(&dir, 21, 200, Some("all"));
    let (feats, st, ev) = (dir.path("f.jsonl"), dir.path("s.json"), dir.path("e.json"));
    let _ = std::fs::remove_file(&ev);
    replay_shipped(
        &pcap,
        &[
            "--features-out",
            s(&feats),
            "--stats-json",
            s(&st),
            "--eve",
            s(&ev),
        ],
    );
    let fixture = read_json(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flow-model/scores.json"),
    );
    let key = |r: &Value| format!("{} {}", flow_key(r, "flow_start"), r["trigger"]);
    let want: BTreeMap<String, f64> = fixture["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (key(r), r["score"].as_f64().unwrap()))
        .collect();
    let recs = eve_lines(&feats);
    assert_eq!(recs.len(), want.len(), "the same records as the fixture's");
    for r in &recs {
        let w = want
            .get(&key(r))
            .unwrap_or_else(|| panic!("a record the fixture does not have: {r}"));
        let got = r["score"].as_f64().unwrap();
        assert!(
            (got - w).abs() <= 1e-6,
            "scored {got}, XGBoost {w}: {}",
            r["features"]
        );
    }
    // The threshold is the file's own; the alerts are the attacks'.
    let st = read_json(&st);
    let threshold = st["scoring"]["threshold"].as_f64().unwrap();
    assert_eq!(
        threshold,
        fixture["threshold"].as_f64().unwrap() as f32 as f64
    );
    let label: BTreeMap<String, String> = eve_lines(&truth)
        .iter()
        .map(|t| {
            (
                flow_key(t, "start"),
                t["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut flagged: BTreeSet<String> = BTreeSet::new();
    for r in &recs {
        if r["score"].as_f64().unwrap() >= threshold {
            flagged.insert(flow_key(r, "flow_start"));
        }
    }
    let alerts = eve_lines(&ev)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == tollgate::scoring::SCORE_SID)
        .count();
    assert!(alerts >= flagged.len(), "{alerts} alerts");
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (k, l) in &label {
        let e = per.entry(l.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(flagged.contains(k));
    }
    for (l, (n, caught)) in &per {
        if *l == "benign" {
            assert!(caught * 100 <= *n, "{caught} of {n} benign flows flagged");
        } else {
            assert!(caught * 10 >= n * 9, "{l}: {caught} of {n} caught");
        }
    }
    assert!(per.len() == 7, "every behaviour is in the capture: {per:?}");
}

#[test]
fn the_shipped_model_stays_quiet_on_benign_traffic() {
    let dir = Scratch::new("flow-model-benign");
    let (pcap, _) = generate(&dir, 22, 400, None);
    let st = dir.path("s.json");
    replay_shipped(&pcap, &["--stats-json", s(&st)]);
    let sc = &read_json(&st)["scoring"];
    assert!(sc["scored"].as_u64().unwrap() > 400, "{sc}");
    assert_eq!(sc["alerts"], 0, "{sc}");
    assert!(sc["hosts"]["entries"].as_u64().unwrap() >= 16_384, "{sc}");
}

#[test]
fn the_anomaly_detector_learns_saves_and_resumes_without_learning_again() {
    let dir = Scratch::new("flow-anomaly");
    // A quiet period to learn from, then one with port scans in it.
    let (quiet, _) = generate(&dir, 23, 400, Some("scan=0"));
    let (scans, truth) = generate(&dir, 24, 200, Some("scan=0.02"));
    let state = dir.path("hst.json");
    let _ = std::fs::remove_file(&state);
    let timeouts = ["--established-timeout", "5s", "--new-timeout", "5s"];
    let st1 = dir.path("s1.json");
    let mut args = vec!["replay", s(&quiet), "--stats-interval", "0"];
    args.extend(["--anomaly-state", s(&state), "--learn-window", "300"]);
    args.extend(["--feature-packets", "8", "--stats-json", s(&st1)]);
    args.extend(timeouts);
    run(&args);
    let a1 = read_json(&st1)["scoring"]["anomaly"].clone();
    assert_eq!(a1["phase"], "live", "{a1}");
    assert_eq!(a1["saves"], 1);
    let learnt = a1["records_seen"].as_u64().unwrap();
    assert!(learnt >= 600, "{a1}");
    let saved: Value = read_json(&state);
    assert_eq!(saved["format"], "tollgate-anomaly/1");
    assert_eq!(saved["records"], learnt);
    assert!(!saved["peers"].as_array().unwrap().is_empty());

    // The restart picks up where it stopped: live from the first record.
    let (st2, feats, ev) = (dir.path("s2.json"), dir.path("f.jsonl"), dir.path("e.json"));
    let _ = std::fs::remove_file(&ev);
    let mut args = vec!["replay", s(&scans), "--stats-interval", "0"];
    args.extend(["--anomaly-state", s(&state), "--features-out", s(&feats)]);
    args.extend(["--feature-packets", "8", "--stats-json", s(&st2)]);
    args.extend(["--eve", s(&ev)]);
    args.extend(timeouts);
    run(&args);
    let sc = read_json(&st2)["scoring"].clone();
    let a2 = &sc["anomaly"];
    assert_eq!(a2["scored"], sc["records"], "every record scored: {a2}");
    assert_eq!(
        a2["records_seen"].as_u64().unwrap(),
        learnt + a2["scored"].as_u64().unwrap()
    );
    assert_eq!(a2["threshold"], a1["threshold"], "the learnt threshold");
    // Its alerts are the scans'.
    let scan: BTreeSet<String> = eve_lines(&truth)
        .iter()
        .filter(|t| t["label"] == "scan")
        .map(|t| flow_key(t, "start"))
        .collect();
    let alerts: Vec<Value> = eve_lines(&ev)
        .into_iter()
        .filter(|e| e["alert"]["signature_id"] == tollgate::scoring::ANOMALY_SID)
        .collect();
    assert_eq!(alerts.len() as u64, a2["alerts"].as_u64().unwrap());
    let on_scans = alerts
        .iter()
        .filter(|e| {
            let k = format!(
                "{} {} {} {} {}",
                e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"]
            );
            scan.iter().any(|s| s.starts_with(&k))
        })
        .count();
    assert!(
        alerts.len() >= 10 && on_scans * 10 >= alerts.len() * 9,
        "{on_scans} of {} alerts on the {} scan flows",
        alerts.len(),
        scan.len()
    );
    assert!(alerts[0]["tollgate"]["top_features"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
    // Its scores rank the scans above the rest.
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for r in eve_lines(&feats) {
        let a = r["anomaly"].as_f64().unwrap();
        if scan.contains(&flow_key(&r, "flow_start")) {
            pos.push(a);
        } else {
            neg.push(a);
        }
    }
    let above = pos
        .iter()
        .map(|p| neg.iter().filter(|n| *n < p).count())
        .sum::<usize>() as f64;
    let auc = above / (pos.len() * neg.len()) as f64;
    assert!(auc >= 0.9, "scan ROC AUC {auc}");

    // The state file given to --model runs the detector too (its kind is
    // read from the file), without saving over it.
    let before = std::fs::read(&state).unwrap();
    let st3 = dir.path("s3.json");
    run(&[
        "replay",
        s(&scans),
        "--stats-interval",
        "0",
        "--model",
        s(&state),
        "--stats-json",
        s(&st3),
    ]);
    let a3 = read_json(&st3)["scoring"]["anomaly"].clone();
    assert!(a3["alerts"].as_u64().unwrap() > 0, "{a3}");
    assert_eq!(a3["saves"], 0);
    assert_eq!(std::fs::read(&state).unwrap(), before);
    // Both at once is refused, naming both.
    let o = bin()
        .args(["replay", s(&scans), "--model", s(&state)])
        .args(["--anomaly-state", s(&dir.path("other.json"))])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--anomaly-state") && err.contains("--model"),
        "{err}"
    );
}

#[test]
fn a_bad_anomaly_state_is_refused_with_what_is_wrong() {
    let dir = Scratch::new("flow-anomaly-bad");
    let (pcap, _) = generate(&dir, 25, 20, None);
    let bad = dir.write(
        "hst.json",
        br#"{"format":"tollgate-anomaly/1","feature_schema":"1"}"#,
    );
    for flag in ["--anomaly-state", "--model"] {
        let o = bin()
            .args(["replay", s(&pcap), flag, s(&bad)])
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("hst.json") && err.contains("learn again"),
            "{err}"
        );
    }
}

#[test]
fn sigusr2_saves_the_anomaly_state_as_a_checkpoint() {
    let dir = Scratch::new("flow-anomaly-usr2");
    let pcap = dir.path("g.pcap");
    run(&[
        "gen",
        "--seed",
        "26",
        "--flows",
        "60",
        "--duration",
        "3s",
        "--out",
        s(&pcap),
    ]);
    let (state, st) = (dir.path("hst.json"), dir.path("s.json"));
    let _ = std::fs::remove_file(&state);
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--stats-interval", "0"])
        .args(["--anomaly-state", s(&state), "--stats-json", s(&st)])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Before its handler is in place SIGUSR2 would end the process: give
    // it time to start (the capture plays for 3 s).
    std::thread::sleep(std::time::Duration::from_millis(1000));
    common::signal(&child, "USR2");
    assert!(common::wait_until(
        std::time::Duration::from_secs(5),
        || state.exists()
    ));
    assert!(child.wait().unwrap().success());
    let a = read_json(&st)["scoring"]["anomaly"].clone();
    assert!(
        a["saves"].as_u64().unwrap() >= 2,
        "a checkpoint, then at exit: {a}"
    );
    assert_eq!(a["errors"], serde_json::json!([]));
}
