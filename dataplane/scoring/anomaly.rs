//! The anomaly detector: Half-Space Trees (Tan, Ting and Liu, "Fast
//! anomaly detection for streaming data", IJCAI 2011), unsupervised,
//! streaming, in fixed memory.
//!
//! Each tree halves a random feature's work range at each node, to a fixed
//! depth; its shape is drawn once from a seed and never depends on data.
//! Every record adds one to the "latest" mass of the nodes on its path;
//! after `window` records the latest masses become the reference and start
//! again from zero. A record's mass score is, summed over trees, the
//! reference mass of the first node on its path that holds no more than
//! `SIZE_LIMIT` records (or its leaf), times 2^depth: a record where the
//! reference window had few like it scores low. Its anomaly score is one
//! less the trees' mean ln(1 + mass) over the most a tree can give, in
//! [0, 1] (1: nothing like it was seen).
//!
//! The detector learns in three steps. The first `window` records only
//! fill the masses (learning). The next `window` are scored against them
//! without alerting, and the threshold becomes the score that at most
//! `target_fpr` of them reached (calibrating); the calibration window's
//! masses become the reference. After that it is live: records at or
//! above the threshold alert, and the reference no longer moves (a window
//! that turned while a long scan or exfiltration ran would learn it as
//! normal; to learn again, remove the state). The whole state (shape,
//! masses, step, threshold, and the scorer's peer-group familiarity, which
//! the host features are measured against) is one JSON file
//! (`tollgate-anomaly/1`) that a restart loads, so it does not learn
//! again.
//!
//! Features are squashed into [0, 1) by ln(1 + x) / (4 + ln(1 + x)) (the
//! features are counts, sizes and times over many orders of magnitude);
//! a missing one sits at -0.25, its own place below every value.

use super::features::{FEATURES, FEATURE_SCHEMA, N_FEATURES};
use crate::sample::Rng;
use serde_json::{json, Value};
use std::path::Path;

pub const FORMAT: &str = "tollgate-anomaly/1";
/// Trees and their depth.
pub const TREES: usize = 100;
pub const DEPTH: usize = 10;
/// A node with no more reference records than this is where a path's
/// scoring stops.
const SIZE_LIMIT: u32 = 4;
/// Score histogram bins for calibration.
const BINS: usize = 1000;
/// Default share of calibration records above the learnt threshold.
pub const TARGET_FPR: f64 = 0.005;
const INTERNAL: usize = (1 << DEPTH) - 1;
const NODES: usize = (1 << (DEPTH + 1)) - 1;
const MISSING: f32 = -0.25;

/// The features the trees split on: a flow's shape, its client's fan-out
/// and rhythm, and how familiar its server is. Fewer dimensions than the
/// whole record, so that a path of `DEPTH` splits meets the pairs that
/// matter (a big download *and* a subnet new to the store) often enough.
pub const WATCHED: [&str; 13] = [
    "duration",
    "bytes_toserver",
    "bytes_toclient",
    "up_down_ratio",
    "iat_mean",
    "tcp_rst",
    "app_proto",
    "host_dst_ports",
    "host_same_dst",
    "host_period_cv",
    "host_error_flows",
    "peer_flows",
    "dst_clients",
];

/// Where the detector is in its learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Learning,
    Calibrating,
    Live,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Learning => "learning",
            Phase::Calibrating => "calibrating",
            Phase::Live => "live",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tree {
    dim: Vec<u8>,
    split: Vec<f32>,
    reference: Vec<u32>,
    latest: Vec<u32>,
}

/// The detector's whole state.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    trees: Vec<Tree>,
    pub window: u64,
    /// Records seen (all phases).
    pub records: u64,
    pub phase: Phase,
    pub threshold: f32,
    pub target_fpr: f64,
    hist: Vec<u32>,
    seed: u64,
    /// The scorer's peer-group table as it was saved: (key, flows, last
    /// seen, client map) per entry in use (`hosts::HostTable::export_peers`).
    pub peers: Vec<[u64; 4]>,
    /// The features some node splits on (from the trees).
    used: Vec<u8>,
}

/// The features `trees` split on, each once.
fn used(trees: &[Tree]) -> Vec<u8> {
    let mut u: Vec<u8> = trees.iter().flat_map(|t| t.dim.iter().copied()).collect();
    u.sort_unstable();
    u.dedup();
    u
}

