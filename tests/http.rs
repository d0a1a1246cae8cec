//! HTTP/1.x end to end: conversations built with the capture library,
//! replayed through the binary with rules on `http.*` buffers; alerts
//! (with their `tx_id`) and `http` events read from EVE, counters from the
//! stats JSON. Each buffer has a capture that fires its rule and one that
//! must not; the parser's hard cases (chunks, codings, pipelining, gaps,
//! HEAD, bombs) each have their own.

mod common;
use common::{replay_events, Scratch};
use serde_json::Value;
use std::io::Write;
use std::net::IpAddr;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

const T0: u64 = 1_767_225_600_000_000_000;

fn ip(a: &str) -> IpAddr {
    a.parse().unwrap()
}

fn conv(port: u16) -> TcpConversation {
    TcpConversation::new(Route::new(ip("10.1.0.5"), ip("203.0.113.9")), port, 80, T0)
}

/// One connection: each (request, response) in turn, `mss`-byte segments.
fn exchange(port: u16, pairs: &[(&[u8], &[u8])], mss: usize) -> Capture {
    let mut c = conv(port);
    c.handshake();
    for (req, resp) in pairs {
        if !req.is_empty() {
            c.send(Side::Client, req, mss);
        }
        if !resp.is_empty() {
            c.send(Side::Server, resp, mss);
        }
    }
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    cap
}

/// Replays `cap` with `rules`; returns the alerts' sids (sorted), every
/// event and the stats.
fn run(cap: &Capture, rules: &str, extra: &[&str]) -> (Vec<u64>, Vec<Value>, Value) {
    let name = std::thread::current()
        .name()
        .unwrap_or("t")
        .replace("::", "-");
    let dir = Scratch::new(&format!("http-{name}"));
    let r = dir.write("t.rules", rules.as_bytes());
    let (events, st) = replay_events(&dir, cap, &r, extra);
    let mut sids: Vec<u64> = alerts(&events)
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    sids.sort();
    (sids, events, st)
}

