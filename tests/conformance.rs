//! Conformance: the suricata-verify tests in ../shared/suricata-verify (read
//! in place), run through the real binary and judged by their own checks.
//!
//! Each test's capture is replayed with its rule file, the arguments and
//! `suricata.yaml` settings that have a meaning here mapped to our flags,
//! and every `filter` check is evaluated on the EVE we write, as
//! suricata-verify's runner evaluates it. A test is:
//! - unsupported when any of its rules does not load, when a setting or
//!   argument has no counterpart here, when it checks something other than
//!   EVE events (stats, shell, other files), EVE events of a type
//!   Tollgate does not write yet (`http`, `dns`, `tls`, `stats` …), or EVE
//!   fields it does not write yet (`payload`, `packet`, `tunnel`, `ether`
//!   … see `NOT_WRITTEN`) — never a pass;
//! - pass or fail otherwise, with the first failing check as the reason.
//!
//! The tests that pass are listed in `tests/conformance/passing.txt`: this
//! fails when a listed test stops passing, and when a test passes that is
//! not listed (add it in the same change, or run with
//! `TOLLGATE_CONFORMANCE_UPDATE=1` to rewrite the list). Arguments that do
//! not start with `-` select tests by name and skip the list comparison:
//!
//!     cargo test --test conformance -- [NAME…]
//!
//! `TOLLGATE_BIN` runs another build of the binary (an earlier commit's, to
//! measure a change).

use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use yaml_rust2::{Yaml, YamlLoader};

const PASSING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/passing.txt");

/// The EVE event types Tollgate writes; a check on any other is a check
/// on a part not built yet.
const WRITTEN: [&str; 9] = [
    "flow", "alert", "anomaly", "engine", "stats", "http", "fileinfo", "dns", "tls",
];

/// EVE fields (and objects) Tollgate does not write yet: a check on their
/// value is a check on a part not built (payload logging, tunnel and
/// Ethernet objects, verdicts, app-layer transaction ids …).
const NOT_WRITTEN: [&str; 11] = [
    "payload",
    "payload_printable",
    "packet",
    "packet_info",
    "stream",
    "ether",
    "tunnel",
    "in_iface",
    "verdict",
    "alert.rule",
    "files",
];

/// The unwritten field a filter's conditions look at, if any
/// (`not-has-key` conditions hold on them already and do not count).
fn unwritten_field(conditions: &Map<String, Value>) -> Option<String> {
    let path = |k: &str| -> Option<String> {
        let root = k.split(['.', '[']).next().unwrap_or(k);
        let two: String = k.split('.').take(2).collect::<Vec<_>>().join(".");
        NOT_WRITTEN
            .iter()
            .find(|f| **f == root || **f == two)
            .map(|f| f.to_string())
    };
    conditions.iter().find_map(|(k, v)| match k.as_str() {
        "not-has-key" => None,
        "has-key" => v.as_str().and_then(path),
        _ => path(k),
    })
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/suricata-verify");
    if !root.join("tests").is_dir() {
        eprintln!("../shared/suricata-verify is absent: skipping the conformance run");
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let manifest: Value = std::fs::read_to_string(root.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut names: Vec<String> = std::fs::read_dir(root.join("tests"))
        .expect("the suricata-verify tests folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("test.yaml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    names.sort();

    let results = run_all(&root, &names);
    let rows: Vec<Row> = names
        .iter()
        .zip(results)
        .map(|(name, outcome)| Row {
            name: name.clone(),
            layer: layer(&manifest[name.as_str()]["protocols"]),
            outcome,
        })
        .collect();
    print_table(&rows);

    if !filters.is_empty() {
        return;
    }
    let passing: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Pass))
        .map(|r| r.name.as_str())
        .collect();
    if std::env::var_os("TOLLGATE_CONFORMANCE_UPDATE").is_some() {
        let mut text = String::from(
            "# suricata-verify tests that pass (tests/conformance.rs keeps this list true)\n",
        );
        for n in &passing {
            text.push_str(n);
            text.push('\n');
        }
        std::fs::write(PASSING, text).expect("write the passing list");
        println!("wrote {} passing tests to {PASSING}", passing.len());
        return;
    }
    let listed: Vec<String> = std::fs::read_to_string(PASSING)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let stopped: Vec<&String> = listed
        .iter()
        .filter(|n| !passing.contains(&n.as_str()))
        .collect();
    let new: Vec<&&str> = passing
        .iter()
        .filter(|n| !listed.iter().any(|l| l == **n))
        .collect();
    let mut bad = false;
    if !stopped.is_empty() {
        eprintln!("listed as passing but no longer pass: {stopped:?}");
        bad = true;
    }
    if !new.is_empty() {
        eprintln!(
            "pass but are not listed in tests/conformance/passing.txt (add them, or run with \
             TOLLGATE_CONFORMANCE_UPDATE=1): {new:?}"
        );
        bad = true;
    }
    if bad {
        std::process::exit(1);
    }
}

#[derive(Debug, Clone)]
enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

struct Row {
    name: String,
    layer: &'static str,
    outcome: Outcome,
}

/// The highest layer a test's rules reach, for the totals.
fn layer(protocols: &Value) -> &'static str {
    let has = |p: &str| {
        protocols
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(p)))
    };
    for (name, layer) in [
        ("http", "http"),
        ("tls", "tls"),
        ("dns", "dns"),
        ("tcp", "tcp"),
        ("tcp-pkt", "tcp"),
        ("tcp-stream", "tcp"),
        ("udp", "udp"),
        ("icmp", "icmp"),
    ] {
        if has(name) {
            return layer;
        }
    }
    "ip"
}

