//! `tollgate gen` end to end: determinism, ground truth against what the
//! spine sees, and an independent dissector's opinion of the capture.

mod common;
use common::{s, Scratch};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn same_seed_same_capture() {
    let dir = Scratch::new("gen-seed");
    let (a, b, c) = (dir.path("a.pcap"), dir.path("b.pcap"), dir.path("c.pcap"));
    for (p, seed) in [(&a, "5"), (&b, "5"), (&c, "6")] {
        let out = tollgate(&[
            "gen",
            "--out",
            s(p),
            "--flows",
            "150",
            "--duration",
            "5s",
            "--seed",
            seed,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    assert!(std::fs::read(&a).unwrap() != std::fs::read(&c).unwrap());
    assert_eq!(
        lines(&dir.path("a.pcap.truth.jsonl")),
        lines(&dir.path("b.pcap.truth.jsonl"))
    );
}

#[test]
fn ground_truth_matches_the_flows_the_spine_sees() {
    let dir = Scratch::new("gen-truth");
    let cap = dir.path("g.pcap");
    let truth = dir.path("g.truth.jsonl");
    let out = tollgate(&[
        "gen",
        "--out",
        s(&cap),
        "--truth",
        s(&truth),
        "--flows",
        "300",
        "--duration",
        "10s",
        "--seed",
        "11",
    ]);
    assert!(out.status.success());
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let stats = dir.path("stats.json");
    let out = tollgate(&[
        "replay",
        s(&cap),
        "--workers",
        "2",
        "--stats-interval",
        "0",
        "--eve",
        s(&eve),
        "--stats-json",
        s(&stats),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = |v: &Value, a: &str, ap: &str, b: &str, bp: &str| {
        format!("{} {} {} {} {}", v[a], v[ap], v[b], v[bp], v["proto"])
    };
    let mut truth_by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for t in lines(&truth) {
        truth_by
            .entry(key(&t, "src_ip", "src_port", "dest_ip", "dest_port"))
            .or_default()
            .push(t);
    }
    // Flow records (the app layer adds http and fileinfo events beside).
    let events: Vec<Value> = lines(&eve)
        .into_iter()
        .filter(|e| e["event_type"] == "flow")
        .collect();
    let mut matched = 0;
    for e in &events {
        let k = key(e, "src_ip", "src_port", "dest_ip", "dest_port");
        let Some(ts) = truth_by.get(&k) else {
            panic!("a flow the generator did not make: {k}");
        };
        if ts.len() != 1 {
            continue; // the rare 5-tuple the generator drew twice
        }
        let t = &ts[0];
        let pkts = e["flow"]["pkts_toserver"].as_u64().unwrap()
            + e["flow"]["pkts_toclient"].as_u64().unwrap();
        let bytes = e["flow"]["bytes_toserver"].as_u64().unwrap()
            + e["flow"]["bytes_toclient"].as_u64().unwrap();
        assert_eq!(pkts, t["packets"].as_u64().unwrap(), "{k} ({})", t["kind"]);
        assert_eq!(bytes, t["bytes"].as_u64().unwrap(), "{k}");
        if let Some(v) = t.get("vlan") {
            assert_eq!(e["vlan"], serde_json::json!([v]), "{k}");
        }
        matched += 1;
    }
    assert!(matched >= 290, "{matched} of 300 flows matched one to one");
    assert_eq!(
        events.len(),
        truth_by.len(),
        "one flow record per generated 5-tuple"
    );
    let st: Value = common::read_json(&stats);
    let truth_packets: u64 = lines(&truth)
        .iter()
        .map(|t| t["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(st["packets"]["rx"], truth_packets);
    assert_eq!(
        st["decode_errors"],
        serde_json::json!({}),
        "every generated frame decodes"
    );
}

#[test]
fn generated_traffic_opens_cleanly_in_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark not installed: skipping the independent dissector check");
        return;
    }
    let dir = Scratch::new("gen-tshark");
    let cap = dir.path("g.pcap");
    assert!(tollgate(&[
        "gen",
        "--out",
        s(&cap),
        "--flows",
        "250",
        "--duration",
        "10s",
        "--seed",
        "2"
    ])
    .status
    .success());
    let out = Command::new("tshark")
        .args(["-r", s(&cap), "-z", "expert,warn", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        !text.contains("Errors") && !text.contains("Warns"),
        "{text}"
    );
    // And it saw what was meant: TLS with SNI, HTTP, DNS.
    let fields = Command::new("tshark")
        .args([
            "-r",
            s(&cap),
            "-Y",
            "tls.handshake.extensions_server_name",
            "-T",
            "fields",
            "-e",
            "tls.handshake.extensions_server_name",
        ])
        .output()
        .unwrap();
    let snis = String::from_utf8_lossy(&fields.stdout);
    assert!(
        snis.lines()
            .any(|l| l == "api.openai.com" || l == "api.anthropic.com"),
        "{snis}"
    );
}

#[test]
fn every_feature_record_joins_its_ground_truth_line_on_tuple_and_start() {
    let dir = Scratch::new("gen-join");
    let (pcap, truth, feats) = (dir.path("g.pcap"), dir.path("t.jsonl"), dir.path("f.jsonl"));
    let out = tollgate(&[
        "gen",
        "--seed",
        "9",
        "--flows",
        "300",
        "--out",
        s(&pcap),
        "--truth",
        s(&truth),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tollgate(&[
        "replay",
        s(&pcap),
        "--stats-interval",
        "0",
        "--features-out",
        s(&feats),
        "--feature-packets",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = |v: &Value, start: &str| {
        format!(
            "{} {} {} {} {} {}",
            v["src_ip"], v["src_port"], v["dest_ip"], v["dest_port"], v["proto"], v[start]
        )
    };
    let mut by_key: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for t in lines(&truth) {
        let prev = by_key.insert(
            key(&t, "start"),
            (
                t["kind"].as_str().unwrap().to_string(),
                t["packets"].as_u64().unwrap(),
            ),
        );
        assert!(prev.is_none(), "the join key is unique: {t}");
    }
    assert_eq!(by_key.len(), 300);
    let recs = lines(&feats);
    let mut ends = 0;
    for r in &recs {
        let (kind, packets) = by_key
            .get(&key(r, "flow_start"))
            .unwrap_or_else(|| panic!("no ground truth for {r}"));
        if r["trigger"] == "end" {
            ends += 1;
            let f = &r["features"];
            let seen = f["pkts_toserver"].as_f64().unwrap() + f["pkts_toclient"].as_f64().unwrap();
            assert_eq!(seen as u64, *packets, "{kind}: {r}");
        }
    }
    assert_eq!(ends, 300, "each flow ends once");
}
