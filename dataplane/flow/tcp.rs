//! TCP session tracking inside a flow: the connection state with Suricata's
//! state names, the flags seen per direction, and the sequence, window and
//! TTL bookkeeping that decides whether a segment reaches the receiving
//! host's stream as it was sent.
//!
//! An IDS sees packets the host never takes: a segment with a bad checksum,
//! a TTL too low to reach the host, data beyond the receiver's window, data
//! on a SYN without Fast Open, a RST whose sequence number is in the window
//! but not the exact next one (RFC 5961: the host answers with a challenge
//! ACK and keeps the connection). Each such segment gets a `Fate` naming
//! why; it does not move the state, its acknowledgement is not believed,
//! and its payload is not used, or (low TTL) used only once the receiver
//! acknowledges it. The ISNs are the ones the handshake confirms: a SYN-ACK
//! must acknowledge one of the client's SYNs, the client's ACK one of the
//! server's SYN-ACKs, so a bogus SYN sent before or after the real one
//! cannot shift the stream. Stream reassembly is a stage of its own.

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
    // The closing states are named as Suricata names them, from the
    // server's side: a client that closes first puts it in CLOSE_WAIT, a
    // server that closes first in FIN_WAIT1.
    /// The server sent FIN, not yet acknowledged.
    FinWait1,
    /// The server's FIN was acknowledged; the client has not closed.
    FinWait2,
    /// The server closed first, then the client, neither acknowledged.
    Closing,
    /// The server closed first; the client's FIN is still to be
    /// acknowledged.
    TimeWait,
    /// The client sent FIN; the server has not closed.
    CloseWait,
    /// The client closed first, then the server, whose FIN is not yet
    /// acknowledged.
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
            TcpState::TimeWait => "time_wait",
            TcpState::CloseWait => "close_wait",
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

/// Why a segment would not reach the receiving host's stream as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its TCP (or IP) checksum is wrong: the host drops it.
    BadChecksum,
    /// Its TTL is below the sender's handshake TTL: it may expire on the
    /// way (TTL insertion).
    LowTtl,
    /// Its data ends beyond what the receiver's window allows.
    OutOfWindow,
    /// Data on a SYN that does not offer Fast Open: the host ignores it.
    SynData,
    /// A SYN on a connection already established (an out-of-window SYN):
    /// it must not move the ISN.
    SynOnEstablished,
    /// A SYN-ACK that acknowledges none of the client's SYNs.
    SynAckWrongAck,
    /// A RST outside the receiver's window.
    RstOutOfWindow,
    /// A RST in the window but not at the exact next sequence number:
    /// RFC 5961, the host sends a challenge ACK and keeps the connection.
    RstNotExact,
    /// A timestamp the receiver rejects (RFC 7323 PAWS: older than the
    /// sender's last), or an answer to a SYN that echoes a timestamp the
    /// SYN never sent.
    BadTimestamp,
    /// More different SYNs before the handshake than Suricata queues
    /// (`MAX_SYN_QUEUED`): said, and still taken.
    SynFlood,
}

/// What became of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Taken: its control information and its payload.
    Accepted,
    /// Its control information was taken, its payload is not used.
    DataRefused(Why),
    /// Not taken at all: no state change, no payload.
    Refused(Why),
    /// Not taken into the state; its payload is used only once the
    /// receiver acknowledges it (a copy that may not have reached it).
    Suspect(Why),
    /// Taken whole, with an anomaly to say (never dropped for it).
    Noted(Why),
}

impl Why {
    pub const COUNT: usize = 10;
    pub const ALL: [Why; Self::COUNT] = [
        Why::BadChecksum,
        Why::LowTtl,
        Why::OutOfWindow,
        Why::SynData,
        Why::SynOnEstablished,
        Why::SynAckWrongAck,
        Why::RstOutOfWindow,
        Why::RstNotExact,
        Why::BadTimestamp,
        Why::SynFlood,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The counter name under stats `tcp`.
    pub fn name(self) -> &'static str {
        match self {
            Why::BadChecksum => "bad_checksum",
            Why::LowTtl => "low_ttl",
            Why::OutOfWindow => "out_of_window",
            Why::SynData => "syn_data",
            Why::SynOnEstablished => "syn_on_established",
            Why::SynAckWrongAck => "synack_wrong_ack",
            Why::RstOutOfWindow => "rst_out_of_window",
            Why::RstNotExact => "rst_not_exact",
            Why::BadTimestamp => "bad_timestamp",
            Why::SynFlood => "syn_flood",
        }
    }

    /// The EVE anomaly event (Suricata's stream event name where it has
    /// one).
    pub fn event(self) -> &'static str {
        match self {
            Why::BadChecksum => "stream.pkt_invalid_checksum",
            Why::LowTtl => "stream.suspected_ttl_insertion",
            Why::OutOfWindow => "stream.est_packet_out_of_window",
            Why::SynData => "stream.syn_data_without_tfo",
            Why::SynOnEstablished => "stream.est_syn_resend_diff_seq",
            Why::SynAckWrongAck => "stream.3whs_synack_with_wrong_ack",
            Why::RstOutOfWindow => "stream.rst_out_of_window",
            Why::RstNotExact => "stream.rst_not_exact_seq",
            Why::BadTimestamp => "stream.pkt_invalid_timestamp",
            Why::SynFlood => "stream.3whs_syn_flood",
        }
    }
}

