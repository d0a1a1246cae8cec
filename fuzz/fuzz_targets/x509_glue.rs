//! Any bytes as a Certificate message's body and as one DER certificate:
//! the chain's certificates stay inside the message, and reading one
//! (x509-parser, then our formatting of its fields) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::tls::cert::{chain, CertInfo, MAX_CHAIN};

fuzz_target!(|data: &[u8]| {
    let mut n = 0;
    for der in chain(data) {
        let inside = data.as_ptr_range();
        assert!(inside.contains(&der.as_ptr()) || der.is_empty());
        let _ = CertInfo::of(der);
        n += 1;
    }
    assert!(n <= MAX_CHAIN);
    let _ = CertInfo::of(data);
});