/// Runs the tests on as many threads as there are cores.
fn run_all(root: &Path, names: &[String]) -> Vec<Outcome> {
    let out_root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![Outcome::Pass; names.len()]);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let outcome = run_one(root, name, &out_root.join(name));
                results.lock().unwrap()[i] = outcome;
            });
        }
    });
    results.into_inner().unwrap()
}

fn print_table(rows: &[Row]) {
    println!("| test | layer | result | reason |");
    println!("|---|---|---|---|");
    for r in rows {
        let (result, reason) = match &r.outcome {
            Outcome::Pass => ("pass", ""),
            Outcome::Fail(why) => ("FAIL", why.as_str()),
            Outcome::Unsupported(why) => ("unsupported", why.as_str()),
        };
        let reason: String = reason.chars().take(160).collect();
        println!("| {} | {} | {result} | {reason} |", r.name, r.layer);
    }
    let mut by_layer: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in rows {
        let k = match r.outcome {
            Outcome::Pass => 0,
            Outcome::Fail(_) => 1,
            Outcome::Unsupported(_) => 2,
        };
        by_layer.entry(r.layer).or_default()[k] += 1;
        by_layer.entry("total").or_default()[k] += 1;
    }
    println!();
    println!("| layer | pass | fail | unsupported | pass / (pass + fail) |");
    println!("|---|---:|---:|---:|---:|");
    for (layer, [p, f, u]) in &by_layer {
        let rate = if p + f > 0 {
            format!("{:.0} %", 100.0 * *p as f64 / (p + f) as f64)
        } else {
            "-".into()
        };
        println!("| {layer} | {p} | {f} | {u} | {rate} |");
    }
}

/// The flags a test's arguments and settings map to: a flag given twice
/// keeps its last value (`--set` after `-k`, as Suricata reads them), but
/// `--stream-policy` and `--set-var` add up.
#[derive(Default)]
struct Flags {
    single: BTreeMap<String, String>,
    repeated: Vec<(String, String)>,
    ips: bool,
    /// An EVE output's `xff.enabled` said yes: its mode and deployment
    /// that follow are ours to map.
    xff_on: bool,
}

impl Flags {
    fn push(&mut self, flag: &str, value: impl Into<String>) {
        self.single.insert(flag.into(), value.into());
    }

