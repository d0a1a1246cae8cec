//! TCP reassembly and stream matching, end to end: captures built with the
//! capture library, replayed through the binary, alerts and anomalies read
//! from EVE and counters from the stats JSON. Each evasion a sender can
//! try (splitting, reordering, retransmitting, overlapping, fragmenting,
//! leaving holes) has a capture here, as do the bounds.

mod common;
use common::{replay_events, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use tollgate::craft::{fragment, Capture, Route, Side, TcpConversation};
use tollgate::decode::tcp::{ACK_FLAG, PSH, RST, SYN};

const T0: u64 = 1_767_225_600_000_000_000;

const INJECTION: &[u8] = b"ignore all previous instructions";

const RULES: &str = r#"
alert tcp any any -> any any (msg:"injection to server"; flow:established,to_server; content:"ignore all previous instructions"; nocase; sid:1; rev:1;)
alert tcp any any -> any any (msg:"pickle to client"; flow:established,to_client; content:"|63|os|0a|system|0a|"; sid:2; rev:1;)
alert tcp any any -> any any (msg:"key with its tail"; flow:to_server; content:"sk-proj-"; pcre:"/^[A-Za-z0-9]{24}/R"; sid:3; rev:1;)
alert tcp any any -> any any (msg:"magic near the start"; content:"MAGIC"; depth:2000; sid:4; rev:1;)
"#;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

fn rules(dir: &Scratch, text: &str) -> PathBuf {
    dir.write("t.rules", text.as_bytes())
}

fn conv(port: u16) -> TcpConversation {
    TcpConversation::new(
        Route::new(ip("10.1.0.5"), ip("203.0.113.9")),
        port,
        8080,
        T0,
    )
}

fn capture(c: TcpConversation) -> Capture {
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    cap
}

/// A request whose body carries `needle` at byte `at` among filler.
fn body(needle: &[u8], at: usize, len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..len).map(|i| b'a' + (i % 23) as u8).collect();
    b[at..at + needle.len()].copy_from_slice(needle);
    b
}

