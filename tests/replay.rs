//! End-to-end: the `tollgate` binary replays captures built with the
//! project's capture library, and the tests read what it wrote (stats JSON,
//! EVE, stderr, exit code) the way an operator's tooling would.

mod common;
use common::{s, sum_values, Scratch};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tollgate::craft::{Capture, Ipv6Ext, Route, Side, TcpConversation};
use tollgate::decode::decode;
use tollgate::rss::{Reta, Toeplitz, SYMMETRIC_KEY};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_767_225_600 * SEC; // 2026-01-01T00:00:00Z

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate")
}

/// Replays with --stats-json and --eve and returns (output, stats, events).
fn replay(dir: &Scratch, files: &[&Path], extra: &[&str]) -> (Output, Value, Vec<Value>) {
    let stats = dir.path("stats.json");
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let mut args = vec![
        "replay",
        "--stats-interval",
        "0",
        "--stats-json",
        s(&stats),
        "--eve",
        s(&eve),
    ];
    args.extend(files.iter().map(|f| s(f)));
    args.extend_from_slice(extra);
    let out = tollgate(&args);
    let stats: Value = std::fs::read(&stats)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let events = std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every EVE line is JSON"))
        .collect();
    (out, stats, events)
}

/// The flow records among `events`.
fn flows_only(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .filter(|e| e["event_type"] == "flow")
        .collect()
}

/// Events without the capture file they name (`pcap_filename`), to compare
/// replays of the same packets from different files.
fn unnamed(v: &[Value]) -> Vec<Value> {
    v.iter()
        .cloned()
        .map(|mut e| {
            e.as_object_mut().unwrap().remove("pcap_filename");
            e
        })
        .collect()
}

/// Counts records the simple way, independently of the reader under test.
fn count_records(bytes: &[u8]) -> u64 {
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let mut n = 0;
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let (kind, len) = (le32(&bytes[at..]), le32(&bytes[at + 4..]));
            if at + len > bytes.len() {
                break;
            }
            n += u64::from(matches!(kind, 2 | 3 | 6));
            at += len;
        }
    } else {
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let caplen = le32(&bytes[at + 8..]);
            if at + 16 + caplen > bytes.len() {
                break;
            }
            n += 1;
            at += 16 + caplen;
        }
    }
    n
}

fn capinfos_count(path: &Path) -> Option<u64> {
    let out = Command::new("capinfos")
        .args(["-c", "-M", s(path)])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("Number of packets"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- captures

fn conversations(n: usize, vlan: Option<u16>) -> Capture {
    let mut cap = Capture::new();
    // Clients and ports vary the way real ones do (not in lockstep): the
    // symmetric RSS key hashes only the 16-bit XOR-fold of the tuple, which
    // sequential addresses and ports moving together would defeat.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let b = ((x >> 32) as u32).to_be_bytes();
        let client = format!("10.{}.{}.{}", 8 + b[0] % 8, b[1], 1 + b[2] % 250);
        let mut r = Route::new(ip(&client), ip("10.9.0.1"));
        if let Some(v) = vlan {
            r = r.vlan(v);
        }
        let port = 20000 + u16::from(b[3]) * 97 % 40000 + i as u16;
        let mut c = TcpConversation::new(r, port, 443, T0 + i as u64 * 1_000_000);
        c.handshake()
            .send(
                Side::Client,
                &vec![b'a' + (i % 26) as u8; 700 + i * 13 % 3000],
                1448,
            )
            .send(Side::Server, &vec![b'z'; 200 + i * 7 % 2000], 1448)
            .close(Side::Client);
        cap.extend(c.into_packets());
    }
    cap
}

fn layered() -> Capture {
    let mut cap = Capture::new();
    let v6 = Route::new(ip("2001:db8::1"), ip("2001:db8::2")).ipv6_ext(&[
        Ipv6Ext::HopByHop,
        Ipv6Ext::Routing,
        Ipv6Ext::DestOpts,
    ]);
    let mut c = TcpConversation::new(v6, 33000, 8000, T0);
    c.handshake()
        .send(Side::Client, b"POST /v1/embeddings HTTP/1.1\r\n\r\n", 10)
        .close(Side::Server);
    cap.extend(c.into_packets());
    let q = Route::new(ip("192.168.7.1"), ip("192.168.7.2")).qinq(100, 42);
    let mut c = TcpConversation::new(q, 33001, 8000, T0 + SEC);
    c.handshake()
        .send(Side::Client, b"hello", 100)
        .reset(Side::Server);
    cap.extend(c.into_packets());
    let opts = Route::new(ip("172.16.0.1"), ip("172.16.0.2")).ipv4_options(&[0x94, 4, 0, 0]);
    cap.push(T0 + 2 * SEC, opts.udp(40123, 45678, b"query"));
    cap.push(
        T0 + 2 * SEC + 1000,
        opts.reversed().udp(45678, 40123, b"answer"),
    );
    cap.push(T0 + 3 * SEC, opts.icmp(8, 0, [0, 1, 0, 1], b"ping"));
    cap
}

fn garbage() -> Capture {
    let mut cap = layered();
    let mut x: u32 = 0xdead_beef;
    for i in 0..300u64 {
        let len = 14 + (i as usize * 7) % 120;
        let mut f: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if i % 3 == 0 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        } else if i % 3 == 1 && f.len() > 20 {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60;
        }
        cap.push(T0 + 4 * SEC + i, f);
    }
    cap
}

// ------------------------------------------------------------- accounting