    fn add(&mut self, flag: &str, value: impl Into<String>) {
        self.repeated.push((flag.into(), value.into()));
    }

    fn args(&self) -> Vec<String> {
        self.single
            .iter()
            .chain(self.repeated.iter().map(|(k, v)| (k, v)))
            .flat_map(|(k, v)| [k.clone(), v.clone()])
            .collect()
    }
}

fn run_one(root: &Path, name: &str, out: &Path) -> Outcome {
    match prepare_and_run(root, name, out) {
        Ok(o) => o,
        Err(o) => o,
    }
}

fn unsupported(why: impl Into<String>) -> Outcome {
    Outcome::Unsupported(why.into())
}

fn prepare_and_run(root: &Path, name: &str, out: &Path) -> Result<Outcome, Outcome> {
    let dir = root.join("tests").join(name);
    let test = read_yaml(&dir.join("test.yaml")).map_err(unsupported)?;
    if !test["command"].is_badvalue() {
        return Err(unsupported("runs a command of its own"));
    }

    // What it checks: EVE events only.
    let checks = test["checks"].as_vec().cloned().unwrap_or_default();
    let mut filters = Vec::new();
    // (output file, expected file) pairs to compare byte for byte.
    let mut compares = Vec::new();
    for c in &checks {
        let Some(h) = c.as_hash() else {
            return Err(unsupported("a check that is not a map"));
        };
        for (k, v) in h {
            match k.as_str() {
                Some("filter") => {
                    let f = to_json(v);
                    if !applies(&f["requires"]).map_err(unsupported)? {
                        // A check for other Suricata versions than the
                        // one the set is judged by.
                        continue;
                    }
                    if let Some(file) = f.get("filename").and_then(Value::as_str) {
                        if file != "eve.json" {
                            return Err(unsupported(format!("checks the file {file}")));
                        }
                    }
                    if let Some(t) = f["match"].get("event_type").and_then(Value::as_str) {
                        if !WRITTEN.contains(&t) {
                            return Err(unsupported(format!("checks {t} events, not written yet")));
                        }
                    }
                    if let Some(field) = f["match"].as_object().and_then(unwritten_field) {
                        return Err(unsupported(format!(
                            "checks the EVE field {field}, not written yet"
                        )));
                    }
                    filters.push(f);
                }
                Some("file-compare") => {
                    let f = to_json(v);
                    let (Some(got), Some(want)) = (
                        f.get("filename").and_then(Value::as_str),
                        f.get("expected").and_then(Value::as_str),
                    ) else {
                        return Err(unsupported("a file-compare check without its files"));
                    };
                    compares.push((out.join(got), dir.join(want)));
                }
                Some(other) => return Err(unsupported(format!("a {other} check"))),
                None => return Err(unsupported("a check without a name")),
            }
        }
    }

    // The capture and the rules, found as suricata-verify finds them.
    let pcap = match &test["pcap"] {
        Yaml::String(p) => dir.join(p),
        Yaml::Boolean(false) => return Err(unsupported("has no capture")),
        _ => {
            let found = files_with(&dir, &["pcap", "pcapng"]);
            match found.as_slice() {
                [one] => one.clone(),
                [] => return Err(unsupported("has no capture")),
                _ => return Err(unsupported("has more than one capture")),
            }
        }
    };
    std::fs::create_dir_all(out).map_err(|e| Outcome::Fail(format!("output folder: {e}")))?;
    let rules = match files_with(&dir, &["rules"]).as_slice() {
        [one] => one.clone(),
        [] => {
            let empty = out.join("none.rules");
            std::fs::write(&empty, "").map_err(|e| Outcome::Fail(e.to_string()))?;
            empty
        }
        _ => return Err(unsupported("has more than one rule file")),
    };

    // Arguments, then the test's own suricata.yaml.
    let mut flags = Flags {
        ips: name.contains("ips"),
        ..Flags::default()
    };
    for arg in test["args"].as_vec().into_iter().flatten() {
        let text = match arg {
            Yaml::String(s) => s.clone(),
            other => yaml_scalar(other),
        };
        map_args(&text, &mut flags).map_err(unsupported)?;
    }
    flags.push("--data-dir", out.display().to_string());
    let yaml_path = dir.join("suricata.yaml");
    if yaml_path.is_file() {
        let conf = read_yaml(&yaml_path).map_err(unsupported)?;
        let mut settings = Vec::new();
        flatten(&conf, String::new(), &mut settings);
        for (key, value) in settings {
            map_setting(&key, &value, &mut flags).map_err(unsupported)?;
        }
    }

    // Run the real binary.
    let eve = out.join("eve.json");
    let _ = std::fs::remove_file(&eve);
    for (got, _) in &compares {
        let _ = std::fs::remove_file(got);
    }
    let bin =
        std::env::var_os("TOLLGATE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tollgate").into());
    let run_with = |unsupported_rules: &str| {
        Command::new(&bin)
            .arg("replay")
            .arg(&pcap)
            // One stats event, at the end, as Suricata writes for a capture.
            .args(["--workers", "1", "--stats-interval", "1h"])
            .arg("--eve")
            .arg(&eve)
            .arg("--rules")
            .arg(&rules)
            .args(["--rules-unsupported", unsupported_rules])
            .arg("--classification")
            .arg(root.join("etc/classification.config"))
            .args(["--mode", if flags.ips { "ips" } else { "ids" }])
            .args(flags.args())
            .output()
            .map_err(|e| Outcome::Fail(format!("could not run tollgate: {e}")))
    };
    let mut run = run_with("error")?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        let rule_errors: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("tollgate: error: "))
            .filter(|l| !l.contains("rule(s) the engine cannot evaluate yet"))
            .collect();
        let unloaded: Vec<&str> = rule_errors
            .iter()
            .copied()
            .filter(|l| l.starts_with("not evaluated yet: "))
            .collect();
        if let Some(first) = unloaded.first() {
            // Rules that do not load leave the test unjudged, unless no
            // check can depend on them (then it runs without them).
            let text = std::fs::read_to_string(&rules).unwrap_or_default();
            let sids: Vec<u64> = unloaded.iter().filter_map(|l| sid_of(l)).collect();
            if sids.len() != unloaded.len() || !checks_ignore(&filters, &text, &sids) {
                return Err(unsupported(format!(
                    "rule not loaded ({} in all): {}",
                    rule_errors.len(),
                    rule_reason(first)
                )));
            }
            run = run_with("skip")?;
        }
    }
    let stderr = String::from_utf8_lossy(&run.stderr);
    // A capture whose tail is damaged was replayed up to the damage (and
    // said so, exit 2), as Suricata reads one: the test judges that.
    let damaged_tail = stderr.contains(": corrupt capture at byte ") && eve.exists();
    if !run.status.success() && !damaged_tail {
        let first = stderr.lines().next().unwrap_or("").trim();
        if first.contains(".rules:") {
            // "tollgate: error: /…/test.rules:3: keyword …" → "test.rules:3: keyword …"
            let at = first.find(".rules:").unwrap_or(0);
            let start = first[..at].rfind('/').map_or(0, |i| i + 1);
            return Err(unsupported(format!("rule not parsed: {}", &first[start..])));
        }
        return Err(Outcome::Fail(format!(
            "exit {}: {first}",
            run.status.code().unwrap_or(-1)
        )));
    }
    let events: Vec<Value> = std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for f in &filters {
        if let Err(why) = check_filter(f, &events) {
            if let Some(counter) = unwritten_counter(f, &events) {
                return Err(unsupported(format!(
                    "checks the stats counter {counter}, not written yet"
                )));
            }
            return Ok(Outcome::Fail(why));
        }
    }
    for (got, want) in &compares {
        let (g, w) = (std::fs::read(got), std::fs::read(want));
        if g.as_ref().ok() != w.as_ref().ok() {
            return Ok(Outcome::Fail(format!(
                "{} differs from {}",
                got.display(),
                want.display()
            )));
        }
    }
    Ok(Outcome::Pass)
}