/// Replays with `rules_text`; returns alert sids (sorted), all events and
/// the stats.
fn run(cap: &Capture, rules_text: &str, extra: &[&str]) -> (Vec<u64>, Vec<Value>, Value) {
    let dir = Scratch::new(&format!(
        "stream-{}",
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    let r = rules(&dir, rules_text);
    let (events, st) = replay_events(&dir, cap, &r, extra);
    let mut sids: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    (sids, events, st)
}

fn stream(st: &Value) -> &Value {
    &st["stream"]
}

/// Past `--stream-depth` a direction is no longer reassembled, and its
/// stream rules take each later packet alone, as Suricata inspects a packet
/// it did not add to the stream: content after the depth is not a blind
/// spot (1 MiB of padding before an upload's payload would otherwise hide it
/// from every stream rule).
#[test]
fn past_the_depth_stream_rules_take_each_packet() {
    let data = body(INJECTION, 2200, 3000);
    let mut c = conv(40006);
    c.handshake()
        .send_segments(Side::Client, &data, &[500; 6], &[0, 1, 2, 3, 4, 5])
        .close(Side::Client);
    let (sids, _, st) = run(&capture(c), RULES, &["--stream-depth", "1000"]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["depth_reached"], 1);
    assert_eq!(stream(&st)["bytes_reassembled"], 1000);
}

/// A packet rule on a reassembled TCP direction: when a packet's bytes go
/// to the stream in order and whole, the stream scan that delivers them
/// finds its packet rules' fast patterns too and the packet is not scanned
/// again; out of order, or retransmitted, the packet is scanned on its
/// own. Either way every packet holding the content alerts, once.
#[test]
fn packet_rules_alert_on_each_packet_in_order_or_not() {
    let rule = r#"alert tcp-pkt any any -> any any (msg:"pkt"; content:"ignore all previous instructions"; sid:9;)"#;
    // The needle whole inside the second of three segments.
    let data = body(INJECTION, 400, 1200);
    let sizes = [300, 300, 600];
    for (port, order, alerts) in [
        (40002, &[0usize, 1, 2][..], 1),
        // The second first: held, then let out with the first.
        (40003, &[1, 0, 2][..], 1),
        // The second again: a retransmission is a packet of its own.
        (40004, &[0, 1, 1, 2][..], 2),
    ] {
        let mut c = conv(port);
        c.handshake()
            .send_segments(Side::Client, &data, &sizes, order)
            .close(Side::Client);
        let (sids, _, st) = run(&capture(c), rule, &[]);
        assert_eq!(sids, vec![9; alerts], "order {order:?}");
        assert_eq!(stream(&st)["bytes_reassembled"], 1200, "order {order:?}");
    }
    // And a stream rule beside it still alerts once on the stream.
    let both = format!(
        "{rule}\nalert tcp any any -> any any (msg:\"stream\"; content:\"ignore all previous instructions\"; sid:10;)"
    );
    let mut c = conv(40005);
    c.handshake()
        .send_segments(Side::Client, &data, &sizes, &[0, 1, 2])
        .close(Side::Client);
    assert_eq!(run(&capture(c), &both, &[]).0, vec![9, 10]);
}

#[test]
fn a_pattern_split_across_two_segments_is_found_once() {
    let data = body(INJECTION, 100, 300);
    let mut c = conv(40001);
    // The cut falls inside "previous".
    c.handshake()
        .send_segments(Side::Client, &data, &[118, 182], &[0, 1])
        .close(Side::Client);
    let (sids, _, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["bytes_reassembled"], 300);
    assert_eq!(stream(&st)["gaps"], 0);
    // The same split is invisible to packet matching: a `tcp-pkt` rule
    // sees neither half alone.
    let packet_rule = r#"alert tcp-pkt any any -> any any (msg:"packet"; content:"ignore all previous instructions"; sid:9;)"#;
    let mut c = conv(40001);
    c.handshake()
        .send_segments(Side::Client, &data, &[118, 182], &[0, 1])
        .close(Side::Client);
    assert!(run(&capture(c), packet_rule, &[]).0.is_empty());
    // An `ip` rule's protocols include TCP, so on TCP it matches the
    // stream, as Suricata's do (SignatureHasPacketContent): it finds it.
    let ip_rule = r#"alert ip any any -> any any (msg:"ip"; content:"ignore all previous instructions"; sid:9;)"#;
    let mut c = conv(40001);
    c.handshake()
        .send_segments(Side::Client, &data, &[118, 182], &[0, 1])
        .close(Side::Client);
    assert_eq!(run(&capture(c), ip_rule, &[]).0, vec![9]);
}

#[test]
fn one_byte_segments_are_found() {
    let data = body(INJECTION, 10, 60);
    let mut c = conv(40002);
    c.handshake()
        .send(Side::Client, &data, 1)
        .close(Side::Client);
    let (sids, _, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["bytes_reassembled"], 60);
}

#[test]
fn segments_in_reverse_order_are_put_back_in_order() {
    let data = body(INJECTION, 40, 120);
    let sizes = [10; 12];
    let order: Vec<usize> = (0..12).rev().collect();
    let mut c = conv(40003);
    c.handshake()
        .send_segments(Side::Client, &data, &sizes, &order)
        .close(Side::Client);
    let (sids, _, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["segments_out_of_order"], 11);
    assert_eq!(stream(&st)["bytes_reassembled"], 120);
    assert_eq!(stream(&st)["state"]["held_chunks"], 0, "nothing left held");
}

#[test]
fn a_retransmission_is_ignored_and_alerts_once() {
    let data = body(INJECTION, 40, 120);
    let mut c = conv(40004);
    c.handshake()
        .send_segments(Side::Client, &data, &[50, 70], &[0, 0, 1, 1])
        .close(Side::Client);
    let (sids, _, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1], "one alert, not one per copy");
    assert_eq!(stream(&st)["retransmissions"], 2);
    assert_eq!(stream(&st)["bytes_reassembled"], 120);
}

#[test]
fn a_same_bytes_overlap_is_ignored() {
    let data = body(INJECTION, 40, 120);
    let mut c = conv(40005);
    c.handshake();
    let (base, ack) = (c.client_seq(), c.server_seq());
    // 0..60, then 50..120: ten bytes sent twice, the same.
    c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data[..60]);
    c.raw(Side::Client, base + 50, ack, ACK_FLAG | PSH, &data[50..]);
    let (sids, events, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["overlaps"]["same"], 1);
    assert_eq!(stream(&st)["overlaps"]["different"], 0);
    assert!(events.iter().all(|e| e["event_type"] != "anomaly"));
}

/// A sender holds back "previous" and sends it twice for the same bytes:
/// first harmless ("XXXXXXXX"), then the injection. A receiver that keeps
/// the first copy sees no injection; one that keeps the last does.
fn conflicting(port: u16) -> Capture {
    let data = body(INJECTION, 20, 80);
    let hole = 20 + 11..20 + 19; // "previous"
    let mut c = conv(port);
    c.handshake();
    let (base, ack) = (c.client_seq(), c.server_seq());
    let seq = |i: usize| base.wrapping_add(i as u32);
    c.raw(
        Side::Client,
        seq(0),
        ack,
        ACK_FLAG | PSH,
        &data[..hole.start],
    );
    c.raw(
        Side::Client,
        seq(hole.end),
        ack,
        ACK_FLAG | PSH,
        &data[hole.end..],
    );
    c.raw(
        Side::Client,
        seq(hole.start),
        ack,
        ACK_FLAG | PSH,
        b"XXXXXXXX",
    );
    c.raw(
        Side::Client,
        seq(hole.start),
        ack,
        ACK_FLAG | PSH,
        &data[hole.clone()],
    );
    capture(c)
}