impl Fate {
    /// The reason, for anything but `Accepted`.
    pub fn why(self) -> Option<Why> {
        match self {
            Fate::Accepted => None,
            Fate::DataRefused(w) | Fate::Refused(w) | Fate::Suspect(w) | Fate::Noted(w) => Some(w),
        }
    }
}

/// What the tracker made of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub fate: Fate,
    /// The acknowledgement it carried, if it is to be believed (the
    /// segment was taken, and it acknowledges nothing never sent).
    pub ack: Option<u32>,
}

/// Different SYNs before the handshake past which each more is said, as
/// Suricata's `stream.max-syn-queued` (default 10).
const MAX_SYN_QUEUED: u8 = 10;

/// SYNs (or SYN-ACKs) of one side remembered until the handshake says
/// which one counts.
const SYN_CANDIDATES: usize = 4;

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
    /// Its SYNs' sequence numbers, newest last, until one is confirmed.
    syns: [u32; SYN_CANDIDATES],
    n_syns: u8,
    isn_confirmed: bool,
    /// The highest acknowledgement this side has sent: what it has of the
    /// other side's stream.
    acked: Option<u32>,
    /// The TTL its handshake packets arrived with (the highest of its
    /// SYNs, or its first packet when picked up midstream).
    ttl: Option<u8>,
    /// Its SYN offered Fast Open.
    tfo: bool,
    /// Its SYN carried timestamps; the TSvals of its first and newest SYN.
    ts_offered: bool,
    syn_ts: [u32; 2],
    /// The newest TSval of a segment taken from it.
    last_ts: u32,
    /// SYNs sent before the handshake that differed from the one before.
    syns_different: u8,
}

impl Side {
    fn remember_syn(&mut self, seq: u32) {
        if self.syns[..usize::from(self.n_syns)].contains(&seq) {
            return;
        }
        if usize::from(self.n_syns) == SYN_CANDIDATES {
            self.syns.copy_within(1.., 0);
            self.n_syns -= 1;
        }
        self.syns[usize::from(self.n_syns)] = seq;
        self.n_syns += 1;
    }

    /// A SYN-ACK acknowledging `ack` confirms the Fast Open SYN whose data
    /// ends there (the nearest SYN before it, within one SYN's worth of
    /// data).
    fn confirm_syn_data(&mut self, ack: u32) -> bool {
        let best = self.syns[..usize::from(self.n_syns)]
            .iter()
            .map(|&s| (ack.wrapping_sub(s.wrapping_add(1)), s))
            .filter(|&(d, _)| d > 0 && d <= 65_535)
            .min();
        match best {
            Some((_, s)) => self.confirm_syn(s),
            None => false,
        }
    }

