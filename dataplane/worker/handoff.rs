//! The handoff mesh between workers. Fragments are spread on addresses
//! (they carry no ports), flows on the 5-tuple: a datagram reassembled on
//! one worker goes to the worker that owns its flow over a bounded ring, in
//! a buffer from a pool allocated at start.
//!
//! Inline (IPS), the fragment that completed the datagram is not forwarded
//! before the datagram is judged: the worker that received it holds it
//! (a token in a bounded table), the owner inspects the datagram and sends
//! the verdict back on a ring of its own, and only then is the fragment
//! forwarded or dropped. Without its last fragment the host cannot
//! reassemble a datagram, so a blocked one never reaches it, whichever
//! worker its fragments arrived on.

use super::*;
use crate::defrag::FragHandle;

/// A reassembled datagram on its way to the worker that owns its flow.
pub struct Datagram {
    pub(super) buf: Vec<u8>,
    pub(super) ts_ns: u64,
    pub(super) pass: u16,
    /// Inline: the worker holding its completing fragment, and the token
    /// it is held under; the verdict goes back there.
    pub(super) reply: Option<(u16, u16)>,
}

/// A datagram's verdict, on its way back to the worker holding its
/// completing fragment.
#[derive(Debug, Clone, Copy)]
pub struct FragVerdict {
    pub(super) token: u16,
    pub(super) blocked: bool,
}

/// One worker's end of the handoff mesh: rings to every other worker, its
/// own inbound ring, the rings verdicts come back on, and the shared pool
/// of buffers datagrams travel in.
pub struct Handoff {
    pub(super) to: Vec<Option<Sender<Datagram>>>,
    pub(super) from: Receiver<Datagram>,
    pub(super) verdicts_to: Vec<Option<Sender<FragVerdict>>>,
    pub(super) verdicts_from: Receiver<FragVerdict>,
    pub(super) pool_put: Sender<Vec<u8>>,
    pub(super) pool_get: Receiver<Vec<u8>>,
}

/// Handed-over datagrams a worker holds for time order; past this many it
/// accounts the oldest at once rather than grow.
pub(super) const HELD_MAX: usize = 256;

/// Datagrams a worker's inbound handoff ring holds.
pub(super) const HANDOFF_RING: usize = 64;

/// Fragments one worker may hold for their datagram's verdict; its verdict
/// ring holds as many, so an answer always has room.
pub const MAX_HELD_FRAGMENTS: usize = 64;

/// Builds the handoff mesh for `workers` workers, with `buffers` datagram
/// buffers allocated now (none later).
pub fn handoff_mesh(workers: usize, buffers: usize) -> Vec<Handoff> {
    let (pool_put, pool_get) = bounded(buffers);
    for _ in 0..buffers {
        let _ = pool_put.try_send(Vec::with_capacity(MAX_DATAGRAM + 1024));
    }
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| bounded(HANDOFF_RING)).unzip();
    let (vtxs, vrxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| bounded(MAX_HELD_FRAGMENTS)).unzip();
    rxs.into_iter()
        .zip(vrxs)
        .enumerate()
        .map(|(k, (from, verdicts_from))| Handoff {
            to: txs
                .iter()
                .enumerate()
                .map(|(j, t)| (j != k).then(|| t.clone()))
                .collect(),
            from,
            verdicts_to: vtxs
                .iter()
                .enumerate()
                .map(|(j, t)| (j != k).then(|| t.clone()))
                .collect(),
            verdicts_from,
            pool_put: pool_put.clone(),
            pool_get: pool_get.clone(),
        })
        .collect()
}

/// A fragment held for its datagram's verdict.
#[derive(Debug, Clone, Copy)]
struct HeldFragment {
    handle: FragHandle,
    len: u32,
}

/// Fragments this worker holds, inline, until the worker that inspects
/// their datagram answers (preallocated; tokens index it).
#[derive(Debug)]
pub(super) struct HeldFragments {
    slots: Vec<Option<HeldFragment>>,
    free: Vec<u16>,
    /// Answered since the caller last took them: (token, forward).
    pub(super) released: Vec<(u16, bool)>,
}

impl HeldFragments {
    pub(super) fn new() -> Self {
        HeldFragments {
            slots: vec![None; MAX_HELD_FRAGMENTS],
            free: (0..MAX_HELD_FRAGMENTS as u16).rev().collect(),
            released: Vec::with_capacity(MAX_HELD_FRAGMENTS),
        }
    }

    /// A token for a fragment of `len` bytes whose datagram `handle`
    /// names; None when the table is full.
    pub(super) fn hold(&mut self, handle: FragHandle, len: usize) -> Option<u16> {
        let t = self.free.pop()?;
        self.slots[usize::from(t)] = Some(HeldFragment {
            handle,
            len: len as u32,
        });
        Some(t)
    }

    /// Gives a token back unused (its datagram never left).
    pub(super) fn cancel(&mut self, token: u16) {
        if self.slots[usize::from(token)].take().is_some() {
            self.free.push(token);
        }
    }

    /// The verdict on `token`'s datagram: its handle and frame length, to
    /// settle and account.
    pub(super) fn answer(&mut self, token: u16, blocked: bool) -> Option<(FragHandle, u32)> {
        let h = self.slots.get_mut(usize::from(token))?.take()?;
        self.free.push(token);
        self.released.push((token, !blocked));
        Some((h.handle, h.len))
    }

    /// Fragments still waiting.
    pub(super) fn pending(&self) -> usize {
        MAX_HELD_FRAGMENTS - self.free.len()
    }

    /// Tokens still waiting (at the end, when no answer can come).
    pub(super) fn waiting(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(t, _)| t as u16)
    }
}