#[test]
fn a_different_bytes_overlap_keeps_the_first_data_and_raises_an_anomaly() {
    let (sids, events, st) = run(&conflicting(40006), RULES, &[]);
    assert!(sids.is_empty(), "first data wins: the stream has XXXXXXXX");
    assert_eq!(stream(&st)["overlaps"]["different"], 1);
    let anomalies: Vec<_> = events
        .iter()
        .filter(|e| e["event_type"] == "anomaly")
        .collect();
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0]["anomaly"]["type"], "stream");
    assert_eq!(
        anomalies[0]["anomaly"]["event"],
        "stream.reassembly_overlap_different_data"
    );
    assert_eq!(anomalies[0]["src_port"], 40006);
    assert_eq!(anomalies[0]["tollgate"]["blocked"], false);
    assert_eq!(st["packets"]["dropped"]["stream_overlap"], 0);
}

#[test]
fn inline_a_different_bytes_overlap_is_dropped() {
    let (_, events, st) = run(&conflicting(40007), RULES, &["--mode", "ips"]);
    assert_eq!(st["packets"]["dropped"]["stream_overlap"], 1);
    let rx = st["packets"]["rx"].as_u64().unwrap();
    let tx = st["packets"]["tx"].as_u64().unwrap();
    assert_eq!(rx, tx + 1);
    let a = events
        .iter()
        .find(|e| e["event_type"] == "anomaly")
        .expect("an anomaly");
    assert_eq!(a["tollgate"]["blocked"], true);
}

#[test]
fn a_fragmented_segment_is_reassembled_then_streamed() {
    let data = body(INJECTION, 30, 200);
    let mut c = conv(40008);
    c.handshake();
    let (base, ack) = (c.client_seq(), c.server_seq());
    c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data[..40]);
    c.raw(Side::Client, base + 40, ack, ACK_FLAG | PSH, &data[40..]);
    let mut pkts = c.into_packets();
    // The second segment (with the pattern's tail) goes as IP fragments of
    // 24 bytes, last fragment first.
    let (ts, seg) = pkts.pop().unwrap();
    let mut frags = fragment(&seg, 24, 7);
    frags.reverse();
    let mut cap = Capture::new();
    cap.extend(pkts);
    for (i, f) in frags.into_iter().enumerate() {
        cap.push(ts + i as u64, f);
    }
    let (sids, _, st) = run(&cap, RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(st["fragments"]["reassembled"], 1);
    assert_eq!(stream(&st)["bytes_reassembled"], 200);
}

#[test]
fn a_hole_that_never_fills_is_a_gap_not_glue() {
    // Bytes 0..20, then 30..: the hole 20..30 is never sent, and the
    // server acknowledges past it (our tap lost it; the receiver did not).
    let make = |port: u16, data: &[u8]| {
        let mut c = conv(port);
        c.handshake();
        let (base, ack) = (c.client_seq(), c.server_seq());
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data[..20]);
        c.raw(Side::Client, base + 30, ack, ACK_FLAG | PSH, &data[30..]);
        let end = base + data.len() as u32;
        c.raw(Side::Server, ack, end, ACK_FLAG, &[]);
        c.raw(Side::Client, end, ack, ACK_FLAG | PSH, b"more");
        capture(c)
    };
    // The whole pattern after the hole: found.
    let after = body(INJECTION, 40, 120);
    let (sids, _, st) = run(&make(40009, &after), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["gaps"], 1);
    // The pattern across the hole: glued, the two sides would read
    // "ignore all pr" + "ructions" (or a fake); nothing is found.
    let across = body(INJECTION, 8, 120);
    let (sids, _, st) = run(&make(40010, &across), RULES, &[]);
    assert!(sids.is_empty(), "{sids:?}");
    assert_eq!(stream(&st)["gaps"], 1);
    // Without the ACK the hole is flushed as a gap when the flow ends.
    let mut c = conv(40011);
    c.handshake();
    let (base, ack) = (c.client_seq(), c.server_seq());
    c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &after[..20]);
    c.raw(Side::Client, base + 30, ack, ACK_FLAG | PSH, &after[30..]);
    let (sids, _, st) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![1], "found in the flush at flow end");
    assert_eq!(stream(&st)["gaps"], 1);
}