    /// The handshake confirms the SYN at `seq` if this side sent one.
    fn confirm_syn(&mut self, seq: u32) -> bool {
        if !self.syns[..usize::from(self.n_syns)].contains(&seq) {
            return false;
        }
        self.isn = Some(seq);
        self.isn_confirmed = true;
        // Where this side's stream stands, counted from the confirmed SYN
        // (a newer bogus SYN may have moved it elsewhere).
        let ahead = self.next_seq.wrapping_sub(seq.wrapping_add(1));
        if ahead >= 1 << 30 {
            self.next_seq = seq.wrapping_add(1);
        }
        true
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTracker {
    state: TcpState,
    sides: [Side; 2],
    flags: [u8; 2],
    /// Both SYNs carried window scaling, so later windows are shifted.
    scaling: bool,
    /// The handshake was seen: windows and TTLs mean what they say.
    handshake: bool,
    /// A session first seen on an ACK is established from it on
    /// (Suricata's `stream.midstream`); otherwise once both sides spoke.
    midstream: bool,
    inline: bool,
    /// The client's FIN came before the server's.
    client_closed_first: bool,
}

/// `a` is after `b` in sequence space.
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

impl TcpTracker {
    /// A tracker for a new session: whether sessions picked up
    /// midstream are established from their first ACK, and whether the
    /// box is inline (then a low TTL is said, not held: what the box
    /// forwards is what it inspected, and a copy that contradicts it
    /// later is dropped as an overlap, so a TTL insertion cannot blind
    /// it, while a server behind a SYN proxy, whose data comes with a
    /// lower TTL than its SYN-ACK, keeps working).
    pub fn new(midstream: bool, inline: bool) -> Self {
        TcpTracker {
            midstream,
            inline,
            ..TcpTracker::default()
        }
    }

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

    /// How far each side's stream has come, as Suricata's `stream_size`
    /// measures it: next sequence number minus ISN (the SYN counts one),
    /// client first. None until both sides' SYNs are known.
    pub fn stream_sizes(&self) -> Option<(u32, u32)> {
        let size = |s: &Side| s.isn.map(|isn| s.next_seq.wrapping_sub(isn));
        Some((size(&self.sides[0])?, size(&self.sides[1])?))
    }

    /// Takes one segment sent in `dir` with `payload_len` bytes, which
    /// arrived with `ttl` and whose checksums verified (`checksum_ok`).
    pub fn on_segment(
        &mut self,
        dir: Dir,
        t: &TcpFields,
        payload_len: u32,
        ttl: u8,
        checksum_ok: bool,
    ) -> Seen {
        let refused = |why| Seen {
            fate: Fate::Refused(why),
            ack: None,
        };
        if !checksum_ok {
            return refused(Why::BadChecksum);
        }
        let d = dir as usize;
        let p = dir.peer() as usize;
        let syn = t.flags & SYN != 0;
        let control = t.flags & (SYN | FIN | RST) != 0;

        // TTL: the handshake's is the reference. A lower one may not reach
        // the host; its data waits for the receiver's word.
        let establishing = matches!(self.state, TcpState::None | TcpState::SynSent)
            || (self.state == TcpState::SynRecv && syn);
        let mut noted = None;
        match self.sides[d].ttl {
            Some(base) if ttl < base && !(syn && establishing) && self.inline => {
                noted = Some(Why::LowTtl);
            }
            Some(base) if ttl < base && !(syn && establishing) => {
                return if payload_len > 0 && !control {
                    // It counts as sent: the receiver's acknowledgement is
                    // what vouches for it, so that must be believable
                    // (servers behind a load balancer answer the SYN with
                    // one TTL and send data with another).
                    let end = t.seq.wrapping_add(payload_len);
                    let side = &mut self.sides[d];
                    if side.seen && seq_gt(end, side.next_seq) {
                        side.next_seq = end;
                    }
                    Seen {
                        fate: Fate::Suspect(Why::LowTtl),
                        ack: None,
                    }
                } else {
                    refused(Why::LowTtl)
                };
            }
            _ => {}
        }

        if let Some(why) = self.timestamp_refused(dir, t) {
            return refused(why);
        }

        if t.flags & RST != 0 {
            if let Some(why) = self.rst_refused(dir, t) {
                return refused(why);
            }
            self.flags[d] |= t.flags;
            self.state = TcpState::Closed;
            return Seen {
                fate: noted.map_or(Fate::Accepted, Fate::Noted),
                ack: None,
            };
        }

        // SYNs: which one counts is what the other side acknowledges.
        if syn {
            let synack = t.flags & ACK_FLAG != 0;
            if self.state.is_established() || (self.state == TcpState::SynRecv && !synack) {
                // Another ISN than the one known (a SYN arriving after its
                // SYN-ACK, or on a session picked up midstream, has none to
                // contradict).
                if self.sides[d].isn.is_some_and(|isn| isn != t.seq) {
                    return refused(Why::SynOnEstablished);
                }
            } else if !synack && self.state == TcpState::SynSent && dir == Dir::ToServer {
                let side = &mut self.sides[d];
                if side.isn != Some(t.seq) {
                    side.syns_different = side.syns_different.saturating_add(1);
                    if side.syns_different > MAX_SYN_QUEUED {
                        noted = Some(Why::SynFlood);
                    }
                }
            } else if synack {
                // The server's SYN-ACK names the client SYN it answers.
                let client = &mut self.sides[p];
                // With Fast Open the server may acknowledge the SYN's data
                // too: it then answers the SYN that data followed.
                let tfo = client.tfo && client.confirm_syn_data(t.ack);
                if client.n_syns > 0 && !tfo && !client.confirm_syn(t.ack.wrapping_sub(1)) {
                    return refused(Why::SynAckWrongAck);
                }
            }
        } else if self.state == TcpState::SynRecv && t.flags & ACK_FLAG != 0 {
            // The client's ACK names the server SYN-ACK it answers.
            let server = &mut self.sides[p];
            if server.n_syns > 0 && !server.isn_confirmed {
                server.confirm_syn(t.ack.wrapping_sub(1));
            }
        }

        // Data that starts beyond the receiver's window (known once the
        // handshake told its scale) is dropped by the host, as Linux's
        // sequence check does.
        let mut fate = Fate::Accepted;
        if payload_len > 0 && self.handshake && !syn {
            let peer = self.sides[p];
            if let (Some(acked), true) = (peer.acked, peer.window_known) {
                if seq_ge(t.seq, acked.wrapping_add(peer.window.max(1))) {
                    return refused(Why::OutOfWindow);
                }
            }
        }
        if syn && payload_len > 0 {
            let client_tfo = self.sides[Dir::ToServer as usize].tfo || t.tfo;
            if !client_tfo {
                fate = Fate::DataRefused(Why::SynData);
            }
        }

        self.flags[d] |= t.flags;
        // Sequence space this segment uses: payload (if the host takes it),
        // plus one each for SYN and FIN.
        let fin = u32::from(t.flags & FIN != 0);
        let taken = if fate == Fate::Accepted {
            payload_len
        } else {
            0
        };
        let end = t
            .seq
            .wrapping_add(taken)
            .wrapping_add(u32::from(syn))
            .wrapping_add(fin);
        let first = !self.sides[d].seen;
        let side = &mut self.sides[d];
        if syn && (!self.state.is_established() || side.isn.is_none()) {
            side.remember_syn(t.seq);
            if !side.isn_confirmed {
                // The newest SYN stands until the handshake confirms one.
                side.isn = Some(t.seq);
                side.next_seq = end;
            }
            side.ttl = Some(side.ttl.map_or(ttl, |b| b.max(ttl)));
            side.tfo |= t.tfo;
            side.ts_offered = t.ts.is_some();
            if let Some((val, _)) = t.ts {
                if side.syn_ts == [0, 0] {
                    side.syn_ts[0] = val;
                }
                side.syn_ts[1] = val;
                side.last_ts = val;
            }
        } else if first {
            // Picked up midstream: its first packet sets the reference.
            side.ttl = Some(ttl);
        }
        if first || seq_gt(end, side.next_seq) {
            side.next_seq = end;
        }
        if let Some((val, _)) = t.ts.filter(|_| !syn) {
            if first || (val.wrapping_sub(side.last_ts) as i32) > 0 {
                side.last_ts = val;
            }
        }
        side.seen = true;
        if syn {
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
            if self.sides[p].fin_seq.is_none() {
                self.client_closed_first = dir == Dir::ToServer;
            }
        }
        // An acknowledgement of bytes the peer never sent is not believed.
        let mut ack = None;
        if t.flags & ACK_FLAG != 0 {
            let peer_next = self.sides[p].next_seq;
            let believable = !self.sides[p].seen || !seq_gt(t.ack, peer_next);
            if believable {
                ack = Some(t.ack);
                let me = &mut self.sides[d];
                if me.acked.is_none_or(|a| seq_gt(t.ack, a)) {
                    me.acked = Some(t.ack);
                }
                let peer = &mut self.sides[p];
                if let Some(fs) = peer.fin_seq {
                    if seq_gt(t.ack, fs) {
                        peer.fin_acked = true;
                    }
                }
            }
        }

        self.state = match (self.state, t.flags & (SYN | ACK_FLAG)) {
            (TcpState::None, f) if f == SYN => TcpState::SynSent,
            (TcpState::None | TcpState::SynSent, f) if f == SYN | ACK_FLAG => {
                self.scaling = self.sides[0].wscale_offered.is_some()
                    && self.sides[1].wscale_offered.is_some();
                self.handshake = self.sides[0].n_syns > 0;
                TcpState::SynRecv
            }
            (TcpState::SynRecv, ACK_FLAG) if dir == Dir::ToServer => TcpState::Established,
            // Picked up midstream: established once both sides have spoken,
            // or from its first ACK on when midstream pickup is asked for.
            (TcpState::None, _) if self.sides[0].seen && self.sides[1].seen => {
                TcpState::Established
            }
            (TcpState::None, ACK_FLAG) if self.midstream => TcpState::Established,
            (s, _) => s,
        };
        if self.state.is_established() && self.state != TcpState::Closed {
            self.state = self.closing_state();
        }
        if let (Fate::Accepted, Some(w)) = (fate, noted) {
            fate = Fate::Noted(w);
        }
        Seen { fate, ack }
    }

    /// Timestamps, checked as Suricata checks them. Before the handshake
    /// the server's answer to a SYN must echo the SYN's TSval (or nothing,
    /// if the SYN had none): a RST or FIN echoing another is forged. Once
    /// both SYNs offered timestamps, a TSval older than the sender's last
    /// taken one is rejected (PAWS, with Suricata's one tick of slack).
    fn timestamp_refused(&self, dir: Dir, t: &TcpFields) -> Option<Why> {
        let (val, ecr) = t.ts?;
        let client = &self.sides[Dir::ToServer as usize];
        if self.state == TcpState::SynSent && dir == Dir::ToClient {
            let bad = if client.ts_offered {
                ecr != 0 && !client.syn_ts.contains(&ecr)
            } else {
                ecr != 0
            };
            return bad.then_some(Why::BadTimestamp);
        }
        let me = &self.sides[dir as usize];
        let negotiated = client.ts_offered && self.sides[Dir::ToClient as usize].ts_offered;
        let older = (val.wrapping_sub(me.last_ts) as i32).wrapping_add(1) < 0;
        (negotiated && me.seen && me.last_ts != 0 && older && t.flags & SYN == 0)
            .then_some(Why::BadTimestamp)
    }

    /// The state that follows from the FINs sent and acknowledged.
    fn closing_state(&self) -> TcpState {
        let [client, server] = self.sides;
        match (client.fin_seq.is_some(), server.fin_seq.is_some()) {
            (false, false) => TcpState::Established,
            (true, false) => TcpState::CloseWait,
            (false, true) if server.fin_acked => TcpState::FinWait2,
            (false, true) => TcpState::FinWait1,
            (true, true) => match (client.fin_acked, server.fin_acked) {
                (true, true) => TcpState::Closed,
                _ if self.client_closed_first => TcpState::LastAck,
                (false, false) => TcpState::Closing,
                _ => TcpState::TimeWait,
            },
        }
    }

    /// Why a RST from `dir` is not taken, if it is not.
    fn rst_refused(&self, dir: Dir, t: &TcpFields) -> Option<Why> {
        let me = self.sides[dir as usize];
        let peer = self.sides[dir.peer() as usize];
        if !me.seen {
            // A reset from a side that never sent (a refused SYN) must
            // acknowledge what the other side sent; with nothing to check
            // against, it is taken as it comes.
            if !peer.seen {
                return None;
            }
            let ok = t.flags & ACK_FLAG != 0 && t.ack == peer.next_seq;
            return (!ok).then_some(Why::RstOutOfWindow);
        }
        let window = if peer.window_known {
            peer.window.max(1)
        } else {
            1
        };
        // The receiver's next expected byte: what it acknowledged, or where
        // the sender's stream stands; its window opens there.
        let rcv_next = peer.acked.unwrap_or(me.next_seq);
        let in_window = seq_ge(t.seq, rcv_next) && t.seq.wrapping_sub(rcv_next) < window;
        if !in_window {
            return Some(Why::RstOutOfWindow);
        }
        // RFC 5961: only the exact next byte resets; any other in-window
        // sequence number draws a challenge ACK.
        if t.seq != rcv_next && t.seq != me.next_seq {
            return Some(Why::RstNotExact);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcp::PSH;

    const TTL: u8 = 60;

    fn seg(flags: u8, seq: u32, ack: u32, window: u16) -> TcpFields {
        TcpFields {
            flags,
            seq,
            ack,
            window,
            header_len: 20,
            ..TcpFields::default()
        }
    }

    /// A segment as it arrives: the handshake's TTL, checksum fine.
    fn on(t: &mut TcpTracker, dir: Dir, s: TcpFields, len: u32) -> Fate {
        t.on_segment(dir, &s, len, TTL, true).fate
    }

    fn handshake() -> TcpTracker {
        let mut t = TcpTracker::default();
        on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 0);
        assert_eq!(t.state(), TcpState::SynSent);
        on(
            &mut t,
            Dir::ToClient,
            seg(SYN | ACK_FLAG, 500, 101, 2000),
            0,
        );
        assert_eq!(t.state(), TcpState::SynRecv);
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 0);
        assert_eq!(t.state(), TcpState::Established);
        t
    }

    #[test]
    fn handshake_data_and_orderly_close() {
        let mut t = handshake();
        on(
            &mut t,
            Dir::ToServer,
            seg(ACK_FLAG | PSH, 101, 501, 1000),
            10,
        );
        on(
            &mut t,
            Dir::ToServer,
            seg(FIN | ACK_FLAG, 111, 501, 1000),
            0,
        );
        // Named as Suricata names them: the client closing first puts the
        // session in CLOSE_WAIT.
        assert_eq!(t.state(), TcpState::CloseWait);
        on(&mut t, Dir::ToClient, seg(ACK_FLAG, 501, 112, 2000), 0);
        assert_eq!(t.state(), TcpState::CloseWait);
        on(
            &mut t,
            Dir::ToClient,
            seg(FIN | ACK_FLAG, 501, 112, 2000),
            0,
        );
        assert_eq!(t.state(), TcpState::LastAck);
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 112, 502, 1000), 0);
        assert_eq!(t.state(), TcpState::Closed);
        let (ts, tc, all) = t.flags();
        assert_eq!(ts, SYN | ACK_FLAG | PSH | FIN);
        assert_eq!(tc, SYN | ACK_FLAG | FIN);
        assert_eq!(all, 0x1b);
    }

