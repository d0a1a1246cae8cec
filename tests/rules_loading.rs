//! End-to-end: how rule sets load the way operators lay them out — several
//! folders with their own classification files, a `suricata.rules` that
//! names classes nobody defined, duplicate sids, and no `--rules` at all
//! from wherever the binary is started.

mod common;
use common::{s, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};
use tollgate::craft::{Capture, Route, Side, TcpConversation};

const T0: u64 = 1_767_225_600_000_000_000;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

/// One TCP conversation whose client sends `payload`.
fn capture(payload: &[u8]) -> Capture {
    let mut cap = Capture::new();
    let mut c = TcpConversation::new(
        Route::new(ip("10.1.0.5"), ip("192.0.2.10")),
        40000,
        8080,
        T0,
    );
    c.handshake()
        .send(Side::Client, payload, 1448)
        .close(Side::Client);
    cap.extend(c.into_packets());
    cap
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn alerts(eve: &Path) -> Vec<Value> {
    std::fs::read_to_string(eve)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event_type"] == "alert")
        .collect()
}

fn folder(dir: &Scratch, name: &str, classes: &str, rules: &str) -> std::path::PathBuf {
    let d = dir.path(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("classification.config"), classes).unwrap();
    std::fs::write(d.join("local.rules"), rules).unwrap();
    d
}

#[test]
fn each_rules_folder_brings_its_classification_and_they_merge() {
    let dir = Scratch::new("classes");
    let a = folder(
        &dir,
        "a",
        "config classification: model-theft,Model weights leaving,1\n",
        "alert tcp any any -> any any (msg:\"weights\"; content:\"safetensors\"; classtype:model-theft; sid:1;)\n",
    );
    let b = folder(
        &dir,
        "b",
        "config classification: key-leak,API key in the clear,2\n",
        "alert tcp any any -> any any (msg:\"key\"; content:\"sk-proj-\"; classtype:key-leak; sid:2;)\n",
    );
    let pcap = dir.write(
        "c.pcap",
        &capture(b"PUT /m.safetensors sk-proj-abc").to_pcap(),
    );
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let out = run(
        &dir.0,
        &[
            "replay",
            s(&pcap),
            "--stats-interval",
            "0",
            "--eve",
            s(&eve),
            "--rules",
            s(&a),
            "--rules",
            s(&b),
            "--rules-unsupported",
            "error",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<(u64, String, u64)> = alerts(&eve)
        .iter()
        .map(|e| {
            let a = &e["alert"];
            (
                a["signature_id"].as_u64().unwrap(),
                a["category"].as_str().unwrap_or("").to_string(),
                a["severity"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (1, "Model weights leaving".to_string(), 1),
            (2, "API key in the clear".to_string(), 2)
        ]
    );

    // --classification repeats, and then it alone counts.
    let elsewhere = dir.path("classes");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let ca = elsewhere.join("a.config");
    let cb = elsewhere.join("b.config");
    std::fs::write(&ca, "config classification: model-theft,Theft (ops),3\n").unwrap();
    std::fs::write(&cb, "config classification: key-leak,Leak (ops),3\n").unwrap();
    std::fs::remove_file(&eve).unwrap();
    let out = run(
        &dir.0,
        &[
            "replay",
            s(&pcap),
            "--stats-interval",
            "0",
            "--eve",
            s(&eve),
            "--rules",
            s(&a),
            "--rules",
            s(&b),
            "--classification",
            s(&ca),
            "--classification",
            s(&cb),
        ],
    );
    assert!(out.status.success());
    let mut cats: Vec<String> = alerts(&eve)
        .iter()
        .map(|e| e["alert"]["category"].as_str().unwrap().to_string())
        .collect();
    cats.sort();
    assert_eq!(cats, ["Leak (ops)", "Theft (ops)"]);
}

#[test]
fn an_undefined_classtype_loads_with_a_warning_and_priority_3() {
    let dir = Scratch::new("noclass");
    let rules = dir.write(
        "suricata.rules",
        b"alert tcp any any -> any any (msg:\"x\"; content:\"sk-proj-\"; classtype:trojan-activity; sid:5; rev:1;)\n",
    );
    let pcap = dir.write("c.pcap", &capture(b"key sk-proj-abc").to_pcap());
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let out = run(
        &dir.0,
        &[
            "replay",
            s(&pcap),
            "--stats-interval",
            "0",
            "--eve",
            s(&eve),
            "--rules",
            s(&rules),
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:")
            && stderr.contains("suricata.rules:1: sid 5: classtype trojan-activity is not defined"),
        "{stderr}"
    );
    let a = alerts(&eve);
    assert_eq!(a.len(), 1, "the rule loaded and fired");
    assert_eq!(a[0]["alert"]["severity"], 3);
    assert!(
        a[0]["alert"].get("category").is_none(),
        "no category: {}",
        a[0]
    );
}

#[test]
fn a_duplicate_sid_is_named_and_the_highest_rev_wins() {
    let dir = Scratch::new("dupsid");
    let one = dir.write(
        "one.rules",
        b"alert tcp any any -> any any (msg:\"old\"; content:\"sk-proj-\"; sid:9; rev:1;)\n",
    );
    let two = dir.write(
        "two.rules",
        b"alert tcp any any -> any any (msg:\"new\"; content:\"sk-proj-\"; sid:9; rev:4;)\n",
    );
    let pcap = dir.write("c.pcap", &capture(b"key sk-proj-abc").to_pcap());
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let out = run(
        &dir.0,
        &[
            "replay",
            s(&pcap),
            "--stats-interval",
            "0",
            "--eve",
            s(&eve),
            "--rules",
            s(&one),
            "--rules",
            s(&two),
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("two.rules:1: duplicate sid 9 (gid 1): rev 4 replaces rev 1 at")
            && stderr.contains("one.rules:1"),
        "{stderr}"
    );
    let a = alerts(&eve);
    assert_eq!(a.len(), 1, "one rule, one alert");
    assert_eq!(a[0]["alert"]["signature"], "new");
    assert_eq!(a[0]["alert"]["rev"], 4);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 duplicate sid(s) dropped"));
}

#[test]
fn the_shipped_rules_load_wherever_the_run_starts() {
    let dir = Scratch::new("anywhere");
    let pcap = dir.write("c.pcap", &capture(b"hello").to_pcap());
    let out = run(&dir.0, &["replay", s(&pcap), "--stats-interval", "0"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("signatures")
        .canonicalize()
        .unwrap();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rules: "))
        .unwrap_or_else(|| panic!("no rules line in:\n{stdout}"));
    assert!(
        line.contains(&format!("loaded from {}", shipped.display()))
            && !line.starts_with("rules: 0 "),
        "{line}"
    );
}

#[test]
fn vars_reads_suricatas_own_default_suricata_yaml() {
    // Suricata's stock suricata.yaml (read in place when present): a
    // YAML directive first, the groups under `vars:`.
    let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/suricata/suricata.yaml");
    if !stock.is_file() {
        eprintln!("../shared/suricata/suricata.yaml is absent: skipping");
        return;
    }
    let dir = Scratch::new("stockyaml");
    let rules = dir.write(
        "r.rules",
        b"alert tcp $EXTERNAL_NET any -> $HOME_NET $HTTP_PORTS (msg:\"in\"; content:\"x\"; sid:1;)\n",
    );
    let out = run(&dir.0, &["rules", "check", s(&rules), "--vars", s(&stock)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("loaded 1"));
}