#[test]
fn accounting_chain_holds_for_every_capture_in_the_suite() {
    let dir = Scratch::new("accounting");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let suite: Vec<(PathBuf, Vec<u8>)> = vec![
        (sample.clone(), std::fs::read(&sample).unwrap()),
        ("conv.pcap".into(), conversations(300, None).to_pcap()),
        ("vlan.pcapng".into(), conversations(40, Some(7)).to_pcapng()),
        ("layered.pcap".into(), layered().to_pcap()),
        ("garbage.pcapng".into(), garbage().to_pcapng()),
    ];
    for (name, bytes) in &suite {
        let path = if name.is_absolute() {
            name.clone()
        } else {
            dir.write(name.to_str().unwrap(), bytes)
        };
        let expected = count_records(bytes);
        if let Some(c) = capinfos_count(&path) {
            assert_eq!(
                c, expected,
                "capinfos and the test's own count agree on {name:?}"
            );
        }
        for extra in [
            &["--workers", "1"][..],
            &["--workers", "2"],
            &["--workers", "3", "--mode", "ips", "--malformed", "drop"],
        ] {
            let (out, st, _) = replay(&dir, &[&path], extra);
            assert!(
                out.status.success(),
                "{name:?} {extra:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rx = st["packets"]["rx"].as_u64().unwrap();
            let tx = st["packets"]["tx"].as_u64().unwrap();
            let dropped: u64 = sum_values(&st["packets"]["dropped"]);
            let workers = st["workers"].as_array().unwrap();
            let worker_rx: u64 = workers
                .iter()
                .map(|w| w["packets"]["rx"].as_u64().unwrap())
                .sum();
            assert_eq!(
                st["capture"]["records"].as_u64().unwrap(),
                expected,
                "reader = file, {name:?}"
            );
            assert_eq!(
                worker_rx, expected,
                "reader = sum of worker rx, {name:?} {extra:?}"
            );
            assert_eq!(rx, tx + dropped, "rx = tx + dropped, {name:?} {extra:?}");
            assert_eq!(
                st["sink"]["packets"].as_u64().unwrap(),
                tx,
                "sink = tx, {name:?} {extra:?}"
            );
            for w in workers {
                let wd: u64 = sum_values(&w["packets"]["dropped"]);
                assert_eq!(
                    w["packets"]["rx"].as_u64().unwrap(),
                    w["packets"]["tx"].as_u64().unwrap() + wd
                );
            }
            let errors: u64 = sum_values(&st["decode_errors"]);
            if extra.contains(&"drop") {
                // Inline, the malformed packets go, and the segments the
                // TCP tracker refuses (the sample's blind RST): nothing else.
                let d = &st["packets"]["dropped"];
                assert_eq!(d["malformed"], errors, "{name:?}");
                let refused = sum_values(&st["tcp"]);
                assert_eq!(
                    dropped,
                    errors + refused,
                    "IPS drops the malformed and the refused, {name:?}"
                );
                assert_eq!(
                    d["insertion"].as_u64().unwrap() + d["invalid_checksum"].as_u64().unwrap(),
                    refused
                );
            } else {
                assert_eq!(dropped, 0, "IDS never drops");
            }
            assert_eq!(
                st["flows"]["created"], st["flows"]["ended"],
                "every flow gets a record"
            );
            let l = &st["latency_ns"];
            let q = |k: &str| l[k].as_u64().unwrap();
            assert!(
                q("p50") > 0
                    && q("p50") <= q("p99")
                    && q("p99") <= q("p999")
                    && q("p999") <= q("max"),
                "{l}"
            );
            for w in workers {
                assert!(w["latency_ns"]["max"].as_u64().unwrap() <= q("max"));
            }
        }
    }
}

#[test]
fn garbage_is_counted_by_reason_and_never_kills_the_run() {
    let dir = Scratch::new("garbage");
    let path = dir.write("g.pcap", &garbage().to_pcap());
    let (out, st, _) = replay(&dir, &[&path], &["--workers", "2"]);
    assert!(out.status.success());
    let errors = st["decode_errors"].as_object().unwrap();
    assert!(errors.len() >= 4, "several distinct reasons: {errors:?}");
    assert!(errors.keys().all(|k| k.contains('.')), "layer.reason names");
}

// -------------------------------------------------------------- flows, RSS

#[test]
fn both_directions_meet_on_the_worker_rss_picks() {
    let dir = Scratch::new("rss");
    let cap = conversations(200, None);
    let path = dir.write("c.pcap", &cap.to_pcap());
    let (out, st, events) = replay(&dir, &[&path], &["--workers", "3"]);
    assert!(out.status.success());
    assert_eq!(
        events.len(),
        200,
        "one record per conversation: no flow split in two"
    );
    let t = Toeplitz::new(&SYMMETRIC_KEY);
    let reta = Reta::new(3);
    let mut per_worker = [0u64; 3];
    for e in &events {
        assert!(e["flow"]["pkts_toserver"].as_u64().unwrap() > 0);
        assert!(e["flow"]["pkts_toclient"].as_u64().unwrap() > 0);
        assert_eq!(e["flow"]["state"], "closed");
        // The worker is the one a NIC with the symmetric key would choose.
        let f = Route::new(
            ip(e["src_ip"].as_str().unwrap()),
            ip(e["dest_ip"].as_str().unwrap()),
        )
        .tcp(
            e["src_port"].as_u64().unwrap() as u16,
            e["dest_port"].as_u64().unwrap() as u16,
            0,
            0,
            0x10,
            0,
            &[],
            &[],
        );
        let k = reta.queue(t.hash_packet(&decode(&f).unwrap()));
        assert_eq!(e["tollgate"]["worker"], u64::from(k));
        per_worker[usize::from(k)] += 1;
    }
    assert!(
        per_worker.iter().all(|&n| n > 30),
        "RSS spreads flows: {per_worker:?}"
    );
    let ws = st["workers"].as_array().unwrap();
    for (k, w) in ws.iter().enumerate() {
        assert_eq!(w["flows"]["created"].as_u64().unwrap(), per_worker[k]);
    }
    let mut ids: Vec<u64> = events
        .iter()
        .map(|e| e["flow_id"].as_u64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "flow ids unique across workers");
    assert!(ids.iter().all(|&i| i > 0 && i < 1 << 51));
}

#[test]
fn eve_flow_records_field_by_field() {
    let dir = Scratch::new("eve");
    let r = Route::new(ip("10.0.0.1"), ip("10.0.0.2")).vlan(42);
    let mut c = TcpConversation::new(r.clone(), 40000, 8000, T0 + 500_000);
    c.handshake()
        .send(Side::Client, b"GET /v1/models HTTP/1.1\r\n\r\n", 1448)
        .close(Side::Client);
    let pkts = c.into_packets();
    let mut cap = Capture::new();
    cap.extend(pkts.clone());
    let ping = Route::new(ip("10.0.0.1"), ip("10.0.0.3"));
    cap.push(T0 + 2 * SEC, ping.icmp(8, 0, [0, 9, 0, 1], b"x"));
    cap.push(
        T0 + 2 * SEC + 1000,
        ping.reversed().icmp(0, 0, [0, 9, 0, 1], b"x"),
    );
    let path = dir.write("e.pcap", &cap.to_pcap());
    let (out, _, events) = replay(&dir, &[&path], &["--closed-timeout", "0"]);
    assert!(out.status.success());
    // The flow records (the request is also an http event).
    let events = flows_only(events);
    assert_eq!(events.len(), 2);
    let tcp = events.iter().find(|e| e["proto"] == "TCP").unwrap();
    let (to_server, to_client): (Vec<_>, Vec<_>) = pkts
        .iter()
        .partition(|(_, f)| decode(f).unwrap().src_port == 40000);
    let bytes = |v: &[&(u64, Vec<u8>)]| v.iter().map(|(_, f)| f.len() as u64).sum::<u64>();
    assert_eq!(tcp["event_type"], "flow");
    // Logged when it ended, as Suricata stamps flow events: at the next
    // packet (the ping, 2 s in), since the closed timeout is 0.
    assert_eq!(tcp["timestamp"], "2026-01-01T00:00:02.000000+0000");
    assert_eq!(tcp["src_ip"], "10.0.0.1");
    assert_eq!(tcp["src_port"], 40000);
    assert_eq!(tcp["dest_ip"], "10.0.0.2");
    assert_eq!(tcp["dest_port"], 8000);
    assert_eq!(tcp["vlan"], serde_json::json!([42]));
    assert_eq!(tcp["flow"]["pkts_toserver"], to_server.len() as u64);
    assert_eq!(tcp["flow"]["pkts_toclient"], to_client.len() as u64);
    assert_eq!(tcp["flow"]["bytes_toserver"], bytes(&to_server));
    assert_eq!(tcp["flow"]["bytes_toclient"], bytes(&to_client));
    assert_eq!(tcp["flow"]["start"], "2026-01-01T00:00:00.000500+0000");
    assert_eq!(tcp["flow"]["end"], "2026-01-01T00:00:00.008500+0000");
    assert_eq!(tcp["flow"]["age"], 0);
    assert_eq!(tcp["flow"]["state"], "closed");
    assert_eq!(
        tcp["flow"]["reason"], "timeout",
        "closed timeout 0 ends it at the next packet"
    );
    assert_eq!(tcp["flow"]["alerted"], false);
    assert_eq!(tcp["tcp"]["tcp_flags"], "1b");
    assert_eq!(tcp["tcp"]["tcp_flags_ts"], "1b");
    assert_eq!(
        tcp["tcp"]["tcp_flags_tc"], "13",
        "the server sent no data: no PSH"
    );
    assert_eq!(tcp["tcp"]["syn"], true);
    assert_eq!(tcp["tcp"]["fin"], true);
    assert_eq!(tcp["tcp"]["psh"], true);
    assert_eq!(tcp["tcp"]["ack"], true);
    assert!(tcp["tcp"].get("rst").is_none());
    assert_eq!(tcp["tcp"]["state"], "closed");
    let icmp = events.iter().find(|e| e["proto"] == "ICMP").unwrap();
    assert_eq!(icmp["icmp_type"], 8);
    assert_eq!(icmp["icmp_code"], 0);
    assert_eq!(icmp["response_icmp_type"], 0);
    assert_eq!(icmp["response_icmp_code"], 0);
    assert!(icmp.get("src_port").is_none());
    assert_eq!(icmp["flow"]["state"], "established");
    assert_eq!(icmp["flow"]["reason"], "shutdown");
}

#[test]
fn timeouts_run_on_capture_time_even_for_idle_workers() {
    let dir = Scratch::new("timeouts");
    let mut cap = Capture::new();
    // Flow A speaks once at t=0; flow B keeps the capture going for 100 s.
    let a = Route::new(ip("10.1.0.1"), ip("10.2.0.1"));
    cap.push(T0, a.udp(1111, 53, b"a"));
    let b = Route::new(ip("10.3.0.7"), ip("10.4.0.9"));
    for i in 0..=10 {
        cap.push(T0 + i * 10 * SEC, b.udp(2222, 4444, b"b"));
    }
    let path = dir.write("t.pcap", &cap.to_pcap());
    for workers in ["1", "2"] {
        let (out, st, events) = replay(
            &dir,
            &[&path],
            &["--workers", workers, "--new-timeout", "30s"],
        );
        assert!(out.status.success());
        let ra = events.iter().find(|e| e["src_port"] == 1111).unwrap();
        let rb = events.iter().find(|e| e["src_port"] == 2222).unwrap();
        assert_eq!(ra["flow"]["reason"], "timeout", "workers={workers}");
        assert_eq!(
            rb["flow"]["reason"], "shutdown",
            "busy flow is alive at the end"
        );
        assert_eq!(st["flows"]["timed_out"], 1);
    }
    // The replay took milliseconds of wall time; a wall clock would never
    // have reached 30 s. Now the same with a long timeout: no timeout at all.
    let (_, _, events) = replay(&dir, &[&path], &["--new-timeout", "5m"]);
    assert!(events.iter().all(|e| e["flow"]["reason"] == "shutdown"));
}

#[test]
fn full_table_evicts_and_says_so() {
    let dir = Scratch::new("evict");
    let mut cap = Capture::new();
    let r = Route::new(ip("10.1.0.1"), ip("10.2.0.1"));
    for p in 0..10u16 {
        cap.push(T0 + u64::from(p) * 1000, r.udp(1000 + p, 53, b"q"));
    }
    let path = dir.write("f.pcap", &cap.to_pcap());
    let (out, st, events) = replay(&dir, &[&path], &["--flow-capacity", "4"]);
    assert!(out.status.success());
    assert_eq!(st["flows"]["evicted"], 6);
    assert_eq!(st["flows"]["created"], 10);
    assert_eq!(st["flows"]["active_peak"], 4);
    let forced: Vec<u64> = events
        .iter()
        .filter(|e| e["flow"]["reason"] == "forced")
        .map(|e| e["src_port"].as_u64().unwrap())
        .collect();
    assert_eq!(forced, (1000..1006).collect::<Vec<_>>(), "oldest first");
}

#[test]
fn loops_make_new_flows_with_shifted_addresses_and_time() {
    let dir = Scratch::new("loop");
    let path = dir.write("c.pcap", &conversations(5, None).to_pcap());
    let (out, st, events) = replay(&dir, &[&path], &["--loop", "3", "--workers", "2"]);
    assert!(out.status.success());
    assert_eq!(
        st["capture"]["records"].as_u64().unwrap(),
        3 * count_records(&std::fs::read(&path).unwrap())
    );
    assert_eq!(events.len(), 15);
    let mut srcs: Vec<&str> = events
        .iter()
        .map(|e| e["src_ip"].as_str().unwrap())
        .collect();
    srcs.sort();
    srcs.dedup();
    assert_eq!(srcs.len(), 15, "each pass shows new hosts");
    let starts: Vec<&str> = events
        .iter()
        .map(|e| e["flow"]["start"].as_str().unwrap())
        .collect();
    assert!(starts.iter().any(|s| s.starts_with("2026-01-01T00:00:00")));
    assert!(
        starts.iter().any(|s| s.starts_with("2026-01-01T00:00:01")),
        "later passes start later"
    );
}

#[test]
fn loops_keep_checksums_good_and_alert_on_every_pass() {
    let dir = Scratch::new("loop-sum");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let (_, one, e1) = replay(&dir, &[&sample], &["--checksum", "on"]);
    let (out, two, e2) = replay(&dir, &[&sample], &["--checksum", "on", "--loop", "2"]);
    assert!(out.status.success());
    for st in [&one, &two] {
        assert_eq!(st["checksums"]["tcp_bad"], 0, "{}", st["checksums"]);
        assert_eq!(st["checksums"]["ipv4_bad"], 0);
        assert_eq!(st["packets"]["dropped"]["invalid_checksum"], 0);
    }
    let alerts = |e: &[Value]| -> Vec<Value> {
        e.iter()
            .filter(|e| e["event_type"] == "alert")
            .cloned()
            .collect()
    };
    let (a1, a2) = (alerts(&e1), alerts(&e2));
    assert!(!a1.is_empty());
    assert_eq!(a2.len(), 2 * a1.len(), "every pass alerts alike");
    assert_eq!(
        two["rules"]["alerts"],
        2 * one["rules"]["alerts"].as_u64().unwrap()
    );
    // The second pass's alerts name its own, shifted, hosts.
    let hosts = |a: &[Value]| -> std::collections::BTreeSet<String> {
        a.iter()
            .map(|a| a["src_ip"].as_str().unwrap().to_string())
            .collect()
    };
    let (h1, h2) = (hosts(&a1), hosts(&a2));
    assert!(h1.is_subset(&h2));
    assert_eq!(h2.len(), 2 * h1.len(), "{h2:?}");
}

#[test]
fn paced_replay_counts_the_same() {
    let dir = Scratch::new("speed");
    let path = dir.write("c.pcap", &conversations(20, None).to_pcap());
    let (_, fast, _) = replay(&dir, &[&path], &[]);
    let (out, paced, _) = replay(&dir, &[&path], &["--speed", "50"]);
    assert!(out.status.success());
    assert_eq!(fast["packets"], paced["packets"]);
    assert_eq!(fast["flows"], paced["flows"]);
}

#[test]
fn pcap_and_pcapng_replay_identically() {
    let dir = Scratch::new("formats");
    let cap = layered();
    let a = dir.write("a.pcap", &cap.to_pcap());
    let b = dir.write("b.pcapng", &cap.to_pcapng());
    let (_, sa, ea) = replay(&dir, &[&a], &[]);
    let (_, sb, eb) = replay(&dir, &[&b], &[]);
    assert_eq!(sa["packets"], sb["packets"]);
    assert_eq!(sa["flows"], sb["flows"]);
    assert!(ea.iter().all(|e| e["pcap_filename"] == s(&a)));
    assert_eq!(unnamed(&ea), unnamed(&eb));
    assert_eq!(
        ea.iter()
            .filter(|e| e["vlan"] == serde_json::json!([100, 42]))
            .count(),
        1,
        "QinQ"
    );
    assert!(
        ea.iter()
            .any(|e| e["src_ip"] == "2001:0db8:0000:0000:0000:0000:0000:0001"),
        "IPv6 with extension headers"
    );
}

#[test]
fn committed_sample_is_what_the_library_builds() {
    let committed =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap")).unwrap();
    assert!(
        committed == tollgate::sample::build().to_pcap(),
        "pcaps/sample.pcap is stale: cargo run --example make_sample -- pcaps/sample.pcap"
    );
}

#[test]
fn generated_captures_open_cleanly_in_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("tshark not installed: skipping the independent dissector check");
        return;
    }
    let dir = Scratch::new("tshark");
    for (name, bytes) in [
        ("c.pcap", conversations(10, Some(5)).to_pcap()),
        ("l.pcapng", layered().to_pcapng()),
    ] {
        let path = dir.write(name, &bytes);
        let out = Command::new("tshark")
            .args(["-r", s(&path), "-z", "expert,warn", "-q"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("Malformed"), "{name}: {text}");
        assert!(
            !text.contains("Bad checksum") && !text.contains("incorrect"),
            "{name}: {text}"
        );
    }
}