/// A `stats` counter a filter checks that our stats event does not have
/// (a counter of a part not built: tunnels we do not decode, app-layer
/// parsers …).
fn unwritten_counter(f: &Value, events: &[Value]) -> Option<String> {
    let conditions = f.get("match")?.as_object()?;
    if conditions.get("event_type").and_then(Value::as_str) != Some("stats") {
        return None;
    }
    let stats = events.iter().find(|e| e["event_type"] == "stats")?;
    conditions
        .keys()
        .filter(|k| k.starts_with("stats."))
        .find(|k| find(stats, k).is_none())
        .cloned()
}

/// "not evaluated yet: FILE:LINE: sid N: REASON" → "sid N: REASON".
/// The sid a `not evaluated yet: FILE:LINE: sid N: why` line names.
fn sid_of(line: &str) -> Option<u64> {
    let rest = &line[line.find("sid ")? + 4..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Whether no check can depend on the rules `sids` (which did not load):
/// every alert check names a signature_id, none of theirs, and none of
/// them writes a flowbit, xbit or flowint another rule reads. Suricata
/// itself refuses some rules the suite ships (events it no longer has):
/// the test still judges the rest.
fn checks_ignore(filters: &[Value], rules: &str, sids: &[u64]) -> bool {
    for f in filters {
        let m = &f["match"];
        let on_alerts = m.get("event_type").and_then(Value::as_str) == Some("alert");
        match m.get("alert.signature_id").and_then(Value::as_u64) {
            Some(s) if sids.contains(&s) => return false,
            None if on_alerts || m.get("event_type").is_none() => return false,
            _ => {}
        }
    }
    let (mine, others): (Vec<&str>, Vec<&str>) = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("sid:"))
        .partition(|l| {
            sids.iter()
                .any(|s| l.contains(&format!("sid:{s};")) || l.contains(&format!("sid: {s};")))
        });
    // What the unloaded rules write, and whether a loaded rule reads it.
    for rule in mine {
        for opt in rule.split(';').map(str::trim) {
            let Some((k, v)) = opt.split_once(':') else {
                continue;
            };
            let mut parts = v.split(',').map(str::trim);
            let name = match k.trim() {
                "flowbits" | "xbits" => {
                    let cmd = parts.next().unwrap_or("");
                    if !matches!(cmd, "set" | "unset" | "toggle") {
                        continue;
                    }
                    parts.next().unwrap_or("")
                }
                "flowint" => {
                    let name = parts.next().unwrap_or("");
                    if !matches!(parts.next(), Some("+" | "-" | "=")) {
                        continue;
                    }
                    name
                }
                _ => continue,
            };
            let read = others.iter().any(|o| {
                o.split(';').map(str::trim).any(|opt| {
                    let Some((k, v)) = opt.split_once(':') else {
                        return false;
                    };
                    let p: Vec<&str> = v.split(',').map(str::trim).collect();
                    match k.trim() {
                        "flowbits" | "xbits" => {
                            matches!(p.first(), Some(&"isset" | &"isnotset"))
                                && p.get(1) == Some(&name)
                        }
                        "flowint" => {
                            p.first() == Some(&name)
                                && !matches!(p.get(1), Some(&"+" | &"-" | &"="))
                        }
                        _ => false,
                    }
                })
            });
            if read {
                return false;
            }
        }
    }
    true
}

fn rule_reason(line: &str) -> &str {
    line.find("sid ").map_or(line, |i| &line[i..])
}

fn files_with(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.contains(&x))
        })
        .collect();
    v.sort();
    v
}

