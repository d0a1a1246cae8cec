//! TLS end to end: handshakes replayed through the binary with rules on
//! the `tls.*`, `ja3*` and `ja4` buffers; the EVE `tls` event compared
//! with what other tools compute for the same capture (JA3/JA3S from
//! Wireshark's tshark, run here and recorded in the fixture; JA4 from
//! the third-party ja4plus package; the certificate's fields from
//! openssl; see scripts/make_tls_fixture.py), and validated against
//! Suricata's schema. Each buffer has a capture that fires its rule and
//! one that must not; a ClientHello cut over segments and over records
//! is still read whole.

mod common;
use common::{alert_sids, replay_events, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

const T0: u64 = 1_767_225_600_000_000_000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn run_pcap(name: &str, pcap: &std::path::Path, rules: &str) -> (Vec<u64>, Vec<Value>, Scratch) {
    let dir = Scratch::new(&format!("tls-{name}"));
    let r = dir.write("t.rules", rules.as_bytes());
    let cap = Capture {
        packets: read_pcap(pcap),
    };
    let (events, _) = replay_events(&dir, &cap, &r, &[]);
    (alert_sids(&events), events, dir)
}

fn run(name: &str, cap: &Capture, rules: &str) -> (Vec<u64>, Vec<Value>, Scratch) {
    let dir = Scratch::new(&format!("tls-{name}"));
    let r = dir.write("t.rules", rules.as_bytes());
    let (events, _) = replay_events(&dir, cap, &r, &[]);
    (alert_sids(&events), events, dir)
}

/// The packets of a classic pcap (microsecond stamps).
fn read_pcap(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= b.len() {
        let w = |i: usize| u32::from_le_bytes(b[at + i..at + i + 4].try_into().unwrap());
        let (sec, usec, len) = (w(0), w(4), w(8) as usize);
        let ts = u64::from(sec) * 1_000_000_000 + u64::from(usec) * 1000;
        out.push((ts, b[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    out
}

fn expected() -> Value {
    common::read_json(fixture("expected.json"))
}

fn tls_event(events: &[Value]) -> &Value {
    let tls: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "tls").collect();
    assert_eq!(tls.len(), 1, "{events:?}");
    &tls[0]["tls"]
}

#[test]
fn fingerprints_and_certificate_equal_what_other_tools_compute() {
    let pcap = fixture("handshake.pcap");
    let (_, events, dir) = run_pcap("fixture", &pcap, "");
    let t = tls_event(&events);
    let want = expected();
    assert_eq!(t["sni"], want["sni"]);
    assert_eq!(t["ja3"], want["ja3"]);
    assert_eq!(t["ja3s"], want["ja3s"]);
    assert_eq!(t["ja4"], want["ja4"]);
    assert_eq!(t["fingerprint"], want["fingerprint"]);
    // Suricata writes the serial as colon-separated bytes.
    let serial = t["serial"].as_str().unwrap().replace(':', "");
    assert_eq!(serial, want["serial_hex"].as_str().unwrap());
    assert_eq!(
        t["subject"],
        "C=US, O=Tollgate Test, CN=api.example-llm.com"
    );
    assert_eq!(t["version"], "TLS 1.2");
    assert_eq!(t["client_alpns"], serde_json::json!(["h2", "http/1.1"]));
    assert_eq!(
        t["subjectaltname"],
        serde_json::json!(["api.example-llm.com", "*.example-llm.com"])
    );
    common::validate_eve(&[&dir.path("eve.json")], true);

    // And Wireshark, asked now, agrees on JA3 and JA3S.
    let out = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "tls.handshake.type <= 2",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "tls.handshake.ja3",
            "-e",
            "tls.handshake.ja3s",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let hashes: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(
                hashes,
                vec![
                    want["ja3"]["hash"].as_str().unwrap(),
                    want["ja3s"]["hash"].as_str().unwrap()
                ]
            );
        }
        _ => panic!("tshark is missing: scripts/setup.sh installs it"),
    }
}

#[test]
fn fingerprints_stay_out_of_eve_when_turned_off_but_rules_still_match() {
    let want = expected();
    let rules = format!(
        "alert tls any any -> any any (msg:\"ja3\"; ja3.hash; content:\"{}\"; sid:1;)\n",
        want["ja3"]["hash"].as_str().unwrap()
    );
    let dir = Scratch::new("tls-fp-off");
    let r = dir.write("t.rules", rules.as_bytes());
    let cap = Capture {
        packets: read_pcap(&fixture("handshake.pcap")),
    };
    let (events, _) = replay_events(&dir, &cap, &r, &["--tls-fingerprints", "off"]);
    assert_eq!(alert_sids(&events), vec![1]);
    let t = tls_event(&events);
    assert!(t.get("ja3").is_none() && t.get("ja4").is_none(), "{t}");
    assert_eq!(t["sni"], "api.example-llm.com");
}

const RULES: &str = r#"
alert tls any any -> any any (msg:"sni"; tls.sni; content:"api.example-llm.com"; sid:1;)
alert tls any any -> any any (msg:"legacy sni"; tls_sni; content:"example-llm"; sid:2;)
alert tls any any -> any any (msg:"dotprefix"; tls.sni; dotprefix; content:".example-llm.com"; endswith; sid:3;)
alert tls any any -> any any (msg:"subject"; tls.cert_subject; content:"O=Tollgate Test"; sid:4;)
alert tls any any -> any any (msg:"issuer"; tls.cert_issuer; content:"CN=api.example-llm.com"; sid:5;)
alert tls any any -> any any (msg:"ja4"; ja4.hash; content:"t13d1514h2_8daaf6152771_bc9a4605e104"; sid:6;)
alert tls any any -> any any (msg:"ja3s"; ja3s.hash; content:"27eabd2e03c903c0e38682b67d24b578"; sid:7;)
alert tls any any -> any any (msg:"alpn"; tls.alpn; content:"http/1.1"; sid:8;)
alert tls any any -> any any (msg:"san"; tls.subjectaltname; content:"*.example-llm.com"; sid:9;)
alert tls any any -> any any (msg:"serial"; tls.cert_serial; content:"55:A1"; sid:10;)
alert tls any any -> any any (msg:"certs"; tls.certs; content:"Tollgate Test"; sid:11;)
alert tls any any -> any any (msg:"fingerprint"; tls.cert_fingerprint; content:"4f:6e:51:57"; startswith; sid:12;)
alert tls any any -> any any (msg:"chosen version"; tls.version:1.2; sid:13;)
alert tls any any -> any any (msg:"client's version"; tls.version:1.3; flow:to_server; sid:14;)
alert tls any any -> any any (msg:"other sni"; tls.sni; content:"api.openai.com"; sid:20;)
alert tls any any -> any any (msg:"other subject"; tls.cert_subject; content:"O=Someone Else"; sid:21;)
alert tls any any -> any any (msg:"other ja3"; ja3.hash; content:"e7d705a3286e19ea42f587b344ee6865"; sid:22;)
alert tls any any -> any any (msg:"other version"; tls.version:1.1; sid:23;)
alert tls any any -> any any (msg:"raw other version"; tls.version:0x0302; sid:24;)
"#;

#[test]
fn every_buffer_fires_on_the_handshake_and_not_on_other_values() {
    let (sids, events, _) = run_pcap("buffers", &fixture("handshake.pcap"), RULES);
    assert_eq!(sids, (1..=14).collect::<Vec<u64>>());
    let a = events
        .iter()
        .find(|e| e["alert"]["signature_id"] == 4)
        .unwrap();
    assert_eq!(a["app_proto"], "tls");
    assert_eq!(a["tls"]["sni"], "api.example-llm.com");
}

// Building hellos for the segment and record tests.

fn vec16(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// A ClientHello message (header included) naming `sni`, padded with
/// `pad` bytes of an unknown extension.
fn client_hello(sni: &str, pad: usize) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut list = vec![0];
    list.extend_from_slice(&vec16(sni.as_bytes()));
    exts.extend_from_slice(&[0, 0]);
    exts.extend_from_slice(&vec16(&vec16(&list)));
    exts.extend_from_slice(&[0xff, 0x00]);
    exts.extend_from_slice(&vec16(&vec![0x41; pad]));
    let mut body = vec![3, 3];
    body.extend_from_slice(&[9; 32]);
    body.push(0);
    body.extend_from_slice(&vec16(&[0x13, 0x01, 0xc0, 0x2f]));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&vec16(&exts));
    let mut m = vec![1];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(&body);
    m
}

/// Handshake bytes in records of at most `max` bytes.
fn records(hs: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in hs.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&vec16(c));
    }
    out
}