#[test]
fn a_to_server_rule_is_silent_on_the_reply() {
    let pickle = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
    let mut c = conv(40012);
    c.handshake()
        .send(Side::Client, b"GET /model.pkl HTTP/1.1\r\n\r\n", 1448)
        .send_segments(Side::Server, &body(INJECTION, 5, 80), &[20, 60], &[0, 1])
        .send_segments(Side::Server, pickle, &[3, 100], &[0, 1])
        .close(Side::Server);
    let (sids, events, _) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![2], "only the to_client pickle rule");
    let a = events.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(a["src_port"], 8080, "the server sent it");
    assert_eq!(a["dest_port"], 40012);
}

#[test]
fn a_pcre_after_the_fast_pattern_waits_for_the_next_segment() {
    let key = b"Authorization: Bearer sk-proj-AbCdEfGhIjKlMnOpQrStUvWx\r\n";
    let mut c = conv(40013);
    // The cut falls right after "sk-proj-": the pcre needs the next segment.
    c.handshake()
        .send_segments(Side::Client, key, &[30, 100], &[0, 1])
        .close(Side::Client);
    let (sids, _, _) = run(&capture(c), RULES, &[]);
    assert_eq!(sids, vec![3]);
    let short = b"Authorization: Bearer sk-proj-AbCd\r\n\r\n";
    let mut c = conv(40014);
    c.handshake()
        .send_segments(Side::Client, short, &[30, 100], &[0, 1])
        .close(Side::Client);
    assert!(run(&capture(c), RULES, &[]).0.is_empty());
}

#[test]
fn positions_beyond_the_window_are_counted_not_guessed() {
    // MAGIC at stream offset 1500, inside the rule's depth of 2000.
    let data = body(b"MAGIC", 1500, 1800);
    let make = || {
        let mut c = conv(40015);
        c.handshake()
            .send(Side::Client, &data, 100)
            .close(Side::Client);
        capture(c)
    };
    let (sids, _, st) = run(&make(), RULES, &[]);
    assert_eq!(sids, vec![4], "the default window still starts at 0");
    assert_eq!(stream(&st)["match"]["unconfirmable"], 0);
    // A 256-byte window no longer reaches back to the stream's start, so
    // whether MAGIC lies within depth 2000 is not checked: counted instead.
    let (sids, _, st) = run(&make(), RULES, &["--stream-window", "256"]);
    assert!(sids.is_empty());
    assert_eq!(stream(&st)["match"]["unconfirmable"], 1);
}

#[test]
fn a_half_open_flood_fills_the_caps_and_no_more() {
    // 3000 clients each send a SYN and one segment ahead of a hole, and
    // never finish: each would hold a session, a window and a chunk.
    let mut cap = Capture::new();
    for i in 0..3000u32 {
        let r = Route::new(
            ip(&format!("10.2.{}.{}", i / 250, i % 250 + 1)),
            ip("203.0.113.9"),
        );
        let mut c = TcpConversation::new(r, 50000, 8080, T0 + u64::from(i) * 1000);
        let isn = c.client_seq();
        c.raw(Side::Client, isn, 0, SYN, &[]);
        c.raw(Side::Client, isn + 100, 0, ACK_FLAG | PSH, &[b'z'; 600]);
        cap.extend(c.into_packets());
    }
    // Then a real client leaks a key in one segment.
    let mut c = TcpConversation::new(
        Route::new(ip("10.9.0.1"), ip("203.0.113.9")),
        40016,
        8080,
        T0 + 3_100_000_000,
    );
    c.handshake()
        .send(
            Side::Client,
            b"Authorization: Bearer sk-proj-AbCdEfGhIjKlMnOpQrStUvWx\r\n",
            1448,
        )
        .close(Side::Client);
    cap.extend(c.into_packets());
    let caps = ["--stream-memcap", "256KiB", "--reassembly-memcap", "1MiB"];
    let (sids, _, st) = run(&cap, RULES, &caps);
    let s = stream(&st);
    // The pools fill with half-open flows; then the idlest give way.
    assert!(s["evicted"]["sessions"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["sessions_full"], 0, "{s}");
    let peak = s["state"]["bytes_peak"].as_u64().unwrap();
    assert!(peak <= (256 + 1024) * 1024, "{peak}");
    assert!(peak > 0);
    // The real client, the most recent, is reassembled and its key found.
    assert_eq!(sids, vec![3]);
    assert_eq!(st["flows"]["created"], 3001);
}

#[test]
fn midstream_flows_are_reassembled_only_when_asked() {
    let data = body(INJECTION, 40, 120);
    let make = || {
        let mut c = conv(40017);
        let (base, ack) = (c.client_seq(), c.server_seq());
        // No handshake in the capture.
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data[..55]);
        c.raw(Side::Server, ack, base + 55, ACK_FLAG, &[]);
        c.raw(Side::Client, base + 55, ack, ACK_FLAG | PSH, &data[55..]);
        capture(c)
    };
    let (sids, _, st) = run(&make(), RULES, &[]);
    assert!(
        sids.is_empty(),
        "split, and no stream without --midstream on"
    );
    assert_eq!(stream(&st)["midstream_skipped"], 1);
    let (sids, _, _) = run(&make(), RULES, &["--midstream", "on"]);
    assert_eq!(sids, vec![1]);
}

