//! Any bytes as an HTTP/1.x connection through the app layer's HTTP
//! parser, then every buffer a rule can ask for built from every
//! transaction at every point it reaches, and its EVE record packed: no
//! panic, no block of the store lost, every decoder given back.
//!
//! The input is records: a control byte (bit 0: to the client; bit 1: a
//! gap of the next byte's length before the data; bit 2: the connection
//! closes after it), a two-byte length, the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::http::detect::{Buffer, Kind, TxBuffers};
use tollgate::applayer::http::state::HttpState;
use tollgate::applayer::http::{logger, HttpConfig, HttpCx};


struct Fixture {
    cx: HttpCx,
    bufs: TxBuffers,
    log: Vec<u8>,
}

thread_local! {
    // One per process, as a worker keeps one: reused across inputs, so a
    // leak in one input shows in the next.
    static FIXTURE: std::cell::RefCell<Fixture> = std::cell::RefCell::new({
        let cfg = HttpConfig {
            body_limit: 4096,
            head_limit: 8192,
            decoders: 4,
            // Every hash, so their paths are fuzzed too.
            hashes: tollgate::applayer::http::hash::MD5
                | tollgate::applayer::http::hash::SHA1
                | tollgate::applayer::http::hash::SHA256,
            ..HttpConfig::default()
        };
        Fixture {
            cx: HttpCx::new(cfg, 1 << 20),
            bufs: TxBuffers::new(cfg.head_limit, cfg.body_limit),
            log: Vec::with_capacity(16 * 1024),
        }
    });
}

fn points(st: &mut HttpState, f: &mut Fixture) {
    let pts: Vec<(u8, _)> = f.cx.out.clone();
    for (slot, _point) in pts {
        f.bufs.start(st.tx(slot));
        for k in Kind::ALL {
            for to_server in [true, false] {
                let b = Buffer::new(k, Some(to_server));
                let _ = f.bufs.get(&f.cx.blocks, b);
                if k.multi() {
                    f.bufs.each_instance(&f.cx.blocks, b, |x| !x.is_empty());
                }
            }
        }
        logger::pack(&mut f.bufs, &f.cx.blocks, None, &mut f.log);
        for _ in logger::unpack(&f.log) {}
    }
    f.cx.out.clear();
    st.reap(&mut f.cx);
}

fuzz_target!(|data: &[u8]| FIXTURE.with(|f| run(&mut f.borrow_mut(), data)));

fn run(f: &mut Fixture, data: &[u8]) {
    let mut st = HttpState::default();
    st.reset(&mut f.cx);
    let mut rest = data;
    while rest.len() >= 3 {
        let ctl = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
        rest = &rest[3..];
        let to_server = ctl & 1 == 0;
        if ctl & 2 != 0 {
            let gap = u64::from(rest.first().copied().unwrap_or(1));
            rest = rest.get(1..).unwrap_or(&[]);
            st.gap(&mut f.cx, to_server, gap);
        }
        let take = len.min(rest.len());
        st.parse(&mut f.cx, to_server, &rest[..take]);
        rest = &rest[take..];
        points(&mut st, f);
        if ctl & 4 != 0 {
            break;
        }
    }
    st.close(&mut f.cx);
    points(&mut st, f);
    st.reset(&mut f.cx);
    assert_eq!(f.cx.blocks.in_use(), 0, "a block outlived its connection");
    assert_eq!(f.cx.inflaters.len(), 4, "a decoder was not given back");
}
