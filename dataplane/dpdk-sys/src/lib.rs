//! Raw bindings to the system DPDK 22.11: bindgen output for the EAL, ethdev,
//! mbuf and mempool APIs Tollgate uses, plus a small C shim that turns DPDK's
//! static-inline fast path (rx/tx burst, mbuf free and data, lcore id, TSC,
//! rte_errno) into real functions. The shim's functions are given back their
//! DPDK names here. Everything is `unsafe`; the safe layer is
//! `tollgate::io::dpdk`.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

pub use self::tg_errno as rte_errno;
pub use self::tg_eth_rx_burst as rte_eth_rx_burst;
pub use self::tg_eth_tx_burst as rte_eth_tx_burst;
pub use self::tg_lcore_id as rte_lcore_id;
/// `rte_pktmbuf_mtod(m, const uint8_t *)`.
pub use self::tg_pktmbuf_data as rte_pktmbuf_mtod;
pub use self::tg_pktmbuf_data_len as rte_pktmbuf_data_len;
pub use self::tg_pktmbuf_free as rte_pktmbuf_free;
pub use self::tg_pktmbuf_free_bulk as rte_pktmbuf_free_bulk;
pub use self::tg_pktmbuf_pkt_len as rte_pktmbuf_pkt_len;
pub use self::tg_rdtsc as rte_rdtsc;