#[test]
fn a_segment_with_a_bad_checksum_is_kept_out() {
    // The receiver discards the bad copy and takes the good one. The bad
    // copy carries the first half of the injection and the next segment
    // the rest: an IDS that put the bad copy in the stream would see an
    // injection the receiver never did.
    let (head, tail) = INJECTION.split_at(16);
    let evil = body(head, 44, 60);
    let harmless = body(b"harmless", 0, 60);
    let next = body(tail, 0, 60);
    let make = || {
        let mut c = conv(40018);
        c.handshake();
        let (base, ack) = (c.client_seq(), c.server_seq());
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &evil);
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &harmless);
        c.raw(Side::Client, base + 60, ack, ACK_FLAG | PSH, &next);
        let mut pkts = c.into_packets();
        // Corrupt the evil copy's TCP checksum (Ethernet 14 + IPv4 20 + 16).
        pkts[3].1[50] ^= 0xff;
        let mut cap = Capture::new();
        cap.extend(pkts);
        cap
    };
    let (sids, events, st) = run(&make(), RULES, &[]);
    assert!(sids.is_empty(), "{sids:?}");
    assert_eq!(stream(&st)["checksum_bad"], 1);
    assert!(events
        .iter()
        .any(|e| e["anomaly"]["event"] == "stream.pkt_invalid_checksum"));
    let (sids, _, _) = run(&make(), RULES, &["--checksum", "off"]);
    assert_eq!(sids, vec![1], "unverified, the first (bad) copy wins");
}

#[test]
fn observing_a_bad_checksum_packet_is_still_matched_on_its_own() {
    // As Suricata does: the stream never takes it, but its own payload is
    // inspected like a packet's (captures taken on the sending host carry
    // unfilled checksums on every outgoing segment).
    let make = || {
        let mut c = conv(40020);
        c.handshake();
        let (base, ack) = (c.client_seq(), c.server_seq());
        c.raw(
            Side::Client,
            base,
            ack,
            ACK_FLAG | PSH,
            &body(INJECTION, 4, 60),
        );
        let mut pkts = c.into_packets();
        pkts[3].1[50] ^= 0xff;
        let mut cap = Capture::new();
        cap.extend(pkts);
        cap
    };
    let (sids, _, st) = run(&make(), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["checksum_bad"], 1);
    assert_eq!(stream(&st)["bytes_reassembled"], 0, "not in the stream");
    let (sids, _, st) = run(&make(), RULES, &["--mode", "ips"]);
    assert!(sids.is_empty(), "inline it is dropped: {sids:?}");
    assert_eq!(st["packets"]["dropped"]["invalid_checksum"], 1);
}

#[test]
fn a_rsts_data_is_matched_on_its_packet_and_never_reaches_the_stream() {
    // suricata-verify bug-6244: "Access Denied" rides on the RST.
    let rules = r#"
alert tcp-pkt any any -> any any (msg:"on the packet"; flags:R,A; content:"Access Denied"; sid:1;)
alert tcp any any -> any any (msg:"in the stream"; flow:only_stream; content:"Access Denied"; sid:2;)
"#;
    let mut c = conv(40021);
    c.handshake();
    let (seq, ack) = (c.client_seq(), c.server_seq());
    c.raw(Side::Client, seq, ack, RST | ACK_FLAG, b"Access Denied");
    let (sids, _, _) = run(&capture(c), rules, &[]);
    assert_eq!(sids, vec![1]);
}

