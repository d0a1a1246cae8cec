//! Rule reload in the worker: taking a matcher the reloader built off
//! this core, at a burst boundary, and carrying the flows' state over to
//! it (see `detect::reload` for what is kept and why streams restart).

use super::Worker;
use crate::detect::reload::WorkerReload;
use crate::reassembly::Reassembly;

impl Worker {
    /// Takes reloaded rules from `link`, at a burst boundary.
    pub fn with_reload(mut self, link: WorkerReload) -> Self {
        self.reload = Some(link);
        self
    }

    /// Places flows in zones and enforces the segmentation policy.
    pub fn with_policy(mut self, p: crate::policy::enforce::WorkerPolicy) -> Self {
        self.policy = Some(p);
        self
    }

    /// Reassembled directions the worker holds (a reloaded matcher's
    /// stream state is sized for as many).
    pub fn stream_sessions(&self) -> Option<usize> {
        self.stream.as_ref().map(Reassembly::capacity)
    }

    /// Swaps to reloaded rules if some are waiting: between bursts, so a
    /// packet is matched by one set of rules, whole.
    /// `burst` packets (0 on an idle tick) wait for the swap.
    pub(super) fn poll_reload(&mut self, burst: usize) {
        // A reloaded policy: flows are judged again at their next packet.
        if let Some(p) = self.policy.as_mut() {
            p.poll();
        }
        let Some(swap) = self.reload.as_ref().and_then(|l| l.swaps.try_recv().ok()) else {
            return;
        };
        let start = std::time::Instant::now();
        let wait = start.saturating_duration_since(swap.sent);
        let mut new = swap.matcher;
        if let Some(mut old) = self.rules.take() {
            // The counters go on from where they were.
            new.alerts_discarded = old.alerts_discarded;
            new.inspection.counters = old.inspection.counters;
            if let Some(o) = &old.scanner {
                // Every live direction's matching restarts on the new
                // database (counted from the pool, not by a walk).
                self.swaps.streams_restarted +=
                    self.stream.as_ref().map_or(0, Reassembly::sessions_in_use);
                if let Some(n) = new.scanner.as_mut() {
                    n.counters = o.counters;
                }
            }
            // Threshold windows follow their rules by sid, into the new
            // table (sized off this core).
            new.thresholds.carry_from(&mut old.thresholds, &swap.rules);
            if swap.renumbered {
                let (bits, ints) = (&swap.bits, &swap.ints);
                self.flows.each_live_bits(|b| b.remap(bits, ints));
            }
            // Dropped on the reloader's thread, not this core.
            if let Some(l) = &self.reload {
                let _ = l.retired.send(old);
            }
        }
        self.rules = Some(new);
        self.events.set_rules_generation(swap.generation);
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let took = ns(start.elapsed());
        let s = &mut self.swaps;
        s.generation = u64::from(swap.generation);
        s.swaps += 1;
        s.swap_ns_last = took;
        s.swap_ns_max = s.swap_ns_max.max(took);
        s.wait_ns_max = s.wait_ns_max.max(ns(wait));
        s.packets_delayed += burst as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, run};
    use super::*;
    use crate::craft::{Route, Side, TcpConversation};
    use crate::eve::Event;
    use crate::flow::EndReason;
    use crate::io::Mode;
    use crate::worker::MalformedPolicy;
    use std::sync::Arc;

    #[test]
    fn a_reload_swaps_rules_between_bursts_keeping_flows_and_their_flowbits() {
        use crate::detect::reload::{Loader, ReloadStatus, Reloader};
        let old = Arc::new(
            crate::detect::load_text(
                "alert tcp any any -> any any (msg:\"a\"; content:\"first\"; flowbits:set,seen; sid:1;)\n\
                 alert tcp any any -> any any (msg:\"old\"; content:\"second\"; sid:3;)",
                &Default::default(),
            )
            .0,
        );
        // The new rules number their flowbits differently ("aaa" first).
        let new_text = "alert tcp any any -> any any (msg:\"z\"; content:\"never\"; flowbits:set,aaa; sid:5;)\n\
             alert tcp any any -> any any (msg:\"a\"; content:\"first\"; flowbits:set,seen; sid:1;)\n\
             alert tcp any any -> any any (msg:\"new\"; flowbits:isset,seen; content:\"second\"; sid:2;)";
        let new = Arc::new(crate::detect::load_text(new_text, &Default::default()).0);
        assert_ne!(old.flowbit_ids["seen"], new.flowbit_ids["seen"]);
        let loader: Loader = {
            let text = new_text.to_string();
            Arc::new(move || Ok(crate::detect::load_text(&text, &Default::default()).0))
        };
        let r = Route::new("10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap());
        let mut c = TcpConversation::new(r, 40000, 8000, 1_000_000_000);
        c.handshake()
            .send(Side::Client, b"the first part", 1448)
            .send(Side::Server, b"ok", 1448)
            .send(Side::Client, b"the second part", 1448)
            .close(Side::Client);
        let pkts = c.into_packets();
        let cut = pkts
            .iter()
            .position(|(_, f)| f.windows(6).any(|w| w == b"second"))
            .unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut w = Worker::new(cfg(Mode::Ids, MalformedPolicy::Pass), Some(tx))
            .with_engine(Arc::clone(&old))
            .unwrap();
        let status = Arc::new(ReloadStatus::default());
        let mut reloader = Reloader::new(loader, Arc::clone(&old), None, status);
        let link = reloader.link(w.stream_sessions());
        w = w.with_reload(link);
        run(&mut w, &pkts[..cut], 0);
        reloader.reload().unwrap();
        run(&mut w, &pkts[cut..], 0);
        let (c, _) = w.finish(EndReason::Shutdown);
        let engines = [old, new];
        let sids: Vec<(u16, u32)> = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Alert(a) => {
                    let e = &engines[usize::from(a.rules)];
                    Some((a.rules, e.rules[a.rule as usize].sid))
                }
                _ => None,
            })
            .collect();
        // sid 1 under the old rules; then the new sid 2, which needs the
        // flowbit the old rules set; the old sid 3 no longer.
        assert_eq!(sids, vec![(0, 1), (1, 2)]);
        assert_eq!(c.rules_swap.swaps, 1);
        assert_eq!(c.rules_swap.generation, 1);
        assert!(c.rules_swap.streams_restarted >= 1, "{:?}", c.rules_swap);
        assert_eq!(c.rx_packets, pkts.len() as u64);
        assert_eq!(c.rx_packets, c.tx_packets + c.dropped_total());
        assert_eq!(c.flows.created, 1, "the flow went on across the swap");
    }
}
