//! Text records: an LLM request's prompt, handed from a worker to the
//! scorer when the request's body is complete. Each worker has its own
//! pair of bounded rings: records go to the scorer on one and come back
//! empty on the other, so the text buffers are allocated once, at start,
//! and never per request. A worker that finds no empty record (the scorer
//! is behind) drops the prompt and counts it; it never waits.

use crate::flow::EventTuple;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

/// Records (text buffers) per worker.
pub const PROMPT_RING: usize = 256;

/// One prompt on its way to the scorer.
#[derive(Debug, Clone)]
pub struct PromptRecord {
    /// Where: the request's tuple (client to server), flow id, worker,
    /// time.
    pub at: EventTuple,
    /// The flow's slot in its worker's table, for a verdict.
    pub slot: u32,
    pub tx_id: u64,
    /// The prompt's whole length in bytes.
    pub len: u32,
    /// Bytes of `text` that are its head; past them come a newline and
    /// its tail when the prompt was longer than the head room.
    pub head: u32,
    pub text: Vec<u8>,
}

impl PromptRecord {
    fn with_room(room: usize) -> Self {
        PromptRecord {
            at: EventTuple::default(),
            slot: 0,
            tx_id: 0,
            len: 0,
            head: 0,
            text: Vec::with_capacity(room),
        }
    }

    /// Whether the prompt was cut (its middle is not in `text`).
    pub fn cut(&self) -> bool {
        self.len as usize > self.head as usize
    }
}

/// A worker's end of its prompt rings.
#[derive(Debug)]
pub struct PromptPort {
    full: Sender<PromptRecord>,
    empty: Receiver<PromptRecord>,
    head: usize,
    tail: usize,
}

/// The scorer's end of one worker's prompt rings.
#[derive(Debug)]
pub struct PromptSink {
    pub full: Receiver<PromptRecord>,
    pub empty: Sender<PromptRecord>,
}

/// What a worker's `offer` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Sent {
        cut: bool,
    },
    /// No empty record: the scorer is behind.
    RingFull,
}

/// The largest char boundary of `s` at or below `at` (UTF-8 continuation
/// bytes are 10xxxxxx).
pub fn char_floor(s: &[u8], mut at: usize) -> usize {
    at = at.min(s.len());
    while at > 0 && at < s.len() && s[at] & 0xC0 == 0x80 {
        at -= 1;
    }
    at
}

/// The smallest char boundary of `s` at or above `at`.
fn on_to_char(s: &[u8], mut at: usize) -> usize {
    while at < s.len() && s[at] & 0xC0 == 0x80 {
        at += 1;
    }
    at
}

/// A worker's port and the scorer's sink for it: `records` text buffers of
/// `head + tail + 1` bytes each, made now. Prompts up to `head` bytes go
/// whole; longer ones go as their first `head` and last `tail` bytes.
pub fn prompt_ring(records: usize, head: usize, tail: usize) -> (PromptPort, PromptSink) {
    let (ftx, frx) = bounded(records);
    let (etx, erx) = bounded(records);
    for _ in 0..records {
        let _ = etx.try_send(PromptRecord::with_room(head + tail + 1));
    }
    (
        PromptPort {
            full: ftx,
            empty: erx,
            head,
            tail,
        },
        PromptSink {
            full: frx,
            empty: etx,
        },
    )
}

impl PromptPort {
    /// Hands `prompt` over, without waiting.
    pub fn offer(&self, at: EventTuple, slot: u32, tx_id: u64, prompt: &[u8]) -> Offered {
        let Ok(mut r) = self.empty.try_recv() else {
            return Offered::RingFull;
        };
        r.at = at;
        r.slot = slot;
        r.tx_id = tx_id;
        r.len = u32::try_from(prompt.len()).unwrap_or(u32::MAX);
        r.text.clear();
        let cut = prompt.len() > self.head;
        if cut {
            let h = char_floor(prompt, self.head);
            r.text.extend_from_slice(&prompt[..h]);
            r.head = h as u32;
            if self.tail > 0 {
                let from = on_to_char(prompt, prompt.len().saturating_sub(self.tail).max(h));
                r.text.push(b'\n');
                r.text.extend_from_slice(&prompt[from..]);
            }
        } else {
            r.text.extend_from_slice(prompt);
            r.head = r.len;
        }
        match self.full.try_send(r) {
            Ok(()) => Offered::Sent { cut },
            // Cannot happen (there are as many records as room), but a
            // record lost here is counted like any other.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Offered::RingFull,
        }
    }
}

impl PromptSink {
    /// Gives a scored record back to its worker.
    pub fn give_back(&self, r: PromptRecord) {
        let _ = self.empty.try_send(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_drops_and_records_come_back_without_new_buffers() {
        let (port, sink) = prompt_ring(4, 16, 4);
        let at = EventTuple::default();
        for i in 0..4 {
            assert_eq!(port.offer(at, i, 7, b"hello"), Offered::Sent { cut: false });
        }
        // The scorer has taken none back: the fifth finds no record.
        assert_eq!(port.offer(at, 9, 7, b"hello"), Offered::RingFull);
        let r = sink.full.try_recv().unwrap();
        assert_eq!((r.slot, r.tx_id, &r.text[..]), (0, 7, &b"hello"[..]));
        let buf = r.text.as_ptr();
        sink.give_back(r);
        for _ in 0..3 {
            sink.give_back(sink.full.try_recv().unwrap());
        }
        // The buffer that came back first is reused as it was.
        assert_eq!(port.offer(at, 1, 8, b"again"), Offered::Sent { cut: false });
        let r = sink.full.try_recv().unwrap();
        assert_eq!(r.text.as_ptr(), buf);
        assert!(r.text.capacity() >= 21);
    }

    #[test]
    fn a_long_prompt_keeps_its_head_and_tail_on_char_boundaries() {
        let (port, sink) = prompt_ring(1, 8, 2);
        let prompt = "abcdefgé middle part ending ü!".as_bytes();
        assert_eq!(
            port.offer(EventTuple::default(), 0, 0, prompt),
            Offered::Sent { cut: true }
        );
        let r = sink.full.try_recv().unwrap();
        // "é" is 2 bytes at 7..9: the head stops before it.
        assert_eq!(&r.text[..r.head as usize], b"abcdefg");
        assert_eq!(r.len as usize, prompt.len());
        assert!(r.cut());
        // The last 2 bytes start inside "ü": the tail starts after it.
        assert_eq!(std::str::from_utf8(&r.text).unwrap(), "abcdefg\n!");
        let (port, sink) = prompt_ring(1, 8, 4);
        port.offer(EventTuple::default(), 0, 0, b"short");
        let r = sink.full.try_recv().unwrap();
        assert!(!r.cut() && r.text == b"short");
    }
}
