//! Any bytes as a burst of frames through a whole worker, inline, with the
//! shipped rules and two rules that reach into every part of the content
//! chain: no panic, and every packet accounted for (rx = tx + dropped).
//! The input is frames, each prefixed by a two-byte length; the first
//! byte also picks a replay pass and whether checksums are checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tollgate::detect::Engine;
use tollgate::flow::EndReason;
use tollgate::io::{RawPacket, Verdict};
use tollgate::reassembly::{ChecksumMode, StreamConfig};
use tollgate::rules::vars::Vars;
use tollgate::worker::{Mode, Worker, WorkerConfig};

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tollgate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../signatures/tollgate.rules");
        let mut text = std::fs::read_to_string(shipped).unwrap_or_default();
        text.push_str(
            r#"
drop tcp any any -> any any (msg:"chain"; content:"GET"; content:"a"; distance:0; within:50; pcre:"/^(a+)+x/R"; byte_test:1,>,3,0,relative; isdataat:!2,relative; sid:1;)
alert ip any any -> any any (msg:"frag"; content:"|16 03|"; depth:2; byte_jump:2,3; content:"x"; distance:0; flowbits:set,f; sid:2;)
alert tcp any any -> any any (msg:"vars"; content:"L"; byte_extract:1,0,n,relative; content:"y"; distance:n; byte_math:bytes 1,offset 0,oper <<,rvalue n,result m,relative; isdataat:m,relative; sid:3;)
alert tcp any any -> any any (msg:"b64 asn1"; content:"k="; base64_decode:relative; base64_data; content:"z"; sid:4;)
alert tcp any any -> any any (msg:"asn1"; content:"|30|"; asn1:oversize_length 10, bitstring_overflow, relative_offset -1; sid:5;)
alert tcp-pkt any any -> any any (msg:"state"; tcp.hdr; content:"|02 04|"; offset:20; flowint:c,+,1; xbits:toggle,x,track ip_pair,expire 1; stream_size:either,>,2; tag:session,2,bytes; sid:6;)
alert ip any any -> any any (msg:"hdr"; ttl:<64; ipopts:any; vlan.id:!1,all; icmp_id:0; sid:7;)
drop tcp-stream any any -> any any (msg:"only stream"; content:"GET"; flowint:c,>,1; sid:8;)
"#,
        );
        let rules = dir.join("fuzz.rules");
        std::fs::write(&rules, text).unwrap();
        let classes = tollgate::rules::classification::parse(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../signatures/classification.config"
            ))
            .unwrap_or_default(),
        )
        .unwrap_or_default();
        let (e, _) = Engine::load(&[rules.as_path()], &Vars::suricata_defaults(), &classes)
            .expect("the fuzz rules load");
        Arc::new(e)
    }))
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, mut rest)) = data.split_first() else {
        return;
    };
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    let cfg = WorkerConfig {
        id: 0,
        mode: Mode::Ips,
        flow_capacity: 64,
        timeouts: Default::default(),
        malformed: Default::default(),
        inspect: true,
        defrag: tollgate::defrag::DefragConfig {
            memcap: 64 << 10,
            inline: true,
            ..Default::default()
        },
        workers: 1,
        reta_size: tollgate::rss::RETA_SIZE,
        stream: StreamConfig {
            memcap: 64 << 10,
            reassembly_memcap: 256 << 10,
            window: 256,
            midstream: knobs & 1 != 0,
            inline: true,
            ..StreamConfig::default()
        },
        checksum: if knobs & 2 != 0 {
            ChecksumMode::On
        } else {
            ChecksumMode::Off
        },
        exception: Default::default(),
        // The app layer on: its parsers take what the stream delivers.
        app: Default::default(),
        vlan_tracking: knobs & 4 != 0,
    };
    let mut w = Worker::new(cfg, None).with_engine(engine()).unwrap();
    let pass = u16::from(knobs >> 6);
    let pkts: Vec<RawPacket<'_>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| RawPacket::new(f, 1_000_000_000 * (i as u64 / 4)))
        .collect();
    let mut verdicts = vec![Verdict::Forward; pkts.len()];
    w.process_burst(&pkts, pass, &mut verdicts);
    w.tick(u64::MAX / 2);
    let (c, _) = w.finish(EndReason::Shutdown);
    assert_eq!(c.rx_packets, pkts.len() as u64);
    assert_eq!(c.rx_packets, c.tx_packets + c.dropped_total(), "{c:?}");
    assert_eq!(c.flows.created, c.flows.ended);
});
