//! TCP session tracking inside a flow: the connection state with Suricata's
//! state names, the flags seen per direction, and enough sequence and window
//! bookkeeping to accept a RST only when it falls inside the receiver's
//! window (RFC 5961's check; blind resets from outside are refused and
//! counted). Stream reassembly is a stage of its own.

use crate::decode::tcp::{ACK_FLAG, FIN, RST, SYN};
use crate::decode::TcpFields;

/// Connection state, named as Suricata's EVE `tcp.state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcpState {
    /// Nothing seen that opens or picks up a session.
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    /// One side sent FIN, not yet acknowledged.
    FinWait1,
    /// One side's FIN was acknowledged; the other has not closed.
    FinWait2,
    /// Both sides sent FIN before either was acknowledged.
    Closing,
    /// Both sides sent FIN; the second one is not yet acknowledged.
    LastAck,
    Closed,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::Closing => "closing",
            TcpState::LastAck => "last_ack",
            TcpState::Closed => "closed",
        }
    }

    /// The handshake completed (or the session was picked up midstream).
    pub fn is_established(self) -> bool {
        !matches!(self, TcpState::None | TcpState::SynSent | TcpState::SynRecv)
    }
}

/// Direction of a packet within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

impl Dir {
    pub fn peer(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// What one side has sent.
#[derive(Debug, Clone, Copy, Default)]
struct Side {
    seen: bool,
    /// One past the highest sequence number this side has used.
    next_seq: u32,
    /// The receive window this side last advertised, scaled.
    window: u32,
    window_known: bool,
    wscale_offered: Option<u8>,
    fin_seq: Option<u32>,
    fin_acked: bool,
    /// The sequence number of this side's SYN: its stream starts one after.
    isn: Option<u32>,
}

/// What became of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// A RST outside the receiver's window: ignored, counted.
    RstOutOfWindow,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTracker {
    state: TcpState,
    sides: [Side; 2],
    flags: [u8; 2],
    /// Both SYNs carried window scaling, so later windows are shifted.
    scaling: bool,
}

/// `a` is after `b` in sequence space.
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

impl TcpTracker {
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// Flags seen to the server, to the client, and both.
    pub fn flags(&self) -> (u8, u8, u8) {
        (self.flags[0], self.flags[1], self.flags[0] | self.flags[1])
    }

    /// The sequence number of the SYN `dir`'s sender sent, if it was seen.
    pub fn isn(&self, dir: Dir) -> Option<u32> {
        self.sides[dir as usize].isn
    }

    pub fn on_segment(&mut self, dir: Dir, t: &TcpFields, payload_len: u32) -> Outcome {
        let d = dir as usize;
        let p = dir.peer() as usize;
        self.flags[d] |= t.flags;

        if t.flags & RST != 0 {
            if !self.rst_acceptable(dir, t) {
                return Outcome::RstOutOfWindow;
            }
            self.state = TcpState::Closed;
            return Outcome::Accepted;
        }

        // Sequence space this segment uses: payload, plus one each for SYN
        // and FIN.
        let syn = u32::from(t.flags & SYN != 0);
        let fin = u32::from(t.flags & FIN != 0);
        let end = t
            .seq
            .wrapping_add(payload_len)
            .wrapping_add(syn)
            .wrapping_add(fin);
        let side = &mut self.sides[d];
        if !side.seen || seq_gt(end, side.next_seq) {
            side.next_seq = end;
        }
        side.seen = true;
        if t.flags & SYN != 0 {
            side.isn.get_or_insert(t.seq);
            side.wscale_offered = t.wscale;
            // Windows in SYNs are never scaled.
            side.window = u32::from(t.window);
        } else {
            let shift = if self.scaling {
                side.wscale_offered.unwrap_or(0)
            } else {
                0
            };
            side.window = u32::from(t.window) << shift;
        }
        side.window_known = true;
        if fin == 1 && side.fin_seq.is_none() {
            side.fin_seq = Some(end.wrapping_sub(1));
        }
        if t.flags & ACK_FLAG != 0 {
            let peer = &mut self.sides[p];
            if let Some(fs) = peer.fin_seq {
                if seq_gt(t.ack, fs) {
                    peer.fin_acked = true;
                }
            }
        }

        self.state = match (self.state, t.flags & (SYN | ACK_FLAG)) {
            (TcpState::None, f) if f == SYN => TcpState::SynSent,
            (TcpState::None | TcpState::SynSent, f) if f == SYN | ACK_FLAG => {
                self.scaling = self.sides[0].wscale_offered.is_some()
                    && self.sides[1].wscale_offered.is_some();
                TcpState::SynRecv
            }
            (TcpState::SynRecv, ACK_FLAG) if dir == Dir::ToServer => TcpState::Established,
            // Picked up midstream: established once both sides have spoken.
            (TcpState::None, _) if self.sides[0].seen && self.sides[1].seen => {
                TcpState::Established
            }
            (s, _) => s,
        };
        if self.state.is_established() && self.state != TcpState::Closed {
            self.state = self.closing_state();
        }
        Outcome::Accepted
    }

    /// The state that follows from the FINs sent and acknowledged.
    fn closing_state(&self) -> TcpState {
        let [a, b] = self.sides;
        match (a.fin_seq.is_some(), b.fin_seq.is_some()) {
            (false, false) => TcpState::Established,
            (true, false) | (false, true) => {
                let first = if a.fin_seq.is_some() { a } else { b };
                if first.fin_acked {
                    TcpState::FinWait2
                } else {
                    TcpState::FinWait1
                }
            }
            (true, true) => match (a.fin_acked, b.fin_acked) {
                (true, true) => TcpState::Closed,
                (false, false) => TcpState::Closing,
                _ => TcpState::LastAck,
            },
        }
    }

    fn rst_acceptable(&self, dir: Dir, t: &TcpFields) -> bool {
        let me = self.sides[dir as usize];
        let peer = self.sides[dir.peer() as usize];
        if !me.seen {
            // A reset from a side that never sent (a refused SYN) must
            // acknowledge what the other side sent; with nothing to check
            // against, it is taken as it comes.
            if !peer.seen {
                return true;
            }
            return t.flags & ACK_FLAG != 0 && t.ack == peer.next_seq;
        }
        let window = if peer.window_known {
            peer.window.max(1)
        } else {
            1
        };
        seq_ge(t.seq, me.next_seq) && t.seq.wrapping_sub(me.next_seq) < window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcp::PSH;

    fn seg(flags: u8, seq: u32, ack: u32, window: u16) -> TcpFields {
        TcpFields {
            flags,
            seq,
            ack,
            window,
            wscale: None,
            header_len: 20,
        }
    }

    fn handshake() -> TcpTracker {
        let mut t = TcpTracker::default();
        t.on_segment(Dir::ToServer, &seg(SYN, 100, 0, 1000), 0);
        assert_eq!(t.state(), TcpState::SynSent);
        t.on_segment(Dir::ToClient, &seg(SYN | ACK_FLAG, 500, 101, 2000), 0);
        assert_eq!(t.state(), TcpState::SynRecv);
        t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 101, 501, 1000), 0);
        assert_eq!(t.state(), TcpState::Established);
        t
    }

    #[test]
    fn handshake_data_and_orderly_close() {
        let mut t = handshake();
        t.on_segment(Dir::ToServer, &seg(ACK_FLAG | PSH, 101, 501, 1000), 10);
        t.on_segment(Dir::ToServer, &seg(FIN | ACK_FLAG, 111, 501, 1000), 0);
        assert_eq!(t.state(), TcpState::FinWait1);
        t.on_segment(Dir::ToClient, &seg(ACK_FLAG, 501, 112, 2000), 0);
        assert_eq!(t.state(), TcpState::FinWait2);
        t.on_segment(Dir::ToClient, &seg(FIN | ACK_FLAG, 501, 112, 2000), 0);
        assert_eq!(t.state(), TcpState::LastAck);
        t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 112, 502, 1000), 0);
        assert_eq!(t.state(), TcpState::Closed);
        let (ts, tc, all) = t.flags();
        assert_eq!(ts, SYN | ACK_FLAG | PSH | FIN);
        assert_eq!(tc, SYN | ACK_FLAG | FIN);
        assert_eq!(all, 0x1b);
    }

    #[test]
    fn simultaneous_close() {
        let mut t = handshake();
        t.on_segment(Dir::ToServer, &seg(FIN | ACK_FLAG, 101, 501, 1000), 0);
        t.on_segment(Dir::ToClient, &seg(FIN | ACK_FLAG, 501, 101, 2000), 0);
        assert_eq!(t.state(), TcpState::Closing);
    }

    #[test]
    fn rst_in_window_closes() {
        let mut t = handshake();
        assert_eq!(
            t.on_segment(Dir::ToClient, &seg(RST, 501 + 500, 0, 0), 0),
            Outcome::Accepted,
            "inside the client's 1000-byte window"
        );
        assert_eq!(t.state(), TcpState::Closed);
    }

    #[test]
    fn rst_out_of_window_is_refused() {
        let mut t = handshake();
        for bad in [500u32, 501 + 1000, 501 + 100_000, 0] {
            assert_eq!(
                t.on_segment(Dir::ToClient, &seg(RST, bad, 0, 0), 0),
                Outcome::RstOutOfWindow,
                "seq {bad}"
            );
            assert_eq!(t.state(), TcpState::Established);
        }
        assert_eq!(
            t.on_segment(Dir::ToClient, &seg(RST, 501, 0, 0), 0),
            Outcome::Accepted
        );
    }

    #[test]
    fn window_scaling_widens_the_rst_window() {
        let mut t = TcpTracker::default();
        let mut syn = seg(SYN, 100, 0, 1000);
        syn.wscale = Some(4);
        t.on_segment(Dir::ToServer, &syn, 0);
        let mut synack = seg(SYN | ACK_FLAG, 500, 101, 2000);
        synack.wscale = Some(2);
        t.on_segment(Dir::ToClient, &synack, 0);
        t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 101, 501, 1000), 0); // 16000 bytes
        assert_eq!(
            t.on_segment(Dir::ToClient, &seg(RST, 501 + 15_000, 0, 0), 0),
            Outcome::Accepted
        );
    }

    #[test]
    fn refused_syn_reset_must_ack_the_syn() {
        let mut t = TcpTracker::default();
        t.on_segment(Dir::ToServer, &seg(SYN, 100, 0, 1000), 0);
        assert_eq!(
            t.on_segment(Dir::ToClient, &seg(RST | ACK_FLAG, 0, 999, 0), 0),
            Outcome::RstOutOfWindow
        );
        assert_eq!(
            t.on_segment(Dir::ToClient, &seg(RST | ACK_FLAG, 0, 101, 0), 0),
            Outcome::Accepted
        );
        assert_eq!(t.state(), TcpState::Closed);
    }

    #[test]
    fn midstream_pickup_needs_both_sides() {
        let mut t = TcpTracker::default();
        t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 1000, 2000, 500), 100);
        assert_eq!(t.state(), TcpState::None);
        t.on_segment(Dir::ToClient, &seg(ACK_FLAG, 2000, 1100, 500), 0);
        assert_eq!(t.state(), TcpState::Established);
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_gt(5, u32::MAX - 5));
        assert!(!seq_gt(u32::MAX - 5, 5));
        assert!(seq_ge(7, 7));
    }
}