/// Squashes one feature value into the trees' space.
fn squash(x: f32) -> f32 {
    if x.is_nan() {
        return MISSING;
    }
    let l = (1.0 + f64::from(x.max(0.0))).ln();
    (l / (4.0 + l)) as f32
}

impl Detector {
    /// A detector with fresh trees drawn from `seed`, learning over
    /// `window` records.
    pub fn new(seed: u64, window: u64) -> Detector {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let unit = |rng: &mut Rng| rng.below(1 << 24) as f64 / f64::from(1u32 << 24);
        let watched: Vec<u8> = WATCHED
            .iter()
            .filter_map(|n| super::features::index(n))
            .map(|i| i as u8)
            .collect();
        let trees: Vec<Tree> = (0..TREES)
            .map(|_| {
                // Each feature's work range: around a random point, wide
                // enough to hold all of [0, 1] and the missing value.
                let mut lo = [0f64; N_FEATURES];
                let mut hi = [0f64; N_FEATURES];
                for q in 0..N_FEATURES {
                    let s = unit(&mut rng);
                    let r = 2.0 * s.max(1.0 - s);
                    lo[q] = s - r;
                    hi[q] = s + r;
                }
                let mut dim = vec![0u8; INTERNAL];
                let mut split = vec![0f32; INTERNAL];
                #[allow(clippy::too_many_arguments)]
                fn grow(
                    node: usize,
                    lo: &mut [f64; N_FEATURES],
                    hi: &mut [f64; N_FEATURES],
                    rng: &mut Rng,
                    watched: &[u8],
                    dim: &mut [u8],
                    split: &mut [f32],
                ) {
                    if node >= INTERNAL {
                        return;
                    }
                    let q = usize::from(watched[rng.below(watched.len() as u64) as usize]);
                    let mid = (lo[q] + hi[q]) / 2.0;
                    dim[node] = q as u8;
                    split[node] = mid as f32;
                    let h = hi[q];
                    hi[q] = mid;
                    grow(2 * node + 1, lo, hi, rng, watched, dim, split);
                    hi[q] = h;
                    let l = lo[q];
                    lo[q] = mid;
                    grow(2 * node + 2, lo, hi, rng, watched, dim, split);
                    lo[q] = l;
                }
                grow(
                    0, &mut lo, &mut hi, &mut rng, &watched, &mut dim, &mut split,
                );
                Tree {
                    dim,
                    split,
                    reference: vec![0; NODES],
                    latest: vec![0; NODES],
                }
            })
            .collect();
        Detector {
            used: used(&trees),
            trees,
            window: window.max(1),
            records: 0,
            phase: Phase::Learning,
            threshold: 1.0,
            target_fpr: TARGET_FPR,
            hist: vec![0; BINS],
            seed,
            peers: Vec::new(),
        }
    }

    /// `x` squashed, in the features the trees split on (the others are
    /// left at 0: no node reads them).
    fn squashed(&self, x: &[f32; N_FEATURES]) -> [f32; N_FEATURES] {
        let mut s = [0f32; N_FEATURES];
        for &q in &self.used {
            let q = usize::from(q);
            s[q] = squash(x[q]);
        }
        s
    }

    /// The anomaly score of `x` against the reference masses, in [0, 1]:
    /// 1 where the reference window had nothing like it.
    pub fn score(&self, x: &[f32; N_FEATURES]) -> f32 {
        self.score_squashed(&self.squashed(x))
    }

    fn score_squashed(&self, s: &[f32; N_FEATURES]) -> f32 {
        // The mean of the trees' log masses, not the log of their sum: a
        // record that a few trees isolate (they split on the one pair of
        // features that sets it apart) is not drowned by the many that
        // never look at that pair.
        let most = ((self.window as f64) * f64::from(1u32 << DEPTH)).ln_1p();
        let logs: f64 = self.trees.iter().map(|t| mass(t, s).ln_1p()).sum();
        (1.0 - logs / TREES as f64 / most).clamp(0.0, 1.0) as f32
    }

