//! Rule reload (SIGUSR2, `tollgate reload`): new rules load on a thread of
//! their own while the workers go on with the old; each worker then swaps
//! at a burst boundary, taking a matcher built for it off its core.
//!
//! Each flow's Hyperscan stream state belongs to the database it was
//! opened with. At a swap the streams restart: the new matcher's state
//! table starts empty, so each reassembled direction opens a fresh stream
//! on the new database from its next bytes (a match whose bytes straddle
//! the swap is missed; the reassembled windows themselves are kept).
//! Keeping the old databases alive until their streams end was the other
//! way, and is not taken: a long-lived flow (a model download, an SSE
//! stream) would pin the old rules' databases and a second state table
//! for hours, doubling the stream memory `--stream-memcap` promised, and
//! every scan would first ask which generation its flow belongs to.
//!
//! What the flows carry over, by name: flowbits and flowints are
//! renumbered to the new rules' numbers (names the new rules lack are let
//! go), threshold windows follow their rule by (gid, sid); flows,
//! reassembly and the app layer are untouched. A reload that fails (a
//! malformed rule, a scratch that cannot be had) changes nothing: the old
//! rules stay, the error goes to stderr and to the stats.

use super::matcher::Matcher;
use super::Engine;
use crate::flow::bits::GONE;
use crate::handover::{mailbox, Mailbox, ReloadThread};
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What loads the rules again: the same files, variables and settings as
/// at start.
pub type Loader = Arc<dyn Fn() -> Result<Engine, String> + Send + Sync>;

/// What a pipeline needs to reload its rules: how to load them, the flag
/// SIGUSR2 and the control socket set, and where the outcome is kept.
#[derive(Clone)]
pub struct RulesReload {
    pub loader: Loader,
    pub trigger: Arc<AtomicBool>,
    pub status: Arc<ReloadStatus>,
}

impl std::fmt::Debug for RulesReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesReload")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A new matcher for one worker, and how its state carries over.
pub struct Swap {
    pub matcher: Matcher,
    /// The rules' generation: 0 at start, +1 per reload. Events carry it
    /// so the EVE writer names each alert after the rules that raised it.
    pub generation: u16,
    /// `rules[old]`: the old rule's number in the new rules (by gid and
    /// sid), `u32::MAX` if gone.
    pub rules: Arc<[u32]>,
    /// Old flowbit and flowint numbers to new (`GONE`).
    pub bits: Arc<[u16]>,
    pub ints: Arc<[u16]>,
    /// Some flowbit or flowint has a new number (or is gone): the live
    /// flows' bits need the walk. Reloading the same names, they do not.
    pub renumbered: bool,
    /// When the reloader handed it over (the worker says how long it
    /// waited for a burst boundary).
    pub sent: Instant,
}

/// A worker's end of the reloader.
pub struct WorkerReload {
    pub swaps: Receiver<Swap>,
    /// Where the old matcher goes to be dropped off the worker's core.
    pub retired: Sender<Matcher>,
}

/// What swaps cost a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapCounters {
    /// The rules generation the worker runs.
    pub generation: u64,
    pub swaps: u64,
    /// The longest a swap held the worker (the packets behind it waited
    /// that long), and the last.
    pub swap_ns_max: u64,
    pub swap_ns_last: u64,
    /// The longest from the reloader's hand-over to the swap.
    pub wait_ns_max: u64,
    /// Reassembled directions whose matching restarted at a swap.
    pub streams_restarted: u64,
    /// Packets of the bursts that waited for a swap.
    pub packets_delayed: u64,
}

impl SwapCounters {
    pub fn add(&mut self, o: &SwapCounters) {
        self.generation = self.generation.max(o.generation);
        self.swaps += o.swaps;
        self.swap_ns_max = self.swap_ns_max.max(o.swap_ns_max);
        self.swap_ns_last = self.swap_ns_last.max(o.swap_ns_last);
        self.wait_ns_max = self.wait_ns_max.max(o.wait_ns_max);
        self.streams_restarted += o.streams_restarted;
        self.packets_delayed += o.packets_delayed;
    }
}

/// The reloader's own state, read by the stats and the control socket.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    /// Reloads asked for, done, and failed.
    pub attempts: AtomicU64,
    pub reloads: AtomicU64,
    pub failures: AtomicU64,
    /// The generation the workers were last handed.
    pub generation: AtomicU64,
    /// Rules in it.
    pub rules: AtomicU64,
    /// Time the last good load took, off the workers.
    pub load_ns: AtomicU64,
    pub last_error: Mutex<String>,
}

impl ReloadStatus {
    pub fn to_json(&self) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Acquire);
        serde_json::json!({
            "attempts": n(&self.attempts),
            "reloads": n(&self.reloads),
            "failures": n(&self.failures),
            "generation": n(&self.generation),
            "rules": n(&self.rules),
            "load_ms": n(&self.load_ns) as f64 / 1e6,
            "last_error": self.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        })
    }

    /// One line for the control socket: what the last reload did.
    pub fn line(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Acquire);
        let err = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        if err.is_empty() {
            format!(
                "ok: rules generation {}, {} rules, loaded in {:.0} ms",
                n(&self.generation),
                n(&self.rules),
                n(&self.load_ns) as f64 / 1e6
            )
        } else {
            format!(
                "error: {err} (rules generation {} kept)",
                n(&self.generation)
            )
        }
    }
}