// ---------------------------------------------------------------- errors

fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2 for bad input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stderr_lines(out);
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(
        lines[0].contains(needle),
        "{:?} should name {needle:?}",
        lines[0]
    );
    assert!(!lines[0].contains("panicked") && !lines[0].contains("backtrace"));
}

#[test]
fn bad_captures_are_one_line_and_exit_2() {
    let dir = Scratch::new("badcap");
    let out = tollgate(&["replay", "/nonexistent/dir/x.pcap"]);
    assert_one_line_error(&out, "/nonexistent/dir/x.pcap");
    let out = tollgate(&["replay", s(&dir.0)]);
    assert_one_line_error(&out, "directory");
    let empty = dir.write("empty.pcap", b"");
    assert_one_line_error(&tollgate(&["replay", s(&empty)]), "too short");
    let junk = dir.write("junk.pcap", b"this is not a capture file at all");
    assert_one_line_error(
        &tollgate(&["replay", s(&junk)]),
        "not a pcap or pcapng file",
    );
    let mut wifi = Capture::new().to_pcap();
    wifi[20] = 105;
    let raw = dir.write("raw.pcap", &wifi);
    assert_one_line_error(&tollgate(&["replay", s(&raw)]), "802.11");
    // A good file first does not hide a bad one later: all are checked first.
    let good = dir.write("good.pcap", &layered().to_pcap());
    assert_one_line_error(&tollgate(&["replay", s(&good), s(&raw)]), "raw.pcap");
    // Permission checks do not apply to root, so only an ordinary user can see this one.
    let secret = dir.write("secret.pcap", &layered().to_pcap());
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(true);
    if !is_root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert_one_line_error(&tollgate(&["replay", s(&secret)]), "Permission denied");
    }
}

