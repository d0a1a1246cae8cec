//! The app layer's byte store: fixed-size blocks carved out of one
//! allocation made at start-up, chained into buffers. Every parser keeps
//! its variable-length data (header blocks, bodies) here, so a worker's
//! app-layer memory is bounded by `--applayer-memcap` and nothing is
//! allocated per packet. A buffer that cannot get a block is cut short
//! and the caller counts it.

/// Bytes per block.
pub const BLOCK: usize = 1024;
const NONE: u32 = u32::MAX;

/// A chain of blocks: its first and last block and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl Chain {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The blocks of one worker.
#[derive(Debug)]
pub struct Blocks {
    mem: Vec<u8>,
    next: Vec<u32>,
    free: Vec<u32>,
    /// Blocks in use at most, since start.
    pub peak: usize,
}

impl Blocks {
    /// `bytes` worth of blocks (at least one).
    pub fn new(bytes: usize) -> Self {
        let n = (bytes / BLOCK).max(1);
        Blocks {
            mem: vec![0; n * BLOCK],
            next: vec![NONE; n],
            free: (0..n as u32).rev().collect(),
            peak: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.next.len()
    }

    pub fn in_use(&self) -> usize {
        self.next.len() - self.free.len()
    }

    /// Appends what fits of `data` to `c`; returns how many bytes went in
    /// (fewer than `data.len()` only when the blocks ran out).
    pub fn push(&mut self, c: &mut Chain, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            let used = c.len as usize % BLOCK;
            if c.tail == NONE || (used == 0 && c.len > 0) {
                let Some(b) = self.free.pop() else {
                    break;
                };
                self.next[b as usize] = NONE;
                if c.tail == NONE {
                    c.head = b;
                } else {
                    self.next[c.tail as usize] = b;
                }
                c.tail = b;
                self.peak = self.peak.max(self.in_use());
            }
            let at = c.tail as usize * BLOCK + used;
            let n = (BLOCK - used).min(data.len() - done);
            self.mem[at..at + n].copy_from_slice(&data[done..done + n]);
            done += n;
            c.len += n as u32;
        }
        done
    }

    /// Copies the chain's bytes to `out` (after what it holds).
    pub fn read(&self, c: &Chain, out: &mut Vec<u8>) {
        let mut b = c.head;
        let mut left = c.len as usize;
        while b != NONE && left > 0 {
            let n = left.min(BLOCK);
            let at = b as usize * BLOCK;
            out.extend_from_slice(&self.mem[at..at + n]);
            left -= n;
            b = self.next[b as usize];
        }
    }

    /// Gives the chain's blocks back and empties it.
    pub fn release(&mut self, c: &mut Chain) {
        let mut b = c.head;
        while b != NONE {
            let n = self.next[b as usize];
            self.next[b as usize] = NONE;
            self.free.push(b);
            b = n;
        }
        *c = Chain::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_grow_across_blocks_and_give_them_back() {
        let mut b = Blocks::new(4 * BLOCK);
        let mut c = Chain::default();
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(b.push(&mut c, &data[..10]), 10);
        assert_eq!(b.push(&mut c, &data[10..]), 2990);
        assert_eq!(b.in_use(), 3);
        let mut out = Vec::new();
        b.read(&c, &mut out);
        assert_eq!(out, data);
        b.release(&mut c);
        assert_eq!(b.in_use(), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_store_cuts_the_buffer_short() {
        let mut b = Blocks::new(2 * BLOCK);
        let (mut x, mut y) = (Chain::default(), Chain::default());
        assert_eq!(b.push(&mut x, &[1; BLOCK + 1]), BLOCK + 1);
        assert_eq!(b.push(&mut y, &[2; 3 * BLOCK]), 0);
        assert_eq!(b.push(&mut x, &[3; 2 * BLOCK]), BLOCK - 1);
        assert_eq!(x.len(), 2 * BLOCK);
        b.release(&mut x);
        assert_eq!(b.push(&mut y, &[2; 10]), 10);
    }
}