struct WorkerEnd {
    mailbox: Mailbox<Swap>,
    /// Reassembled directions its stream state is sized for.
    sessions: Option<usize>,
}

/// Loads rules again when asked and hands each worker its swap.
pub struct Reloader {
    loader: Loader,
    current: Arc<Engine>,
    generation: u16,
    workers: Vec<WorkerEnd>,
    eve: Option<Sender<(u16, Arc<Engine>)>>,
    retired_tx: Sender<Matcher>,
    retired: Receiver<Matcher>,
    pub status: Arc<ReloadStatus>,
}

impl Reloader {
    /// A reloader for workers running `current`; `eve` learns each new
    /// engine before any worker can raise an alert with it.
    pub fn new(
        loader: Loader,
        current: Arc<Engine>,
        eve: Option<Sender<(u16, Arc<Engine>)>>,
        status: Arc<ReloadStatus>,
    ) -> Reloader {
        status
            .rules
            .store(current.rules.len() as u64, Ordering::Release);
        let (retired_tx, retired) = unbounded();
        Reloader {
            loader,
            current,
            generation: 0,
            workers: Vec::new(),
            eve,
            retired_tx,
            retired,
            status,
        }
    }

    /// The next worker's end: its stream state for `sessions` reassembled
    /// directions, as its reassembly holds.
    pub fn link(&mut self, sessions: Option<usize>) -> WorkerReload {
        let (mailbox, rx) = mailbox();
        self.workers.push(WorkerEnd { mailbox, sessions });
        WorkerReload {
            swaps: rx,
            retired: self.retired_tx.clone(),
        }
    }

    /// Loads the rules again and hands every worker its swap; on any
    /// failure nothing changes and the error is said and kept.
    pub fn reload(&mut self) -> Result<(), String> {
        self.status.attempts.fetch_add(1, Ordering::AcqRel);
        let start = Instant::now();
        match self.prepare() {
            Ok((engine, swaps)) => {
                let load_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.generation = self.generation.wrapping_add(1);
                if let Some(eve) = &self.eve {
                    let _ = eve.send((self.generation, Arc::clone(&engine)));
                }
                let (rules, bits, ints) = carry_tables(&self.current, &engine);
                let same = |t: &[u16]| t.iter().enumerate().all(|(i, &n)| usize::from(n) == i);
                let renumbered = !same(&bits) || !same(&ints);
                let rules: Arc<[u32]> = rules.into();
                let (bits, ints): (Arc<[u16]>, Arc<[u16]>) = (bits.into(), ints.into());
                for (w, matcher) in self.workers.iter().zip(swaps) {
                    w.mailbox.post(Swap {
                        matcher,
                        generation: self.generation,
                        rules: Arc::clone(&rules),
                        bits: Arc::clone(&bits),
                        ints: Arc::clone(&ints),
                        renumbered,
                        sent: Instant::now(),
                    });
                }
                let st = &self.status;
                st.reloads.fetch_add(1, Ordering::AcqRel);
                st.rules.store(engine.rules.len() as u64, Ordering::Release);
                st.load_ns.store(load_ns, Ordering::Release);
                st.generation
                    .store(u64::from(self.generation), Ordering::Release);
                if let Ok(mut e) = st.last_error.lock() {
                    e.clear();
                }
                eprintln!(
                    "tollgate: rules reloaded: generation {}, {} rules, loaded in {:.0} ms; \
                     workers swap at their next burst",
                    self.generation,
                    engine.rules.len(),
                    load_ns as f64 / 1e6
                );
                self.current = engine;
                Ok(())
            }
            Err(e) => {
                self.status.failures.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut last) = self.status.last_error.lock() {
                    last.clone_from(&e);
                }
                eprintln!("tollgate: error: rule reload failed, the old rules stay: {e}");
                Err(e)
            }
        }
    }

    /// The new engine and a matcher per worker, all or nothing.
    fn prepare(&self) -> Result<(Arc<Engine>, Vec<Matcher>), String> {
        let engine = Arc::new((self.loader)()?);
        let matchers = self
            .workers
            .iter()
            .map(|w| Matcher::new(Arc::clone(&engine), w.sessions))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| format!("Hyperscan scratch for the new rules: {e}"))?;
        Ok((engine, matchers))
    }

    /// Its thread: reloads whenever `trigger` is set, and drops the
    /// matchers workers retired.
    pub fn start(mut self, trigger: Arc<AtomicBool>) -> std::io::Result<ReloadThread> {
        ReloadThread::start("tollgate-reload", trigger, move |asked| {
            while let Ok(m) = self.retired.try_recv() {
                drop(m);
            }
            if asked {
                let _ = self.reload();
            }
        })
    }
}

