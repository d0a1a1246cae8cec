//! The policy in the worker: each flow's zone pair and decision, made at
//! its first packet and cached in the flow with the policy's generation
//! (a reload re-judges live flows lazily, at their next packet); counters
//! per zone pair in a table each worker writes alone and the stats read;
//! and the reload (SIGUSR2), parsed off the workers, swapped at a burst
//! boundary, the old policy kept when the new one is refused.

use super::{Decision, NonIp, Policy, Segment, ZoneId};
use crate::applayer::AppProto;
use crate::handover::{mailbox, Mailbox, ReloadThread};
use crossbeam_channel::{Receiver, Sender};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};

/// Zone pairs a worker counts apart per policy generation; past them,
/// a pair's traffic is counted in `pairs_full` only.
pub const PAIRS: usize = 4096;

/// No rule decided (the default).
pub const NO_RULE: u16 = u16::MAX;
/// No counter slot.
const NO_PAIR: u16 = u16::MAX;

/// Sids the policy alerts with (gid 1): the default deny, then rule k at
/// `POLICY_SID + 1 + k`.
pub const POLICY_SID: u32 = 9_230_000;
pub const POLICY_SID_LAST: u32 = 9_239_999;

/// The sid for a decision.
pub fn sid(rule: u16) -> u32 {
    if rule == NO_RULE {
        POLICY_SID
    } else {
        (POLICY_SID + 1 + u32::from(rule)).min(POLICY_SID_LAST)
    }
}

/// What a flow carries of the policy: its zones and decision, under
/// which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// 0: not judged yet (generations count from 1).
    pub generation: u32,
    pub from: ZoneId,
    pub to: ZoneId,
    pub allow: bool,
    pub rule: u16,
    /// The flow's initiator sent its first packet in the flow table's
    /// to-server direction.
    pub init_to_server: bool,
    /// The initiator is known (a SYN, or not TCP).
    pub known: bool,
    /// The denial was said (one alert per flow).
    pub alerted: bool,
    /// Its counters' slot in the worker's table of this generation.
    pub pair: u16,
    /// A rule naming an app protocol waits for the app layer: allowed
    /// meanwhile, judged again at each packet.
    pub pending: bool,
    /// Data packets seen while pending.
    pub waited: u8,
    /// Counted as allowed or denied.
    pub counted: bool,
}

/// What EVE says of a flow's policy decision: the compact part of a
/// `Mark` that crosses the ring (generation 0: no policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicySnap {
    pub generation: u32,
    pub from: ZoneId,
    pub to: ZoneId,
    pub rule: u16,
    pub allow: bool,
}

impl Mark {
    pub fn snap(&self) -> PolicySnap {
        PolicySnap {
            generation: self.generation,
            from: self.from,
            to: self.to,
            rule: self.rule,
            allow: self.allow,
        }
    }
}

/// Data packets a flow may carry while the app layer has not named its
/// protocol; past them it counts as none (`failed`).
pub const PENDING_DATA: u8 = 4;

impl Default for Mark {
    fn default() -> Self {
        Mark {
            generation: 0,
            from: 0,
            to: 0,
            allow: true,
            rule: NO_RULE,
            init_to_server: true,
            known: true,
            alerted: false,
            pair: NO_PAIR,
            pending: false,
            waited: 0,
            counted: false,
        }
    }
}

/// One worker's counters per zone pair, for one policy generation. Only
/// its worker writes (plain loads and stores, no lock); anyone reads.
pub struct PairTable {
    /// (from << 16 | to) + 1; 0 is empty.
    keys: Box<[AtomicU32]>,
    /// flows allowed, flows denied, packets, bytes.
    vals: Box<[[AtomicU64; 4]]>,
    pub pairs_full: AtomicU64,
    /// Non-IP packets passed and dropped.
    pub non_ip: [AtomicU64; 2],
}

impl PairTable {
    pub fn new() -> PairTable {
        PairTable {
            keys: (0..PAIRS).map(|_| AtomicU32::new(0)).collect(),
            vals: (0..PAIRS).map(|_| Default::default()).collect(),
            pairs_full: AtomicU64::new(0),
            non_ip: Default::default(),
        }
    }

    /// The slot of a pair, taken if new; NO_PAIR when the table is full.
    fn slot(&self, from: ZoneId, to: ZoneId) -> u16 {
        let key = ((u32::from(from) << 16) | u32::from(to)).wrapping_add(1);
        let start = (key.wrapping_mul(0x9e37_79b9) as usize) % PAIRS;
        for k in 0..PAIRS {
            let i = (start + k) % PAIRS;
            let at = self.keys[i].load(Relaxed);
            if at == key {
                return i as u16;
            }
            if at == 0 {
                self.keys[i].store(key, Release);
                return i as u16;
            }
        }
        NO_PAIR
    }

