//! Helpers the end-to-end tests share.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tollgate::craft::Capture;

pub const SEC: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, where crafted captures start.
pub const T0: u64 = 1_767_225_600 * SEC;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends a signal (`HUP`, `USR2` …) with the system's `kill`.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill -s {sig}");
}

/// Polls `cond` every 20 ms for up to `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Waits for a child to exit (killing it after `limit`).
pub fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    if !wait_until(limit, || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
        panic!("still running after {limit:?}");
    }
    child.wait().unwrap()
}

/// A scratch folder under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tollgate-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }

    pub fn write(&self, f: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(f);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sum of a JSON object's values (e.g. `packets.dropped`); every value
/// must be a whole number.
pub fn sum_values(v: &Value) -> u64 {
    v.as_object()
        .expect("a JSON object of counters")
        .values()
        .map(|n| n.as_u64().expect("counters are whole numbers"))
        .sum()
}

/// Replays `cap` through the binary with the rules at `rules` and `extra`
/// flags; returns every EVE event (in EVE order) and the stats JSON.
pub fn replay_events(
    dir: &Scratch,
    cap: &Capture,
    rules: &Path,
    extra: &[&str],
) -> (Vec<Value>, Value) {
    let pcap = dir.write("c.pcap", &cap.to_pcap());
    let (eve, stats) = (dir.path("eve.json"), dir.path("stats.json"));
    // EVE is appended to: start from an empty file.
    let _ = std::fs::remove_file(&eve);
    let mut args = vec![
        "replay",
        s(&pcap),
        "--stats-interval",
        "0",
        "--rules",
        s(rules),
        "--eve",
        s(&eve),
        "--stats-json",
        s(&stats),
    ];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let st: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    (events, st)
}

/// Validates EVE files with `scripts/validate-eve.py` against Suricata's
/// EVE schema (`../shared/suricata/eve-schema.json`, or
/// `TOLLGATE_SURICATA_SCHEMA`), with Tollgate's `tollgate` property added
/// when `extensions`; panics naming the first failures. Returns the
/// script's summary (events by type), or None, said on stderr, where the
/// schema is absent (a checkout without `../shared`, like the other tests
/// that measure against it).
pub fn validate_eve(files: &[&Path], extensions: bool) -> Option<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = std::env::var_os("TOLLGATE_SURICATA_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/suricata/eve-schema.json"));
    if !schema.is_file() {
        eprintln!(
            "{} is absent: skipping the EVE schema check",
            schema.display()
        );
        return None;
    }
    // Debian's python3 (where scripts/setup.sh installs python3-jsonschema)
    // unless the one on PATH has jsonschema itself.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import jsonschema"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a python3 with jsonschema (scripts/setup.sh installs python3-jsonschema)");
    let out = Command::new(python)
        .arg(root.join("scripts/validate-eve.py"))
        .arg("--suricata-schema")
        .arg(&schema)
        .args(["--extensions", if extensions { "on" } else { "off" }])
        .args(files)
        .output()
        .expect("python3 runs scripts/validate-eve.py");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "validate-eve.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "events fail the schema (extensions {extensions}): {summary:#}"
    );
    Some(summary)
}

/// A JSON file (a stats JSON, a saved state, a fixture), which must exist
/// and parse.
pub fn read_json(path: impl AsRef<Path>) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The EVE events in a file, in order.
pub fn eve_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The signature ids of the alerts among `events`, sorted.
pub fn alert_sids(events: &[Value]) -> Vec<u64> {
    let mut v: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| e["alert"]["signature_id"].as_u64().unwrap())
        .collect();
    v.sort();
    v
}