    /// Scores `x` (None while learning), then learns it. Returns the score
    /// and whether it alerts.
    pub fn observe(&mut self, x: &[f32; N_FEATURES]) -> (Option<f32>, bool) {
        let s = self.squashed(x);
        let score = (self.phase != Phase::Learning).then(|| self.score_squashed(&s));
        // Live, the latest masses are never read: nothing to count.
        let learning = self.phase != Phase::Live;
        for t in self.trees.iter_mut().filter(|_| learning) {
            let mut node = 0;
            loop {
                t.latest[node] = t.latest[node].saturating_add(1);
                if node >= INTERNAL {
                    break;
                }
                node = child(t, node, &s);
            }
        }
        if let (Phase::Calibrating, Some(sc)) = (self.phase, score) {
            let b = ((sc * BINS as f32) as usize).min(BINS - 1);
            self.hist[b] += 1;
        }
        self.records += 1;
        // Once live, the reference stays what was learnt: a window that
        // turned while a long attack ran would learn the attack as normal.
        if self.phase != Phase::Live && self.records % self.window == 0 {
            for t in &mut self.trees {
                std::mem::swap(&mut t.reference, &mut t.latest);
                t.latest.iter_mut().for_each(|m| *m = 0);
            }
            match self.phase {
                Phase::Learning => self.phase = Phase::Calibrating,
                Phase::Calibrating => {
                    self.threshold = self.calibrated();
                    self.phase = Phase::Live;
                }
                Phase::Live => {}
            }
        }
        let alert = self.phase == Phase::Live && score.is_some_and(|s| s >= self.threshold);
        (score, alert)
    }

    /// The lowest bin edge with at most `target_fpr` of calibration scores
    /// at or above it.
    fn calibrated(&self) -> f32 {
        let total: u64 = self.hist.iter().map(|&n| u64::from(n)).sum();
        let allowed = (self.target_fpr * total as f64).floor() as u64;
        let mut above = 0u64;
        for b in (0..BINS).rev() {
            above += u64::from(self.hist[b]);
            if above > allowed {
                return ((b + 1) as f32 / BINS as f32).min(1.0);
            }
        }
        0.0
    }

    /// Which features set `x` apart: per feature, how much reference mass
    /// the splits on it shed along each tree's path (log2), summed.
    pub fn contributions(&self, x: &[f32; N_FEATURES], out: &mut [f32; N_FEATURES]) {
        out.fill(0.0);
        let s = self.squashed(x);
        for t in &self.trees {
            let mut node = 0;
            while node < INTERNAL && t.reference[node] > SIZE_LIMIT {
                let next = child(t, node, &s);
                let shed = (f64::from(t.reference[node]) + 1.0).log2()
                    - (f64::from(t.reference[next]) + 1.0).log2();
                out[usize::from(t.dim[node])] += shed as f32;
                node = next;
            }
        }
    }

    /// The state as its file's JSON.
    pub fn to_json(&self) -> Value {
        let trees: Vec<Value> = self
            .trees
            .iter()
            .map(|t| {
                json!({
                    "dim": t.dim,
                    "split": t.split,
                    "reference": t.reference,
                    "latest": t.latest,
                })
            })
            .collect();
        json!({
            "format": FORMAT,
            "feature_schema": FEATURE_SCHEMA,
            "features": FEATURES.iter().map(|f| f.name).collect::<Vec<_>>(),
            "trees": TREES,
            "depth": DEPTH,
            "seed": self.seed,
            "window": self.window,
            "records": self.records,
            "phase": self.phase.name(),
            "threshold": self.threshold,
            "target_fpr": self.target_fpr,
            "calibration": self.hist,
            "peers": self.peers,
            "tree": trees,
        })
    }

    /// The state file's text: `format` first, so that a reader can tell
    /// the kind from the first bytes (`is_state`).
    pub fn to_text(&self) -> String {
        let mut v = self.to_json();
        if let Some(m) = v.as_object_mut() {
            m.remove("format");
        }
        let rest = v.to_string();
        format!("{{\"format\":\"{FORMAT}\",{}", &rest[1..])
    }