    fn add(&self, slot: u16, what: usize, n: u64) {
        match self.vals.get(usize::from(slot)) {
            Some(v) => {
                let c = &v[what];
                c.store(c.load(Relaxed) + n, Relaxed);
            }
            None if what == 2 => bump(&self.pairs_full, 1),
            None => {}
        }
    }

    /// Every pair counted: ((from, to), [flows allowed, flows denied,
    /// packets, bytes]).
    pub fn pairs(&self) -> Vec<((ZoneId, ZoneId), [u64; 4])> {
        self.keys
            .iter()
            .zip(self.vals.iter())
            .filter_map(|(k, v)| {
                let k = k.load(Acquire);
                (k != 0).then(|| {
                    let k = k - 1;
                    (
                        ((k >> 16) as ZoneId, (k & 0xffff) as ZoneId),
                        [0, 1, 2, 3].map(|i| v[i].load(Relaxed)),
                    )
                })
            })
            .collect()
    }
}

impl Default for PairTable {
    fn default() -> Self {
        PairTable::new()
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// A policy generation as one worker holds it.
pub struct Judge {
    pub policy: Arc<Policy>,
    pub generation: u32,
    pub table: Arc<PairTable>,
}

/// What the worker does with a denied flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    /// An alert, and inline the flow's packets dropped.
    Drop,
    /// An alert only.
    Alert,
}

/// The worker's side: the judge in force and where new ones come from.
pub struct WorkerPolicy {
    pub judge: Judge,
    swaps: Receiver<Judge>,
    pub action: PolicyAction,
}

/// What the policy stage made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub mark: Mark,
    /// The flow is denied: say it (once per flow).
    pub say: bool,
    /// Drop the packet (inline, with --policy-action drop).
    pub drop: bool,
}

/// One packet's facts the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct PacketFacts {
    pub segment: Segment,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    /// A SYN without ACK.
    pub syn: bool,
    pub len: u32,
    /// It carries payload.
    pub data: bool,
    /// The flow's application protocol so far (`Failed` when there is no
    /// app layer to find it).
    pub app: AppProto,
    /// The packet goes in the flow table's to-server direction.
    pub to_server: bool,
}

impl WorkerPolicy {
    /// Takes a reloaded policy if one waits (between bursts).
    pub fn poll(&mut self) {
        if let Ok(j) = self.swaps.try_recv() {
            self.judge = j;
        }
    }

    /// Judges a packet of a flow whose mark is `mark`; counts it.
    pub fn packet(&self, mut mark: Mark, p: &PacketFacts, inline: bool) -> Verdict {
        let j = &self.judge;
        if mark.pending && p.data {
            mark.waited = mark.waited.saturating_add(1);
        }
        if mark.generation != j.generation || mark.pending {
            if mark.generation == 0 {
                mark.init_to_server = p.to_server;
                mark.known = p.proto != 6 || p.syn;
            }
            // Past its first data packets, an app still unknown will stay so.
            let app = if mark.waited >= PENDING_DATA && p.app == AppProto::Unknown {
                AppProto::Failed
            } else {
                p.app
            };
            // The initiator sent this packet, or receives it.
            let (init, resp, port, back) = if p.to_server == mark.init_to_server {
                (p.src, p.dst, p.dst_port, p.src_port)
            } else {
                (p.dst, p.src, p.src_port, p.dst_port)
            };
            let from = j.policy.zone_of(&p.segment, init, false);
            let to = j.policy.zone_of(&p.segment, resp, true);
            let d: Decision = j
                .policy
                .decide(from, to, p.proto, port, mark.known, back, app);
            mark = Mark {
                generation: j.generation,
                from,
                to,
                allow: d.allow,
                rule: d
                    .rule
                    .map_or(NO_RULE, |r| r.min(usize::from(NO_RULE - 1)) as u16),
                pair: j.table.slot(from, to),
                // A flow already said is not said again after a reload
                // that still denies it.
                alerted: mark.alerted && !d.allow,
                pending: d.pending,
                ..mark
            };
            // A flow is counted once, when first decided.
            if !mark.counted && !d.pending {
                mark.counted = true;
                j.table.add(mark.pair, usize::from(!d.allow), 1);
            }
        }
        j.table.add(mark.pair, 2, 1);
        j.table.add(mark.pair, 3, u64::from(p.len));
        let say = !mark.allow && !mark.alerted;
        mark.alerted |= say;
        Verdict {
            mark,
            say,
            drop: !mark.allow && inline && self.action == PolicyAction::Drop,
        }
    }

