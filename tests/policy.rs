//! The segmentation policy end to end, on captures built with `craft`:
//! tenants on VXLAN VNIs kept apart inline with one service port allowed
//! between them, a VLAN-tagged zone and prefix zones (the longest prefix
//! winning), one alert per denied flow when observing, a reload that turns
//! a deny into an allow for new flows, and policies refused with file:line.

mod common;
use common::{bin, eve_lines, ip, s, signal, sum_values, validate_eve, Scratch, SEC, T0};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tollgate::craft::{Capture, Route, Side, TcpConversation};

/// A short TCP conversation's frames on `route`, at `t`.
fn talk(route: Route, sport: u16, dport: u16, t: u64) -> Vec<(u64, Vec<u8>)> {
    let mut c = TcpConversation::new(route, sport, dport, t);
    c.handshake()
        .send(Side::Client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1448)
        .send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            1448,
        )
        .close(Side::Client);
    c.into_packets()
}

/// The same conversation carried in VXLAN `vni` between two VTEPs.
fn in_vni(vni: u32, pkts: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    let vtep = Route::new(ip("192.168.100.1"), ip("192.168.100.2"));
    pkts.into_iter()
        .map(|(t, f)| (t, vtep.vxlan(49152, vni, &f)))
        .collect()
}

fn replay(dir: &Scratch, cap: &Capture, extra: &[&str]) -> (Vec<Value>, Value, String) {
    let pcap = dir.write("c.pcap", &cap.to_pcap());
    let (eve, stats) = (dir.path("eve.json"), dir.path("stats.json"));
    let _ = std::fs::remove_file(&eve);
    let out = bin()
        .args(["replay", s(&pcap), "--stats-interval", "0"])
        .args(["--eve", s(&eve), "--stats-json", s(&stats)])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    validate_eve(&[&eve], true);
    let st: Value = common::read_json(&stats);
    (eve_lines(&eve), st, stderr)
}

fn policy_alerts(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| {
            e["event_type"] == "alert"
                && (9_230_000..=9_239_999).contains(&e["alert"]["signature_id"].as_u64().unwrap())
        })
        .collect()
}

fn pair<'a>(st: &'a Value, from: &str, to: &str) -> &'a Value {
    st["policy"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["from"] == from && p["to"] == to)
        .unwrap_or_else(|| panic!("no pair {from} -> {to}: {}", st["policy"]))
}

const TENANTS: &str = "\
# Two tenants, each a VNI and its addresses; tenant A may reach
# tenant B's service on 8443, and nothing else crosses.
zones:
  tenant-a:
    vni: 5001
    prefix: 10.8.0.0/16
  tenant-b:
    vni: 5002
    prefix: 10.9.0.0/16
rules:
  - allow: tenant-a -> tenant-b
    proto: tcp
    ports: 8443
";