    /// Writes the state to `path` (through a temporary file beside it, so
    /// a crash never leaves half a state).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_text())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{}: cannot save the anomaly state: {e}", path.display()))
    }

    /// Whether a file's text is an anomaly detector's state.
    pub fn is_state(text: &str) -> bool {
        text.get(..512)
            .unwrap_or(text)
            .contains(&format!("\"format\":\"{FORMAT}\""))
    }

    pub fn load(path: &Path) -> Result<Detector, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Detector::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_json(text: &str) -> Result<Detector, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("not an anomaly state: {e}"))?;
        let get = |k: &str| v.get(k).ok_or_else(|| format!("`{k}` is missing"));
        if get("format")?.as_str() != Some(FORMAT) {
            return Err(format!("`format` is not {FORMAT}"));
        }
        let schema = get("feature_schema")?.as_str().unwrap_or("");
        if schema != FEATURE_SCHEMA {
            return Err(format!(
                "learnt on feature schema {schema}; this Tollgate computes schema {FEATURE_SCHEMA}: learn again"
            ));
        }
        let u = |k: &str| {
            get(k)?
                .as_u64()
                .ok_or_else(|| format!("`{k}` is not a whole number"))
        };
        if u("trees")? != TREES as u64 || u("depth")? != DEPTH as u64 {
            return Err(format!("`trees` and `depth` must be {TREES} and {DEPTH}"));
        }
        let window = u("window")?;
        if window == 0 {
            return Err("`window` must be at least 1".into());
        }
        let phase = match get("phase")?.as_str() {
            Some("learning") => Phase::Learning,
            Some("calibrating") => Phase::Calibrating,
            Some("live") => Phase::Live,
            _ => return Err("`phase` is not learning, calibrating or live".into()),
        };
        let f = |k: &str| {
            get(k)?
                .as_f64()
                .ok_or_else(|| format!("`{k}` is not a number"))
        };
        let threshold = f("threshold")? as f32;
        let target_fpr = f("target_fpr")?;
        if !(0.0..=1.0).contains(&threshold) || !(0.0..=1.0).contains(&target_fpr) {
            return Err("`threshold` and `target_fpr` must be within 0 to 1".into());
        }
        let hist = u32s(get("calibration")?, BINS, "calibration")?;
        let tv = get("tree")?
            .as_array()
            .filter(|a| a.len() == TREES)
            .ok_or_else(|| format!("`tree` must hold {TREES} trees"))?;
        let mut trees = Vec::with_capacity(TREES);
        for (i, t) in tv.iter().enumerate() {
            let field = |k: &str| {
                t.get(k)
                    .ok_or_else(|| format!("tree {i}: `{k}` is missing"))
            };
            let dim: Vec<u8> = u32s(field("dim")?, INTERNAL, "dim")?
                .into_iter()
                .map(|d| {
                    u8::try_from(d)
                        .ok()
                        .filter(|&d| usize::from(d) < N_FEATURES)
                })
                .collect::<Option<_>>()
                .ok_or_else(|| format!("tree {i}: `dim` names a feature we do not have"))?;
            let split: Vec<f32> = field("split")?
                .as_array()
                .filter(|a| a.len() == INTERNAL)
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
                .ok_or_else(|| format!("tree {i}: `split` must be {INTERNAL} numbers"))?;
            trees.push(Tree {
                dim,
                split,
                reference: u32s(field("reference")?, NODES, "reference")
                    .map_err(|e| format!("tree {i}: {e}"))?,
                latest: u32s(field("latest")?, NODES, "latest")
                    .map_err(|e| format!("tree {i}: {e}"))?,
            });
        }
        let peers = match v.get("peers") {
            None => Vec::new(),
            Some(p) => p
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|e| {
                            let e = e.as_array().filter(|e| e.len() == 4)?;
                            Some([
                                e[0].as_u64()?,
                                e[1].as_u64()?,
                                e[2].as_u64()?,
                                e[3].as_u64()?,
                            ])
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or("`peers` must be [key, flows, last seen, clients] lists of whole numbers")?,
        };
        Ok(Detector {
            used: used(&trees),
            trees,
            window,
            records: u("records")?,
            phase,
            threshold,
            target_fpr,
            hist,
            seed: u("seed")?,
            peers,
        })
    }
}

fn u32s(v: &Value, n: usize, what: &str) -> Result<Vec<u32>, String> {
    v.as_array()
        .filter(|a| a.len() == n)
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect()
        })
        .ok_or_else(|| format!("`{what}` must be {n} whole numbers"))
}