#[test]
fn only_stream_rules_never_take_a_packet_alone() {
    // Midstream off: the direction is not reassembled, so stream rules
    // are matched packet by packet, but not one that asks for the stream.
    let rules = r#"
alert tcp any any -> any any (msg:"any"; content:"ignore all previous"; sid:1;)
alert tcp any any -> any any (msg:"stream only"; flow:only_stream; content:"ignore all previous"; sid:2;)
"#;
    let mut c = conv(40022);
    let (seq, ack) = (1000, 2000);
    c.raw(
        Side::Client,
        seq,
        ack,
        ACK_FLAG | PSH,
        &body(INJECTION, 0, 60),
    );
    let (sids, _, _) = run(&capture(c), rules, &[]);
    assert_eq!(sids, vec![1]);
}

#[test]
fn only_an_in_window_rst_ends_the_stream() {
    let data = body(INJECTION, 40, 120);
    let make = |rst_seq_offset: u32| {
        let mut c = conv(40019);
        c.handshake();
        let (base, ack) = (c.client_seq(), c.server_seq());
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data[..55]);
        c.raw(Side::Server, ack.wrapping_add(rst_seq_offset), 0, RST, &[]);
        c.raw(Side::Client, base + 55, ack, ACK_FLAG | PSH, &data[55..]);
        capture(c)
    };
    // A blind RST far outside the window is ignored: the stream goes on.
    let (sids, _, st) = run(&make(0x4000_0000), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(st["tcp"]["rst_out_of_window"], 1);
    // An in-window RST ends it: what follows is not stream data.
    let (sids, _, st) = run(&make(0), RULES, &[]);
    assert!(sids.is_empty(), "{sids:?}");
    assert_eq!(stream(&st)["bytes_reassembled"], 55);
}

#[test]
fn inline_a_stream_drop_rule_drops_the_completing_packet_and_the_flow() {
    let drop_rule = r#"drop tcp any any -> any any (msg:"injection"; flow:to_server; content:"ignore all previous instructions"; sid:7;)"#;
    let data = body(INJECTION, 40, 120);
    let mut c = conv(40020);
    c.handshake()
        .send_segments(Side::Client, &data, &[55, 65], &[0, 1])
        .send(Side::Client, b"tail", 1448);
    let (sids, events, st) = run(&capture(c), drop_rule, &["--mode", "ips"]);
    assert_eq!(sids, vec![7]);
    let a = events.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(a["alert"]["action"], "blocked");
    // The second half, then the peer's ACK and the tail (and its ACK).
    assert_eq!(st["packets"]["dropped"]["rule"], 4);
}

/// A TLS handshake record holding a hello of `kind` (1 client, 2 server).
fn tls_hello(kind: u8) -> Vec<u8> {
    let mut rec = vec![0x16, 3, 1, 0, 46, kind, 0, 0, 42, 3, 3];
    rec.extend_from_slice(&[0x5a; 40]);
    rec
}

#[test]
fn tls_ciphertext_is_not_scanned() {
    // Both hellos, then a ChangeCipherSpec and application data whose
    // bytes happen to spell the pattern: not scanned.
    let mut rec = vec![0x14, 3, 3, 0, 1, 1];
    let mut app = vec![0x17, 3, 3, 0, INJECTION.len() as u8];
    app.extend_from_slice(INJECTION);
    rec.extend_from_slice(&app);
    let make = |server_hello: bool| {
        let mut c = conv(40021);
        c.handshake().send(Side::Client, &tls_hello(1), 1448);
        if server_hello {
            c.send(Side::Server, &tls_hello(2), 1448);
        }
        c.send(Side::Client, &rec, 1448).close(Side::Client);
        capture(c)
    };
    let (sids, _, st) = run(&make(true), RULES, &[]);
    assert!(sids.is_empty());
    assert_eq!(stream(&st)["ciphertext"], 1);
    // Without the server's hello nothing is taken for ciphertext: the
    // "encrypted" bytes are scanned, and they are no secret.
    let (sids, _, st) = run(&make(false), RULES, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(stream(&st)["ciphertext"], 0);
}

#[test]
fn a_corrupt_retransmission_is_no_conflict_but_a_valid_one_is() {
    let data = body(b"harmless", 0, 60);
    let evil = body(INJECTION, 10, 60);
    let make = |corrupt: bool| {
        let mut c = conv(40022);
        c.handshake();
        let (base, ack) = (c.client_seq(), c.server_seq());
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &data);
        c.raw(Side::Client, base, ack, ACK_FLAG | PSH, &evil);
        let mut pkts = c.into_packets();
        if corrupt {
            pkts[4].1[50] ^= 0xff;
        }
        let mut cap = Capture::new();
        cap.extend(pkts);
        cap
    };
    // Corrupt: the receiver drops it, so there is nothing to report or drop.
    let (_, events, st) = run(&make(true), RULES, &["--mode", "ips"]);
    assert!(events.iter().all(|e| e["event_type"] != "anomaly"));
    assert_eq!(st["packets"]["dropped"]["stream_overlap"], 0);
    assert_eq!(stream(&st)["checksum_bad"], 1);
    // Valid: the receiver might take it; inline it is dropped.
    let (sids, events, st) = run(&make(false), RULES, &["--mode", "ips"]);
    assert!(sids.is_empty(), "first data wins: {sids:?}");
    assert!(events.iter().any(|e| e["event_type"] == "anomaly"));
    assert_eq!(st["packets"]["dropped"]["stream_overlap"], 1);
    assert_eq!(stream(&st)["checksum_bad"], 0);
}