#[test]
fn tenants_on_vnis_are_kept_apart_inline_and_the_service_port_passes() {
    let dir = Scratch::new("policy-vni");
    let policy = dir.write("tenants.yaml", TENANTS.as_bytes());
    let (a, b) = (ip("10.8.0.5"), ip("10.9.0.7"));
    let denied = in_vni(5001, talk(Route::new(a, b), 40001, 22, T0));
    let allowed = in_vni(5001, talk(Route::new(a, b), 40002, 8443, T0 + SEC));
    // B towards A's port 8443: the rule is one way.
    let back = in_vni(5002, talk(Route::new(b, a), 40003, 8443, T0 + 2 * SEC));
    let within = in_vni(
        5001,
        talk(Route::new(a, ip("10.8.9.9")), 40004, 22, T0 + 3 * SEC),
    );
    let (nd, na, nb, nw) = (denied.len(), allowed.len(), back.len(), within.len());
    let mut cap = Capture::new();
    cap.extend(denied)
        .extend(allowed)
        .extend(back)
        .extend(within);
    let (events, st, _) = replay(&dir, &cap, &["--mode", "ips", "--policy", s(&policy)]);
    let p = &st["packets"];
    let dropped = p["dropped"]["policy"].as_u64().unwrap();
    assert_eq!(
        dropped,
        (nd + nb) as u64,
        "every packet of both denied flows"
    );
    assert_eq!(p["tx"].as_u64().unwrap(), (na + nw) as u64);
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"])
    );
    // One alert per denied flow, blocked, naming the zone pair.
    let alerts = policy_alerts(&events);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    for a in &alerts {
        assert_eq!(a["alert"]["action"], "blocked");
        assert_eq!(a["alert"]["signature_id"], 9_230_000, "the default deny");
        assert_eq!(a["tollgate"]["policy"]["action"], "deny");
    }
    let sigs: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"]["signature"].as_str().unwrap())
        .collect();
    assert!(
        sigs.contains(&"TOLLGATE POLICY deny tenant-a -> tenant-b (default deny between zones)")
    );
    assert!(
        sigs.contains(&"TOLLGATE POLICY deny tenant-b -> tenant-a (default deny between zones)")
    );
    // Flow events carry the zones and what decided.
    let flow = events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["dest_port"] == 8443 && e["src_port"] == 40002)
        .unwrap();
    let fp = &flow["tollgate"]["policy"];
    assert_eq!(
        (fp["from_zone"].as_str(), fp["to_zone"].as_str()),
        (Some("tenant-a"), Some("tenant-b"))
    );
    assert_eq!(fp["action"], "allow");
    assert!(
        fp["rule"].as_str().unwrap().ends_with("tenants.yaml:11"),
        "{fp}"
    );
    // Counters per zone pair.
    let ab = pair(&st, "tenant-a", "tenant-b");
    assert_eq!(
        (ab["flows_allowed"].as_u64(), ab["flows_denied"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(ab["packets"], (nd + na) as u64);
    let aa = pair(&st, "tenant-a", "tenant-a");
    assert_eq!(aa["flows_allowed"], 1);
    assert_eq!(pair(&st, "tenant-b", "tenant-a")["flows_denied"], 1);
}

#[test]
fn a_vlan_zone_prefix_zones_and_the_longest_prefix_when_observing() {
    let dir = Scratch::new("policy-vlan");
    let policy = dir.write(
        "p.yaml",
        b"zones:
  mgmt:
    vlan: 100
  storage:
    prefix: 10.20.0.0/16
  storage-hot:
    prefix: 10.20.5.0/24
rules:
  - allow: any -> storage
    proto: tcp
    ports: 443
",
    );
    let host = ip("10.1.1.1");
    let mut cap = Capture::new();
    // To 10.20.5.9: storage-hot (the longer prefix), which no rule opens.
    cap.extend(talk(
        Route::new(host, ip("10.20.5.9")).vlan(100),
        40001,
        443,
        T0,
    ));
    // To 10.20.6.9: storage, open on 443.
    cap.extend(talk(
        Route::new(host, ip("10.20.6.9")).vlan(100),
        40002,
        443,
        T0 + SEC,
    ));
    // Stacked tags: the inner (customer) tag decides, 100 here.
    cap.extend(talk(
        Route::new(host, ip("10.20.5.10")).qinq(7, 100),
        40003,
        443,
        T0 + 2 * SEC,
    ));
    let (events, st, _) = replay(&dir, &cap, &["--policy", s(&policy)]);
    // Observing: nothing dropped, one alert per denied flow however many
    // packets it had.
    assert_eq!(sum_values(&st["packets"]["dropped"]), 0);
    let alerts = policy_alerts(&events);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    for a in &alerts {
        assert_eq!(a["alert"]["action"], "allowed");
        assert_eq!(
            a["alert"]["signature"],
            "TOLLGATE POLICY deny mgmt -> storage-hot (default deny between zones)"
        );
    }
    assert_eq!(pair(&st, "mgmt", "storage")["flows_allowed"], 1);
    assert_eq!(pair(&st, "mgmt", "storage-hot")["flows_denied"], 2);
}

#[test]
fn sigusr2_reloads_the_policy_and_new_flows_meet_the_new_one() {
    let dir = Scratch::new("policy-reload");
    let text = "zones:\n  a:\n    prefix: 10.1.0.0/16\n  b:\n    prefix: 10.2.0.0/16\n";
    let policy = dir.write("p.yaml", text.as_bytes());
    // 60 flows a -> b, 100 ms apart, played in real time: 6 s.
    let mut cap = Capture::new();
    for i in 0..60u16 {
        cap.extend(talk(
            Route::new(ip("10.1.0.1"), ip("10.2.0.1")),
            40000 + i,
            22,
            T0 + u64::from(i) * SEC / 10,
        ));
    }
    let pcap = dir.write("c.pcap", &cap.to_pcap());
    let (eve, stats) = (dir.path("eve.json"), dir.path("s.json"));
    let child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--mode", "ips"])
        .args([
            "--policy",
            s(&policy),
            "--eve",
            s(&eve),
            "--eve-flush",
            "50ms",
        ])
        .args(["--stats-json", s(&stats), "--stats-interval", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // A bad file first: refused, the deny stays.
    std::fs::write(&policy, "zones:\n  a:\n    prefix: 10.1.0.0/40\n").unwrap();
    signal(&child, "USR2");
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(&policy, format!("{text}rules:\n  - allow: a -> b\n")).unwrap();
    signal(&child, "USR2");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("policy reload failed, the old policy stays"),
        "{stderr}"
    );
    assert!(stderr.contains("p.yaml:3: zone `a`"), "{stderr}");
    assert!(stderr.contains("policy reloaded: generation 2"), "{stderr}");
    let st: Value = common::read_json(&stats);
    let pol = &st["policy"];
    assert_eq!(
        (pol["reloads"].as_u64(), pol["reload_failures"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(pol["generation"], 2);
    let ab = pair(&st, "a", "b");
    let (allowed, denied) = (
        ab["flows_allowed"].as_u64().unwrap(),
        ab["flows_denied"].as_u64().unwrap(),
    );
    assert_eq!(allowed + denied, 60);
    assert!(
        allowed > 10 && denied > 10,
        "denied before, allowed after: {ab}"
    );
    let p = &st["packets"];
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"])
    );
    // Alerts stop once the new policy is in: each denied flow said once,
    // all before the first allowed flow's record.
    let events = eve_lines(&eve);
    assert_eq!(policy_alerts(&events).len() as u64, denied);
    let gen2 = events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["tollgate"]["policy"]["generation"] == 2)
        .count() as u64;
    assert!(
        gen2 >= allowed,
        "flows judged by the new policy say so: {gen2} < {allowed}"
    );
}

#[test]
fn invalid_policies_are_refused_at_start_and_the_check_says_what_it_sees() {
    let dir = Scratch::new("policy-bad");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    for (text, says) in [
        (
            "zones:\n  a:\n    vni: 5001\n  b:\n    vni: 5001\n",
            "p.yaml:4: zone `b` and zone `a` (line 2) are equally specific",
        ),
        (
            "zones:\n  a:\n    prefix: 10.0.0.0/8\n    colour: red\n",
            "p.yaml:4: zone `a`: unknown key `colour`",
        ),
        ("rules:\n  - allow: a -> b\n", "p.yaml:2: `a`: no such zone"),
    ] {
        let p = dir.write("p.yaml", text.as_bytes());
        let out = bin()
            .args(["replay", s(&sample), "--policy", s(&p)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        let check = bin().args(["policy", "check", s(&p)]).output().unwrap();
        assert_eq!(check.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&check.stderr).contains(says));
    }
    let p = dir.write(
        "ok.yaml",
        format!("{TENANTS}  - deny: tenant-a -> tenant-b\n    proto: tcp\n    ports: 8443\n")
            .as_bytes(),
    );
    let check = bin().args(["policy", "check", s(&p)]).output().unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("tenant-a: vni 5001 and prefix 10.8.0.0/16"),
        "{out}"
    );
    assert!(
        out.contains("default (default): what no other zone takes"),
        "{out}"
    );
    assert!(
        out.contains("the rule at line 14 never decides: the rule at line 11"),
        "{out}"
    );
}

#[test]
fn a_rule_naming_http_lets_http_through_and_not_other_protocols() {
    let dir = Scratch::new("policy-app");
    let policy = dir.write(
        "p.yaml",
        b"zones:
  a:
    prefix: 10.1.0.0/16
  b:
    prefix: 10.2.0.0/16
rules:
  - allow: a -> b
    proto: tcp
    app: http
",
    );
    let route = || Route::new(ip("10.1.0.1"), ip("10.2.0.1"));
    // HTTP on a port no rule names: allowed once the app layer says http.
    let http = talk(route(), 40001, 8080, T0);
    // Something else on the same port: denied once the app layer gives up.
    let mut c = TcpConversation::new(route(), 40002, 8080, T0 + SEC);
    c.handshake()
        .send(Side::Client, b"SSH-2.0-OpenSSH_9.2\r\n", 1448)
        .send(Side::Server, b"SSH-2.0-OpenSSH_9.6\r\n", 1448)
        .send(Side::Client, &[0x42; 600], 1448)
        .send(Side::Server, &[0x43; 600], 1448)
        .send(Side::Client, &[0x44; 600], 1448)
        .close(Side::Client);
    let other = c.into_packets();
    let nh = http.len();
    let mut cap = Capture::new();
    cap.extend(http).extend(other);
    let (events, st, _) = replay(&dir, &cap, &["--mode", "ips", "--policy", s(&policy)]);
    let ab = pair(&st, "a", "b");
    assert_eq!(
        (ab["flows_allowed"].as_u64(), ab["flows_denied"].as_u64()),
        (Some(1), Some(1)),
        "{ab}"
    );
    let p = &st["packets"];
    let dropped = p["dropped"]["policy"].as_u64().unwrap();
    assert!(dropped > 0, "the other protocol's later packets");
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"])
    );
    // Every HTTP packet went through.
    assert!(p["tx"].as_u64().unwrap() >= nh as u64);
    let alerts = policy_alerts(&events);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["src_port"], 40002);
    let http_flow = events
        .iter()
        .find(|e| e["event_type"] == "flow" && e["src_port"] == 40001)
        .unwrap();
    assert_eq!(http_flow["app_proto"], "http");
    assert_eq!(http_flow["tollgate"]["policy"]["action"], "allow");
    assert!(http_flow["tollgate"]["policy"]["rule"]
        .as_str()
        .unwrap()
        .ends_with("p.yaml:7"));
}

#[test]
fn a_fragmented_datagram_of_a_denied_flow_is_judged_as_its_flow() {
    let dir = Scratch::new("policy-frag");
    let policy = dir.write(
        "p.yaml",
        b"zones:\n  a:\n    prefix: 10.1.0.0/16\n  b:\n    prefix: 10.2.0.0/16\n",
    );
    let route = Route::new(ip("10.1.0.1"), ip("10.2.0.1"));
    let dgram = route.udp(5353, 53, &[b'q'; 300]);
    let frags = tollgate::craft::fragment(&dgram, 96, 777);
    assert!(frags.len() >= 3);
    let mut cap = Capture::new();
    for (i, f) in frags.iter().enumerate() {
        cap.push(T0 + i as u64 * 1000, f.clone());
    }
    let (events, st, _) = replay(&dir, &cap, &["--mode", "ips", "--policy", s(&policy)]);
    let p = &st["packets"];
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"])
    );
    // The datagram is judged as its flow: the fragment that completes it
    // does not reach the host, so the datagram never does.
    assert!(p["dropped"]["policy"].as_u64().unwrap() >= 1, "{p}");
    let alerts = policy_alerts(&events);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["dest_port"], 53);
    assert_eq!(pair(&st, "a", "b")["flows_denied"], 1);
}
