//! End-to-end tests of `tollgate run` on DPDK virtual devices: no NIC, no
//! hugepages (`--no-huge --no-pci`), captures built with the project's
//! capture library fed through net_pcap vdevs. The EAL starts once per
//! process, so each test runs the binary as a child, with its own
//! `--file-prefix` (tests run in parallel).
#![cfg(feature = "dpdk")]

mod common;
use common::{eve_lines, s, signal, sum_values, validate_eve, Scratch};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tollgate::craft::{Capture, Route, Side, TcpConversation};
use tollgate::decode::decode;
use tollgate::flow::FlowKey;
use tollgate::io::pcap::Records;
use tollgate::rss::SoftRss;

const T0: u64 = 1_767_225_600_000_000_000;

/// EAL arguments for a test process: no hugepages, no PCI, its own file
/// prefix, lcores mapped onto the machine's CPUs.
fn eal(name: &str, workers: usize, vdevs: &[String]) -> Vec<String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lcores: Vec<String> = (0..=workers).map(|l| format!("{l}@{}", l % cpus)).collect();
    let mut v: Vec<String> = [
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--log-level",
        "*:warning",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    v.push("--file-prefix".into());
    v.push(format!("tg-{name}-{}", std::process::id()));
    v.push("--lcores".into());
    v.push(lcores.join(","));
    for d in vdevs {
        v.push("--vdev".into());
        v.push(d.clone());
    }
    v
}

fn tollgate_run(flags: &[&str], eal_args: &[String]) -> Output {
    let mut args: Vec<String> = vec!["run".into(), "--stats-interval".into(), "0".into()];
    args.extend(flags.iter().map(|x| x.to_string()));
    args.push("--".into());
    args.extend_from_slice(eal_args);
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(&args)
        .output()
        .expect("run tollgate");
    forget_runtime_dir(eal_args);
    out
}

/// The EAL leaves its runtime folder (/var/run/dpdk/PREFIX) behind.
fn forget_runtime_dir(eal_args: &[String]) {
    if let Some(i) = eal_args.iter().position(|a| a == "--file-prefix") {
        if let Some(prefix) = eal_args.get(i + 1) {
            let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(prefix));
        }
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("stats JSON written")).unwrap()
}

fn records(path: &Path) -> Vec<Vec<u8>> {
    let buf = std::fs::read(path).unwrap();
    Records::new(&buf)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            buf[r.offset..r.offset + r.caplen as usize].to_vec()
        })
        .collect()
}

fn conversations(n: usize) -> Capture {
    let mut cap = Capture::new();
    for i in 0..n {
        let client = format!("10.{}.{}.{}", 1 + i % 7, (i * 37) % 250, 1 + (i * 11) % 250);
        let r = Route::new(client.parse().unwrap(), "10.99.0.1".parse().unwrap());
        let mut c = TcpConversation::new(
            r,
            30000 + (i as u16 * 131) % 30000,
            8000,
            T0 + i as u64 * 1_000_000,
        );
        c.handshake()
            .send(Side::Client, &vec![b'p'; 500 + i * 97 % 4000], 1448)
            .send(Side::Server, &vec![b'r'; 300 + i * 53 % 6000], 1448)
            .close(Side::Client);
        cap.extend(c.into_packets());
    }
    cap
}