/// How state numbered by the old rules maps to the new: rules by (gid,
/// sid) (and their order among equal ones: a rule's request twin),
/// flowbits and flowints by name.
pub fn carry_tables(old: &Engine, new: &Engine) -> (Vec<u32>, Vec<u16>, Vec<u16>) {
    let mut by_id: HashMap<(u32, u32, u32), u32> = HashMap::with_capacity(new.rules.len());
    let mut seen: HashMap<(u32, u32), u32> = HashMap::new();
    for (i, r) in new.rules.iter().enumerate() {
        let k = seen.entry((r.gid, r.sid)).or_default();
        by_id.insert((r.gid, r.sid, *k), i as u32);
        *k += 1;
    }
    seen.clear();
    let rules = old
        .rules
        .iter()
        .map(|r| {
            let k = seen.entry((r.gid, r.sid)).or_default();
            let new = by_id.get(&(r.gid, r.sid, *k)).copied().unwrap_or(u32::MAX);
            *k += 1;
            new
        })
        .collect();
    let names = |o: &std::collections::BTreeMap<String, u16>,
                 n: &std::collections::BTreeMap<String, u16>| {
        let len = o.values().map(|&v| usize::from(v) + 1).max().unwrap_or(0);
        let mut t = vec![GONE; len];
        for (name, &id) in o {
            t[usize::from(id)] = n.get(name).copied().unwrap_or(GONE);
        }
        t
    };
    (
        rules,
        names(&old.flowbit_ids, &new.flowbit_ids),
        names(&old.flowint_ids, &new.flowint_ids),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn engine(rules: &str) -> Engine {
        crate::detect::load_text(rules, &BTreeMap::new()).0
    }

    #[test]
    fn rules_follow_their_sid_and_bits_their_name() {
        let old = engine(
            "alert tcp any any -> any any (content:\"a\"; flowbits:set,x; sid:1;)\n\
             alert tcp any any -> any any (content:\"b\"; flowbits:set,y; sid:2;)\n\
             alert tcp any any -> any any (content:\"c\"; flowint:n,=,1; sid:3;)",
        );
        let new = engine(
            "alert tcp any any -> any any (content:\"z\"; flowbits:set,w; sid:9;)\n\
             alert tcp any any -> any any (content:\"b\"; flowbits:set,y; sid:2;)\n\
             alert tcp any any -> any any (content:\"a\"; flowbits:isset,x; sid:1;)",
        );
        let (rules, bits, ints) = carry_tables(&old, &new);
        let idx = |e: &Engine, sid| e.rules.iter().position(|r| r.sid == sid).unwrap() as u32;
        assert_eq!(rules[idx(&old, 1) as usize], idx(&new, 1));
        assert_eq!(rules[idx(&old, 2) as usize], idx(&new, 2));
        assert_eq!(rules[idx(&old, 3) as usize], u32::MAX, "sid 3 is gone");
        let (ox, nx) = (old.flowbit_ids["x"], new.flowbit_ids["x"]);
        assert_eq!(bits[usize::from(ox)], nx);
        assert_eq!(
            bits[usize::from(old.flowbit_ids["y"])],
            new.flowbit_ids["y"]
        );
        assert_eq!(ints, vec![GONE], "flowint n is gone");
    }

    #[test]
    fn a_failed_load_keeps_the_old_rules_and_says_why() {
        let old = Arc::new(engine(
            "alert tcp any any -> any any (content:\"a\"; sid:1;)",
        ));
        let loader: Loader = Arc::new(|| Err("bad.rules:3: unknown keyword `contnet`".into()));
        let status = Arc::new(ReloadStatus::default());
        let mut r = Reloader::new(loader, old, None, Arc::clone(&status));
        let link = r.link(None);
        assert!(r.reload().is_err());
        assert!(link.swaps.try_recv().is_err(), "no swap offered");
        assert_eq!(status.failures.load(Ordering::Acquire), 1);
        assert_eq!(status.generation.load(Ordering::Acquire), 0);
        assert!(status.line().contains("contnet"), "{}", status.line());
    }

    #[test]
    fn a_worker_that_missed_a_swap_gets_only_the_newest() {
        let old = Arc::new(engine(
            "alert tcp any any -> any any (content:\"a\"; sid:1;)",
        ));
        let loader: Loader = Arc::new(|| {
            Ok(engine(
                "alert tcp any any -> any any (content:\"b\"; sid:2;)",
            ))
        });
        let (eve_tx, eve_rx) = unbounded();
        let status = Arc::new(ReloadStatus::default());
        let mut r = Reloader::new(loader, old, Some(eve_tx), Arc::clone(&status));
        let link = r.link(Some(8));
        r.reload().unwrap();
        r.reload().unwrap();
        let s = link.swaps.try_recv().unwrap();
        assert_eq!(s.generation, 2);
        assert!(link.swaps.try_recv().is_err());
        // The writer heard of both, in order, before the workers could use
        // them.
        let gens: Vec<u16> = eve_rx.try_iter().map(|(g, _)| g).collect();
        assert_eq!(gens, vec![1, 2]);
        assert_eq!(
            status.line(),
            format!(
                "ok: rules generation 2, 1 rules, loaded in {:.0} ms",
                status.load_ns.load(Ordering::Acquire) as f64 / 1e6
            )
        );
    }
}
