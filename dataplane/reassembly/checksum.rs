//! Whether checksums are verified before a packet's contents are believed,
//! and what was found. Captures taken on a sending host carry checksums
//! the NIC never filled in; `auto` notices and stops verifying.

/// Whether checksums are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Verify, and stop once a capture shows offloaded checksums (the NIC
    /// left them unfilled): more than one bad in ten of the first
    /// `CHECKSUM_SAMPLE` checked.
    #[default]
    Auto,
    On,
    Off,
}

/// Checks `--checksum auto` judges a capture by.
pub const CHECKSUM_SAMPLE: u64 = 1000;

/// A worker's checksum policy for one kind of checksum, and what it found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksums {
    mode: ChecksumMode,
    checked: u64,
    pub bad: u64,
    /// `auto` turned verification off.
    pub turned_off: bool,
}

impl Checksums {
    pub fn new(mode: ChecksumMode) -> Self {
        Checksums {
            mode,
            ..Checksums::default()
        }
    }

    /// Whether checks are still being made.
    pub fn active(&self) -> bool {
        self.mode != ChecksumMode::Off && !self.turned_off
    }

    /// Whether a packet passes; `verify` computes its checksum when the
    /// policy asks for it. A bad one is counted.
    pub fn admit(&mut self, verify: impl FnOnce() -> bool) -> bool {
        if !self.active() {
            return true;
        }
        let ok = verify();
        self.checked += 1;
        self.bad += u64::from(!ok);
        if self.mode == ChecksumMode::Auto
            && self.checked == CHECKSUM_SAMPLE
            && self.bad * 10 > self.checked
        {
            self.turned_off = true;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_checksums_turn_off_on_offloaded_captures() {
        let mut c = Checksums::new(ChecksumMode::Auto);
        for i in 0..CHECKSUM_SAMPLE {
            c.admit(|| i % 5 != 0);
        }
        assert!(c.turned_off);
        assert!(c.admit(|| false), "no longer verified");
        let mut on = Checksums::new(ChecksumMode::On);
        for _ in 0..CHECKSUM_SAMPLE + 1 {
            assert!(!on.admit(|| false));
        }
        assert!(!on.turned_off);
        let mut auto = Checksums::new(ChecksumMode::Auto);
        for i in 0..CHECKSUM_SAMPLE {
            auto.admit(|| i % 20 != 0);
        }
        assert!(!auto.turned_off, "one in twenty bad is damage, not offload");
        assert!(Checksums::new(ChecksumMode::Off).admit(|| false));
    }
}
