#include <signal.h>
#include <string.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include "shim.h"

uint16_t tg_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t tg_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

void tg_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void tg_pktmbuf_free_bulk(struct rte_mbuf **m, unsigned int n)
{
	rte_pktmbuf_free_bulk(m, n);
}

const uint8_t *tg_pktmbuf_data(const struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, const uint8_t *);
}

uint16_t tg_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t tg_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t tg_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

uint32_t tg_pktmbuf_rss_hash(const struct rte_mbuf *m)
{
	return m->hash.rss;
}

int tg_pktmbuf_has_rss_hash(const struct rte_mbuf *m)
{
	return (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) != 0;
}

unsigned int tg_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t tg_rdtsc(void)
{
	return rte_rdtsc();
}

int tg_errno(void)
{
	return rte_errno;
}

uint64_t tg_rss_hf_ip_tcp_udp(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
}

uint64_t tg_rx_offload_tcp_cksum(void)
{
	return RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
}

uint64_t tg_rx_l4_cksum_mask(void)
{
	return RTE_MBUF_F_RX_L4_CKSUM_MASK;
}

uint64_t tg_rx_l4_cksum_good(void)
{
	return RTE_MBUF_F_RX_L4_CKSUM_GOOD;
}

uint64_t tg_rx_l4_cksum_bad(void)
{
	return RTE_MBUF_F_RX_L4_CKSUM_BAD;
}

uint64_t tg_rx_offload_ipv4_cksum(void)
{
	return RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
}

uint64_t tg_rx_ip_cksum_mask(void)
{
	return RTE_MBUF_F_RX_IP_CKSUM_MASK;
}

uint64_t tg_rx_ip_cksum_bad(void)
{
	return RTE_MBUF_F_RX_IP_CKSUM_BAD;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

void tg_install_stop_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int tg_stop_requested(void)
{
	return stop_requested;
}

void tg_request_stop(void)
{
	stop_requested = 1;
}
