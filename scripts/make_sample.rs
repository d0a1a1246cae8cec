//! Writes the committed sample capture: `cargo run --example make_sample --
//! pcaps/sample.pcap`. The traffic is composed in `tollgate::sample`; a test
//! checks that the committed file is exactly what this writes.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: make_sample OUT.pcap");
        return ExitCode::from(2);
    };
    let cap = tollgate::sample::build();
    match cap.write_pcap(std::path::Path::new(&out)) {
        Ok(()) => {
            println!("{out}: {} packets", cap.packets.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::FAILURE
        }
    }
}
