//! Rule reload on the real binary, mid-replay: SIGUSR2 (`kill -s USR2`)
//! and `tollgate reload` over the control socket swap the rules while a
//! paced replay runs; every packet is accounted for, the alerts switch to
//! the new rules and are named after them, a malformed rule file is refused
//! with the old rules kept, and SIGUSR2 never kills a run with nothing to
//! reload.

mod common;
use common::{bin, ip, s, signal, sum_values, wait_until, Scratch, SEC, T0};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

/// `n` conversations `spacing_ns` apart, each carrying both markers.
fn marked(n: usize, spacing_ns: u64) -> Capture {
    let mut cap = Capture::new();
    for i in 0..n {
        let r = Route::new(ip("10.1.0.1"), ip("10.9.0.1"));
        let mut c = TcpConversation::new(r, 30000 + i as u16, 8000, T0 + i as u64 * spacing_ns);
        c.handshake()
            .send(
                Side::Client,
                b"POST /v1/chat HTTP/1.1\r\nHost: api\r\nContent-Length: 27\r\n\r\nalpha-marker then beta-mark",
                1448,
            )
            .send(Side::Server, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1448)
            .close(Side::Client);
        cap.extend(c.into_packets());
    }
    cap
}

fn rule(sid: u32, msg: &str, content: &str) -> String {
    format!(
        "alert tcp any any -> any any (msg:\"{msg}\"; content:\"{content}\"; sid:{sid}; rev:1;)\n"
    )
}

fn alerts(eve: &Path) -> Vec<Value> {
    std::fs::read_to_string(eve)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "alert")
        .collect()
}

fn sid(e: &Value) -> u64 {
    e["alert"]["signature_id"].as_u64().unwrap()
}

#[test]
fn sigusr2_and_the_control_socket_swap_rules_mid_replay() {
    let dir = Scratch::new("reload");
    // 80 conversations 100 ms apart, played in real time: 8 s.
    let cap = marked(80, SEC / 10);
    let pcap = dir.write("c.pcap", &cap.to_pcap());
    let rules = dir.write(
        "r.rules",
        rule(9_000_001, "old alpha", "alpha-marker").as_bytes(),
    );
    let (eve, stats, sock) = (
        dir.path("eve.json"),
        dir.path("s.json"),
        dir.path("ctl.sock"),
    );
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--closed-timeout", "0"])
        .args([
            "--rules",
            s(&rules),
            "--eve",
            s(&eve),
            "--eve-flush",
            "50ms",
        ])
        .args(["--stats-json", s(&stats), "--stats-interval", "0"])
        .args(["--control-socket", s(&sock)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The old rules alert first.
    assert!(wait_until(Duration::from_secs(30), || alerts(&eve).len() >= 3));
    // SIGUSR2 with new rules in the file: alerts switch to them.
    std::fs::write(&rules, rule(9_000_002, "new beta", "beta-mark")).unwrap();
    signal(&child, "USR2");
    assert!(wait_until(Duration::from_secs(30), || alerts(&eve)
        .iter()
        .any(|e| sid(e) == 9_000_002)));
    // A malformed file is refused over the control socket; the rules in
    // use stay.
    std::fs::write(
        &rules,
        "alert tcp any any -> any any (msg:\"x\"; contnet:\"y\"; sid:7;)\n",
    )
    .unwrap();
    let out = bin()
        .args(["reload", "--control-socket", s(&sock)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("rules generation 1 kept"), "{said}");
    // And a good one is taken: generation 2.
    std::fs::write(&rules, rule(9_000_003, "third", "alpha-marker")).unwrap();
    let out = bin()
        .args(["reload", "--control-socket", s(&sock)])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("ok: rules generation 2, 1 rules"),
        "{said}"
    );
    let running = child.try_wait().unwrap().is_none();
    assert!(running, "the replay outlasted the reloads (paced: 8 s)");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rule reload failed, the old rules stay"),
        "{stderr}"
    );
    assert!(
        stderr.contains("contnet"),
        "the error names the keyword: {stderr}"
    );
    assert!(!sock.exists(), "the control socket goes with the process");

    // Alerts: the old sid, then the new, then the third, never mixed back;
    // each named after the rules that raised it.
    let all = alerts(&eve);
    let order: Vec<u64> = all.iter().map(sid).collect();
    let first = |x| order.iter().position(|&s| s == x).unwrap();
    let last = |x| order.iter().rposition(|&s| s == x).unwrap();
    assert!(last(9_000_001) < first(9_000_002), "{order:?}");
    assert!(last(9_000_002) < first(9_000_003), "{order:?}");
    for e in &all {
        let want = match sid(e) {
            9_000_001 => "old alpha",
            9_000_002 => "new beta",
            9_000_003 => "third",
            other => panic!("sid {other}"),
        };
        assert_eq!(e["alert"]["signature"], want);
    }
    // One alert per conversation, whichever rules saw it: a conversation
    // is one burst of packets in a paced replay, so none is matched by
    // neither set (its streams restart at the swap, between bursts).
    assert_eq!(all.len(), 80, "{order:?}");

    let st: Value = common::read_json(&stats);
    let p = &st["packets"];
    assert_eq!(p["rx"], st["capture"]["records"], "no packet lost");
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"]),
        "none counted twice"
    );
    let r = &st["reload"];
    assert_eq!(
        (r["reloads"].as_u64(), r["failures"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["generation"], 2);
    assert!(
        r["last_error"].as_str().unwrap().is_empty(),
        "the last one worked: {r}"
    );
    let rules = &st["rules"];
    assert_eq!(rules["generation"], 2, "{rules}");
    assert!(rules["swaps"].as_u64().unwrap() >= 2, "{rules}");
    assert!(rules["swap_ns_max"].as_u64().unwrap() > 0);
}

#[test]
fn sigusr2_reloads_an_empty_rules_folder_and_never_kills_the_run() {
    let dir = Scratch::new("reload-none");
    let pcap = dir.write("c.pcap", &marked(20, SEC / 10).to_pcap());
    let empty = dir.path("rules");
    std::fs::create_dir_all(&empty).unwrap();
    let stats = dir.path("s.json");
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--rules", s(&empty)])
        .args(["--stats-interval", "0", "--stats-json", s(&stats)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "USR2");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let st: Value = common::read_json(&stats);
    assert_eq!(st["reload"]["reloads"], 1, "{}", st["reload"]);
    assert_eq!(st["reload"]["rules"], 0);
}
