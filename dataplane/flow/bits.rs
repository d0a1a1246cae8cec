//! A flow's flowbits: the named bits rules set on a flow and test on its
//! later packets. The rule engine numbers the names it loads; a flow keeps
//! the numbers of the bits set on it in a small inline set, so a flow entry
//! stays fixed-size and the table never allocates. A flow that would carry
//! more bits than fit keeps the ones it has and the set is refused (counted
//! by the caller).

/// Bits one flow can carry at once. ET Open rules set at most a handful
/// on any one conversation.
pub const FLOWBITS_PER_FLOW: usize = 8;

/// `flowint` counters one flow can carry at once.
pub const FLOWINTS_PER_FLOW: usize = 4;

/// A flow's flowbits and its `flowint` counters (by the engine's number
/// for the name), in fixed room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowBits {
    ids: [u16; FLOWBITS_PER_FLOW],
    n: u8,
    ints: [(u16, u32); FLOWINTS_PER_FLOW],
    n_ints: u8,
}

impl FlowBits {
    pub fn is_set(&self, id: u16) -> bool {
        self.ids[..usize::from(self.n)].contains(&id)
    }

    /// Sets `id`; false when the flow already carries all it can.
    pub fn set(&mut self, id: u16) -> bool {
        if self.is_set(id) {
            return true;
        }
        let n = usize::from(self.n);
        if n == FLOWBITS_PER_FLOW {
            return false;
        }
        self.ids[n] = id;
        self.n += 1;
        true
    }

    pub fn unset(&mut self, id: u16) {
        let n = usize::from(self.n);
        if let Some(i) = self.ids[..n].iter().position(|&x| x == id) {
            self.ids[i] = self.ids[n - 1];
            self.n -= 1;
        }
    }

    /// Flips `id`; false when setting it found no room.
    pub fn toggle(&mut self, id: u16) -> bool {
        if self.is_set(id) {
            self.unset(id);
            true
        } else {
            self.set(id)
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Some `flowint` counter is set.
    pub fn has_ints(&self) -> bool {
        self.n_ints != 0
    }

    /// The value of counter `id`, if it was set.
    pub fn int(&self, id: u16) -> Option<u32> {
        self.ints[..usize::from(self.n_ints)]
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| *v)
    }

    /// Sets counter `id` to `v`; false when the flow carries all it can.
    pub fn set_int(&mut self, id: u16, v: u32) -> bool {
        let n = usize::from(self.n_ints);
        if let Some(slot) = self.ints[..n].iter_mut().find(|(i, _)| *i == id) {
            slot.1 = v;
            return true;
        }
        if n == FLOWINTS_PER_FLOW {
            return false;
        }
        self.ints[n] = (id, v);
        self.n_ints += 1;
        true
    }

    /// Renumbers the bits and counters for reloaded rules: `bits[old]` and
    /// `ints[old]` are the new numbers, `GONE` (or past the table) for a
    /// name the new rules do not have, which is let go.
    pub fn remap(&mut self, bits: &[u16], ints: &[u16]) {
        let mut n = 0;
        for i in 0..usize::from(self.n) {
            match bits.get(usize::from(self.ids[i])) {
                Some(&new) if new != GONE => {
                    self.ids[n] = new;
                    n += 1;
                }
                _ => {}
            }
        }
        self.n = n as u8;
        let mut n = 0;
        for i in 0..usize::from(self.n_ints) {
            let (id, v) = self.ints[i];
            match ints.get(usize::from(id)) {
                Some(&new) if new != GONE => {
                    self.ints[n] = (new, v);
                    n += 1;
                }
                _ => {}
            }
        }
        self.n_ints = n as u8;
    }
}

/// In a `remap` table: the name is not in the new rules.
pub const GONE: u16 = u16::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_set_update_and_fill() {
        let mut b = FlowBits::default();
        assert_eq!(b.int(1), None);
        assert!(b.set_int(1, 5) && b.set_int(1, 6));
        assert_eq!(b.int(1), Some(6));
        for i in 2..=FLOWINTS_PER_FLOW as u16 {
            assert!(b.set_int(i, 0));
        }
        assert!(!b.set_int(99, 1), "full");
        assert_eq!(b.int(99), None);
    }

    #[test]
    fn remap_renumbers_and_lets_go_of_names_the_new_rules_lack() {
        let mut b = FlowBits::default();
        assert!(b.set(0) && b.set(1) && b.set(2));
        assert!(b.set_int(0, 7) && b.set_int(1, 9));
        // Old 0 -> new 5, old 1 gone, old 2 -> new 0; int 0 gone, 1 -> 3.
        b.remap(&[5, GONE, 0], &[GONE, 3]);
        assert!(b.is_set(5) && b.is_set(0) && !b.is_set(1) && !b.is_set(2));
        assert_eq!(b.len(), 2);
        assert_eq!((b.int(3), b.int(0), b.int(1)), (Some(9), None, None));
        // A number past the table (a name added since) is gone too.
        let mut c = FlowBits::default();
        assert!(c.set(9));
        c.remap(&[0], &[]);
        assert!(c.is_empty());
    }

    #[test]
    fn set_unset_toggle_and_a_full_flow() {
        let mut b = FlowBits::default();
        assert!(b.set(3) && b.set(3) && b.is_set(3) && b.len() == 1);
        assert!(b.toggle(5) && b.is_set(5));
        assert!(b.toggle(5) && !b.is_set(5));
        b.unset(3);
        assert!(b.is_empty());
        for i in 0..FLOWBITS_PER_FLOW as u16 {
            assert!(b.set(i));
        }
        assert!(!b.set(100), "full");
        assert!(!b.toggle(100));
        assert!(b.set(0), "already set needs no room");
        b.unset(2);
        assert!(b.set(100) && b.is_set(100) && b.is_set(7) && !b.is_set(2));
    }
}