fn read_yaml(path: &Path) -> Result<Yaml, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut docs = YamlLoader::load_from_str(&text)
        .map_err(|e| format!("{} does not parse: {e}", path.display()))?;
    Ok(if docs.is_empty() {
        Yaml::Null
    } else {
        docs.swap_remove(0)
    })
}

/// A YAML value as the JSON value Python's yaml.safe_load would compare.
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                m.insert(yaml_scalar(k), to_json(v));
            }
            Value::Object(m)
        }
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
    }
}

fn yaml_scalar(y: &Yaml) -> String {
    match y {
        Yaml::Real(s) | Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Every leaf of a config as (dotted key, value); a list of scalars is one
/// leaf, a list of maps (outputs, logging) is walked with `[]` in the key.
fn flatten(y: &Yaml, key: String, out: &mut Vec<(String, Yaml)>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                let k = yaml_scalar(k);
                let key = if key.is_empty() {
                    k
                } else {
                    format!("{key}.{k}")
                };
                flatten(v, key, out);
            }
        }
        Yaml::Array(a) if a.iter().any(|v| matches!(v, Yaml::Hash(_))) => {
            for v in a {
                flatten(v, format!("{key}[]"), out);
            }
        }
        _ => out.push((key, y.clone())),
    }
}

/// Suricata command-line arguments (`-k none`, `--simulate-ips`,
/// `--set KEY=VALUE` …), each as our flags.
fn map_args(text: &str, flags: &mut Flags) -> Result<(), String> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "-k" => match words.next() {
                Some("none") => flags.push("--checksum", "off"),
                Some("all") => flags.push("--checksum", "on"),
                Some("auto") => {}
                other => return Err(format!("argument -k {other:?}")),
            },
            "--simulate-ips" => flags.ips = true,
            "--set" => {
                let kv = words.next().ok_or("--set without a value")?;
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("--set {kv}"))?;
                map_setting(k, &Yaml::String(v.to_string()), flags)?;
            }
            "--runmode" => {
                words.next();
            }
            // Datasets are written to the test's output folder always.
            _ if w.starts_with("--runmode=") || w.starts_with("--data-dir=") => {}
            "--no-random" => {}
            _ => return Err(format!("argument {w}")),
        }
    }
    Ok(())
}

