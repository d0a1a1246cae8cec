//! Any bytes as a DNS message, into one reused `Message` (as a worker
//! keeps one), and as a TCP stream cut where the first byte says: no
//! panic, every name inside the arena and at most 255 bytes, and the TCP
//! framer gives the same messages however the stream is cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::dns::parser::{Message, Rdata, TcpFramer, MAX_NAME};

thread_local! {
    static MSG: std::cell::RefCell<Message> = std::cell::RefCell::new(Message::with_capacity(4096));
}

fuzz_target!(|data: &[u8]| {
    MSG.with(|m| {
        let mut m = m.borrow_mut();
        if m.parse(data).is_ok() {
            let names = m
                .questions
                .iter()
                .map(|q| q.name)
                .chain(m.answers.iter().chain(&m.authorities).chain(&m.additionals).flat_map(|r| {
                    let extra = match r.data {
                        Rdata::Name(n) => Some(n),
                        Rdata::Soa { mname, .. } => Some(mname),
                        _ => None,
                    };
                    std::iter::once(r.name).chain(extra)
                }))
                .collect::<Vec<_>>();
            for n in names {
                assert!(m.name(n).len() <= MAX_NAME);
                assert_eq!(m.name(n).len(), usize::from(n.len));
            }
        }
    });
    let cut = data.first().map_or(0, |&c| usize::from(c)).min(data.len());
    let (mut whole, mut split) = (Vec::new(), Vec::new());
    TcpFramer::default().feed(data, |m| whole.push(m.to_vec()));
    let mut f = TcpFramer::default();
    f.feed(&data[..cut], |m| split.push(m.to_vec()));
    f.feed(&data[cut..], |m| split.push(m.to_vec()));
    assert_eq!(whole, split);
});
