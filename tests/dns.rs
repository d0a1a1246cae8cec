//! DNS end to end: queries and responses over UDP and over TCP built with
//! the capture library, replayed through the binary with rules on the
//! `dns.*` buffers; alerts and `dns` events read from EVE (and validated
//! against Suricata's schema), counters from the stats JSON. Each buffer
//! has a capture that fires its rule and one that must not.

mod common;
use common::{replay_events, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

const T0: u64 = 1_767_225_600_000_000_000;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

/// A DNS message: id, flags, questions (name, type), answers (name,
/// type, rdata).
fn message(id: u16, flags: u16, qs: &[(&str, u16)], ans: &[(&str, u16, &[u8])]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&(qs.len() as u16).to_be_bytes());
    m.extend_from_slice(&(ans.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    let name = |m: &mut Vec<u8>, n: &str| {
        for l in n.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
    };
    for (n, t) in qs {
        name(&mut m, n);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
    }
    for (n, t, rd) in ans {
        name(&mut m, n);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        m.extend_from_slice(rd);
    }
    m
}

fn query(id: u16, name: &str) -> Vec<u8> {
    message(id, 0x0100, &[(name, 1)], &[])
}

fn answer(id: u16, name: &str, addr: [u8; 4]) -> Vec<u8> {
    message(id, 0x8180, &[(name, 1)], &[(name, 1, &addr)])
}

/// Each (query, response) pair over UDP from one client port.
fn udp(pairs: &[(Vec<u8>, Vec<u8>)]) -> Capture {
    let r = Route::new(ip("10.1.0.5"), ip("10.1.0.53"));
    let mut cap = Capture::new();
    let mut t = T0;
    for (q, a) in pairs {
        cap.push(t, r.udp(40000, 53, q));
        t += 1_000_000;
        if !a.is_empty() {
            cap.push(t, r.reversed().udp(53, 40000, a));
            t += 1_000_000;
        }
    }
    cap
}

/// The messages over one TCP connection to port 53, each direction's
/// messages in one segment.
fn tcp(queries: &[Vec<u8>], answers: &[Vec<u8>]) -> Capture {
    let frame = |ms: &[Vec<u8>]| {
        let mut out = Vec::new();
        for m in ms {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    };
    let mut c = TcpConversation::new(Route::new(ip("10.1.0.5"), ip("10.1.0.53")), 40001, 53, T0);
    c.handshake();
    c.send(Side::Client, &frame(queries), 1400);
    if !answers.is_empty() {
        c.send(Side::Server, &frame(answers), 1400);
    }
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    cap
}

fn run(name: &str, cap: &Capture, rules: &str) -> (Vec<u64>, Vec<Value>, Value, Scratch) {
    let dir = Scratch::new(&format!("dns-{name}"));
    let r = dir.write("t.rules", rules.as_bytes());
    let (events, st) = replay_events(&dir, cap, &r, &[]);
    let mut sids: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    (sids, events, st, dir)
}

const QUERY_RULES: &str = r#"
alert dns any any -> any any (msg:"openai lookup"; dns.query; content:"api.openai.com"; nocase; endswith; sid:1;)
alert udp any any -> any any (msg:"legacy name"; dns_query; content:"anthropic"; sid:2;)
alert dns any any -> any any (msg:"dotprefix"; dns.query; dotprefix; content:".example.com"; endswith; sid:3;)
alert dns any any -> any any (msg:"answer name"; dns.answers.rrname; content:"api.openai.com"; sid:4;)
alert dns any any -> any any (msg:"any query name"; dns.queries.rrname; content:"openai"; sid:5;)
alert dns any any -> any any (msg:"AAAA asked"; dns.rrtype:28; sid:6;)
alert dns any any -> any any (msg:"NXDOMAIN"; dns.rcode:3; sid:7;)
"#;

#[test]
fn a_query_over_udp_fires_its_buffer_rules_and_another_does_not() {
    let cap = udp(&[(
        query(1, "API.openai.com"),
        answer(1, "API.openai.com", [1, 2, 3, 4]),
    )]);
    let (sids, events, st, dir) = run("udp", &cap, QUERY_RULES);
    // dns.query: the request only; queries.rrname: request and response;
    // the answer's name is matched as sent (no nocase: not sid 4).
    assert_eq!(sids, vec![1, 5, 5]);
    let alert = events
        .iter()
        .find(|e| e["alert"]["signature_id"] == 1)
        .unwrap();
    assert_eq!(alert["app_proto"], "dns");
    assert_eq!(alert["dns"]["queries"][0]["rrname"], "API.openai.com");
    let dns: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "dns").collect();
    assert_eq!(dns.len(), 2);
    assert_eq!(dns[0]["dns"]["type"], "request");
    assert_eq!(dns[1]["dns"]["type"], "response");
    // A response is logged from the server's side.
    assert_eq!(dns[1]["src_port"], 53);
    assert_eq!(dns[1]["dns"]["answers"][0]["rdata"], "1.2.3.4");
    let dns_st = &st["app_layer"]["dns"];
    assert_eq!(
        (&dns_st["requests"], &dns_st["responses"]),
        (&1.into(), &1.into())
    );
    assert_eq!(st["app_layer"]["flows"]["dns"], 1);
    common::validate_eve(&[&dir.path("eve.json")], true);

    // Another name: none of the name rules.
    let cap = udp(&[(
        query(2, "example.org"),
        answer(2, "example.org", [5, 6, 7, 8]),
    )]);
    let (sids, ..) = run("udp-other", &cap, QUERY_RULES);
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn the_same_query_over_tcp_with_two_messages_in_one_segment() {
    let cap = tcp(
        &[query(7, "api.openai.com"), query(8, "claude.anthropic.com")],
        &[answer(7, "api.openai.com", [1, 1, 1, 1])],
    );
    let (sids, events, _, dir) = run("tcp", &cap, QUERY_RULES);
    assert_eq!(sids, vec![1, 4, 5, 5]);
    let dns: Vec<&Value> = events.iter().filter(|e| e["event_type"] == "dns").collect();
    assert_eq!(dns.len(), 3);
    let flow = events.iter().find(|e| e["event_type"] == "flow").unwrap();
    assert_eq!(flow["app_proto"], "dns");
    // The legacy `dns_query` in a udp rule: not this TCP flow's.
    assert!(!sids.contains(&2));
    common::validate_eve(&[&dir.path("eve.json")], true);
}

#[test]
fn dotprefix_matches_the_domain_and_its_subdomains_only() {
    let cap = udp(&[
        (query(1, "example.com"), Vec::new()),
        (query(2, "www.example.com"), Vec::new()),
        (query(3, "badexample.com"), Vec::new()),
    ]);
    let (_, events, ..) = run("dotprefix", &cap, QUERY_RULES);
    let hit: Vec<&str> = events
        .iter()
        .filter(|e| e["alert"]["signature_id"] == 3)
        .map(|e| e["dns"]["queries"][0]["rrname"].as_str().unwrap())
        .collect();
    assert_eq!(hit, vec!["example.com", "www.example.com"]);
}

#[test]
fn numbers_rules_compare_opcode_rcode_and_types() {
    let nx = message(5, 0x8183, &[("nope.example", 28)], &[]);
    let cap = udp(&[(message(5, 0x0100, &[("nope.example", 28)], &[]), nx)]);
    let (sids, ..) = run("numbers", &cap, QUERY_RULES);
    // AAAA in both messages, NXDOMAIN in the response.
    assert_eq!(sids, vec![6, 6, 7]);
    let cap = udp(&[(query(6, "a.example"), answer(6, "a.example", [9, 9, 9, 9]))]);
    let (sids, ..) = run("numbers-not", &cap, QUERY_RULES);
    assert!(!sids.contains(&6) && !sids.contains(&7), "{sids:?}");
}

#[test]
fn a_compression_loop_is_refused_counted_and_raises_its_event() {
    let rules =
        "alert dns any any -> any any (msg:\"loop\"; app-layer-event:dns.infinite_loop; sid:9;)\n";
    // A question whose name points at itself.
    let mut bad = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    bad.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let (sids, _, st, _) = run("loop", &udp(&[(bad, Vec::new())]), rules);
    assert_eq!(sids, vec![9]);
    assert_eq!(st["app_layer"]["dns"]["errors"]["pointer_loop"], 1);
    let (sids, ..) = run("no-loop", &udp(&[(query(1, "a.b"), Vec::new())]), rules);
    assert!(sids.is_empty());
}

#[test]
fn udp_off_port_53_is_dns_only_when_a_whole_query_parses() {
    let r = Route::new(ip("10.1.0.5"), ip("10.1.0.99"));
    let mut cap = Capture::new();
    cap.push(T0, r.udp(40000, 5353, &query(1, "api.openai.com")));
    cap.push(
        T0 + 1,
        r.udp(40001, 9999, b"not dns at all, but long enough"),
    );
    let (sids, events, ..) = run("offport", &cap, QUERY_RULES);
    assert_eq!(sids, vec![1, 5]);
    let protos: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| &e["app_proto"])
        .collect();
    assert!(protos.contains(&&Value::from("dns")));
    assert!(protos.contains(&&Value::from("failed")));
}