/// The Suricata version the set was judged by: its tests all pass there,
/// and a check that `requires` another version is not ours to make.
const SURICATA_VERSION: [u64; 3] = [8, 0, 6];

/// Whether a check's `requires` (`min-version`, `lt-version`) holds for
/// `SURICATA_VERSION`; an error for requirements of another kind.
fn applies(requires: &Value) -> Result<bool, String> {
    let Some(req) = requires.as_object() else {
        return Ok(true);
    };
    let version = |v: &Value| -> Result<[u64; 3], String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("a version {other}")),
        };
        let mut out = [0u64; 3];
        for (i, part) in text.split('.').take(3).enumerate() {
            out[i] = part.parse().map_err(|_| format!("a version {text}"))?;
        }
        Ok(out)
    };
    let mut holds = true;
    for (k, v) in req {
        match k.as_str() {
            "min-version" => holds &= SURICATA_VERSION >= version(v)?,
            "lt-version" => holds &= SURICATA_VERSION < version(v)?,
            other => return Err(format!("a check that requires {other}")),
        }
    }
    Ok(holds)
}

fn truthy(v: &Yaml) -> Option<bool> {
    match v {
        Yaml::Boolean(b) => Some(*b),
        Yaml::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Some(true),
            "no" | "false" | "off" | "0" => Some(false),
            _ => None,
        },
        Yaml::Integer(i) => Some(*i != 0),
        _ => None,
    }
}