fn alerts(events: &[Value]) -> impl Iterator<Item = &Value> {
    events.iter().filter(|e| e["event_type"] == "alert")
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn uri_method_and_host_rules_fire_on_their_request_and_not_on_another() {
    let rules = r#"
alert http any any -> any any (msg:"admin uri"; flow:established,to_server; http.uri; content:"/admin/login"; sid:1;)
alert http any any -> any any (msg:"post"; flow:to_server; http.method; content:"POST"; sid:2;)
alert http any any -> any any (msg:"host"; http.host; content:"api.openai.example"; bsize:18; sid:3;)
"#;
    let req =
        b"POST /admin/login HTTP/1.1\r\nHost: API.OpenAI.example:8080\r\nContent-Length: 0\r\n\r\n";
    let (sids, events, st) = run(&exchange(41000, &[(req, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1, 2, 3]);
    for a in alerts(&events) {
        assert_eq!(a["tx_id"], 0);
        assert_eq!(a["app_proto"], "http");
    }
    assert_eq!(st["app_layer"]["flows"]["http"], 1);
    let other = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n";
    let (sids, _, _) = run(&exchange(41001, &[(other, OK)], 1460), rules, &[]);
    assert!(sids.is_empty(), "{sids:?}");
}

/// A request and a response that carry something in every buffer.
const RICH_REQ: &[u8] = b"POST /api/v1/chat%2Fcompletions?model=gpt HTTP/1.1\r\n\
Host: llm.example.net:8443\r\n\
User-Agent: agent-x/2.1\r\n\
Cookie: session=abc123\r\n\
Referer: http://portal.example.net/start\r\n\
Accept: application/json\r\n\
Accept-Encoding: gzip, br\r\n\
Accept-Language: en-GB\r\n\
Connection: keep-alive\r\n\
Content-Type: application/json\r\n\
Content-Length: 27\r\n\
X-Tenant: blue-team\r\n\
\r\n\
{\"prompt\":\"summarise this\"}";

const RICH_RESP: &[u8] = b"HTTP/1.1 302 Found Elsewhere\r\n\
Server: nginx/1.25.3\r\n\
Location: https://login.example.net/sso\r\n\
Set-Cookie: track=zz9\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 17\r\n\
Connection: close\r\n\
\r\n\
<html>moved</html";

const PLAIN_REQ: &[u8] = b"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n";
const PLAIN_RESP: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc";

/// One rule per buffer (and per legacy modifier and pcre flag), each on a
/// value only the rich exchange has.
const BUFFER_RULES: &str = r#"
alert http any any -> any any (msg:"uri"; flow:to_server; http.uri; content:"/api/v1/chat/completions?model=gpt"; bsize:34; sid:101;)
alert http any any -> any any (msg:"uri.raw"; flow:to_server; http.uri.raw; content:"chat%2Fcompletions"; sid:102;)
alert http any any -> any any (msg:"method"; flow:to_server; http.method; content:"POST"; sid:103;)
alert http any any -> any any (msg:"request_line"; flow:to_server; http.request_line; content:"POST /api/v1/chat%2Fcompletions?model=gpt HTTP/1.1"; startswith; endswith; sid:104;)
alert http any any -> any any (msg:"protocol"; flow:to_server; http.protocol; content:"HTTP/1.1"; sid:105;)
alert http any any -> any any (msg:"host"; flow:to_server; http.host; content:"llm.example.net"; bsize:15; sid:106;)
alert http any any -> any any (msg:"host.raw"; flow:to_server; http.host.raw; content:"llm.example.net:8443"; sid:107;)
alert http any any -> any any (msg:"user_agent"; flow:to_server; http.user_agent; content:"agent-x/"; startswith; sid:108;)
alert http any any -> any any (msg:"cookie"; flow:to_server; http.cookie; content:"session=abc123"; sid:109;)
alert http any any -> any any (msg:"header"; flow:to_server; http.header; content:"X-Tenant|3a 20|blue-team|0d 0a|"; sid:110;)
alert http any any -> any any (msg:"header without cookie"; flow:to_server; http.header; content:"Cookie"; sid:111;)
alert http any any -> any any (msg:"header_names"; flow:to_server; http.header_names; content:"|0d 0a|Host|0d 0a|User-Agent|0d 0a|"; sid:112;)
alert http any any -> any any (msg:"content_type"; flow:to_server; http.content_type; content:"application/json"; sid:113;)
alert http any any -> any any (msg:"content_len"; flow:to_server; http.content_len; content:"27"; bsize:2; sid:114;)
alert http any any -> any any (msg:"referer"; http.referer; content:"portal.example.net"; sid:115;)
alert http any any -> any any (msg:"accept"; http.accept; content:"application/json"; sid:116;)
alert http any any -> any any (msg:"accept_enc"; http.accept_enc; content:"br"; sid:117;)
alert http any any -> any any (msg:"accept_lang"; http.accept_lang; content:"en-GB"; sid:118;)
alert http any any -> any any (msg:"connection"; flow:to_server; http.connection; content:"keep-alive"; sid:119;)
alert http any any -> any any (msg:"start"; flow:to_server; http.start; content:"HTTP/1.1|0d 0a|Host|3a 20|"; sid:120;)
alert http any any -> any any (msg:"header.raw"; flow:to_server; http.header.raw; content:"Host: llm.example.net:8443|0d 0a|"; sid:121;)
alert http any any -> any any (msg:"request_body"; http.request_body; content:"summarise this"; sid:122;)
alert http any any -> any any (msg:"file.data to server"; flow:to_server; file.data; content:"prompt"; sid:123;)
alert http any any -> any any (msg:"stat_code"; flow:to_client; http.stat_code; content:"302"; sid:130;)
alert http any any -> any any (msg:"stat_msg"; flow:to_client; http.stat_msg; content:"Found Elsewhere"; sid:131;)
alert http any any -> any any (msg:"response_line"; flow:to_client; http.response_line; content:"HTTP/1.1 302 Found Elsewhere"; bsize:28; sid:132;)
alert http any any -> any any (msg:"location"; flow:to_client; http.location; content:"login.example.net/sso"; sid:133;)
alert http any any -> any any (msg:"server"; flow:to_client; http.server; content:"nginx"; sid:134;)
alert http any any -> any any (msg:"set-cookie"; flow:to_client; http.cookie; content:"track=zz9"; sid:135;)
alert http any any -> any any (msg:"response header"; flow:to_client; http.header; content:"Server|3a 20|nginx"; sid:136;)
alert http any any -> any any (msg:"response content_type"; flow:to_client; http.content_type; content:"text/html"; sid:137;)
alert http any any -> any any (msg:"response_body"; flow:to_client; http.response_body; content:"moved"; sid:138;)
alert http any any -> any any (msg:"file_data"; flow:to_client; file_data; content:"<html>"; sid:139;)
alert http any any -> any any (msg:"response protocol"; flow:to_client; http.protocol; content:"HTTP/1.1"; sid:140;)
alert http any any -> any any (msg:"method and status on one tx"; http.method; content:"POST"; http.stat_code; content:"302"; sid:141;)
alert tcp any any -> any any (msg:"legacy uricontent"; flow:to_server; uricontent:"/api/v1/chat"; sid:150;)
alert tcp any any -> any any (msg:"legacy modifiers"; flow:to_server; content:"POST"; http_method; content:"agent-x"; http_user_agent; content:"llm.example"; http_host; sid:151;)
alert http any any -> any any (msg:"legacy server body"; flow:to_client; content:"moved"; http_server_body; content:"302"; http_stat_code; sid:152;)
alert http any any -> any any (msg:"pcre U"; flow:to_server; pcre:"/^\/api\/v\d\/chat/U"; sid:160;)
alert http any any -> any any (msg:"pcre V"; pcre:"/^agent-x\/\d/V"; sid:161;)
alert http any any -> any any (msg:"pcre P"; pcre:"/\x22prompt\x22/P"; sid:162;)
alert http any any -> any any (msg:"pcre S"; pcre:"/^30\d$/S"; sid:163;)
alert http any any -> any any (msg:"urilen"; flow:to_server; urilen:>30; sid:164;)
alert http any any -> any any (msg:"urilen raw"; flow:to_server; urilen:36,raw; sid:165;)
"#;

#[test]
fn every_buffer_fires_on_the_exchange_that_has_it_and_not_on_one_that_does_not() {
    // More rules match at once than Suricata's packet-alert-max logs.
    let all = ["--packet-alert-max", "100"];
    let (sids, events, _) = run(
        &exchange(41010, &[(RICH_REQ, RICH_RESP)], 1460),
        BUFFER_RULES,
        &all,
    );
    let mut want: Vec<u64> = (101..=123)
        .chain(130..=141)
        .chain(150..=152)
        .chain(160..=165)
        .collect();
    // http.header leaves the cookie out, as Suricata's does.
    want.retain(|&s| s != 111);
    assert_eq!(sids, want);
    for a in alerts(&events) {
        assert_eq!(a["tx_id"], 0, "{a}");
    }
    let (sids, _, _) = run(
        &exchange(41011, &[(PLAIN_REQ, PLAIN_RESP)], 1460),
        BUFFER_RULES,
        &all,
    );
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn packet_alert_max_is_one_cap_per_packet_over_its_headers_and_body() {
    // A request whose headers and body arrive in one packet: 3 rules on
    // the headers and 3 on the body match it. Suricata's packet alert
    // queue is one per packet, so a cap of 4 logs the 4 of lowest rule
    // order, whichever point (headers, body) they matched at; as Suricata
    // 7.0.10 does on such a request (the stock suricata.yaml's 15, with 17
    // rules matching). A cap per point would log all 6.
    let rules = r#"
alert http any any -> any any (msg:"method"; flow:to_server; http.method; content:"POST"; sid:1;)
alert http any any -> any any (msg:"uri"; flow:to_server; http.uri; content:"/v1/chat"; sid:2;)
alert http any any -> any any (msg:"host"; flow:to_server; http.host; content:"a"; sid:3;)
alert http any any -> any any (msg:"body 1"; flow:to_server; http.request_body; content:"messages"; sid:4;)
alert http any any -> any any (msg:"body 2"; flow:to_server; http.request_body; content:"role"; sid:5;)
alert http any any -> any any (msg:"body 3"; flow:to_server; http.request_body; content:"content"; sid:6;)
"#;
    let req = b"POST /v1/chat HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n\
{\"messages\":[{\"role\":\"user\",\"content\":1}]}";
    let (sids, _, st) = run(
        &exchange(41014, &[(req, OK)], 1460),
        rules,
        &["--packet-alert-max", "4"],
    );
    assert_eq!(sids, vec![1, 2, 3, 4]);
    assert_eq!(st["rules"]["alerts_discarded"], 2, "{}", st["rules"]);
    let (sids, _, _) = run(&exchange(41015, &[(req, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1, 2, 3, 4, 5, 6], "under the cap, all of them");
}

#[test]
fn a_request_cut_into_single_bytes_fires_the_same() {
    let all = ["--packet-alert-max", "100"];
    let whole = exchange(41012, &[(RICH_REQ, RICH_RESP)], 1460);
    let (one, _, _) = run(&whole, BUFFER_RULES, &all);
    let bytes = exchange(41013, &[(RICH_REQ, RICH_RESP)], 1);
    let (sids, _, _) = run(&bytes, BUFFER_RULES, &all);
    assert_eq!(sids, one);
}

#[test]
fn a_pattern_across_a_chunk_boundary_is_found_in_the_body() {
    let rules = r#"alert http any any -> any any (msg:"override"; flow:to_server; http.request_body; content:"ignore previous instructions"; sid:1;)"#;
    let req = b"POST /v1/chat HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
10;ext=1\r\nplease ignore pr\r\nc\r\nevious instr\r\n7\r\nuctions\r\n0\r\nTrailer: x\r\n\r\n";
    let (sids, _, st) = run(&exchange(41020, &[(req, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(st["app_layer"]["http"]["transactions"], 1);
    // The chunk framing is not body: the same words with a size line in
    // between are not the phrase.
    let split = b"POST /v1/chat HTTP/1.1\r\nHost: a\r\n\r\nignore pr\r\n" as &[u8];
    let (sids, _, _) = run(&exchange(41021, &[(split, OK)], 1460), rules, &[]);
    assert!(sids.is_empty());
}

#[test]
fn a_gzip_request_body_and_a_deflate_response_body_are_inspected_decoded() {
    let rules = r#"
alert http any any -> any any (msg:"prompt in gzip"; flow:to_server; http.request_body; content:"ignore previous instructions"; sid:1;)
alert http any any -> any any (msg:"pickle in deflate"; flow:to_client; file.data; content:"|63|os|0a|system|0a|"; sid:2;)
"#;
    let body =
        gzip(b"{\"messages\":[{\"role\":\"user\",\"content\":\"ignore previous instructions\"}]}");
    let mut req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let pickle = deflate(b"\x80\x02cos\nsystem\n(S'id'\ntR.");
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
        pickle.len()
    )
    .into_bytes();
    resp.extend_from_slice(&pickle);
    let (sids, _, st) = run(&exchange(41030, &[(&req, &resp)], 7), rules, &[]);
    assert_eq!(sids, vec![1, 2]);
    assert!(
        st["app_layer"]["http"]["bytes_decompressed"]
            .as_u64()
            .unwrap()
            > 60
    );
    // Sent as they are, the coded bytes hold neither.
    let raw = r#"
alert tcp any any -> any any (msg:"raw"; content:"ignore previous"; sid:3;)
alert tcp any any -> any any (msg:"raw"; content:"system"; sid:4;)
"#;
    let (sids, _, _) = run(&exchange(41031, &[(&req, &resp)], 1460), raw, &[]);
    assert!(sids.is_empty());
}

#[test]
fn a_percent_encoded_uri_is_normalised_and_the_raw_one_is_not() {
    let rules = r#"
alert http any any -> any any (msg:"traversal normalised"; http.uri; content:"/etc/passwd"; startswith; sid:1;)
alert http any any -> any any (msg:"raw has no slash path"; http.uri.raw; content:"/etc/passwd"; sid:2;)
alert http any any -> any any (msg:"raw keeps the escapes"; http.uri.raw; content:"%2e%2e"; sid:3;)
"#;
    let req = b"GET /static/%2e%2e/%2E%2E//etc/%70asswd HTTP/1.1\r\nHost: a\r\n\r\n";
    let (sids, _, _) = run(&exchange(41040, &[(req, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1, 3]);
}

#[test]
fn pipelined_requests_alert_with_their_own_tx_id() {
    let rules = r#"
alert http any any -> any any (msg:"second"; http.uri; content:"/two"; sid:2;)
alert http any any -> any any (msg:"third's answer"; http.uri; content:"/three"; http.stat_code; content:"404"; sid:3;)
"#;
    let reqs = b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\n\r\n";
    let resps = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nbHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let (sids, events, st) = run(&exchange(41050, &[(reqs, resps)], 1460), rules, &[]);
    assert_eq!(sids, vec![2, 3]);
    let tx = |sid: u64| {
        alerts(&events)
            .find(|a| a["alert"]["signature_id"] == sid)
            .unwrap()["tx_id"]
            .clone()
    };
    assert_eq!(tx(2), 1);
    assert_eq!(tx(3), 2);
    assert_eq!(st["app_layer"]["http"]["transactions"], 3);
}

#[test]
fn conditions_in_different_transactions_do_not_make_a_match() {
    let rules = r#"alert http any any -> any any (msg:"uri and body"; http.uri; content:"/upload"; http.request_body; content:"secret-weights"; sid:1;)"#;
    let both =
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\n\r\nsecret-weights" as &[u8];
    let (sids, _, _) = run(&exchange(41060, &[(both, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1]);
    let first = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" as &[u8];
    let second =
        b"POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\n\r\nsecret-weights" as &[u8];
    let (sids, _, _) = run(
        &exchange(41061, &[(first, OK), (second, OK)], 1460),
        rules,
        &[],
    );
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn a_response_to_head_has_no_body_and_the_next_response_parses() {
    let rules = r#"
alert http any any -> any any (msg:"second answer"; http.uri; content:"/after"; http.stat_code; content:"201"; sid:1;)
alert http any any -> any any (msg:"head body"; flow:to_client; file.data; content:"HTTP"; sid:2;)
"#;
    // The HEAD response says Content-Length: 50 but carries no body.
    let head = b"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let head_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" as &[u8];
    let next = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let next_resp = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" as &[u8];
    let (sids, events, _) = run(
        &exchange(41070, &[(head, head_resp), (next, next_resp)], 1460),
        rules,
        &[],
    );
    assert_eq!(sids, vec![1]);
    assert_eq!(alerts(&events).next().unwrap()["tx_id"], 1);
}

#[test]
fn a_gap_inside_a_body_is_stepped_over_and_the_next_request_still_parses() {
    let rules = r#"
alert http any any -> any any (msg:"after the gap"; http.uri; content:"/next"; sid:1;)
alert http any any -> any any (msg:"body head"; http.request_body; content:"AAAA"; sid:2;)
"#;
    let mut body = vec![b'A'; 3000];
    body.extend(vec![b'B'; 3000]);
    let mut req = b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 6000\r\n\r\n".to_vec();
    let head_len = req.len();
    req.extend_from_slice(&body);
    let next = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut c = conv(41080);
    c.handshake();
    // The body's middle 1,000 bytes never arrive; the receiver acks past
    // them, so reassembly reports a gap.
    let first = head_len + 2000;
    let (sizes, order) = (vec![first, 1000, req.len() - first - 1000], vec![0, 2]);
    c.send_segments(Side::Client, &req, &sizes, &order);
    c.send(Side::Server, OK, 1460);
    c.send(Side::Client, next, 1460);
    c.send(Side::Server, OK, 1460);
    c.close(Side::Client);
    let mut cap = Capture::new();
    cap.extend(c.into_packets());
    let (sids, _, st) = run(&cap, rules, &[]);
    assert_eq!(sids, vec![1, 2]);
    assert!(st["app_layer"]["http"]["gaps"].as_u64().unwrap() >= 1);
    assert_eq!(st["app_layer"]["http"]["transactions"], 2);
}

#[test]
fn a_decompression_bomb_stops_at_the_ratio_cap_and_is_counted() {
    let rules = r#"alert http any any -> any any (msg:"zeros"; file.data; content:"|00 00 00 00|"; sid:1;)"#;
    let bomb = gzip(&vec![0u8; 4 << 20]);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    resp.extend_from_slice(&bomb);
    let get = b"GET /model.bin HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let (sids, _, st) = run(&exchange(41090, &[(get, &resp)], 1460), rules, &[]);
    // Inspected up to the cap: what was decoded before it still matches.
    assert_eq!(sids, vec![1]);
    let h = &st["app_layer"]["http"];
    assert_eq!(h["decompress_ratio_cap"], 1);
    assert!(h["bytes_decompressed"].as_u64().unwrap() < 1 << 20, "{h}");
    // With a cap above the ratio, the body limit stops it instead.
    let (_, _, st) = run(
        &exchange(41091, &[(get, &resp)], 1460),
        rules,
        &["--http-decompress-ratio", "100000"],
    );
    assert_eq!(st["app_layer"]["http"]["decompress_ratio_cap"], 0);
    assert_eq!(st["app_layer"]["http"]["body_limit"], 1);
}

#[test]
fn payload_content_in_an_http_rule_is_matched_on_the_same_transaction() {
    // As ET Open writes some: a raw content across the head's end and the
    // body, beside http buffers.
    let rules = r#"alert http any any -> any any (msg:"mixed"; flow:established,to_server; content:"|0d 0a 0d 0a|command="; fast_pattern; http.method; content:"POST"; http.request_body; content:"command="; depth:8; sid:1;)"#;
    let hit =
        b"POST /c2 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\ncommand=ls\r\n" as &[u8];
    let (sids, events, _) = run(&exchange(41100, &[(hit, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1]);
    assert_eq!(alerts(&events).next().unwrap()["tx_id"], 0);
    // The raw content in one transaction and the method in another.
    let get = b"GET /c2 HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let other = b"PUT /x HTTP/1.1\r\nContent-Length: 12\r\n\r\ncommand=ls\r\n" as &[u8];
    let (sids, _, _) = run(
        &exchange(41101, &[(get, OK), (other, OK)], 1460),
        rules,
        &[],
    );
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn app_layer_events_are_matched_and_logged_as_anomalies() {
    let rules = r#"
alert http any any -> any any (msg:"two content-lengths"; app-layer-event:http.duplicate_content_length_field_in_request; sid:1;)
alert http any any -> any any (msg:"odd auth"; flow:to_server; app-layer-event:http.request_auth_unrecognized; http.uri; content:"/login"; sid:2;)
"#;
    let odd = b"POST /login HTTP/1.1\r\nHost: a\r\nAuthorization: Magic xyz\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi" as &[u8];
    let (sids, events, _) = run(&exchange(41110, &[(odd, OK)], 1460), rules, &[]);
    assert_eq!(sids, vec![1, 2]);
    let anomalies: Vec<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "anomaly")
        .map(|e| e["anomaly"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        anomalies,
        [
            "DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST",
            "REQUEST_AUTH_UNRECOGNIZED"
        ]
    );
    let fine = b"POST /login HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer xyz\r\nContent-Length: 2\r\n\r\nhi" as &[u8];
    let (sids, events, _) = run(&exchange(41111, &[(fine, OK)], 1460), rules, &[]);
    assert!(sids.is_empty());
    assert!(events.iter().all(|e| e["event_type"] != "anomaly"));
}

#[test]
fn http_events_carry_suricatas_fields_and_validate_against_its_schema() {
    let name = "http-schema";
    let dir = Scratch::new(name);
    let r = dir.write("t.rules", BUFFER_RULES.as_bytes());
    let cap = exchange(
        41120,
        &[(RICH_REQ, RICH_RESP), (PLAIN_REQ, PLAIN_RESP)],
        1460,
    );
    let (events, _) = replay_events(&dir, &cap, &r, &[]);
    let http: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "http")
        .collect();
    assert_eq!(http.len(), 2);
    let h = &http[0];
    assert_eq!(h["tx_id"], 0);
    assert_eq!(h["src_ip"], "10.1.0.5", "from the client's side");
    assert_eq!(h["http"]["hostname"], "llm.example.net");
    assert_eq!(h["http"]["url"], "/api/v1/chat%2Fcompletions?model=gpt");
    assert_eq!(h["http"]["http_user_agent"], "agent-x/2.1");
    assert_eq!(h["http"]["http_content_type"], "text/html");
    assert_eq!(h["http"]["http_refer"], "http://portal.example.net/start");
    assert_eq!(h["http"]["http_method"], "POST");
    assert_eq!(h["http"]["protocol"], "HTTP/1.1");
    assert_eq!(h["http"]["status"], 302);
    assert_eq!(h["http"]["length"], 17);
    assert_eq!(h["http"]["redirect"], "https://login.example.net/sso");
    assert_eq!(http[1]["tx_id"], 1);
    let alert = alerts(&events).next().unwrap();
    assert_eq!(alert["http"]["hostname"], "llm.example.net");
    let flow = events.iter().find(|e| e["event_type"] == "flow").unwrap();
    assert_eq!(flow["app_proto"], "http");
    common::validate_eve(&[&dir.path("eve.json")], true);
}

#[test]
fn response_bodies_and_puts_are_files_in_fileinfo_events() {
    let rules = "alert http any any -> any any (msg:\"x\"; http.uri; content:\"/nothing-matches\"; sid:1;)\n";
    let get = b"GET /models/llama.bin?rev=2 HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let model = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789" as &[u8];
    let put = b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\ndata" as &[u8];
    let named = b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"weights.pt\"\r\nContent-Length: 3\r\n\r\nabc" as &[u8];
    let (_, events, _) = run(
        &exchange(41130, &[(get, model), (put, named)], 1460),
        rules,
        &[],
    );
    let files: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "fileinfo")
        .collect();
    let f: Vec<(String, u64, u64, String)> = files
        .iter()
        .map(|e| {
            (
                e["fileinfo"]["filename"].as_str().unwrap().to_string(),
                e["fileinfo"]["size"].as_u64().unwrap(),
                e["fileinfo"]["tx_id"].as_u64().unwrap(),
                e["fileinfo"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        f,
        [
            ("/models/llama.bin".into(), 10, 0, "CLOSED".into()),
            ("/upload".into(), 4, 1, "CLOSED".into()),
            ("weights.pt".into(), 3, 1, "CLOSED".into()),
        ]
    );
    // A response file comes from the server, with its transaction's http.
    assert_eq!(files[0]["src_ip"], "203.0.113.9");
    assert_eq!(files[0]["http"]["url"], "/models/llama.bin?rev=2");
    // Cut by the close: truncated.
    let short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part" as &[u8];
    let (_, events, _) = run(&exchange(41131, &[(get, short)], 1460), rules, &[]);
    let f = events
        .iter()
        .find(|e| e["event_type"] == "fileinfo")
        .unwrap();
    assert_eq!(f["fileinfo"]["state"], "TRUNCATED");
    assert_eq!(f["fileinfo"]["size"], 9);
}

#[test]
fn file_hashes_are_logged_and_matched_by_filemd5() {
    let dir = Scratch::new("http-filemd5");
    let model = b"\x80\x02cos\nsystem\n(S'id'\ntR.";
    // Its md5 and sha256 by coreutils, apart from the app layer's code.
    let sum = |tool: &str| {
        let f = dir.write("model.pkl", model);
        let out = std::process::Command::new(tool).arg(&f).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let md5_hex = sum("md5sum");
    let sha = sum("sha256sum");
    std::fs::write(
        dir.path("bad.md5"),
        format!("# known bad\n{md5_hex}  model.pkl\n"),
    )
    .unwrap();
    let rules = dir.write(
        "t.rules",
        b"alert http any any -> any any (msg:\"known bad model\"; filemd5:bad.md5; sid:1;)\n\
          alert http any any -> any any (msg:\"not in the list\"; filemd5:!bad.md5; sid:2;)\n",
    );
    // Sent gzip-coded: the hash is of the file, decoded.
    let body = gzip(model);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&body);
    let get = b"GET /model.pkl HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let cap = exchange(41140, &[(get, &resp)], 7);
    let (events, _) = replay_events(&dir, &cap, &rules, &["--file-hashes", "sha256"]);
    let sids: Vec<u64> = alerts(&events)
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    assert_eq!(sids, [1]);
    let f = events
        .iter()
        .find(|e| e["event_type"] == "fileinfo")
        .unwrap();
    assert_eq!(f["fileinfo"]["md5"], md5_hex.as_str());
    assert_eq!(f["fileinfo"]["sha256"], sha.as_str());
    assert_eq!(f["fileinfo"]["size"], model.len());
    // Another file: the negated rule fires, the listed one does not.
    let other = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" as &[u8];
    let cap = exchange(41141, &[(get, other)], 1460);
    let (events, _) = replay_events(&dir, &cap, &rules, &[]);
    let sids: Vec<u64> = alerts(&events)
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    assert_eq!(sids, [2]);
    // A list that is not one names the file and line.
    std::fs::write(dir.path("bad.md5"), "xyz\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["rules", "check", rules.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.md5:1: not a hash"), "{text}");
}

#[test]
fn sixteen_pipelined_requests_in_one_segment_are_each_matched() {
    let rules = r#"alert http any any -> any any (msg:"last"; http.uri; content:"/r15"; http.stat_code; content:"200"; sid:1;)"#;
    let reqs: Vec<u8> = (0..16)
        .flat_map(|i| format!("GET /r{i} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes())
        .collect();
    let resps: Vec<u8> = (0..16)
        .flat_map(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec())
        .collect();
    let (sids, events, st) = run(&exchange(41150, &[(&reqs, &resps)], 9000), rules, &[]);
    assert_eq!(sids, [1]);
    assert_eq!(alerts(&events).next().unwrap()["tx_id"], 15);
    assert_eq!(st["app_layer"]["http"]["transactions"], 16);
    assert_eq!(
        events.iter().filter(|e| e["event_type"] == "http").count(),
        16
    );
}

#[test]
fn a_transfer_encoding_that_is_not_chunked_is_said_and_not_taken_for_chunked() {
    let rules = r#"
alert http any any -> any any (msg:"smuggling tell"; flow:established,to_server; app-layer-event:http.invalid_transfer_encoding_value_in_request; sid:1;)
alert http any any -> any any (msg:"second request"; http.uri; content:"/admin"; sid:2;)
"#;
    // "xchunked" is not chunked: the Content-Length frames the body, and
    // the request after it is a request of its own.
    let req = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhelloGET /admin HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let resps = [OK, OK].concat();
    let (sids, _, _) = run(&exchange(41160, &[(req, &resps)], 1460), rules, &[]);
    assert_eq!(sids, [1, 2]);
    let fine = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        as &[u8];
    let (sids, _, _) = run(&exchange(41161, &[(fine, OK)], 1460), rules, &[]);
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn traffic_flowbits_tag_the_flow_in_alerts_and_flow_records() {
    let rules = r#"
alert http any any -> any any (msg:"LLM API"; http.host; content:"api.openai.example"; flowbits:set,traffic/id/openai; flowbits:set,traffic/label/llm; sid:1;)
alert http any any -> any any (msg:"other"; http.uri; content:"/none"; flowbits:set,traffic/id/other; sid:2;)
"#;
    let req = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.example\r\nContent-Length: 0\r\n\r\n" as &[u8];
    let name = "http-traffic";
    let dir = Scratch::new(name);
    let r = dir.write("t.rules", rules.as_bytes());
    let (events, _) = replay_events(&dir, &exchange(41170, &[(req, OK)], 1460), &r, &[]);
    let alert = alerts(&events).next().unwrap();
    assert_eq!(alert["traffic"]["id"], serde_json::json!(["openai"]));
    assert_eq!(alert["traffic"]["label"], serde_json::json!(["llm"]));
    let flow = events.iter().find(|e| e["event_type"] == "flow").unwrap();
    assert_eq!(flow["traffic"]["id"], serde_json::json!(["openai"]));
    common::validate_eve(&[&dir.path("eve.json")], true);
    // A flow no tag rule matched has none.
    let other = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let (_, events, _) = run(&exchange(41171, &[(other, OK)], 1460), rules, &[]);
    assert!(events.iter().all(|e| e.get("traffic").is_none()));
}

#[test]
fn a_transactional_rule_holds_request_and_response_conditions_on_one_transaction() {
    // Suricata 8's `=>`: the header names the client, then the server;
    // file.data says which side it reads.
    let rules = r#"alert http 10.1.0.0/16 any => 203.0.113.0/24 80 (msg:"upload answered by an error"; http.method; content:"PUT"; http.uri; content:"/weights"; http.stat_code; content:"500"; file.data: to_client; content:"stack trace"; sid:1;)"#;
    let put = b"PUT /weights HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok" as &[u8];
    let err = b"HTTP/1.1 500 Oops\r\nContent-Length: 11\r\n\r\nstack trace" as &[u8];
    let (sids, events, _) = run(&exchange(41180, &[(put, err)], 1460), rules, &[]);
    assert_eq!(sids, [1]);
    assert_eq!(alerts(&events).next().unwrap()["tx_id"], 0);
    // The 500 answers another request: no match.
    let get = b"GET /weights HTTP/1.1\r\nHost: a\r\n\r\n" as &[u8];
    let (sids, _, _) = run(&exchange(41181, &[(put, OK), (get, err)], 1460), rules, &[]);
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn the_client_behind_a_proxy_is_taken_from_x_forwarded_for() {
    // A reverse proxy (10.1.0.5) forwards two clients' requests.
    let req = |xff: &str| {
        format!("GET /v1/models HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: {xff}\r\n\r\n")
            .into_bytes()
    };
    let (a, b) = (req("198.51.100.7, 192.0.2.44"), req("unknown"));
    let cap = exchange(40100, &[(&a, OK), (&b, OK)], 1460);
    let rules = r#"
alert http any any -> any any (msg:"uri"; http.uri; content:"/v1/models"; sid:1;)
alert http any any -> any any (msg:"resp"; http.stat_code; content:"200"; sid:2;)
"#;
    let by_tx = |events: &[Value], kind: &str, sid: u64, tx: u64| -> Value {
        events
            .iter()
            .find(|e| {
                e["event_type"] == kind
                    && e["tx_id"] == tx
                    && (kind != "alert" || e["alert"]["signature_id"] == sid)
            })
            .unwrap_or_else(|| panic!("no {kind} {sid} on tx {tx}"))
            .clone()
    };
    // Off: nothing of it.
    let (_, ev, _) = run(&cap, rules, &[]);
    assert!(ev
        .iter()
        .all(|e| e["alert"].get("xff").is_none() && e["http"].get("xff").is_none()));
    // Extra data, reverse: the last address; an alert has it in its alert
    // object, the http event in its http object; no address, none.
    let (_, ev, _) = run(&cap, rules, &["--xff", "extra-data"]);
    assert_eq!(by_tx(&ev, "alert", 1, 0)["alert"]["xff"], "192.0.2.44");
    assert_eq!(by_tx(&ev, "http", 0, 0)["http"]["xff"], "192.0.2.44");
    assert!(by_tx(&ev, "alert", 1, 1)["alert"].get("xff").is_none());
    assert!(by_tx(&ev, "http", 0, 1)["http"].get("xff").is_none());
    // Forward: the first.
    let (_, ev, _) = run(
        &cap,
        rules,
        &["--xff", "extra-data", "--xff-deployment", "forward"],
    );
    assert_eq!(by_tx(&ev, "alert", 1, 0)["alert"]["xff"], "198.51.100.7");
    // Overwrite: the client's address is replaced, on the side it is on.
    let (_, ev, _) = run(&cap, rules, &["--xff", "overwrite"]);
    let up = by_tx(&ev, "alert", 1, 0);
    assert_eq!(
        (up["src_ip"].as_str(), up["dest_ip"].as_str()),
        (Some("192.0.2.44"), Some("203.0.113.9"))
    );
    let down = by_tx(&ev, "alert", 2, 0);
    assert_eq!(
        (down["src_ip"].as_str(), down["dest_ip"].as_str()),
        (Some("203.0.113.9"), Some("192.0.2.44"))
    );
    assert_eq!(by_tx(&ev, "http", 0, 0)["src_ip"], "192.0.2.44");
    assert_eq!(by_tx(&ev, "alert", 1, 1)["src_ip"], "10.1.0.5");
    // Another header.
    let c = exchange(
        40101,
        &[(b"GET / HTTP/1.1\r\nX-Real-IP: 192.0.2.9\r\n\r\n", OK)],
        1460,
    );
    let (_, ev, _) = run(
        &c,
        rules,
        &["--xff", "extra-data", "--xff-header", "x-real-ip"],
    );
    assert_eq!(by_tx(&ev, "http", 0, 0)["http"]["xff"], "192.0.2.9");
    // Where the fields go is Suricata's schema's.
    let dir = Scratch::new("http-xff-schema");
    let r = dir.write("t.rules", rules.as_bytes());
    replay_events(&dir, &cap, &r, &["--xff", "extra-data"]);
    common::validate_eve(&[&dir.path("eve.json")], true);
}

/// A `curl -F` style upload: a config file and a pickled model.
fn multipart_upload(port: u16) -> Capture {
    let b = "----tollgate-7d2f";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nrelease 3\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"cfg\"; filename=\"config.json\"\r\nContent-Type: application/json\r\n\r\n{{\"arch\":\"llama\"}}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"weights\"; filename=\"model.pkl\"\r\nContent-Type: application/octet-stream\r\n\r\n\x02cposix\nsystem\n\r\n\
         --{b}--\r\n"
    );
    let req = format!(
        "POST /api/upload HTTP/1.1\r\nHost: registry\r\nContent-Type: multipart/form-data; boundary={b}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Small segments: parts and delimiters cross them.
    exchange(port, &[(req.as_bytes(), OK)], 64)
}

#[test]
fn each_file_of_a_multipart_upload_is_its_own_file() {
    let rules = r#"
alert http any any -> any any (msg:"pickle"; file.data; content:"cposix"; file.name; content:".pkl"; endswith; sid:1;)
alert http any any -> any any (msg:"name"; file.name; content:"config.json"; startswith; endswith; sid:2;)
alert http any any -> any any (msg:"one file holds both"; file.data; content:"llama"; content:"system"; sid:3;)
alert http any any -> any any (msg:"two files hold them"; file.data; content:"llama"; file.data; content:"system"; sid:4;)
alert http any any -> any any (msg:"a field is no file"; file.data; content:"release 3"; sid:5;)
alert http any any -> any any (msg:"responses only"; flow:to_client; file.data; content:"cposix"; sid:6;)
alert http any any -> any any (msg:"the whole body"; http.request_body; content:"release 3"; sid:7;)
"#;
    let (sids, events, _) = run(
        &multipart_upload(41140),
        rules,
        &["--file-hashes", "sha256"],
    );
    assert_eq!(sids, [1, 2, 4, 7]);
    let files: Vec<(&str, u64, &str)> = events
        .iter()
        .filter(|e| e["event_type"] == "fileinfo")
        .map(|e| {
            let f = &e["fileinfo"];
            (
                f["filename"].as_str().unwrap(),
                f["size"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap_or(""),
            )
        })
        .collect();
    use sha2::Digest;
    let sha = |b: &[u8]| {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let (cfg, pkl) = (&b"{\"arch\":\"llama\"}"[..], &b"\x02cposix\nsystem\n"[..]);
    let (cfg_sha, pkl_sha, ok_sha) = (sha(cfg), sha(pkl), sha(b"ok"));
    assert_eq!(
        files,
        [
            ("config.json", cfg.len() as u64, cfg_sha.as_str()),
            ("model.pkl", pkl.len() as u64, pkl_sha.as_str()),
            ("/api/upload", 2, ok_sha.as_str()),
        ]
    );
    // Without a multipart body, a POST's body is its one file, on the
    // request side (a rule that does not say which side sees it).
    let post =
        b"POST /v1/files HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\n\r\n\x80\x04cposix\nsystem"
            as &[u8];
    let (sids, events, _) = run(&exchange(41141, &[(post, OK)], 1460), rules, &[]);
    assert!(sids.is_empty(), "{sids:?}");
    let r = "alert http any any -> any any (file.data; content:\"cposix\"; sid:9;)\n";
    let (sids, _, _) = run(&exchange(41142, &[(post, OK)], 1460), r, &[]);
    assert_eq!(sids, [9]);
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["event_type"] == "fileinfo")
        .map(|e| e["fileinfo"]["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/v1/files", "/v1/files"]);
    // A part's own hash is what filesha256 lists match.
    let dir = Scratch::new("http-multipart-hash");
    dir.write("bad.txt", format!("{pkl_sha}\n").as_bytes());
    let r = dir.write(
        "t.rules",
        b"alert http any any -> any any (filesha256:bad.txt; sid:10;)\n",
    );
    let (events, _) = replay_events(&dir, &multipart_upload(41143), &r, &[]);
    assert_eq!(alerts(&events).count(), 1);
    dir.write("bad.txt", format!("{}\n", sha(b"another file")).as_bytes());
    let (events, _) = replay_events(&dir, &multipart_upload(41144), &r, &[]);
    assert_eq!(alerts(&events).count(), 0);
}

#[test]
fn datasets_are_looked_up_added_to_and_kept_across_runs() {
    let dir = Scratch::new("http-datasets");
    // Hosts of LLM APIs an agent must not reach (base64, Suricata's format).
    dir.write("llm-hosts.lst", b"YXBpLm9wZW5haS5jb20=\n# a comment\n");
    let r = dir.write(
        "t.rules",
        br#"alert http any any -> any any (msg:"listed host"; http.host; dataset:isset,llm-hosts,type string,load llm-hosts.lst; sid:1;)
alert http any any -> any any (msg:"new agent"; http.user_agent; dataset:set,ua-seen,type string,state ua.lst; sid:2;)
"#,
    );
    let req = |host: &str, ua: &str| {
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n\r\n").into_bytes()
    };
    let (a, b, c) = (
        req("api.openai.com", "agent/1"),
        req("intranet.local", "agent/1"),
        req("intranet.local", "agent/2"),
    );
    let cap = exchange(41150, &[(&a, OK), (&b, OK), (&c, OK)], 1460);
    let data = dir.path("");
    let args = ["--data-dir", common::s(&data)];
    let (events, _) = replay_events(&dir, &cap, &r, &args);
    let hits: Vec<(u64, u64)> = alerts(&events)
        .map(|e| {
            (
                e["alert"]["signature_id"].as_u64().unwrap(),
                e["tx_id"].as_u64().unwrap(),
            )
        })
        .collect();
    // The listed host once; each agent the first time it is seen.
    assert_eq!(hits, [(1, 0), (2, 0), (2, 2)]);
    let mut saved: Vec<String> = std::fs::read_to_string(dir.path("ua.lst"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    saved.sort();
    assert_eq!(saved, ["YWdlbnQvMQ==", "YWdlbnQvMg=="]);
    // The next run starts from the state it left: no agent is new.
    let (events, _) = replay_events(&dir, &cap, &r, &args);
    assert_eq!(
        alerts(&events)
            .filter(|e| e["alert"]["signature_id"] == 2)
            .count(),
        0
    );
    // A rule may write only inside the data directory.
    let bad = dir.write(
        "bad.rules",
        b"alert http any any -> any any (http.host; dataset:set,x,save ../x.lst; sid:3;)\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "replay",
            common::s(&dir.path("c.pcap")),
            "--rules",
            common::s(&bad),
            "--rules-unsupported",
            "error",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.rules:1") && err.contains("without `..`"),
        "{err}"
    );
}
