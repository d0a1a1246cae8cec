/* The parts of DPDK that are static inline or macros, wrapped as real
 * functions so Rust can call them. The Rust side gives each its real name. */
#ifndef TOLLGATE_DPDK_SHIM_H
#define TOLLGATE_DPDK_SHIM_H

#include <stdint.h>
#include <rte_mbuf.h>

uint16_t tg_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t tg_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
void tg_pktmbuf_free(struct rte_mbuf *m);
void tg_pktmbuf_free_bulk(struct rte_mbuf **m, unsigned int n);
const uint8_t *tg_pktmbuf_data(const struct rte_mbuf *m);
uint16_t tg_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t tg_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t tg_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint32_t tg_pktmbuf_rss_hash(const struct rte_mbuf *m);
int tg_pktmbuf_has_rss_hash(const struct rte_mbuf *m);
unsigned int tg_lcore_id(void);
uint64_t tg_rdtsc(void);
int tg_errno(void);
/* RSS hash types for IPv4/IPv6 with TCP and UDP ports, as the headers
 * define them (macros bindgen cannot evaluate). */
uint64_t tg_rss_hf_ip_tcp_udp(void);
/* RX checksum offload: the port's TCP checksum offload bit, and the mbuf
 * flags that report the L4 checksum (mask, good, bad). */
uint64_t tg_rx_offload_tcp_cksum(void);
uint64_t tg_rx_l4_cksum_mask(void);
uint64_t tg_rx_l4_cksum_good(void);
uint64_t tg_rx_l4_cksum_bad(void);
/* The same for the IPv4 header checksum. */
uint64_t tg_rx_offload_ipv4_cksum(void);
uint64_t tg_rx_ip_cksum_mask(void);
uint64_t tg_rx_ip_cksum_bad(void);
/* SIGINT/SIGTERM set a flag the main loop polls. */
void tg_install_stop_handlers(void);
int tg_stop_requested(void);
void tg_request_stop(void);

#endif