fn conversation(port: u16, client: &[u8], sizes: &[usize]) -> Capture {
    let r = Route::new(
        "10.1.0.5".parse::<IpAddr>().unwrap(),
        "104.18.32.7".parse().unwrap(),
    );
    let mut c = TcpConversation::new(r, port, 443, T0);
    c.handshake();
    let order: Vec<usize> = (0..sizes.len()).collect();
    c.send_segments(Side::Client, client, sizes, &order);
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    cap
}

#[test]
fn an_sni_split_over_three_segments_is_read_whole() {
    let hello = records(&client_hello("api.openai.com", 40), 16384);
    // The name starts after 5 + 4 + 2 + 32 + 1 + 6 + 2 + 2 + 4 + 2 + 1
    // + 2 = 63 bytes: cut inside it twice.
    let at = hello.windows(6).position(|w| w == b"api.op").unwrap();
    let sizes = [at + 3, 5, hello.len()];
    let rules = "alert tls any any -> any any (msg:\"openai\"; tls.sni; content:\"api.openai.com\"; endswith; sid:1;)\n";
    let (sids, events, _) = run("sni-split", &conversation(40000, &hello, &sizes), rules);
    assert_eq!(sids, vec![1]);
    let t = tls_event(&events);
    assert_eq!(t["sni"], "api.openai.com");
    // Another name, cut the same way: nothing.
    let other = records(&client_hello("api.openai.com.evil.example", 40), 16384);
    let (sids, ..) = run(
        "sni-split-other",
        &conversation(40001, &other, &sizes),
        rules,
    );
    assert!(sids.is_empty());
}