/// One Suricata setting as our flags: mapped, harmless here (logging,
/// outputs, app-layer parsers the rules would need anyway), or an error
/// naming it.
fn map_setting(key: &str, value: &Yaml, flags: &mut Flags) -> Result<(), String> {
    let text = yaml_scalar(value);
    let cannot = || Err(format!("setting {key}: {text}"));
    let is = |want: bool| truthy(value) == Some(want);
    match key {
        "stream.midstream" if is(true) => flags.push("--midstream", "on"),
        "stream.midstream" if is(false) => {}
        "stream.checksum-validation" | "pcap-file.checksum-checks" => match truthy(value) {
            Some(false) => flags.push("--checksum", "off"),
            Some(true) => flags.push("--checksum", "on"),
            None if text == "auto" => {}
            None => return cannot(),
        },
        "stream.reassembly.depth" => flags.push("--stream-depth", size(&text)),
        "stream.reassembly.urgent.policy" => flags.push("--stream-urgent", text),
        "packet-alert-max" => flags.push("--packet-alert-max", text),
        "detect.inspection-recursion-limit" => flags.push("--inspection-recursion-limit", text),
        "exception-policy" => match text.as_str() {
            "ignore" | "pass-flow" | "pass-packet" => flags.push("--exception-policy", "pass"),
            "auto" | "drop-flow" | "drop-packet" => flags.push("--exception-policy", text),
            _ => return cannot(),
        },
        "action-order" => {
            let order: Vec<String> = value
                .as_vec()
                .map(|a| a.iter().map(yaml_scalar).collect())
                .unwrap_or_default();
            if order != ["pass", "drop", "reject", "alert"] {
                return Err(format!("action-order {}", order.join(",")));
            }
        }
        "app-layer.protocols.http.libhtp.default-config.request-body-limit"
        | "app-layer.protocols.http.libhtp.default-config.response-body-limit" => {
            // One limit here for both directions; 0 is Suricata's "none".
            let n = if text == "0" {
                "64MiB".to_string()
            } else {
                size(&text)
            };
            flags.push("--http-body-limit", n)
        }
        // The file hashes EVE's fileinfo is to carry.
        _ if key.ends_with("files.force-hash") => {
            let list: Vec<String> = value
                .as_vec()
                .map(|a| a.iter().map(yaml_scalar).collect())
                .unwrap_or_else(|| vec![text.clone()]);
            flags.push("--file-hashes", list.join(","))
        }
        // Reassembly here never waits for the other side's ACKs before
        // handing bytes on: a stream seen one way only is taken as it is,
        // which is what async-oneside asks of Suricata.
        "stream.async-oneside" => {}
        // Inline stream handling is what --mode ips does.
        "stream.inline" if is(true) => flags.ips = true,
        // A flow picked up midstream is inspected as any other.
        "stream.midstream-policy" if text == "ignore" => {}
        "vlan.use-for-tracking" if is(false) => flags.push("--vlan-tracking", "off"),
        "vlan.use-for-tracking" | "decoder.vxlan.enabled" if is(true) => {}
        "stream.inline" if is(false) => {}
        _ if key.starts_with("host-os-policy.") => {
            let policy = &key["host-os-policy.".len()..];
            for prefix in value.as_vec().into_iter().flatten().map(yaml_scalar) {
                let p = if prefix.contains('/') {
                    prefix
                } else if prefix.contains(':') {
                    format!("{prefix}/128")
                } else {
                    format!("{prefix}/32")
                };
                let p = if p == "0.0.0.0/0" {
                    policy.to_string()
                } else {
                    format!("{p}={policy}")
                };
                flags.add("--stream-policy", p);
            }
        }
        _ if key.starts_with("vars.address-groups.") || key.starts_with("vars.port-groups.") => {
            let var = key.rsplit('.').next().unwrap_or_default();
            flags.add("--set-var", format!("{var}={text}"));
        }
        // One X-Forwarded-For setting here for every event type.
        _ if key.ends_with(".xff.enabled") => flags.xff_on = is(true),
        _ if key.ends_with(".xff.mode") && flags.xff_on => flags.push("--xff", text),
        _ if key.ends_with(".xff.deployment") && flags.xff_on => {
            flags.push("--xff-deployment", text)
        }
        _ if key.ends_with(".xff.header") && flags.xff_on => flags.push("--xff-header", text),
        // Harmless here: where logs go, what Suricata logs about itself,
        // its own tables' sizes, and switches for app-layer parsers (a
        // rule that needs one does not load, which the test reports).
        _ if [
            "outputs",
            "logging.",
            "stats.",
            "security.lua.",
            "app-layer.protocols.",
            "default-rule-path",
            "classification-file",
            "reference-config-file",
            "flow.hash-size",
            "ippair.hash-size",
            "runmode",
            "detect.guess-applayer-tx",
            "include",
        ]
        .iter()
        .any(|p| key.starts_with(p)) => {}
        _ => return cannot(),
    }
    Ok(())
}