    #[test]
    fn timestamps_the_receiver_would_reject_are_refused() {
        let ts = |s: TcpFields, val: u32, ecr: u32| TcpFields {
            ts: Some((val, ecr)),
            ..s
        };
        // The evasion of Suricata's bug 3286: a forged RST (and FIN)
        // answering the SYN with an echo the SYN never sent.
        let mut t = TcpTracker::default();
        on(
            &mut t,
            Dir::ToServer,
            ts(seg(SYN, 100, 0, 1000), 7000, 0),
            0,
        );
        let rst = ts(seg(RST | ACK_FLAG, 0, 101, 0), 100, 100);
        assert_eq!(
            on(&mut t, Dir::ToClient, rst, 0),
            Fate::Refused(Why::BadTimestamp)
        );
        let fin = ts(seg(FIN | ACK_FLAG, 0, 101, 0), 100, 100);
        assert_eq!(
            on(&mut t, Dir::ToClient, fin, 0),
            Fate::Refused(Why::BadTimestamp)
        );
        assert_eq!(t.state(), TcpState::SynSent);
        // The real answer echoes the SYN: taken.
        let synack = ts(seg(SYN | ACK_FLAG, 500, 101, 2000), 9000, 7000);
        assert_eq!(on(&mut t, Dir::ToClient, synack, 0), Fate::Accepted);
        on(
            &mut t,
            Dir::ToServer,
            ts(seg(ACK_FLAG, 101, 501, 1000), 7001, 9000),
            0,
        );
        assert_eq!(t.state(), TcpState::Established);
        // PAWS: a TSval older than the sender's last is refused, one tick
        // of slack; newer ones and equal ones are taken.
        let data = |seq: u32, val: u32| ts(seg(ACK_FLAG | PSH, seq, 501, 1000), val, 9000);
        assert_eq!(
            on(&mut t, Dir::ToServer, data(101, 7010), 10),
            Fate::Accepted
        );
        assert_eq!(
            on(&mut t, Dir::ToServer, data(111, 7009), 10),
            Fate::Accepted
        );
        assert_eq!(
            on(&mut t, Dir::ToServer, data(111, 7000), 10),
            Fate::Refused(Why::BadTimestamp)
        );
        assert_eq!(
            on(&mut t, Dir::ToServer, data(121, 7010), 10),
            Fate::Accepted
        );
        // A refused segment does not move the last TSval forward (else a
        // forged one could make the real ones look old).
        let far = ts(seg(ACK_FLAG | PSH, 900_000, 501, 1000), 2_000_000_000, 9000);
        assert_ne!(on(&mut t, Dir::ToServer, far, 10), Fate::Accepted);
        assert_eq!(
            on(&mut t, Dir::ToServer, data(131, 7011), 10),
            Fate::Accepted
        );
        // Without a timestamp on the SYN, an answer echoing one is forged;
        // without timestamps negotiated, nothing else is checked.
        let mut t = TcpTracker::default();
        on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 0);
        let rst = ts(seg(RST | ACK_FLAG, 0, 101, 0), 100, 100);
        assert_eq!(
            on(&mut t, Dir::ToClient, rst, 0),
            Fate::Refused(Why::BadTimestamp)
        );
        on(
            &mut t,
            Dir::ToClient,
            seg(SYN | ACK_FLAG, 500, 101, 2000),
            0,
        );
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 0);
        assert_eq!(on(&mut t, Dir::ToServer, data(101, 5), 10), Fate::Accepted);
        assert_eq!(on(&mut t, Dir::ToServer, data(111, 1), 10), Fate::Accepted);
    }

    #[test]
    fn a_syn_flood_before_the_handshake_is_said_past_ten_and_taken() {
        let mut t = TcpTracker::default();
        let mut fates = Vec::new();
        for i in 0..14u32 {
            fates.push(on(&mut t, Dir::ToServer, seg(SYN, 1000 * i, 0, 1000), 0));
        }
        // A retransmission of the newest is no different SYN.
        fates.push(on(&mut t, Dir::ToServer, seg(SYN, 13_000, 0, 1000), 0));
        let noted = fates
            .iter()
            .filter(|f| **f == Fate::Noted(Why::SynFlood))
            .count();
        assert_eq!(noted, 3, "{fates:?}");
        assert!(fates[..11].iter().all(|f| *f == Fate::Accepted));
        // The newest still counts: the server answers it.
        let synack = seg(SYN | ACK_FLAG, 500, 13_001, 2000);
        assert_eq!(on(&mut t, Dir::ToClient, synack, 0), Fate::Accepted);
    }

    #[test]
    fn simultaneous_close() {
        let mut t = handshake();
        on(
            &mut t,
            Dir::ToServer,
            seg(FIN | ACK_FLAG, 101, 501, 1000),
            0,
        );
        on(
            &mut t,
            Dir::ToClient,
            seg(FIN | ACK_FLAG, 501, 101, 2000),
            0,
        );
        assert_eq!(t.state(), TcpState::LastAck);
        // The server first: FIN_WAIT1, 2, then TIME_WAIT until the
        // client's FIN is acknowledged; both unacknowledged is CLOSING.
        let mut t = handshake();
        on(
            &mut t,
            Dir::ToClient,
            seg(FIN | ACK_FLAG, 501, 101, 2000),
            0,
        );
        assert_eq!(t.state(), TcpState::FinWait1);
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 502, 1000), 0);
        assert_eq!(t.state(), TcpState::FinWait2);
        on(
            &mut t,
            Dir::ToServer,
            seg(FIN | ACK_FLAG, 101, 502, 1000),
            0,
        );
        assert_eq!(t.state(), TcpState::TimeWait);
        on(&mut t, Dir::ToClient, seg(ACK_FLAG, 502, 102, 2000), 0);
        assert_eq!(t.state(), TcpState::Closed);
        let mut t = handshake();
        on(
            &mut t,
            Dir::ToClient,
            seg(FIN | ACK_FLAG, 501, 101, 2000),
            0,
        );
        on(
            &mut t,
            Dir::ToServer,
            seg(FIN | ACK_FLAG, 101, 501, 1000),
            0,
        );
        assert_eq!(t.state(), TcpState::Closing);
    }

    #[test]
    fn only_a_rst_at_the_exact_next_byte_closes() {
        let mut t = handshake();
        // In the client's 1000-byte window, but not the next byte: RFC
        // 5961's challenge ACK, the connection lives on.
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(RST, 501 + 500, 0, 0), 0),
            Fate::Refused(Why::RstNotExact)
        );
        assert_eq!(t.state(), TcpState::Established);
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(RST, 501, 0, 0), 0),
            Fate::Accepted
        );
        assert_eq!(t.state(), TcpState::Closed);
    }

    #[test]
    fn rst_out_of_window_is_refused() {
        let mut t = handshake();
        for bad in [500u32, 501 + 1000, 501 + 100_000, 0] {
            assert_eq!(
                on(&mut t, Dir::ToClient, seg(RST, bad, 0, 0), 0),
                Fate::Refused(Why::RstOutOfWindow),
                "seq {bad}"
            );
            assert_eq!(t.state(), TcpState::Established);
        }
    }

    #[test]
    fn window_scaling_widens_the_window_data_must_fit() {
        let mut t = TcpTracker::default();
        let mut syn = seg(SYN, 100, 0, 1000);
        syn.wscale = Some(4);
        on(&mut t, Dir::ToServer, syn, 0);
        let mut synack = seg(SYN | ACK_FLAG, 500, 101, 2000);
        synack.wscale = Some(2);
        on(&mut t, Dir::ToClient, synack, 0);
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 0); // 16000 bytes
                                                                     // The server's window: 2000 << 2 once it speaks again.
        on(&mut t, Dir::ToClient, seg(ACK_FLAG, 501, 101, 2000), 0);
        assert_eq!(
            on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 7_900),
            Fate::Accepted
        );
        assert_eq!(
            on(&mut t, Dir::ToServer, seg(ACK_FLAG, 8_001, 501, 1000), 200),
            Fate::Accepted,
            "starts inside 101 + 8000 (Linux takes it)"
        );
        assert_eq!(
            on(&mut t, Dir::ToServer, seg(ACK_FLAG, 8_101, 501, 1000), 200),
            Fate::Refused(Why::OutOfWindow),
            "starts at 101 + 8000"
        );
        // The client's 16000-byte window holds the server's data.
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(ACK_FLAG, 501, 101, 2000), 15_000),
            Fate::Accepted
        );
    }

    #[test]
    fn refused_syn_reset_must_ack_the_syn() {
        let mut t = TcpTracker::default();
        on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 0);
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(RST | ACK_FLAG, 0, 999, 0), 0),
            Fate::Refused(Why::RstOutOfWindow)
        );
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(RST | ACK_FLAG, 0, 101, 0), 0),
            Fate::Accepted
        );
        assert_eq!(t.state(), TcpState::Closed);
    }

    #[test]
    fn midstream_pickup_needs_both_sides() {
        let mut t = TcpTracker::default();
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 1000, 2000, 500), 100);
        assert_eq!(t.state(), TcpState::None);
        on(&mut t, Dir::ToClient, seg(ACK_FLAG, 2000, 1100, 500), 0);
        assert_eq!(t.state(), TcpState::Established);
        // With midstream pickup, as Suricata: the first ACK establishes it
        // (a one-sided capture too); a bare packet without ACK does not.
        let mut t = TcpTracker::new(true, false);
        on(&mut t, Dir::ToServer, seg(PSH, 1000, 0, 500), 10);
        assert_eq!(t.state(), TcpState::None);
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 1010, 2000, 500), 0);
        assert_eq!(t.state(), TcpState::Established);
    }

    #[test]
    fn a_bad_checksum_changes_nothing() {
        let mut t = handshake();
        let s = seg(FIN | ACK_FLAG, 101, 501, 1000);
        assert_eq!(
            t.on_segment(Dir::ToServer, &s, 0, TTL, false).fate,
            Fate::Refused(Why::BadChecksum)
        );
        assert_eq!(t.state(), TcpState::Established);
        let mut t = TcpTracker::default();
        let syn = seg(SYN, 7, 0, 1000);
        t.on_segment(Dir::ToServer, &syn, 0, TTL, false);
        assert_eq!((t.state(), t.isn(Dir::ToServer)), (TcpState::None, None));
    }

    #[test]
    fn a_low_ttl_segment_is_suspect_and_moves_no_state() {
        let mut t = handshake();
        let data = seg(ACK_FLAG | PSH, 101, 501, 1000);
        let s = t.on_segment(Dir::ToServer, &data, 10, TTL - 3, true);
        assert_eq!((s.fate, s.ack), (Fate::Suspect(Why::LowTtl), None));
        for flags in [RST, FIN | ACK_FLAG, ACK_FLAG] {
            let s = t.on_segment(Dir::ToServer, &seg(flags, 101, 501, 1000), 0, TTL - 3, true);
            assert_eq!(s.fate, Fate::Refused(Why::LowTtl));
        }
        assert_eq!(t.state(), TcpState::Established);
        // The handshake's TTL or above is fine.
        let s = t.on_segment(Dir::ToServer, &data, 10, TTL + 1, true);
        assert_eq!(s.fate, Fate::Accepted);
    }

    #[test]
    fn the_receivers_ack_of_suspect_data_is_believed() {
        // A server whose data comes with a lower TTL than its SYN-ACK (a
        // load balancer answered the handshake): the client's ACK of that
        // data must be believed, or the data is never released.
        let mut t = handshake();
        let data = seg(ACK_FLAG | PSH, 501, 101, 2000);
        let s = t.on_segment(Dir::ToClient, &data, 1360, TTL - 4, true);
        assert_eq!(s.fate, Fate::Suspect(Why::LowTtl));
        let ack = t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 101, 1861, 1000), 0, TTL, true);
        assert_eq!((ack.fate, ack.ack), (Fate::Accepted, Some(1861)));
        // Beyond what was sent, still not.
        let ack = t.on_segment(Dir::ToServer, &seg(ACK_FLAG, 101, 9000, 1000), 0, TTL, true);
        assert_eq!(ack.ack, None);
    }

    #[test]
    fn inline_a_low_ttl_is_said_and_the_segment_taken() {
        // Bug 2576's server: SYN-ACK with one TTL, everything after with a
        // lower one (a SYN proxy in front). Inline, every packet must pass.
        let mut t = TcpTracker::new(false, true);
        on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 0);
        on(
            &mut t,
            Dir::ToClient,
            seg(SYN | ACK_FLAG, 500, 101, 2000),
            0,
        );
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 0);
        let low = |t: &mut TcpTracker, s: TcpFields, len: u32| {
            t.on_segment(Dir::ToClient, &s, len, TTL - 4, true)
        };
        let ack = low(&mut t, seg(ACK_FLAG, 501, 101, 2000), 0);
        assert_eq!(ack.fate, Fate::Noted(Why::LowTtl));
        let data = low(&mut t, seg(ACK_FLAG | PSH, 501, 101, 2000), 100);
        assert_eq!((data.fate, data.ack), (Fate::Noted(Why::LowTtl), Some(101)));
        let fin = low(&mut t, seg(FIN | ACK_FLAG, 601, 101, 2000), 0);
        assert_eq!(fin.fate, Fate::Noted(Why::LowTtl));
        assert_eq!(t.state(), TcpState::FinWait1);
    }

    #[test]
    fn syn_data_counts_only_with_fast_open() {
        let mut t = TcpTracker::default();
        assert_eq!(
            on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 20),
            Fate::DataRefused(Why::SynData)
        );
        assert_eq!(t.isn(Dir::ToServer), Some(100), "the SYN itself counts");
        let mut t = TcpTracker::default();
        let mut tfo = seg(SYN, 100, 0, 1000);
        tfo.tfo = true;
        assert_eq!(on(&mut t, Dir::ToServer, tfo, 20), Fate::Accepted);
    }

    #[test]
    fn the_handshake_confirms_which_syn_counts() {
        // A bogus SYN before the real one, and another after it: the
        // SYN-ACK acknowledges the real one.
        let mut t = TcpTracker::default();
        on(&mut t, Dir::ToServer, seg(SYN, 9_000, 0, 1000), 0);
        on(&mut t, Dir::ToServer, seg(SYN, 100, 0, 1000), 0);
        on(&mut t, Dir::ToServer, seg(SYN, 77_000, 0, 1000), 0);
        assert_eq!(
            on(
                &mut t,
                Dir::ToClient,
                seg(SYN | ACK_FLAG, 500, 101, 2000),
                0
            ),
            Fate::Accepted
        );
        assert_eq!(t.isn(Dir::ToServer), Some(100));
        // A SYN-ACK that answers no SYN is not taken.
        assert_eq!(
            on(&mut t, Dir::ToClient, seg(SYN | ACK_FLAG, 800, 5, 2000), 0),
            Fate::Refused(Why::SynAckWrongAck)
        );
        // Two SYN-ACKs: the client's ACK picks.
        on(
            &mut t,
            Dir::ToClient,
            seg(SYN | ACK_FLAG, 60_000, 101, 2000),
            0,
        );
        on(&mut t, Dir::ToServer, seg(ACK_FLAG, 101, 501, 1000), 0);
        assert_eq!(t.isn(Dir::ToClient), Some(500));
        assert_eq!(t.state(), TcpState::Established);
        // Once established, a SYN with another sequence number moves nothing.
        assert_eq!(
            on(&mut t, Dir::ToServer, seg(SYN, 123_456, 0, 1000), 0),
            Fate::Refused(Why::SynOnEstablished)
        );
        assert_eq!(t.isn(Dir::ToServer), Some(100));
    }

    #[test]
    fn an_ack_of_bytes_never_sent_is_not_believed() {
        let mut t = handshake();
        let s = t.on_segment(
            Dir::ToClient,
            &seg(ACK_FLAG, 501, 50_000, 2000),
            0,
            TTL,
            true,
        );
        assert_eq!(s.ack, None);
        on(
            &mut t,
            Dir::ToServer,
            seg(ACK_FLAG | PSH, 101, 501, 1000),
            10,
        );
        let s = t.on_segment(Dir::ToClient, &seg(ACK_FLAG, 501, 111, 2000), 0, TTL, true);
        assert_eq!(s.ack, Some(111));
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_gt(5, u32::MAX - 5));
        assert!(!seq_gt(u32::MAX - 5, 5));
        assert!(seq_ge(7, 7));
    }
}