fn assert_input_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("tollgate: error:") && last.contains(needle),
        "{last:?} should name {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn ids_on_one_net_pcap_port_counts_every_packet_like_the_nic() {
    let dir = Scratch::new("ids");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let stats = dir.path("stats.json");
    let eve = dir.path("eve.json");
    for workers in [1, 2] {
        // EVE is appended to: start each run from an empty file.
        let _ = std::fs::remove_file(&eve);
        let out = tollgate_run(
            &[
                "--idle-exit",
                "1s",
                "--stats-json",
                s(&stats),
                "--eve",
                s(&eve),
            ],
            &eal(
                &format!("ids{workers}"),
                workers,
                &[format!("net_pcap0,rx_pcap={}", s(&sample))],
            ),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = json(&stats);
        let expected = records(&sample).len() as u64;
        assert_eq!(st["packets"]["rx"], expected, "workers={workers}");
        assert_eq!(st["ports"][0]["ipackets"], expected, "the NIC agrees");
        let rx = st["packets"]["rx"].as_u64().unwrap();
        let tx = st["packets"]["tx"].as_u64().unwrap();
        let dropped: u64 = sum_values(&st["packets"]["dropped"]);
        assert_eq!(rx, tx + dropped);
        assert_eq!(st["sink"]["packets"], tx);
        assert_eq!(st["workers"].as_array().unwrap().len(), workers);
        assert_eq!(st["decode_errors"]["tcp.truncated"], 1);
        let events = std::fs::read_to_string(&eve).unwrap();
        let flows = events
            .lines()
            .filter(|l| l.contains(r#""event_type":"flow""#))
            .count();
        assert_eq!(flows, 42, "every flow of the sample, none split");
        let alerts = events
            .lines()
            .filter(|l| l.contains(r#""event_type":"alert""#))
            .count();
        // The key, the override and the system-prompt request it makes.
        assert_eq!(
            alerts, 3,
            "the shipped rules fire on the sample over DPDK too"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("stopped by idle") && stdout.contains("net_pcap0"),
            "{stdout}"
        );
    }
}

#[test]
fn run_names_the_port_and_writes_capture_stats_valid_against_the_schema() {
    let dir = Scratch::new("run-eve");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let eve = dir.path("eve.json");
    let _ = std::fs::remove_file(&eve);
    let eal_args = eal("runeve", 1, &[format!("net_pcap0,rx_pcap={}", s(&sample))]);
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["run", "--idle-exit", "1s", "--stats-interval", "1h"])
        .args(["--community-id", "--eve", s(&eve), "--"])
        .args(&eal_args)
        .output()
        .unwrap();
    forget_runtime_dir(&eal_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = eve_lines(&eve);
    for e in events.iter().filter(|e| e["event_type"] != "stats") {
        assert_eq!(e["in_iface"], "net_pcap0", "{e}");
        assert!(e.get("pcap_filename").is_none());
        assert!(e.get("pcap_cnt").is_none(), "no record numbers off a port");
        assert!(e["community_id"].is_string());
    }
    let alert = events.iter().find(|e| e["event_type"] == "alert").unwrap();
    assert_eq!(alert["pkt_src"], "wire/pcap");
    let stats = events.last().unwrap();
    assert_eq!(
        stats["event_type"], "stats",
        "the final stats event is last"
    );
    let n = records(&sample).len() as u64;
    assert_eq!(stats["stats"]["capture"]["kernel_packets"], n);
    assert_eq!(stats["stats"]["capture"]["kernel_drops"], 0);
    assert_eq!(stats["stats"]["decoder"]["pkts"], n);
    validate_eve(&[&eve], true);
}

#[test]
fn a_stalled_eve_sink_costs_counted_events_never_a_stalled_worker() {
    let dir = Scratch::new("run-slow-sink");
    // 8,000 short conversations, each ended (closed timeout 0) while the
    // run goes on: far more flow events than the writer's ring, its
    // buffer and a pipe hold.
    let mut cap = Capture::new();
    for i in 0..8000u64 {
        let b = (i as u32).to_be_bytes();
        let r = Route::new(
            format!("10.{}.{}.{}", 20 + b[1], b[2], 1 + b[3] % 250)
                .parse()
                .unwrap(),
            "10.9.0.1".parse().unwrap(),
        );
        let mut c = TcpConversation::new(r, 20000 + (i % 40000) as u16, 443, T0 + i * 1_000_000);
        c.handshake().close(Side::Client);
        cap.extend(c.into_packets());
    }
    let input = dir.path("in.pcap");
    cap.write_pcap(&input).unwrap();
    // EVE into a pipe whose reader reads nothing for 4 s, then all.
    let fifo = dir.path("eve.fifo");
    let drained = dir.path("drained.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut reader = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3<'{}'; sleep 4; cat <&3 > '{}'",
            s(&fifo),
            s(&drained)
        ))
        .spawn()
        .unwrap();
    let stats = dir.path("stats.json");
    let out = tollgate_run(
        &[
            "--idle-exit",
            "1s",
            "--closed-timeout",
            "0",
            "--flow-capacity",
            "1024",
            "--stats-json",
            s(&stats),
            "--eve",
            s(&fifo),
        ],
        &eal("slowsink", 1, &[format!("net_pcap0,rx_pcap={}", s(&input))]),
    );
    assert!(reader.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = json(&stats);
    assert_eq!(
        st["packets"]["rx"],
        cap.sorted().len() as u64,
        "every packet"
    );
    let sent = st["events"]["flow"].as_u64().unwrap();
    let lost = st["events"]["dropped_ring_full"].as_u64().unwrap();
    assert!(
        lost > 0,
        "the worker went on rather than wait: {}",
        st["events"]
    );
    // What was not counted lost reached the sink, every line whole.
    let lines = eve_lines(&drained);
    assert_eq!(lines.len() as u64, sent);
    assert_eq!(
        lines.iter().filter(|e| e["event_type"] == "flow").count() as u64 + lost,
        st["flows"]["ended"].as_u64().unwrap()
    );
}

#[test]
fn the_scorer_scores_every_flow_under_run() {
    let dir = Scratch::new("score");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xgboost/binary_logistic.json");
    let stats = dir.path("stats.json");
    let out = tollgate_run(
        &[
            "--idle-exit",
            "1s",
            "--stats-json",
            s(&stats),
            "--model",
            s(&model),
            "--scorer-core",
            "2",
        ],
        &eal("score", 2, &[format!("net_pcap0,rx_pcap={}", s(&sample))]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = json(&stats);
    assert_eq!(st["scoring"]["records"], 42, "one end record per flow");
    assert_eq!(st["scoring"]["scored"], 42);
    assert_eq!(st["scoring"]["model"], "binary_logistic.json");
    assert_eq!(
        st["workers"].as_array().unwrap().len(),
        1,
        "lcore 2 scores, lcore 1 is the one worker"
    );
    let out = tollgate_run(
        &[
            "--idle-exit",
            "1s",
            "--model",
            s(&model),
            "--scorer-core",
            "7",
        ],
        &eal("score7", 2, &[format!("net_pcap0,rx_pcap={}", s(&sample))]),
    );
    assert_input_error(&out, "--scorer-core 7");
}

#[test]
fn two_workers_keep_both_directions_on_the_worker_rss_picks() {
    let dir = Scratch::new("rss2");
    let input = dir.path("in.pcap");
    let cap = conversations(60);
    cap.write_pcap(&input).unwrap();
    let eve = dir.path("eve.json");
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let out = tollgate_run(
        &["--idle-exit", "1s", "--eve", s(&eve)],
        &eal("rss2", 2, &[format!("net_pcap0,rx_pcap={}", s(&input))]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = SoftRss::new(2);
    let events: Vec<Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 60);
    let mut per_worker = [0; 2];
    for e in &events {
        assert!(e["flow"]["pkts_toserver"].as_u64().unwrap() > 0);
        assert!(e["flow"]["pkts_toclient"].as_u64().unwrap() > 0);
        let f = Route::new(
            e["src_ip"].as_str().unwrap().parse().unwrap(),
            e["dest_ip"].as_str().unwrap().parse().unwrap(),
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
        let k = rss.queue_for(&f, 0);
        assert_eq!(e["tollgate"]["worker"], u64::from(k));
        per_worker[usize::from(k)] += 1;
    }
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
}

/// Groups frames by flow, keeping their order: what "in order within each
/// flow" compares.
fn by_flow(frames: &[Vec<u8>]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut m: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for f in frames {
        let key = match decode(f) {
            Ok(d) => format!("{:?}", FlowKey::from_packet(&d, 0).0),
            Err(_) => "undecodable".into(),
        };
        m.entry(key).or_default().push(f.clone());
    }
    m
}

#[test]
fn ips_forwards_byte_for_byte_in_flow_order_minus_drops() {
    let dir = Scratch::new("ips");
    let cap = conversations(40).sorted();
    // Client-to-server packets enter port 0, server-to-client port 1.
    let (mut a, mut b): (Vec<_>, Vec<_>) = cap
        .into_iter()
        .partition(|(_, f)| decode(f).unwrap().dst_port == 8000);
    // Malformed frames on port 0: the verdict (--malformed drop) drops them.
    let mut bad = a[5].1.clone();
    bad.truncate(40);
    a.insert(6, (a[5].0, bad.clone()));
    let mut bad_ihl = a[9].1.clone();
    bad_ihl[14] = 0x43;
    a.insert(10, (a[9].0, bad_ihl));
    let write = |name: &str, pkts: &[(u64, Vec<u8>)]| {
        let mut c = Capture::new();
        c.extend(pkts.iter().cloned());
        let p = dir.path(name);
        c.write_pcap(&p).unwrap();
        p
    };
    let in0 = write("in0.pcap", &a);
    let in1 = write("in1.pcap", &b);
    let (out0, out1) = (dir.path("out0.pcap"), dir.path("out1.pcap"));
    let stats = dir.path("stats.json");
    for inspect in ["on", "off"] {
        let out = tollgate_run(
            &[
                "--mode",
                "ips",
                "--malformed",
                "drop",
                "--inspect",
                inspect,
                "--idle-exit",
                "1s",
                "--stats-json",
                s(&stats),
            ],
            &eal(
                &format!("ips{inspect}"),
                2,
                &[
                    format!("net_pcap0,rx_pcap={},tx_pcap={}", s(&in0), s(&out0)),
                    format!("net_pcap1,rx_pcap={},tx_pcap={}", s(&in1), s(&out1)),
                ],
            ),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sent_a: Vec<Vec<u8>> = records(&in0);
        let sent_b: Vec<Vec<u8>> = records(&in1);
        let got_1 = records(&out1);
        let got_0 = records(&out0);
        let expect_1: Vec<Vec<u8>> = if inspect == "on" {
            sent_a
                .iter()
                .filter(|f| decode(f).is_ok())
                .cloned()
                .collect()
        } else {
            sent_a.clone()
        };
        assert_eq!(
            by_flow(&got_1),
            by_flow(&expect_1),
            "port 0 -> port 1, inspect {inspect}"
        );
        assert_eq!(
            by_flow(&got_0),
            by_flow(&sent_b),
            "port 1 -> port 0, inspect {inspect}"
        );
        let st = json(&stats);
        let total_in = (sent_a.len() + sent_b.len()) as u64;
        assert_eq!(st["packets"]["rx"], total_in);
        let dropped = if inspect == "on" { 2 } else { 0 };
        assert_eq!(st["packets"]["dropped"]["malformed"], dropped);
        assert_eq!(st["packets"]["tx"], total_in - dropped);
        let opackets: u64 = st["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["opackets"].as_u64().unwrap())
            .sum();
        assert_eq!(
            opackets,
            total_in - dropped,
            "what the NICs sent is what the workers forwarded"
        );
    }
    b.clear();
}

/// `tollgate run FLAGS -- EAL` on one net_pcap port reading `pcap`, one
/// worker, left running for a signal; its arguments, to forget the EAL's
/// runtime folder with when it is done.
fn spawn_run(name: &str, flags: &[&str], pcap: &Path) -> (std::process::Child, Vec<String>) {
    let mut args: Vec<String> = ["run", "--stats-interval", "0"]
        .iter()
        .chain(flags)
        .map(|x| x.to_string())
        .collect();
    args.push("--".into());
    args.extend(eal(name, 1, &[format!("net_pcap0,rx_pcap={}", s(pcap))]));
    let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, args)
}

#[test]
fn sigint_stops_drains_and_exits_0() {
    let dir = Scratch::new("sigint");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let stats = dir.path("stats.json");
    let (child, args) = spawn_run("sigint", &["--stats-json", s(&stats)], &sample);
    // Wait for the run to be up (the sample is read in well under this),
    // then interrupt it as an operator would.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    forget_runtime_dir(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped by signal"));
    assert_eq!(json(&stats)["packets"]["rx"], records(&sample).len() as u64);
}

#[test]
fn bad_setups_are_clear_errors() {
    let dir = Scratch::new("errors");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let pcap = |i: usize| format!("net_pcap{i},rx_pcap={}", s(&sample));
    let mut bogus = eal("bogus", 1, &[pcap(0)]);
    bogus.push("--definitely-not-an-eal-flag".into());
    assert_input_error(&tollgate_run(&[], &bogus), "EAL");
    assert_input_error(&tollgate_run(&[], &eal("noport", 1, &[])), "no port");
    assert_input_error(
        &tollgate_run(&[], &eal("three", 1, &[pcap(0), pcap(1), pcap(2)])),
        "3 ports",
    );
    assert_input_error(
        &tollgate_run(&["--mode", "ips"], &eal("ips1", 1, &[pcap(0)])),
        "two ports",
    );
    assert_input_error(
        &tollgate_run(&["--workers", "3"], &eal("wk", 1, &[pcap(0)])),
        "--workers 3",
    );
    let mut one_lcore = eal("lc", 1, &[pcap(0)]);
    let at = one_lcore.iter().position(|a| a == "--lcores").unwrap();
    one_lcore[at + 1] = "0@0".into();
    assert_input_error(&tollgate_run(&[], &one_lcore), "worker lcore");
    // Without --no-huge on a machine with no hugepages, the EAL cannot start:
    // the error says how to fix it.
    let has_huge = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("HugePages_Total:") && !l.ends_with(" 0"));
    if !has_huge {
        let mut huge = eal("huge", 1, &[pcap(0)]);
        huge.retain(|a| a != "--no-huge");
        assert_input_error(&tollgate_run(&[], &huge), "--no-huge");
    }
    let _ = dir;
}

#[test]
fn sigusr2_reloads_the_rules_of_a_run_and_an_idle_worker_swaps() {
    let dir = Scratch::new("reload");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/sample.pcap");
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("signatures");
    let stats = dir.path("stats.json");
    let (child, args) = spawn_run(
        "reload",
        &["--stats-json", s(&stats), "--rules", s(&rules)],
        &sample,
    );
    // The sample is read well within this; the worker then idles, and
    // takes the new rules on an idle tick.
    std::thread::sleep(std::time::Duration::from_secs(2));
    signal(&child, "USR2");
    std::thread::sleep(std::time::Duration::from_secs(3));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    forget_runtime_dir(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rules reloaded: generation 1"), "{stderr}");
    let st = json(&stats);
    assert_eq!(st["reload"]["reloads"], 1, "{}", st["reload"]);
    assert_eq!(st["rules"]["generation"], 1, "{}", st["rules"]);
    assert_eq!(st["rules"]["swaps"], 1);
    assert_eq!(st["packets"]["rx"], records(&sample).len() as u64);
}