#[test]
fn stream_size_counts_each_sides_stream_as_suricata_does() {
    // The client's stream is its SYN plus what it sent so far: 1 + 12
    // after the first request, 1 + 24 after the second.
    let rules = r#"
alert tcp any any -> any any (msg:"early"; flow:to_server; content:"GET"; stream_size:client,<,20; sid:1;)
alert tcp any any -> any any (msg:"late"; flow:to_server; content:"GET"; stream_size:client,>,20; sid:2;)
alert tcp any any -> any any (msg:"server silent"; flow:to_server; content:"GET"; stream_size:server,=,1; sid:3;)
alert tcp any any -> any any (msg:"either"; flow:to_server; content:"GET"; stream_size:either,>=,25; sid:4;)
"#;
    let mut c = conv(40023);
    c.handshake()
        .send(Side::Client, b"GET /a HTTP\n", 1448)
        .send(Side::Client, b"GET /b HTTP\n", 1448)
        .close(Side::Client);
    let (sids, _, _) = run(&capture(c), rules, &[]);
    assert_eq!(sids, vec![1, 2, 3, 3, 4]);
}

#[test]
fn flowint_counts_on_the_flow_and_later_rules_compare_it() {
    // Each client segment with "req" adds one; the third alerts, and a
    // counter compared with another counter not set counts it as 0.
    let rules = r#"
alert tcp any any -> any any (msg:"count"; flow:to_server; content:"req"; flowint:reqs,+,1; noalert; sid:1;)
alert tcp any any -> any any (msg:"third"; flow:to_server; content:"req"; flowint:reqs,==,3; sid:2;)
alert tcp any any -> any any (msg:"more than none"; flow:to_server; content:"req"; flowint:reqs,>,zero; flowint:reqs,<,2; sid:3;)
alert tcp any any -> any any (msg:"never set"; flow:to_server; content:"req"; flowint:other,isset; sid:4;)
"#;
    let mut c = conv(40024);
    c.handshake();
    for _ in 0..4 {
        c.send(Side::Client, b"req", 1448);
        c.send(Side::Server, b"ok", 1448);
    }
    c.close(Side::Client);
    // tcp-pkt keeps the count per packet (stream rules would see one
    // growing stream).
    let rules = rules.replace("alert tcp ", "alert tcp-pkt ");
    let (sids, _, _) = run(&capture(c), &rules, &[]);
    assert_eq!(sids, vec![2, 3]);
}

#[test]
fn base64_data_is_matched_where_base64_decode_decoded() {
    // An injection hidden as base64 after "prompt=": found decoded, and
    // only from where the rule says decoding starts.
    let rules = r#"
alert tcp any any -> any any (msg:"b64 injection"; content:"prompt="; base64_decode:relative; base64_data; content:"ignore previous"; sid:1;)
alert tcp any any -> any any (msg:"b64 from the start"; content:"prompt="; base64_decode:offset 0; base64_data; content:"ignore previous"; sid:2;)
alert tcp any any -> any any (msg:"b64 too short"; content:"prompt="; base64_decode:bytes 8,relative; base64_data; content:"ignore previous"; sid:3;)
"#;
    let mut c = conv(40025);
    c.handshake()
        .send(
            Side::Client,
            b"POST /v1 prompt=cGxlYXNlIGlnbm9yZSBwcmV2aW91cyBpbnN0cnVjdGlvbnM= end",
            1448,
        )
        .close(Side::Client);
    let (sids, _, _) = run(&capture(c), rules, &[]);
    assert_eq!(sids, vec![1]);
}

