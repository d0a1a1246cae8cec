//! Any bytes as a capture file: the reader must find whole records or say
//! what is wrong, never panic, and never hand out a record past the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::io::pcap::{check_header, Records};

fuzz_target!(|data: &[u8]| {
    let _ = check_header(data);
    let Ok(records) = Records::new(data) else {
        return;
    };
    for r in records {
        match r {
            Ok(r) => {
                let end = r.offset + r.caplen as usize;
                assert!(end <= data.len(), "a record past the buffer");
                let _ = tollgate::decode::decode(&data[r.offset..end]);
            }
            Err(_) => break,
        }
    }
});
