//! Any bytes as a TLS connection: the first byte picks where each
//! direction's bytes are cut and whether a gap comes; the client's half
//! and the server's half go through the record walk, the handshake's
//! buffers are loaded and its EVE object is made. No panic, and the
//! hellos parse the same whole or cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::http::detect::TxBuffers;
use tollgate::applayer::tls::hello::{ja3, ja4, Hello};
use tollgate::applayer::tls::logger::EveTls;
use tollgate::applayer::tls::{TlsCx, TlsState};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let half = rest.len() / 2;
    let (client, server) = rest.split_at(half);
    let cut = usize::from(knob).min(client.len());
    let mut cx = TlsCx::default();
    let mut st = TlsState::default();
    st.parse(&mut cx, true, &client[..cut]);
    if knob & 1 == 1 {
        st.gap(false, u64::from(knob));
    }
    st.parse(&mut cx, false, server);
    st.parse(&mut cx, true, &client[cut..]);
    st.close(&mut cx);
    let mut bufs = TxBuffers::new(1024, 1024);
    st.load(&mut bufs);
    let mut rec = Vec::new();
    st.pack(knob & 2 == 2, &mut rec);
    let _ = EveTls::of(&rec);
    // A hello body as given: parsed, fingerprinted.
    if let Some(h) = Hello::client(rest) {
        let _ = (ja3(&h), ja4(&h, rest));
    }
    let _ = Hello::server(rest);
});