    /// Whether judging this flow now needs its application protocol.
    pub fn needs_app(&self, mark: &Mark) -> bool {
        self.judge.policy.has_app_rules()
            && (mark.pending || mark.generation != self.judge.generation)
    }

    /// A non-IP packet: drop it? (counted either way).
    pub fn non_ip(&self, inline: bool) -> bool {
        let drop = inline && self.judge.policy.non_ip == NonIp::Drop;
        bump(&self.judge.table.non_ip[usize::from(drop)], 1);
        drop
    }
}

/// Every worker's tables, by generation, for the stats; and the reload's
/// outcome.
#[derive(Default)]
pub struct PolicyStats {
    tables: Mutex<Tables>,
    pub generation: AtomicU64,
    pub reloads: AtomicU64,
    pub failures: AtomicU64,
    pub last_error: Mutex<String>,
}

impl std::fmt::Debug for PolicyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStats")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The tables of the generations workers may still write, and what the
/// older ones counted, folded by zone names.
#[derive(Default)]
struct Tables {
    live: Vec<(u32, Arc<Policy>, Arc<PairTable>)>,
    folded: PolicySummary,
}

impl PolicySummary {
    fn add(&mut self, p: &Policy, t: &PairTable) {
        self.file.clone_from(&p.file);
        for ((f, to), c) in t.pairs() {
            let e = self
                .pairs
                .entry((p.zone_name(f).to_string(), p.zone_name(to).to_string()))
                .or_default();
            for i in 0..4 {
                e[i] += c[i];
            }
        }
        self.pairs_full += t.pairs_full.load(Relaxed);
        self.non_ip[0] += t.non_ip[0].load(Relaxed);
        self.non_ip[1] += t.non_ip[1].load(Relaxed);
    }
}

impl PolicyStats {
    /// A worker's table for `generation`. Tables two generations old are
    /// folded into the sums and let go: every worker left them at the
    /// burst after the next reload, so a box reloaded often keeps two
    /// generations of tables, not all of them.
    fn register(&self, generation: u32, p: &Arc<Policy>, t: &Arc<PairTable>) {
        if let Ok(mut v) = self.tables.lock() {
            v.live.push((generation, Arc::clone(p), Arc::clone(t)));
            let Tables { live, folded } = &mut *v;
            live.retain(|(g, p, t)| {
                let old = g.saturating_add(2) <= generation;
                if old {
                    folded.add(p, t);
                }
                !old
            });
        }
    }

    /// Counters per zone pair by name, summed over workers and
    /// generations: [flows allowed, flows denied, packets, bytes]; and the
    /// pairs not counted apart, and non-IP packets passed and dropped.
    pub fn summary(&self) -> PolicySummary {
        match self.tables.lock() {
            Ok(v) => {
                let mut s = v.folded.clone();
                for (_, p, t) in &v.live {
                    s.add(p, t);
                }
                s
            }
            Err(_) => PolicySummary::default(),
        }
    }

    /// Worker tables kept now (two generations at most).
    pub fn tables_kept(&self) -> usize {
        self.tables.lock().map_or(0, |v| v.live.len())
    }

    /// The stats JSON's `policy` object: counters per zone pair (by name,
    /// summed over workers and generations).
    pub fn to_json(&self) -> serde_json::Value {
        let PolicySummary {
            file,
            pairs,
            pairs_full: full,
            non_ip,
        } = self.summary();
        let pairs: Vec<serde_json::Value> = pairs
            .into_iter()
            .map(|((from, to), c)| {
                serde_json::json!({
                    "from": from, "to": to,
                    "flows_allowed": c[0], "flows_denied": c[1],
                    "packets": c[2], "bytes": c[3],
                })
            })
            .collect();
        serde_json::json!({
            "file": file,
            "generation": self.generation.load(Acquire),
            "reloads": self.reloads.load(Acquire),
            "reload_failures": self.failures.load(Acquire),
            "last_error": self.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
            "pairs": pairs,
            "pairs_full": full,
            "non_ip": {"passed": non_ip[0], "dropped": non_ip[1]},
        })
    }
}

/// What `PolicyStats::summary` sums.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PolicySummary {
    pub file: String,
    pub pairs: std::collections::BTreeMap<(String, String), [u64; 4]>,
    pub pairs_full: u64,
    pub non_ip: [u64; 2],
}