#[test]
fn pcapng_with_a_foreign_interface_is_refused() {
    let dir = Scratch::new("ngfor");
    let mut b = layered().to_pcapng();
    b[28 + 8] = 105; // the IDB's link type: 802.11
    let p = dir.write("wifi.pcapng", &b);
    let out = tollgate(&["replay", "--stats-interval", "0", s(&p)]);
    assert_eq!(out.status.code(), Some(2));
    let last = stderr_lines(&out).pop().unwrap();
    assert!(
        last.contains("not supported") && last.contains("wifi.pcapng"),
        "{last}"
    );
}

/// `cap`'s Ethernet frames under another link header, as a pcap of that
/// link type (`ng`: a pcapng whose interface has it).
fn relinked(cap: &Capture, link: u32, ng: bool) -> Vec<u8> {
    let frames: Vec<(u64, Vec<u8>)> = cap
        .packets
        .iter()
        .map(|(ts, f)| {
            let (src, ethertype, l3) = (&f[6..12], [f[12], f[13]], &f[14..]);
            let head: Vec<u8> = match link {
                // SLL: outgoing, ARPHRD_ETHER, a 6-byte address, protocol.
                113 => [&[0, 4, 0, 1, 0, 6][..], src, &[0, 0], &ethertype].concat(),
                // SLL2: protocol, reserved, ifindex, ARPHRD, type, length, address.
                276 => [
                    &ethertype[..],
                    &[0, 0, 0, 0, 0, 3, 0, 1, 4, 6],
                    src,
                    &[0, 0],
                ]
                .concat(),
                // BSD loopback: AF_INET / AF_INET6 (macOS), host byte order.
                0 => (if ethertype == [0x86, 0xdd] { 30u32 } else { 2 })
                    .to_le_bytes()
                    .to_vec(),
                _ => Vec::new(),
            };
            (*ts, [head.as_slice(), l3].concat())
        })
        .collect();
    let relinked = Capture { packets: frames };
    let mut buf = if ng {
        relinked.to_pcapng()
    } else {
        relinked.to_pcap()
    };
    if ng {
        buf[28 + 8..28 + 10].copy_from_slice(&(link as u16).to_le_bytes());
    } else {
        buf[20..24].copy_from_slice(&link.to_le_bytes());
    }
    buf
}

