//! Segmentation policy benchmark: new flows per second under a SYN flood
//! (every packet a SYN of a new flow, from spread source addresses), one
//! worker from memory, with no policy (baseline) and with a policy of 100
//! prefix zones and 1,000 rules that no flood flow matches (each new flow
//! is judged through its zone's rules to the default deny), the two taking
//! turns, best of 5 (these machines are shared and noisy).
//!
//!     cargo bench --bench policy [-- PACKETS]

mod common;

use serde_json::json;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tollgate::craft::Route;
use tollgate::io::RawPacket;
use tollgate::policy::enforce::{PolicyAction, PolicyReloader, PolicySetup};
use tollgate::policy::Policy;
use tollgate::worker::Worker;

const RUNS: usize = 5;

/// 100 zones of 10.Z.0.0/16 and 1,000 rules between them on ports no
/// flood packet uses.
fn thousand_rules() -> String {
    let mut t = String::from("zones:\n");
    for z in 0..100 {
        let _ = write!(t, "  z{z}:\n    prefix: 10.{z}.0.0/16\n");
    }
    t.push_str("rules:\n");
    for r in 0..1000 {
        let (a, b) = (r % 100, (r * 7 + 3) % 100);
        let _ = write!(
            t,
            "  - allow: z{a} -> z{b}\n    proto: tcp\n    ports: {}\n",
            1000 + r
        );
    }
    t
}

fn main() {
    let packets = common::target_packets().min(2_000_000);
    // SYNs from 10.(i % 100).x.y (zones z0..z99) to a server outside
    // every zone (the default zone), port 80.
    let frames: Vec<Vec<u8>> = (0..packets)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::new(
                10,
                (i % 100) as u8,
                (i / 100 % 256) as u8,
                (i / 25_600 % 256) as u8,
            ));
            let dst = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 80));
            Route::new(src, dst).tcp(
                1024 + (i % 60_000) as u16,
                80,
                i as u32,
                0,
                0x02,
                65535,
                &[],
                &[],
            )
        })
        .collect();
    let text = thousand_rules();
    let policy = Arc::new(Policy::parse(&text, "bench.yaml").expect("the bench policy loads"));
    let setup = PolicySetup {
        path: "bench.yaml".into(),
        policy: Arc::clone(&policy),
        action: PolicyAction::Drop,
        trigger: Arc::default(),
        stats: Arc::default(),
    };
    let run = |with_policy: bool| {
        let mut cfg = common::one_worker();
        cfg.mode = tollgate::io::Mode::Ips;
        let mut w = Worker::new(cfg, None);
        if with_policy {
            let mut r = PolicyReloader::new(setup.clone(), None);
            w = w.with_policy(r.worker());
        }
        common::feed(
            &mut w,
            frames
                .iter()
                .enumerate()
                .map(|(i, f)| RawPacket::new(f, 1_000_000_000 + i as u64 * 1000)),
        );
        w.counters()
    };
    let (mut off_s, mut on_s) = (f64::MAX, f64::MAX);
    let (mut off_c, mut on_c) = (None, None);
    for _ in 0..RUNS {
        let (s, c) = common::best(1, || run(false));
        off_s = off_s.min(s);
        off_c = Some(c);
        let (s, c) = common::best(1, || run(true));
        on_s = on_s.min(s);
        on_c = Some(c);
    }
    let (off_c, on_c) = (off_c.expect("ran"), on_c.expect("ran"));
    let dropped = on_c.dropped[tollgate::io::DropReason::Policy.index()];
    assert_eq!(dropped, packets as u64, "every flood flow denied");
    assert_eq!(off_c.flows.created, on_c.flows.created);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fps = |s: f64| off_c.flows.created as f64 / s;
    let out = json!({
        "machine": {"cores": cores},
        "packets": packets,
        "flows_created": off_c.flows.created,
        "policy": {"zones": policy.zones.len(), "rules": policy.rules.len()},
        "runs": RUNS,
        "no_policy_flows_per_second": fps(off_s),
        "policy_flows_per_second": fps(on_s),
        "ratio_policy_to_none": off_s / on_s,
        "policy_ns_per_new_flow": (on_s - off_s) * 1e9 / off_c.flows.created as f64,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
    println!();
    println!(
        "SYN flood, {packets} packets, one worker (IPS), {} zones / {} rules; {cores} cores, best of {RUNS}",
        policy.zones.len(),
        policy.rules.len()
    );
    println!();
    println!("| new flows/s | flows/s | vs no policy |");
    println!("|---|---:|---:|");
    println!("| no policy (baseline) | {:.0} | 1.00 |", fps(off_s));
    println!(
        "| 1,000-rule policy, every flow denied | {:.0} | {:.2} |",
        fps(on_s),
        off_s / on_s
    );
}