/// The policy a pipeline starts with and how to reload it.
#[derive(Clone)]
pub struct PolicySetup {
    pub path: PathBuf,
    pub policy: Arc<Policy>,
    pub action: PolicyAction,
    /// Set by SIGUSR2 and the control socket.
    pub trigger: Arc<AtomicBool>,
    pub stats: Arc<PolicyStats>,
}

impl std::fmt::Debug for PolicySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySetup")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Builds each worker's side and the reloader that feeds them.
pub struct PolicyReloader {
    setup: PolicySetup,
    workers: Vec<Mailbox<Judge>>,
    eve: Option<Sender<(u32, Arc<Policy>)>>,
    generation: u32,
}

impl PolicyReloader {
    pub fn new(setup: PolicySetup, eve: Option<Sender<(u32, Arc<Policy>)>>) -> PolicyReloader {
        setup.stats.generation.store(1, Release);
        PolicyReloader {
            setup,
            workers: Vec::new(),
            eve,
            generation: 1,
        }
    }

    /// The next worker's side, judging with the policy at start.
    pub fn worker(&mut self) -> WorkerPolicy {
        let (mailbox, rx) = mailbox();
        self.workers.push(mailbox);
        let table = Arc::new(PairTable::new());
        self.setup.stats.register(1, &self.setup.policy, &table);
        WorkerPolicy {
            judge: Judge {
                policy: Arc::clone(&self.setup.policy),
                generation: 1,
                table,
            },
            swaps: rx,
            action: self.setup.action,
        }
    }

    /// Loads the file again; on success every worker gets the new policy
    /// at its next burst, else the old one stays and the error is said.
    pub fn reload(&mut self) -> Result<(), String> {
        let st = &self.setup.stats;
        match Policy::load(&self.setup.path) {
            Ok(p) => {
                let p = Arc::new(p);
                self.generation += 1;
                if let Some(eve) = &self.eve {
                    let _ = eve.send((self.generation, Arc::clone(&p)));
                }
                for w in &self.workers {
                    let table = Arc::new(PairTable::new());
                    st.register(self.generation, &p, &table);
                    w.post(Judge {
                        policy: Arc::clone(&p),
                        generation: self.generation,
                        table,
                    });
                }
                st.generation.store(u64::from(self.generation), Release);
                st.reloads.fetch_add(1, AcqRel);
                if let Ok(mut e) = st.last_error.lock() {
                    e.clear();
                }
                eprintln!(
                    "tollgate: policy reloaded: generation {}, {} zones, {} rules; live flows are judged again at their next packet",
                    self.generation,
                    p.zones.len(),
                    p.rules.len()
                );
                Ok(())
            }
            Err(e) => {
                st.failures.fetch_add(1, AcqRel);
                if let Ok(mut last) = st.last_error.lock() {
                    last.clone_from(&e);
                }
                eprintln!("tollgate: error: policy reload failed, the old policy stays: {e}");
                Err(e)
            }
        }
    }