#[test]
fn linux_cooked_raw_ip_and_loopback_captures_replay_like_ethernet() {
    let dir = Scratch::new("links");
    let mut cap = conversations(6, None);
    let v6 = Route::new(ip("2001:db8::1"), ip("2001:db8::2"));
    let mut c = TcpConversation::new(v6, 40000, 443, T0);
    c.handshake()
        .send(Side::Client, b"GET /v1/models", 1448)
        .close(Side::Client);
    cap.extend(c.into_packets());
    let rules = dir.write(
        "r.rules",
        b"alert tcp any any -> any any (msg:\"models\"; content:\"/v1/models\"; sid:1;)\n",
    );
    let eth = dir.write("eth.pcap", &cap.to_pcap());
    let (_, st, want) = replay(&dir, &[&eth], &["--rules", s(&rules)]);
    assert_eq!(
        want.iter().filter(|e| e["event_type"] == "alert").count(),
        1
    );
    for (link, ng) in [
        (113, false),
        (276, false),
        (101, false),
        (0, false),
        (113, true),
    ] {
        let p = dir.write(&format!("l{link}{ng}.cap"), &relinked(&cap, link, ng));
        let (out, st2, got) = replay(&dir, &[&p], &["--rules", s(&rules)]);
        assert!(
            out.status.success(),
            "link {link}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(st2["packets"], st["packets"], "link {link}");
        assert_eq!(st2["decode_errors"], st["decode_errors"], "link {link}");
        assert_eq!(
            unnamed(&got),
            unnamed(&want),
            "link {link} (pcapng {ng}): the same events"
        );
    }
}

#[test]
fn truncated_capture_processes_every_whole_record_then_reports() {
    let dir = Scratch::new("trunc");
    let full = conversations(3, None).to_pcap();
    let whole = count_records(&full);
    let cut = dir.write("cut.pcap", &full[..full.len() - 20]);
    let (out, st, events) = replay(&dir, &[&cut], &[]);
    assert_one_line_error(&out, "cut mid-record");
    assert_eq!(st["capture"]["records"].as_u64().unwrap(), whole - 1);
    assert_eq!(st["packets"]["rx"].as_u64().unwrap(), whole - 1);
    assert_eq!(st["capture"]["truncated_files"], 1);
    assert_eq!(events.len(), 3, "the flows before the cut are all reported");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("packets rx"),
        "summary still printed"
    );
    // A second, whole file after the cut one is still replayed.
    let other = dir.write("other.pcap", &layered().to_pcap());
    let (out, st, _) = replay(&dir, &[&cut, &other], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        st["capture"]["records"].as_u64().unwrap(),
        whole - 1 + count_records(&layered().to_pcap())
    );
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let dir = Scratch::new("flags");
    let f = dir.write("l.pcap", &layered().to_pcap());
    let f = s(&f);
    for (args, needle) in [
        (vec!["replay"], "FILE"),
        (vec!["replay", f, "--bogus"], "--bogus"),
        (vec!["replay", f, "--workers", "0"], "--workers"),
        (vec!["replay", f, "--workers", "100000"], "--workers"),
        (vec!["replay", f, "--mode", "tap"], "--mode"),
        (vec!["replay", f, "--speed", "0"], "--speed"),
        (vec!["replay", f, "--speed", "warp"], "--speed"),
        (vec!["replay", f, "--loop", "0"], "--loop"),
        (vec!["replay", f, "--new-timeout", "30"], "unit"),
        (
            vec!["replay", f, "--stats-interval", "soon"],
            "--stats-interval",
        ),
        (
            vec!["replay", f, "--flow-capacity", "lots"],
            "--flow-capacity",
        ),
        (vec!["replay", f, "--flow-capacity", "0"], "--flow-capacity"),
        (vec!["replay", f, "--cores", "4-2"], "--cores"),
        (vec!["replay", f, "--cores", "999"], "core 999"),
        (
            vec!["replay", f, "--cores", "0", "--workers", "2"],
            "one core per worker",
        ),
        (vec!["replay", f, "--malformed", "drop"], "--mode ips"),
        (
            vec!["replay", f, "--eve", "/nonexistent/dir/eve.json"],
            "/nonexistent/dir/eve.json",
        ),
        (vec!["bogus-command"], "bogus-command"),
    ] {
        let out = tollgate(&args);
        assert_one_line_error(&out, needle);
    }
    assert!(tollgate(&["--help"]).status.success());
    assert!(tollgate(&["replay", "--help"]).status.success());
}