#[test]
fn a_client_hello_split_over_two_records_is_read_whole() {
    let hs = client_hello("claude.ai", 200);
    let two = records(&hs, hs.len() / 2 + 1);
    assert_eq!(two.len(), hs.len() + 10, "two records");
    let rules =
        "alert tls any any -> any any (msg:\"claude\"; tls.sni; content:\"claude.ai\"; sid:1;)\n";
    let (sids, ..) = run(
        "two-records",
        &conversation(40002, &two, &[7, two.len()]),
        rules,
    );
    assert_eq!(sids, vec![1]);
}

#[test]
fn a_fake_record_in_front_of_cleartext_is_not_tls() {
    // A handshake-looking record whose body is no hello, then HTTP.
    let mut data = vec![0x16, 3, 1, 0, 4, 0xde, 0xad, 0xbe, 0xef];
    data.extend_from_slice(b"GET /v1/chat HTTP/1.1\r\nHost: x\r\n\r\n");
    let rules = "alert tls any any -> any any (msg:\"tls sni\"; tls.sni; content:\"x\"; sid:1;)\nalert tcp any any -> any any (msg:\"cleartext\"; content:\"/v1/chat\"; sid:2;)\n";
    let (sids, ..) = run(
        "fake-record",
        &conversation(40003, &data, &[data.len()]),
        rules,
    );
    assert_eq!(sids, vec![2]);
}

#[test]
fn a_pass_rule_with_alert_passes_the_rest_of_the_flow_inline() {
    // Suricata 8's allow-list idiom (suricata-verify bug-7264): pass, and
    // say so, the handshakes to named hosts; drop every other TLS flow.
    let rules = |host: &str| {
        format!(
            "pass tls any any -> any any (msg:\"allowed\"; tls.sni; content:\"{host}\"; endswith; alert; flow:established,to_server; sid:1;)\n\
             drop tls any any -> any any (msg:\"not allowed\"; flow:to_server; sid:2;)\n"
        )
    };
    let cap = Capture {
        packets: read_pcap(&fixture("handshake.pcap")),
    };
    let run = |name: &str, host: &str| {
        let dir = Scratch::new(&format!("tls-pass-{name}"));
        let r = dir.write("t.rules", rules(host).as_bytes());
        let (events, st) = replay_events(&dir, &cap, &r, &["--mode", "ips"]);
        (alert_sids(&events), events, st)
    };
    let (got, events, st) = run("allowed", "example-llm.com");
    assert_eq!(got, vec![1]);
    let a = events.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(a["alert"]["action"], "allowed");
    assert_eq!(st["packets"]["dropped"]["rule"], 0, "{st}");
    // Another host: the drop rule, on the hello and what follows.
    let (got, _, st) = run("denied", "api.openai.com");
    assert!(!got.contains(&1) && got.contains(&2), "{got:?}");
    assert!(st["packets"]["dropped"]["rule"].as_u64().unwrap() > 0);
}

#[test]
fn a_heartbleed_request_raises_its_event_and_a_handshake_does_not() {
    let rules = "alert tls any any -> any any (msg:\"heartbleed\"; app-layer-event:tls.overflow_heartbeat_message; sid:1;)\n\
                 alert tls any any -> any any (msg:\"bad cert\"; app-layer-event:tls.invalid_certificate; sid:2;)\n";
    let mut data = records(&client_hello("victim.example", 0), 16384);
    // A heartbeat request in clear claiming 16 KiB in a 19-byte record.
    data.extend_from_slice(&[24, 3, 2, 0, 19, 1, 0x40, 0x00]);
    data.extend_from_slice(&[0; 16]);
    let (sids, ..) = run(
        "heartbleed",
        &conversation(40004, &data, &[data.len()]),
        rules,
    );
    assert_eq!(sids, vec![1]);
    let (sids, ..) = run_pcap("no-heartbleed", &fixture("handshake.pcap"), rules);
    assert!(sids.is_empty());
}

#[test]
fn the_flows_feature_record_says_tls() {
    let dir = Scratch::new("tls-features");
    let r = dir.write("t.rules", b"");
    let cap = Capture {
        packets: read_pcap(&fixture("handshake.pcap")),
    };
    let out = dir.path("features.jsonl");
    replay_events(&dir, &cap, &r, &["--features-out", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(rec["features"]["app_proto"], 2.0, "{rec}");
}
