//! EVE to somewhere other than a file, end to end: a real redis-server
//! (a list, a channel, one that is not there, one that comes up late) and
//! real Unix sockets (datagram and stream, a reader that never reads).
//! Every run is checked against the same replay written to a file: the
//! same events arrive, or the ones that could not are counted.

mod common;
use common::{bin, ip, s, sum_values, wait_until, Scratch, SEC, T0};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tollgate::craft::{Capture, Route, Side, TcpConversation};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sample() -> PathBuf {
    root().join("pcaps/sample.pcap")
}

fn rules() -> PathBuf {
    root().join("signatures/tollgate.rules")
}

/// `n` short HTTP conversations, `spacing_ns` of capture time apart.
fn conversations(n: usize, spacing_ns: u64) -> Capture {
    let mut cap = Capture::new();
    for i in 0..n {
        let r = Route::new(
            ip("10.1.0.1"),
            ip(&format!("10.9.{}.{}", i / 250, 1 + i % 250)),
        );
        let mut c = TcpConversation::new(
            r,
            30000 + (i % 30000) as u16,
            8000,
            T0 + i as u64 * spacing_ns,
        );
        c.handshake()
            .send(
                Side::Client,
                b"POST /v1/embeddings HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\n\r\n{}",
                1448,
            )
            .send(
                Side::Server,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                1448,
            )
            .close(Side::Client);
        cap.extend(c.into_packets());
    }
    cap
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway redis-server on a free port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/setup.sh installs it)");
        let r = Redis { child, port };
        assert!(
            wait_until(Duration::from_secs(20), || r.cli(&["PING"]).trim()
                == "PONG"),
            "redis-server answered PING"
        );
        r
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every element of the list `key`, oldest push first.
    fn list(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .cli(&["--raw", "LRANGE", key, "0", "-1"])
            .lines()
            .map(str::to_string)
            .collect();
        v.reverse(); // LPUSH puts the newest first
        v
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate replay PCAP --rules … --eve TARGET --stats-json …`.
fn replay(dir: &Scratch, pcap: &Path, eve: &str, extra: &[&str]) -> (Output, Value) {
    let stats = dir.path("stats.json");
    let _ = std::fs::remove_file(&stats);
    let out = bin()
        .args([
            "replay",
            s(pcap),
            "--rules",
            s(&rules()),
            "--stats-interval",
            "0",
        ])
        .args(["--eve", eve, "--stats-json", s(&stats)])
        .args(extra)
        .output()
        .unwrap();
    let stats: Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap_or_default()).unwrap_or(Value::Null);
    (out, stats)
}

/// The same replay to a file: the events a sink should carry.
fn file_events(dir: &Scratch, pcap: &Path, extra: &[&str]) -> Vec<String> {
    let eve = dir.path("file-eve.json");
    let _ = std::fs::remove_file(&eve);
    let (out, _) = replay(dir, pcap, s(&eve), extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// How many events of each type.
fn by_type(lines: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        *m.entry(v["event_type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

fn sink(stats: &Value) -> &Value {
    &stats["eve"]["sink"]
}

#[test]
fn redis_list_gets_every_event_the_file_gets() {
    let dir = Scratch::new("sink-redis-list");
    let redis = Redis::start(free_port());
    let want = file_events(&dir, &sample(), &[]);
    assert!(want.len() > 10, "the sample writes events");
    let target = format!("redis://127.0.0.1:{}/tollgate-eve", redis.port);
    let (out, stats) = replay(&dir, &sample(), &target, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = redis.list("tollgate-eve");
    assert_eq!(by_type(&got), by_type(&want));
    // The same events (the workers interleave differently from run to
    // run, so compared as sets of what identifies them).
    let key = |l: &String| {
        let v: Value = serde_json::from_str(l).unwrap();
        format!(
            "{} {} {} {}",
            v["event_type"], v["timestamp"], v["src_port"], v["alert"]["signature_id"]
        )
    };
    let mut a: Vec<_> = got.iter().map(key).collect();
    let mut b: Vec<_> = want.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let sk = sink(&stats);
    assert_eq!(sk["sent"], got.len() as u64, "{stats}");
    assert_eq!(sk["dropped"], 0);
    assert_eq!(sk["errors"], 0);
    assert_eq!(sk["connects"], 1);
    let written: u64 = ["flow", "alert", "tx", "anomaly", "engine", "stats"]
        .iter()
        .map(|k| stats["eve"][k].as_u64().unwrap())
        .sum();
    assert_eq!(written, got.len() as u64);
}

#[test]
fn redis_channel_publishes_each_event_to_a_subscriber() {
    let dir = Scratch::new("sink-redis-pub");
    let redis = Redis::start(free_port());
    let want = file_events(&dir, &sample(), &[]);
    let mut sub = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--raw",
            "SUBSCRIBE",
            "eve-live",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            redis.cli(&["PUBSUB", "NUMSUB", "eve-live"]).lines().nth(1) == Some("1")
        }),
        "the subscriber is registered"
    );
    let out_pipe = sub.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines() {
            let Ok(line) = line else { break };
            if line.starts_with('{') && tx.send(line).is_err() {
                break;
            }
        }
    });
    let target = format!("redis://127.0.0.1:{}/eve-live?mode=publish", redis.port);
    let (out, stats) = replay(&dir, &sample(), &target, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = Vec::new();
    while got.len() < want.len() {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(by_type(&got), by_type(&want));
    assert_eq!(sink(&stats)["sent"], want.len() as u64);
    assert_eq!(sink(&stats)["dropped"], 0);
    // Nothing was left on a list by that name.
    assert_eq!(redis.cli(&["EXISTS", "eve-live"]).trim(), "0");
}

#[test]
fn a_redis_that_is_not_there_costs_events_counted_not_the_run() {
    let dir = Scratch::new("sink-redis-gone");
    let want = file_events(&dir, &sample(), &[]);
    let target = format!("redis://127.0.0.1:{}/k", free_port());
    let (out, stats) = replay(&dir, &sample(), &target, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("retried every 1 s"), "{stderr}");
    // Said once, not once per event.
    assert_eq!(stderr.matches("retried every").count(), 1, "{stderr}");
    let sk = sink(&stats);
    assert_eq!(sk["sent"], 0);
    assert_eq!(sk["dropped"], want.len() as u64, "{stats}");
    assert_eq!(sk["connects"], 0);
    assert!(sk["errors"].as_u64().unwrap() >= 1);
    // The packets were all inspected and accounted for.
    let p = &stats["packets"];
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"])
    );
}

#[test]
fn a_redis_that_comes_up_late_gets_the_events_after_it_did() {
    let dir = Scratch::new("sink-redis-late");
    // 40 conversations 100 ms apart, played in real time: about 4 s.
    let pcap = dir.write("c.pcap", &conversations(40, SEC / 10).to_pcap());
    let port = free_port();
    let stats = dir.path("stats.json");
    let mut child = bin()
        .args(["replay", s(&pcap), "--speed", "1", "--closed-timeout", "0"])
        .args(["--eve-flush", "100ms", "--stats-interval", "0"])
        .args(["--eve", &format!("redis://127.0.0.1:{port}/late")])
        .args(["--stats-json", s(&stats)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let redis = Redis::start(port);
    assert!(wait_until(Duration::from_secs(60), || child
        .try_wait()
        .unwrap()
        .is_some()));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("connected again"), "{stderr}");
    let stats: Value = common::read_json(&stats);
    let sk = sink(&stats);
    let got = redis.list("late");
    let (sent, dropped) = (
        sk["sent"].as_u64().unwrap(),
        sk["dropped"].as_u64().unwrap(),
    );
    assert_eq!(sent, got.len() as u64);
    assert!(sent > 0 && dropped > 0, "some before, some after: {sk}");
    assert_eq!(sk["connects"], 1);
    // Every event the writer wrote was either sent or counted lost.
    assert_eq!(sent + dropped, stats["events"]["flow"].as_u64().unwrap());
    // What arrived is the end of the replay: the last conversation's flow.
    let last: Value =
        serde_json::from_str(got.iter().rev().find(|l| l.contains("\"flow\"")).unwrap()).unwrap();
    assert_eq!(last["dest_ip"], "10.9.0.40");
}

#[test]
fn unix_datagram_socket_gets_one_event_per_datagram() {
    let dir = Scratch::new("sink-dgram");
    let want = file_events(&dir, &sample(), &[]);
    let path = dir.path("eve.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // A reader that keeps up: the replay itself runs in parallel.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 17];
        let mut idle = 0;
        while idle < 25 {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    idle = 0;
                    got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
                }
                Err(_) => idle += 1,
            }
        }
        got
    });
    let (out, stats) = replay(&dir, &sample(), &format!("unix:{}", s(&path)), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = reader.join().unwrap();
    let sk = sink(&stats);
    // A datagram reader may fall behind and lose some: each one lost is
    // counted, and what arrived is whole events.
    assert_eq!(sk["sent"].as_u64().unwrap(), got.len() as u64);
    assert_eq!(
        sk["sent"].as_u64().unwrap() + sk["dropped"].as_u64().unwrap(),
        want.len() as u64
    );
    assert!(got.iter().all(|d| !d.ends_with('\n') && d.starts_with('{')));
    if sk["dropped"] == 0 {
        assert_eq!(by_type(&got), by_type(&want));
    }
}

#[test]
fn unix_stream_socket_gets_the_lines_the_file_gets() {
    let dir = Scratch::new("sink-stream");
    let want = file_events(&dir, &sample(), &[]);
    let path = dir.path("eve.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let reader = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        BufReader::new(conn)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let (out, stats) = replay(&dir, &sample(), &format!("unix-stream:{}", s(&path)), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = reader.join().unwrap();
    assert_eq!(by_type(&got), by_type(&want));
    assert_eq!(sink(&stats)["sent"], want.len() as u64);
    assert_eq!(sink(&stats)["dropped"], 0);
}

#[test]
fn a_stream_reader_that_never_reads_does_not_stall_the_workers() {
    let dir = Scratch::new("sink-stuck");
    // Thousands of events, megabytes: far more than a socket buffers.
    let pcap = dir.write("c.pcap", &conversations(6000, SEC / 1000).to_pcap());
    let path = dir.path("eve.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Accepts every connection and holds it, reading nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            match c {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    let start = Instant::now();
    let (out, stats) = replay(
        &dir,
        &pcap,
        &format!("unix-stream:{}", s(&path)),
        &["--closed-timeout", "0"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Liveness, not speed: a stalled worker would never finish.
    assert!(start.elapsed() < Duration::from_secs(120));
    let p = &stats["packets"];
    assert_eq!(
        p["rx"].as_u64().unwrap(),
        p["tx"].as_u64().unwrap() + sum_values(&p["dropped"]),
        "{stats}"
    );
    assert_eq!(
        p["rx"], stats["capture"]["records"],
        "every packet inspected"
    );
    // Every flow event is somewhere: dropped at a worker's full ring, lost
    // at the sink, or sent.
    let sk = sink(&stats);
    let (sent, lost) = (
        sk["sent"].as_u64().unwrap(),
        sk["dropped"].as_u64().unwrap(),
    );
    let written: u64 = ["flow", "alert", "tx", "anomaly", "engine", "stats"]
        .iter()
        .map(|k| stats["eve"][k].as_u64().unwrap())
        .sum();
    assert_eq!(sent + lost, written, "{stats}");
    assert!(lost > 0, "a reader that never reads loses events: {sk}");
    assert!(sk["errors"].as_u64().unwrap() >= 1);
    // The workers' side: what they handed over is what the writer wrote;
    // what found their ring full was counted there, and together that is
    // every event the same replay writes to a file.
    let ev = &stats["events"];
    assert_eq!(
        ev["flow"].as_u64().unwrap(),
        written - stats["eve"]["stats"].as_u64().unwrap()
    );
    let want = file_events(&dir, &pcap, &["--closed-timeout", "0"]).len() as u64;
    assert_eq!(
        ev["flow"].as_u64().unwrap()
            + ev["dropped_ring_full"].as_u64().unwrap()
            + ev["alerts_dropped_ring_full"].as_u64().unwrap(),
        want,
        "{stats}"
    );
}

#[test]
fn a_bad_eve_target_is_refused_at_start_with_what_is_expected() {
    for (bad, says) in [
        ("redis://127.0.0.1:0/k", "not a port number"),
        ("kafka://broker/topic", "unix-stream:PATH"),
        ("unix:", "no socket path"),
    ] {
        let out = bin()
            .args(["replay", s(&sample()), "--eve", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
}

#[test]
fn redis_error_replies_are_counted_as_lost_events() {
    let dir = Scratch::new("sink-redis-wrongtype");
    let redis = Redis::start(free_port());
    let want = file_events(&dir, &sample(), &[]);
    // A key that holds a string: every LPUSH onto it is refused
    // (-WRONGTYPE), and the connection stays up.
    assert_eq!(redis.cli(&["SET", "taken", "x"]).trim(), "OK");
    let target = format!("redis://127.0.0.1:{}/taken", redis.port);
    let (out, stats) = replay(&dir, &sample(), &target, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sk = sink(&stats);
    assert_eq!(sk["sent"], 0, "{sk}");
    assert_eq!(sk["dropped"], want.len() as u64);
    assert_eq!(sk["errors"], want.len() as u64);
    assert_eq!(sk["connects"], 1);
}