#[test]
fn worker_count_changes_nothing_an_analyst_sees() {
    let dir = Scratch::new("workers");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let conv = dir.write("c.pcap", &conversations(150, Some(3)).to_pcap());
    let canon = |events: Vec<Value>| {
        let mut v: Vec<String> = events
            .into_iter()
            .map(|mut e| {
                let o = e.as_object_mut().unwrap();
                o.remove("flow_id");
                o.remove("tollgate");
                // A flow is logged when its worker's clock ends it, and a
                // worker's clock moves with the packets it gets.
                if o["event_type"] == "flow" {
                    o.remove("timestamp");
                }
                e.to_string()
            })
            .collect();
        v.sort();
        v
    };
    for path in [sample.as_path(), conv.as_path()] {
        let (_, s1, e1) = replay(&dir, &[path], &["--workers", "1"]);
        let (_, s3, e3) = replay(&dir, &[path], &["--workers", "3"]);
        assert_eq!(canon(e1), canon(e3), "{path:?}");
        for k in ["created", "ended", "timed_out", "evicted"] {
            assert_eq!(s1["flows"][k], s3["flows"][k], "{path:?} flows.{k}");
        }
        assert_eq!(s1["decode_errors"], s3["decode_errors"]);
    }
}

#[test]
fn stats_lines_come_at_the_interval_and_not_when_off() {
    let dir = Scratch::new("statsline");
    let path = dir.write("c.pcap", &conversations(20, None).to_pcap());
    // About 30 ms of capture time at 1/20 speed: over half a second of replay.
    let out = tollgate(&[
        "replay",
        s(&path),
        "--speed",
        "0.05",
        "--stats-interval",
        "150ms",
    ]);
    assert!(out.status.success());
    let lines = stderr_lines(&out);
    assert!(!lines.is_empty(), "at least one stats line");
    assert!(
        lines.iter().all(|l| l.starts_with("tollgate: ")
            && l.contains(" rx ")
            && l.contains("flows active")),
        "{lines:?}"
    );
    let out = tollgate(&[
        "replay",
        s(&path),
        "--speed",
        "0.05",
        "--stats-interval",
        "0",
    ]);
    assert!(stderr_lines(&out).is_empty(), "0 turns them off");
}