fn child(t: &Tree, node: usize, s: &[f32; N_FEATURES]) -> usize {
    if s[usize::from(t.dim[node])] < t.split[node] {
        2 * node + 1
    } else {
        2 * node + 2
    }
}

/// One tree's mass score for squashed `s`: down the path while the node
/// holds more than `SIZE_LIMIT` reference records, then that node's mass
/// times 2^depth (0 for a region the reference window never reached).
fn mass(t: &Tree, s: &[f32; N_FEATURES]) -> f64 {
    let mut node = 0;
    let mut depth = 0;
    while node < INTERNAL && t.reference[node] > SIZE_LIMIT {
        node = child(t, node, s);
        depth += 1;
    }
    f64::from(t.reference[node]) * f64::from(1u32 << depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordinary records: chat-sized flows with some spread.
    fn normal(rng: &mut Rng) -> [f32; N_FEATURES] {
        let mut x = [0f32; N_FEATURES];
        for (q, v) in x.iter_mut().enumerate() {
            *v = (100 + 10 * q) as f32 * (1.0 + rng.below(100) as f32 / 100.0);
        }
        x
    }

    #[test]
    fn it_learns_then_calibrates_then_flags_the_odd_one() {
        let mut d = Detector::new(7, 500);
        let mut rng = Rng(3);
        for k in 0..1000 {
            let (s, alert) = d.observe(&normal(&mut rng));
            assert_eq!(s.is_some(), k >= 500, "no score while learning");
            assert!(!alert, "no alert before it is live");
        }
        assert_eq!(d.phase, Phase::Live);
        assert!(d.threshold > 0.0 && d.threshold < 1.0, "{}", d.threshold);
        let (a, b) = (
            super::super::features::index("bytes_toserver").unwrap(),
            super::super::features::index("host_dst_ports").unwrap(),
        );
        let mut odd = normal(&mut rng);
        odd[a] = 5e7;
        odd[b] = f32::NAN;
        let (s, alert) = d.observe(&odd);
        assert!(alert, "score {s:?} threshold {}", d.threshold);
        let mut flagged = 0;
        for _ in 0..1000 {
            flagged += usize::from(d.observe(&normal(&mut rng)).1);
        }
        assert!(flagged <= 20, "{flagged} of 1000 normal records flagged");
        let mut c = [0f32; N_FEATURES];
        d.contributions(&odd, &mut c);
        let top = (0..N_FEATURES)
            .max_by(|&a, &b| c[a].total_cmp(&c[b]))
            .unwrap();
        assert!([a, b].contains(&top), "the odd features explain it: {top}");
    }

    #[test]
    fn the_state_round_trips_through_its_file() {
        let mut d = Detector::new(9, 50);
        let mut rng = Rng(5);
        for _ in 0..175 {
            d.observe(&normal(&mut rng));
        }
        d.peers = vec![[u64::MAX - 4, 17, 1_700_000_000_000_000_000, u64::MAX]];
        let dir = std::env::temp_dir().join(format!("tollgate-hst-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        d.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(Detector::is_state(&text));
        let back = Detector::load(&path).unwrap();
        assert_eq!(back, d);
        // It goes on exactly as the original does.
        let (mut a, mut b) = (d, back);
        for _ in 0..100 {
            let x = normal(&mut rng);
            assert_eq!(a.observe(&x), b.observe(&x));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_state_file_is_refused_with_the_field_named() {
        let d = Detector::new(1, 10);
        let good = d.to_json();
        for (field, value, want) in [
            ("format", json!("x"), "format"),
            ("feature_schema", json!("0"), "learn again"),
            ("window", json!(0), "window"),
            ("phase", json!("dozing"), "phase"),
            ("threshold", json!(3), "threshold"),
            ("calibration", json!([1, 2]), "calibration"),
            ("peers", json!([[1, 2]]), "peers"),
        ] {
            let mut v = good.clone();
            v[field] = value;
            let e = Detector::from_json(&v.to_string()).unwrap_err();
            assert!(e.contains(want), "{field}: {e}");
        }
        let mut v = good.clone();
        v["tree"][3]["dim"][0] = json!(200);
        assert!(Detector::from_json(&v.to_string())
            .unwrap_err()
            .contains("tree 3"));
        assert!(Detector::from_json("[1]").is_err());
        assert!(!Detector::is_state("{\"version\":[2,1,0]}"));
    }
}
