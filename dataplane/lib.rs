//! Tollgate: an inline inspection appliance for the ingress of AI factories.
//!
//! The crate is the data plane and its tools. A packet source (a pcap file
//! today, a DPDK queue later) hands bursts to per-core workers that decode,
//! track flows and account for every packet; events leave the workers over
//! bounded rings to an EVE JSON writer. See ARCHITECTURE.md for the map.

#![deny(unsafe_code)]

pub mod applayer;
pub mod cli;
pub mod control;
pub mod craft;
pub mod decode;
pub mod defrag;
pub mod detect;
pub mod eve;
pub mod events;
pub mod flow;
pub mod gen;
pub mod handover;
pub mod io;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod reassembly;
pub mod replay;
pub mod rss;
pub mod rules;
#[cfg(feature = "dpdk")]
pub mod run;
pub mod sample;
pub mod scoring;
pub mod stats;
pub mod worker;
