//! Hardening, end to end: crafted captures that once hung a worker, got
//! past the IPS or blinded the stream, replayed through the binary. Each
//! test here failed before its fix.

mod common;
use common::{alert_sids, replay_events, s, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tollgate::craft::{Capture, Route};

const T0: u64 = 1_767_225_600_000_000_000;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("hard-{name}"))
}

fn rules(dir: &Scratch, text: &str) -> PathBuf {
    dir.write("t.rules", text.as_bytes())
}

/// Runs the binary, killing it if it has not finished in `limit` (a hang
/// is the bug some of these tests are about: they must fail, not wait).
fn run_bounded(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "tollgate did not finish in {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One UDP packet carrying `payload`.
fn one_udp(payload: &[u8]) -> Capture {
    let r = Route::new(ip("10.0.0.1"), ip("10.0.0.2"));
    let mut cap = Capture::new();
    cap.push(T0, r.udp(40000, 9999, payload));
    cap
}

fn a_run_then_b() -> Vec<u8> {
    let mut p = vec![b'a'; 1400];
    p.push(b'b');
    p
}

#[test]
fn a_backtracking_content_chain_does_not_hang_a_worker() {
    let dir = scratch("chain");
    // Distance-only chain: linear under Suricata's pruning. Within chain:
    // exponential without the step budget, stopped by it and counted.
    let r = rules(
        &dir,
        r#"alert udp any any -> any any (msg:"distance chain"; content:"aaaa"; fast_pattern; content:"a"; distance:0; content:"a"; distance:0; content:"X"; distance:0; sid:1;)
alert udp any any -> any any (msg:"within chain"; content:"aaaa"; fast_pattern; content:"a"; distance:0; within:1000; content:"a"; distance:0; within:1000; content:"X"; distance:0; within:1000; sid:2;)
"#,
    );
    let pcap = dir.write("c.pcap", &one_udp(&a_run_then_b()).to_pcap());
    let stats = dir.path("stats.json");
    let out = run_bounded(
        &[
            "replay",
            s(&pcap),
            "--rules",
            s(&r),
            "--stats-interval",
            "0",
            "--stats-json",
            s(&stats),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = common::read_json(&stats);
    assert_eq!(st["rules"]["alerts"], 0);
    assert_eq!(st["rules"]["recursion_limit"], 1, "the within chain, once");
    // The same chains still match where the data has what they ask for.
    let mut p = a_run_then_b();
    p.push(b'X');
    let (events, st) = replay_events(&dir, &one_udp(&p), &r, &[]);
    assert_eq!(alert_sids(&events), vec![1, 2], "{st}");
    assert_eq!(
        st["rules"]["recursion_limit"], 0,
        "found well inside the budget"
    );
}

#[test]
fn a_catastrophic_pcre_is_bounded_and_counted() {
    let dir = scratch("pcre");
    let r = rules(
        &dir,
        r#"alert udp any any -> any any (msg:"nested quantifier"; content:"aaaa"; pcre:"/(a+)+$/"; sid:1;)
alert udp any any -> any any (msg:"negated: a limit is no match either"; content:"aaaa"; pcre:!"/(a+)+$/"; sid:2;)
"#,
    );
    let pkts: Vec<u8> = a_run_then_b();
    let mut cap = Capture::new();
    let route = Route::new(ip("10.0.0.1"), ip("10.0.0.2"));
    for i in 0..50u64 {
        cap.push(T0 + i, route.udp(40000 + i as u16, 9999, &pkts));
    }
    let pcap = dir.write("c.pcap", &cap.to_pcap());
    let stats = dir.path("stats.json");
    let out = run_bounded(
        &[
            "replay",
            s(&pcap),
            "--rules",
            s(&r),
            "--stats-interval",
            "0",
            "--stats-json",
            s(&stats),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = common::read_json(&stats);
    assert_eq!(st["rules"]["alerts"], 0);
    assert_eq!(st["rules"]["pcre_limit"], 100, "both rules on 50 packets");
    // A higher limit lets a short subject finish: `aaaab` has no match.
    let (events, st) = replay_events(
        &dir,
        &one_udp(b"aaaab"),
        &r,
        &["--pcre-match-limit", "1000000"],
    );
    assert_eq!(alert_sids(&events), vec![2]);
    assert_eq!(st["rules"]["pcre_limit"], 0);
}

#[test]
fn an_absurd_speed_is_a_flag_error_not_a_panic() {
    let dir = scratch("speed");
    let pcap = dir.write("c.pcap", &one_udp(b"x").to_pcap());
    for bad in ["1e-300", "0.0000001", "NaN", "inf"] {
        let out = run_bounded(
            &["replay", s(&pcap), "--speed", bad],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--speed"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_model_with_a_non_finite_base_score_is_refused() {
    let dir = scratch("nanmodel");
    let pcap = dir.write("c.pcap", &one_udp(b"x").to_pcap());
    // A regression model: its base score is not checked as a probability.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xgboost/squarederror.json");
    let text = std::fs::read_to_string(fixture).unwrap();
    let start = text.find("\"base_score\":\"").unwrap() + "\"base_score\":\"".len();
    let end = start + text[start..].find('"').unwrap();
    for bad in ["NaN", "1e999", "[-inf]"] {
        let model = dir.write(
            "m.json",
            format!("{}{bad}{}", &text[..start], &text[end..]).as_bytes(),
        );
        let out = run_bounded(
            &["replay", s(&pcap), "--model", s(&model)],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("base_score"), "{bad}: {err}");
    }
}

#[test]
fn a_drop_rule_acts_whatever_number_of_alerts_came_before() {
    let dir = scratch("alertmax");
    // 70 alert rules and one drop rule on the same bytes.
    let mut text = String::new();
    for sid in 1..=70 {
        text.push_str(&format!(
            "alert udp any any -> any any (msg:\"noise {sid}\"; content:\"payload\"; sid:{sid};)\n"
        ));
    }
    text.push_str(
        "drop udp any any -> any any (msg:\"the one that matters\"; content:\"evil\"; priority:3; sid:999;)\n",
    );
    let r = rules(&dir, &text);
    let cap = one_udp(b"payload with evil in it");
    let (events, st) = replay_events(&dir, &cap, &r, &["--mode", "ips"]);
    assert_eq!(st["packets"]["dropped"]["rule"], 1, "{st}");
    assert_eq!(st["packets"]["tx"], 0);
    let sids = alert_sids(&events);
    assert_eq!(sids.len(), 15, "packet-alert-max logs 15");
    assert!(sids.contains(&999), "the drop is among those logged");
    assert_eq!(st["rules"]["alerts"], 15);
    assert_eq!(st["rules"]["alerts_discarded"], 56);
    let blocked = events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["action"] == "blocked")
        .count();
    assert_eq!(blocked, 15, "every alert of a dropped packet says blocked");
    // The cap is a flag.
    let (events, _) = replay_events(
        &dir,
        &cap,
        &r,
        &["--mode", "ips", "--packet-alert-max", "100"],
    );
    assert_eq!(alert_sids(&events).len(), 71);
}

#[test]
fn a_syn_flood_cannot_push_alerts_out_of_eve() {
    // 60,000 SYNs from distinct ports into a table of 512 flows: every SYN
    // evicts a flow, so flow records pour into the event ring, while every
    // 6,000th packet carries a key leak that a rule flags.
    let dir = scratch("synflood");
    let r = rules(
        &dir,
        r#"alert tcp any any -> any any (msg:"key"; content:"sk-proj-"; sid:7;)"#,
    );
    let mut cap = Capture::new();
    let route = Route::new(ip("10.0.0.1"), ip("10.0.0.2"));
    for i in 0..60_000u32 {
        let port = 1024 + (i % 60_000) as u16;
        let (flags, payload): (u8, &[u8]) = if i % 6000 == 5999 {
            (0x18, b"Authorization: Bearer sk-proj-leak")
        } else {
            (0x02, b"")
        };
        cap.push(
            T0 + u64::from(i) * 1000,
            route.tcp(port, 443, i, 0, flags, 1000, &[], payload),
        );
    }
    let (events, st) = replay_events(
        &dir,
        &cap,
        &r,
        &["--flow-capacity", "512", "--midstream", "on"],
    );
    let alerts = events.iter().filter(|e| e["event_type"] == "alert").count();
    assert_eq!(st["rules"]["alerts"], 10);
    assert_eq!(
        alerts, 10,
        "every alert counted is in EVE: {}",
        st["events"]
    );
    assert_eq!(st["events"]["alerts_dropped_ring_full"], 0);
}

#[test]
fn a_flow_behind_a_syn_proxy_is_said_low_ttl_once_and_passes_inline() {
    use tollgate::craft::{edit, Side, TcpConversation};
    use tollgate::decode::tcp::{ACK_FLAG, PSH};
    // The server's SYN-ACK comes with TTL 64, its data with 60 (a SYN
    // proxy in front of it): six data segments, each acknowledged.
    let mut c = TcpConversation::new(
        Route::new(ip("10.0.0.5"), ip("198.51.100.7")),
        40500,
        443,
        T0,
    );
    c.handshake();
    for _ in 0..6 {
        let (s, a) = (c.server_seq(), c.client_seq());
        let mut seg = c.segment(Side::Server, s, a, ACK_FLAG | PSH, &[], b"0123456789");
        edit::set_ttl(&mut seg, 60);
        c.push(seg).advance_seq(Side::Server, 10);
        c.raw(Side::Client, a, s + 10, ACK_FLAG, &[]);
    }
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    let dir = scratch("syn-proxy-ttl");
    let r = rules(
        &dir,
        "alert tcp any any -> any any (content:\"6789\"; sid:1;)\n",
    );
    for mode in ["ids", "ips"] {
        let (events, st) = replay_events(&dir, &cap, &r, &["--mode", mode]);
        let said = events
            .iter()
            .filter(|e| e["anomaly"]["event"] == "stream.suspected_ttl_insertion")
            .count();
        assert_eq!(said, 1, "{mode}: once for the flow");
        assert_eq!(st["tcp"]["low_ttl"], 6, "{mode}: counted each time");
        // Inline nothing is dropped for it, and the data is inspected.
        assert_eq!(
            st["packets"]["dropped"]
                .as_object()
                .map_or(0, |d| d.values().filter_map(Value::as_u64).sum::<u64>()),
            0,
            "{mode}"
        );
        assert!(!alert_sids(&events).is_empty(), "{mode}");
    }
}
