//! The worker's side of the fragment hand-off mesh (`defrag::handoff`):
//! datagrams other workers reassembled, held for their place in time, and
//! verdicts on the fragments this worker holds for them.

use super::*;

impl Worker {
    /// Joins the handoff mesh (needed with more than one worker, so that a
    /// datagram reassembled here reaches the worker that owns its flow).
    pub fn with_handoff(mut self, h: Handoff) -> Self {
        self.handoff = Some(h);
        self
    }

    /// The inbound handoff ring, for loops that wait on it with others.
    pub fn handoff_receiver(&self) -> Option<Receiver<Datagram>> {
        self.handoff.as_ref().map(|h| h.from.clone())
    }

    /// Accounts a datagram another worker reassembled, and returns its buffer.
    pub fn accept(&mut self, dg: Datagram) {
        // Held until this worker's own packets reach the datagram's time, so
        // it meets its flow as the wire ordered them (after the handshake).
        if self.held.len() == HELD_MAX {
            let oldest = self.held[0].ts_ns;
            self.release(oldest.saturating_add(1));
        }
        let at = self.held.partition_point(|d| d.ts_ns <= dg.ts_ns);
        self.held.insert(at, dg);
    }

    /// Accounts held datagrams stamped before `upto_ns` (all: u64::MAX).
    pub(super) fn release(&mut self, upto_ns: u64) {
        let Worker {
            flows,
            events,
            counters,
            now_ns,
            handoff,
            held,
            rules,
            stream,
            app,
            checks,
            scoring,
            policy,
            cfg,
            ..
        } = self;
        let mut inspector = Inspector {
            flows,
            rules: rules.as_mut(),
            stream: stream.as_mut(),
            app: app.as_mut(),
            checks,
            scoring: scoring.as_mut(),
            policy: policy.as_ref(),
            events,
            counters,
            cfg,
        };
        release_held(held, upto_ns, *now_ns, &mut inspector, handoff.as_ref());
    }

    /// Takes what other workers handed over, without waiting.
    pub fn poll_handoffs(&mut self) {
        while let Some(dg) = self.handoff.as_ref().and_then(|h| h.from.try_recv().ok()) {
            self.accept(dg);
        }
        self.poll_verdicts();
    }

    /// Takes the verdicts other workers sent on datagrams whose completing
    /// fragment this worker holds: each fragment is settled and counted as
    /// forwarded or dropped, and its token waits in `take_released`.
    pub(super) fn poll_verdicts(&mut self) {
        while let Some(v) = self
            .handoff
            .as_ref()
            .and_then(|h| h.verdicts_from.try_recv().ok())
        {
            self.apply_verdict(v.token, v.blocked);
        }
    }

    pub(super) fn apply_verdict(&mut self, token: u16, blocked: bool) {
        let Some((handle, len)) = self.held_frags.answer(token, blocked) else {
            return;
        };
        self.defrag.settle(handle, blocked);
        if blocked {
            self.counters.dropped[DropReason::Fragment.index()] += 1;
        } else {
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += u64::from(len);
        }
    }

    /// Hands out the held packets whose verdict came back: `release(token,
    /// forward)` forwards or frees each (already counted).
    pub fn take_released(&mut self, mut release: impl FnMut(u16, bool)) {
        for (token, forward) in self.held_frags.released.drain(..) {
            release(token, forward);
        }
    }

    /// Packets held for a verdict still to come.
    pub fn held_packets(&self) -> usize {
        self.held_frags.pending()
    }

    /// This worker will reassemble nothing more: it lets go of its rings to
    /// the others, then takes what they still hand over until every one of
    /// them has done the same.
    pub fn close_handoffs(&mut self) {
        let Some(rx) = self.handoff.as_mut().map(|h| {
            h.to.clear();
            h.from.clone()
        }) else {
            return;
        };
        for dg in rx.iter() {
            self.accept(dg);
        }
        self.release(u64::MAX);
        // Every other worker judges what it was handed as it closes: wait
        // for the verdicts on the fragments held here. One that cannot come
        // (a worker died) drops its fragment.
        let verdicts = self.handoff.as_ref().map(|h| h.verdicts_from.clone());
        if let Some(v) = verdicts {
            while self.held_frags.pending() > 0 {
                match v.recv_timeout(std::time::Duration::from_secs(5)) {
                    Ok(x) => self.apply_verdict(x.token, x.blocked),
                    Err(_) => break,
                }
            }
        }
        let stuck: Vec<u16> = self.held_frags.waiting().collect();
        for token in stuck {
            self.apply_verdict(token, true);
        }
    }
}