#[test]
fn vxlan_tenants_with_the_same_addresses_are_separate_flows() {
    let dir = Scratch::new("vxlan");
    let vtep = Route::new(ip("192.0.2.1"), ip("192.0.2.2"));
    let mut cap = Capture::new();
    for (i, vni) in [7001u32, 7002, 7003].iter().enumerate() {
        // The same tenant addresses and ports in every VNI.
        let tenant = Route::new(ip("10.0.0.5"), ip("10.0.0.9"));
        let mut c = TcpConversation::new(tenant, 40000, 8000, T0 + i as u64 * SEC);
        c.handshake()
            .send(Side::Client, b"POST /v1/chat/completions", 1448)
            .close(Side::Client);
        for (ts, f) in c.into_packets() {
            let to_server = decode(&f).unwrap().dst_port == 8000;
            // Each VTEP picks its own outer source port from the inner flow.
            let outer = if to_server {
                vtep.vxlan(50000 + i as u16, *vni, &f)
            } else {
                vtep.reversed().vxlan(60000 + i as u16, *vni, &f)
            };
            cap.push(ts, outer);
        }
    }
    let path = dir.write("v.pcap", &cap.to_pcap());
    for workers in ["1", "3"] {
        let (out, st, events) = replay(&dir, &[&path], &["--workers", workers]);
        assert!(out.status.success());
        let events = flows_only(events);
        assert_eq!(events.len(), 3, "one flow per VNI, workers={workers}");
        let mut vnis: Vec<u64> = events
            .iter()
            .map(|e| e["tollgate"]["vni"].as_u64().unwrap())
            .collect();
        vnis.sort();
        assert_eq!(vnis, [7001, 7002, 7003]);
        for e in &events {
            assert_eq!(
                e["src_ip"], "10.0.0.5",
                "the tenant's addresses, not the VTEPs'"
            );
            assert_eq!(
                e["flow"]["state"], "closed",
                "both directions met on one worker"
            );
        }
        assert_eq!(st["decoded"]["vxlan"], st["packets"]["rx"]);
    }
}

