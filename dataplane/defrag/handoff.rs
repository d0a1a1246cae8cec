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

use super::{FragHandle, MAX_DATAGRAM};
use crossbeam_channel::{bounded, Receiver, Sender};

/// A reassembled datagram on its way to the worker that owns its flow.
pub struct Datagram {
    pub buf: Vec<u8>,
    pub ts_ns: u64,
    pub pass: u16,
    /// Inline: the worker holding its completing fragment, and the token
    /// it is held under; the verdict goes back there.
    pub reply: Option<(u16, u16)>,
}

/// A datagram's verdict, on its way back to the worker holding its
/// completing fragment.
#[derive(Debug, Clone, Copy)]
pub struct FragVerdict {
    pub token: u16,
    pub blocked: bool,
}

/// One worker's end of the handoff mesh: rings to every other worker, its
/// own inbound ring, the rings verdicts come back on, and the shared pool
/// of buffers datagrams travel in.
pub struct Handoff {
    pub to: Vec<Option<Sender<Datagram>>>,
    pub from: Receiver<Datagram>,
    pub verdicts_to: Vec<Option<Sender<FragVerdict>>>,
    pub verdicts_from: Receiver<FragVerdict>,
    pub pool_put: Sender<Vec<u8>>,
    pub pool_get: Receiver<Vec<u8>>,
}

/// Handed-over datagrams a worker holds for time order; past this many it
/// accounts the oldest at once rather than grow.
pub const HELD_MAX: usize = 256;

/// Datagrams a worker's inbound handoff ring holds.
pub const HANDOFF_RING: usize = 64;

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
pub struct HeldFragments {
    slots: Vec<Option<HeldFragment>>,
    free: Vec<u16>,
    /// Answered since the caller last took them: (token, forward).
    pub released: Vec<(u16, bool)>,
}

impl Default for HeldFragments {
    fn default() -> Self {
        Self::new()
    }
}

impl HeldFragments {
    pub fn new() -> Self {
        HeldFragments {
            slots: vec![None; MAX_HELD_FRAGMENTS],
            free: (0..MAX_HELD_FRAGMENTS as u16).rev().collect(),
            released: Vec::with_capacity(MAX_HELD_FRAGMENTS),
        }
    }

    /// A token for a fragment of `len` bytes whose datagram `handle`
    /// names; None when the table is full.
    pub fn hold(&mut self, handle: FragHandle, len: usize) -> Option<u16> {
        let t = self.free.pop()?;
        self.slots[usize::from(t)] = Some(HeldFragment {
            handle,
            len: len as u32,
        });
        Some(t)
    }

    /// Gives a token back unused (its datagram never left).
    pub fn cancel(&mut self, token: u16) {
        if self.slots[usize::from(token)].take().is_some() {
            self.free.push(token);
        }
    }

    /// The verdict on `token`'s datagram: its handle and frame length, to
    /// settle and account.
    pub fn answer(&mut self, token: u16, blocked: bool) -> Option<(FragHandle, u32)> {
        let h = self.slots.get_mut(usize::from(token))?.take()?;
        self.free.push(token);
        self.released.push((token, !blocked));
        Some((h.handle, h.len))
    }

    /// Fragments still waiting.
    pub fn pending(&self) -> usize {
        MAX_HELD_FRAGMENTS - self.free.len()
    }

    /// Tokens still waiting (at the end, when no answer can come).
    pub fn waiting(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(t, _)| t as u16)
    }
}