    /// Its thread, reloading when the trigger is set.
    pub fn start(mut self) -> std::io::Result<ReloadThread> {
        let trigger = Arc::clone(&self.setup.trigger);
        ReloadThread::start("tollgate-policy", trigger, move |asked| {
            if asked {
                let _ = self.reload();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(text: &str) -> (PolicySetup, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tollgate-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Tests run at once: each its own file.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = dir.join(format!("p{}.yaml", N.fetch_add(1, Relaxed)));
        std::fs::write(&path, text).unwrap();
        let policy = Arc::new(Policy::load(&path).unwrap());
        (
            PolicySetup {
                path: path.clone(),
                policy,
                action: PolicyAction::Drop,
                trigger: Arc::default(),
                stats: Arc::default(),
            },
            path,
        )
    }

    fn facts(src: &str, dst: &str, syn: bool, to_server: bool) -> PacketFacts {
        PacketFacts {
            segment: Segment::default(),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 40000,
            dst_port: 22,
            proto: 6,
            syn,
            len: 60,
            data: false,
            app: AppProto::Unknown,
            to_server,
        }
    }

    const TWO: &str = "zones:\n  a:\n    prefix: 10.1.0.0/16\n  b:\n    prefix: 10.2.0.0/16\n";

    #[test]
    fn a_denied_flow_is_said_once_dropped_inline_and_counted_by_pair() {
        let (s, _) = setup(TWO);
        let stats = Arc::clone(&s.stats);
        let mut r = PolicyReloader::new(s, None);
        let w = r.worker();
        let v = w.packet(
            Mark::default(),
            &facts("10.1.0.1", "10.2.0.1", true, true),
            true,
        );
        assert!(v.say && v.drop && !v.mark.allow);
        let v2 = w.packet(v.mark, &facts("10.2.0.1", "10.1.0.1", false, false), true);
        assert!(!v2.say && v2.drop, "said once per flow");
        // Observing: said, not dropped.
        assert!(
            !w.packet(
                Mark::default(),
                &facts("10.1.0.9", "10.2.0.9", true, true),
                false
            )
            .drop
        );
        let j = stats.to_json();
        let pair = &j["pairs"][0];
        assert_eq!(
            (pair["from"].as_str(), pair["to"].as_str()),
            (Some("a"), Some("b"))
        );
        assert_eq!(
            (pair["flows_denied"].as_u64(), pair["packets"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(pair["bytes"], 180);
    }

    #[test]
    fn a_reload_turns_a_deny_into_an_allow_and_a_bad_file_keeps_the_old() {
        let (s, path) = setup(TWO);
        let stats = Arc::clone(&s.stats);
        let mut r = PolicyReloader::new(s, None);
        let mut w = r.worker();
        let first = w.packet(
            Mark::default(),
            &facts("10.1.0.1", "10.2.0.1", true, true),
            true,
        );
        assert!(!first.mark.allow);
        std::fs::write(&path, format!("{TWO}rules:\n  - allow: a -> b\n")).unwrap();
        r.reload().unwrap();
        w.poll();
        // The live flow is judged again at its next packet, from either
        // side, by who began it.
        let again = w.packet(
            first.mark,
            &facts("10.2.0.1", "10.1.0.1", false, false),
            true,
        );
        assert!(again.mark.allow && !again.drop);
        assert_eq!(again.mark.generation, 2);
        std::fs::write(&path, "zones:\n  a:\n    prefix: 10.1.0.0/33\n").unwrap();
        assert!(r.reload().unwrap_err().contains(":3:"));
        w.poll();
        assert_eq!(w.judge.generation, 2, "the old policy stays");
        let j = stats.to_json();
        assert_eq!(
            (j["reloads"].as_u64(), j["reload_failures"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(j["last_error"].as_str().unwrap().contains("0-32"));
        // The flow is counted once, under the generation that first
        // judged it; its packets under each.
        let pair = &j["pairs"][0];
        assert_eq!(
            (
                pair["flows_denied"].as_u64(),
                pair["flows_allowed"].as_u64()
            ),
            (Some(1), Some(0))
        );
        assert_eq!(pair["packets"], 2);
        // Two more reloads: generation 2's tables are folded into the sums
        // and let go; the counts stay.
        std::fs::write(&path, format!("{TWO}rules:\n  - allow: a -> b\n")).unwrap();
        r.reload().unwrap();
        r.reload().unwrap();
        assert_eq!(stats.tables_kept(), 2, "generations 3 and 4");
        assert_eq!(stats.to_json()["pairs"], j["pairs"]);
    }

    #[test]
    fn non_ip_traffic_passes_counted_unless_the_policy_drops_it() {
        let (s, _) = setup(TWO);
        let stats = Arc::clone(&s.stats);
        let w = PolicyReloader::new(s, None).worker();
        assert!(!w.non_ip(true) && !w.non_ip(false));
        let (s, _) = setup(&format!("non-ip: drop\n{TWO}"));
        let dropping = Arc::clone(&s.stats);
        let w = PolicyReloader::new(s, None).worker();
        assert!(w.non_ip(true), "inline: dropped");
        assert!(!w.non_ip(false), "observing: nothing to drop");
        assert_eq!(
            stats.to_json()["non_ip"],
            serde_json::json!({"passed": 2, "dropped": 0})
        );
        assert_eq!(
            dropping.to_json()["non_ip"],
            serde_json::json!({"passed": 1, "dropped": 1})
        );
    }

    #[test]
    fn a_flow_first_seen_without_its_syn_must_be_allowed_both_ways() {
        let (s, _) = setup(&format!("{TWO}rules:\n  - allow: a -> b\n"));
        let mut r = PolicyReloader::new(s, None);
        let w = r.worker();
        // A SYN-ACK-looking first packet from b: allowed a -> b only, so
        // this cannot open b's side.
        let v = w.packet(
            Mark::default(),
            &facts("10.2.0.1", "10.1.0.1", false, true),
            true,
        );
        assert!(!v.mark.allow && v.drop);
        let v = w.packet(
            Mark::default(),
            &facts("10.1.0.1", "10.2.0.1", true, true),
            true,
        );
        assert!(v.mark.allow);
    }
}