/// A Suricata size (`1mb`, `200kb`, `0`) in the form our flags take.
fn size(s: &str) -> String {
    let l = s.to_ascii_lowercase();
    for (suffix, unit) in [("kb", "KiB"), ("mb", "MiB"), ("gb", "GiB")] {
        if let Some(n) = l.strip_suffix(suffix) {
            return format!("{}{unit}", n.trim());
        }
    }
    l
}

/// One `filter` check on the events: how many match, against `count`
/// (or `lt`/`gt`).
fn check_filter(f: &Value, events: &[Value]) -> Result<(), String> {
    let empty = Map::new();
    let conditions = f.get("match").and_then(Value::as_object).unwrap_or(&empty);
    let n = events
        .iter()
        .filter(|e| conditions.iter().all(|(k, v)| matches(e, k, v)))
        .count() as u64;
    let want = |k: &str| f.get(k).and_then(Value::as_u64);
    let ok = match (want("count"), want("lt"), want("gt")) {
        (Some(c), _, _) => n == c,
        (None, Some(lt), gt) => n < lt && gt.is_none_or(|g| n > g),
        (None, None, Some(gt)) => n > gt,
        (None, None, None) => n > 0,
    };
    if ok {
        return Ok(());
    }
    let mut what: Vec<String> = conditions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    what.sort();
    let expected = ["count", "lt", "gt"]
        .iter()
        .filter_map(|k| want(k).map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ");
    Err(format!("{expected}, got {n}: {}", what.join(" ")))
}

/// Whether `event` meets one `match` condition, as suricata-verify's
/// runner reads them: dotted paths with `[i]` indexing, `has-key`,
/// `not-has-key`, and the `__startswith`, `__endswith`, `__find` and
/// `__len` operators on the path's last part.
fn matches(event: &Value, key: &str, expected: &Value) -> bool {
    match key {
        "has-key" => return expected.as_str().and_then(|p| find(event, p)).is_some(),
        "not-has-key" => return expected.as_str().and_then(|p| find(event, p)).is_none(),
        _ => {}
    }
    if let Some((path, op)) = key.rsplit_once('.').filter(|(_, op)| op.starts_with("__")) {
        let Some(v) = find(event, path) else {
            return false;
        };
        let (s, e) = (v.as_str(), expected.as_str());
        return match op {
            "__startswith" => s.zip(e).is_some_and(|(s, e)| s.starts_with(e)),
            "__endswith" => s.zip(e).is_some_and(|(s, e)| s.ends_with(e)),
            "__find" => s.zip(e).is_some_and(|(s, e)| s.contains(e)),
            "__len" => {
                let len = match v {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    Value::String(s) => s.len(),
                    _ => return false,
                };
                expected.as_u64() == Some(len as u64)
            }
            _ => false,
        };
    }
    match find(event, key) {
        Some(v) => same(v, expected),
        None => expected.is_null(),
    }
}

/// Python's `==` on JSON values: numbers compare by value (and a bool is
/// 0 or 1).
fn same(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// The value at a dotted path (`alert.metadata.foo[0]`).
fn find<'a>(mut v: &'a Value, path: &str) -> Option<&'a Value> {
    for part in path.split('.') {
        let (name, index) = match part.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
            Some((n, i)) => (n, Some(i.parse::<usize>().ok()?)),
            None => (part, None),
        };
        v = v.get(name)?;
        if let Some(i) = index {
            v = v.get(i)?;
        }
    }
    // A null field counts as absent, as Python's `None` does.
    (!v.is_null()).then_some(v)
}