#[test]
fn fragmented_segments_land_in_their_flow_on_its_worker() {
    use tollgate::craft::fragment;
    use tollgate::rss::SoftRss;
    let dir = Scratch::new("frag");
    let rss = SoftRss::new(3);
    let mut cap = Capture::new();
    let mut crossings = 0;
    let mut unfragmented_to_server = std::collections::BTreeMap::new();
    for i in 0..12u16 {
        let client = format!("10.5.{}.{}", i * 7 % 250, 7 + i * 13 % 200);
        let r = Route::new(ip(&client), ip("10.6.0.1"));
        let mut c = TcpConversation::new(r, 41000 + i * 17, 8000, T0 + u64::from(i) * SEC / 10);
        // One 2,800-byte segment: bigger than the path MTU, so it is fragmented.
        c.handshake()
            .send(Side::Client, &vec![b'u'; 2800], 2800)
            .close(Side::Client);
        let mut bytes = 0;
        for (ts, f) in c.into_packets() {
            let d = decode(&f).unwrap();
            if d.dst_port == 8000 {
                bytes += f.len() as u64;
            }
            if d.payload_len > 2000 {
                let frags = fragment(&f, 1000, u32::from(i) + 100);
                if rss.queue_for(&frags[0], 0) != rss.queue_for(&f, 0) {
                    crossings += 1;
                }
                // Out of order (last first), as a network may deliver
                // them: the capture is written in timestamp order.
                let n = frags.len() as u64;
                for (j, fr) in frags.into_iter().enumerate() {
                    cap.push(ts + n - 1 - j as u64, fr);
                }
            } else {
                cap.push(ts, f);
            }
        }
        unfragmented_to_server.insert(client, bytes);
    }
    assert!(
        crossings > 0,
        "the test needs datagrams whose flow lives on another worker"
    );
    // An IPv6 datagram.
    let v6 = Route::new(ip("2001:db8::5"), ip("2001:db8::6")).udp(7000, 7001, &[b'6'; 3000]);
    // In order, so the reader steers all its fragments to the flow's
    // worker from the first one: no handoff (the TCP datagrams above come
    // reversed, so theirs are spread on addresses and handed over).
    let v6_frags = fragment(&v6, 1200, 9);
    for (j, fr) in v6_frags.into_iter().enumerate() {
        cap.push(T0 + 2 * SEC + j as u64, fr);
    }
    // (No jump in capture time here: see incomplete_datagrams_time_out_on_capture_time.)
    let path = dir.write("frag.pcap", &cap.to_pcap());

    let (out, st, events) = replay(&dir, &[&path], &["--workers", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = &st["fragments"];
    assert_eq!(f["reassembled"], 13, "{f}");
    assert_eq!(f["handoffs"], crossings, "{f}");
    assert_eq!(f["handoff_drops"], 0);
    for e in events
        .iter()
        .filter(|e| e["dest_ip"] == "10.6.0.1" && e["proto"] == "TCP")
    {
        let client = e["src_ip"].as_str().unwrap();
        assert_eq!(
            e["flow"]["state"], "closed",
            "{client}: one flow, both directions"
        );
        assert_eq!(
            e["flow"]["pkts_toserver"], 5,
            "the datagram counts as one packet"
        );
        assert_eq!(e["flow"]["bytes_toserver"], unfragmented_to_server[client]);
        let probe = Route::new(ip(client), ip("10.6.0.1")).tcp(
            e["src_port"].as_u64().unwrap() as u16,
            8000,
            0,
            0,
            0x10,
            0,
            &[],
            &[],
        );
        assert_eq!(e["tollgate"]["worker"], u64::from(rss.queue_for(&probe, 0)));
    }
    let tcp_flows = events.iter().filter(|e| e["proto"] == "TCP").count();
    assert_eq!(tcp_flows, 12, "no flow split by its fragments");
    let v6 = events
        .iter()
        .find(|e| e["src_ip"] == "2001:0db8:0000:0000:0000:0000:0000:0005")
        .expect("the IPv6 datagram's flow");
    assert_eq!(v6["flow"]["bytes_toserver"], 14 + 40 + 8 + 3000);
}

#[test]
fn incomplete_datagrams_time_out_on_capture_time() {
    use tollgate::craft::fragment;
    let dir = Scratch::new("fragtimeout");
    let mut cap = Capture::new();
    let lost = Route::new(ip("10.9.9.9"), ip("10.6.0.1")).udp(5, 6, &[b'x'; 3000]);
    let frags = fragment(&lost, 1000, 7);
    cap.push(T0, frags[0].clone());
    cap.push(T0 + 1, frags[2].clone());
    // Capture time moves on 10 s, then 40 s: past the 30 s timeout only once.
    let other = Route::new(ip("10.1.1.1"), ip("10.1.1.2"));
    cap.push(T0 + 10 * SEC, other.udp(1, 2, b"later"));
    let path = dir.write("t.pcap", &cap.to_pcap());
    let (_, st, _) = replay(&dir, &[&path], &[]);
    assert_eq!(st["fragments"]["timeouts"], 0);
    cap.push(T0 + 40 * SEC, other.udp(1, 2, b"much later"));
    let path = dir.write("t.pcap", &cap.to_pcap());
    let (_, st, _) = replay(&dir, &[&path], &[]);
    assert_eq!(st["fragments"]["timeouts"], 1);
    assert_eq!(st["fragments"]["reassembled"], 0);
    let (_, st, _) = replay(&dir, &[&path], &["--defrag-timeout", "2m"]);
    assert_eq!(
        st["fragments"]["timeouts"], 0,
        "--defrag-timeout is honoured"
    );
}

#[test]
fn alert_events_say_which_packet_and_how_it_came() {
    let dir = Scratch::new("pktsrc");
    let rules = dir.write(
        "r.rules",
        b"alert udp any any -> any any (msg:\"needle\"; content:\"NEEDLE\"; sid:1;)\n",
    );
    let r = Route::new(ip("10.5.0.1"), ip("10.5.0.2"));
    let plain = r.udp(5000, 53, b"a NEEDLE on the wire");
    let vtep = Route::new(ip("192.0.2.1"), ip("192.0.2.2"));
    let tunneled = vtep.vxlan(40000, 77, &r.udp(5001, 53, b"a NEEDLE in a tunnel"));
    let mut big = vec![b'x'; 3000];
    big[2000..2006].copy_from_slice(b"NEEDLE");
    let frags = tollgate::craft::fragment(&r.udp(5002, 53, &big), 1000, 9);
    let mut cap = Capture::new();
    cap.push(T0, r.udp(5003, 53, b"nothing here"));
    cap.push(T0 + 1, plain);
    cap.push(T0 + 2, tunneled);
    for (i, f) in frags.into_iter().enumerate() {
        cap.push(T0 + 3 + i as u64, f);
    }
    let p = dir.write("c.pcap", &cap.to_pcap());
    let (out, _, events) = replay(&dir, &[&p], &["--rules", s(&rules)]);
    assert!(out.status.success());
    let mut alerts: Vec<(String, Value)> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| {
            (
                e["pkt_src"].as_str().unwrap().to_string(),
                e["pcap_cnt"].clone(),
            )
        })
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        alerts,
        [
            ("defrag".to_string(), Value::Null),
            ("vxlan encapsulation".to_string(), serde_json::json!(3)),
            ("wire/pcap".to_string(), serde_json::json!(2)),
        ]
    );
    assert!(events.iter().all(|e| e["ip_v"] == 4), "ip_v on every event");
    let alerted: Vec<(u64, bool)> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| {
            (
                e["src_port"].as_u64().unwrap(),
                e["flow"]["alerted"].as_bool().unwrap(),
            )
        })
        .filter(|(p, _)| (5000..=5003).contains(p))
        .collect();
    let mut alerted = alerted;
    alerted.sort();
    assert_eq!(
        alerted,
        [(5000, true), (5001, true), (5002, true), (5003, false)]
    );
}