#[test]
fn xbits_mark_a_host_for_other_connections_until_they_expire() {
    // One client probes the server; any later connection to it carrying
    // the payload alerts within 10 s. (The table is shared by all workers,
    // but two workers replaying at full speed need not take packets in
    // capture order, so the test runs one.)
    let rules = r#"
alert tcp-pkt any any -> any any (msg:"probe"; content:"PROBE"; xbits:set,probed,track ip_dst,expire 10; noalert; sid:1;)
alert tcp-pkt any any -> any any (msg:"payload after a probe"; content:"PAYLOAD"; xbits:isset,probed,track ip_dst; sid:2;)
"#;
    let server = ip("203.0.113.50");
    let mut cap = Capture::new();
    let one = |port: u16, client: &str, t: u64, data: &[u8]| {
        let mut c = TcpConversation::new(Route::new(ip(client), server), port, 8080, t);
        c.handshake()
            .send(Side::Client, data, 1448)
            .close(Side::Client);
        c.into_packets()
    };
    const S: u64 = 1_000_000_000;
    cap.extend(one(41000, "10.9.0.1", T0, b"PROBE"));
    cap.extend(one(41001, "10.9.0.2", T0 + S, b"PAYLOAD"));
    cap.extend(one(41002, "10.9.0.3", T0 + 20 * S, b"PAYLOAD"));
    let (sids, _, _) = run(&cap, rules, &[]);
    assert_eq!(sids, vec![2], "the later one expired");
}

#[test]
fn tag_session_logs_the_flows_next_packets_as_suricata_does() {
    let rules = r#"
alert tcp-pkt any any -> any any (msg:"login"; content:"LOGIN"; tag:session,3,packets; sid:1;)
"#;
    let mut c = conv(40026);
    c.handshake().send(Side::Client, b"LOGIN admin", 1448);
    for _ in 0..4 {
        c.send(Side::Server, b"ok", 1448);
    }
    c.close(Side::Client);
    let (_, events, _) = run(&capture(c), rules, &[]);
    let alerts: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| {
            (
                e["alert"]["gid"].as_u64().unwrap(),
                e["alert"]["signature_id"].as_u64().unwrap(),
            )
        })
        .collect();
    // The rule's alert, then the next three packets as Suricata's tag
    // signature (gid 2, sid 1).
    assert_eq!(alerts, [(1, 1), (2, 1), (2, 1), (2, 1)]);
}

#[test]
fn a_bypass_rule_takes_its_flow_out_of_inspection_and_counts_the_rest() {
    // A model pull: once the rule has seen the start of the download, the
    // gigabytes after it are counted, not inspected (Suricata's bypass).
    let mut c = conv(41200);
    c.handshake();
    c.send(
        Side::Client,
        b"GET /v2/models/llama/blobs/sha256:abc HTTP/1.1\r\n\r\n",
        1460,
    );
    c.send(
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n",
        1460,
    );
    let mut body = vec![b'w'; 9000];
    body[7000..7006].copy_from_slice(b"SECRET");
    c.send(Side::Server, &body, 1460);
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    let dir = Scratch::new("stream-bypass");
    let with = rules(
        &dir,
        "alert tcp any any -> any any (msg:\"pull\"; content:\"/blobs/sha256:\"; bypass; sid:1;)\n\
         alert tcp any any -> any any (msg:\"later\"; content:\"SECRET\"; sid:2;)\n",
    );
    for mode in ["ids", "ips"] {
        let (events, st) = replay_events(&dir, &cap, &with, &["--mode", mode]);
        let sids: Vec<u64> = events
            .iter()
            .filter(|e| e["event_type"] == "alert")
            .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
            .collect();
        assert_eq!(sids, [1], "{mode}: nothing after the bypass is inspected");
        let flow = events.iter().find(|e| e["event_type"] == "flow").unwrap();
        assert_eq!(flow["flow"]["state"], "bypassed", "{mode}");
        assert_eq!(flow["flow"]["bypass"], "local", "{mode}");
        let pkts = flow["flow"]["pkts_toserver"].as_u64().unwrap()
            + flow["flow"]["pkts_toclient"].as_u64().unwrap();
        assert_eq!(
            pkts,
            st["packets"]["rx"].as_u64().unwrap(),
            "{mode}: every packet counted"
        );
        assert_eq!(st["flows"]["bypassed"], 1, "{mode}");
        assert!(
            st["flows"]["bypassed_packets"].as_u64().unwrap() >= 7,
            "{mode}"
        );
        assert_eq!(
            st["packets"]["tx"], st["packets"]["rx"],
            "{mode}: and forwarded"
        );
    }
    // Without the bypass the later content is found.
    let without = rules(
        &dir,
        "alert tcp any any -> any any (msg:\"pull\"; content:\"/blobs/sha256:\"; sid:1;)\n\
         alert tcp any any -> any any (msg:\"later\"; content:\"SECRET\"; sid:2;)\n",
    );
    let (events, _) = replay_events(&dir, &cap, &without, &[]);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["alert"]["signature_id"] == 2)
            .count(),
        1
    );
}
