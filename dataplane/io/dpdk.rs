//! The safe layer over DPDK: the EAL (initialised once, cleaned up once),
//! mempools, ports (configured with the symmetric RSS key when the PMD can
//! spread, started, stopped, counted) and mbufs. An `Mbuf` owns one packet
//! buffer: it lends its bytes as `&[u8]` and is freed exactly once — when it
//! is dropped, or by the NIC once `tx_burst` took it. It has no `Clone`.
//! This module and `dpdk-sys` are the only places with `unsafe`; each block
//! says why it holds.

use crate::io::BURST_SIZE;
use crate::rss::SYMMETRIC_KEY;
use dpdk_sys as sys;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// A DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortId(pub u16);

/// A queue id on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueId(pub u16);

/// What went wrong talking to DPDK, with DPDK's own words where it has any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError(pub String);

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DpdkError {}

fn strerror(code: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // string for any error number; it is copied out before the next call.
    unsafe {
        let p = sys::rte_strerror(code.abs());
        if p.is_null() {
            format!("error {code}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn check(what: &str, rc: c_int) -> Result<(), DpdkError> {
    if rc < 0 {
        Err(DpdkError(format!("{what}: {}", strerror(rc))))
    } else {
        Ok(())
    }
}

static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. One per process; dropping
/// it cleans the EAL up.
pub struct Eal {
    // The EAL may keep pointers into argv for the life of the process.
    _argv: Vec<CString>,
}

impl Eal {
    /// Initialises the EAL with these arguments (as after `--` on the
    /// command line; the program name is added).
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError(
                "the EAL is already initialised in this process".into(),
            ));
        }
        let mut argv_owned = vec![CString::new("tollgate").expect("no NUL")];
        for a in args {
            argv_owned.push(
                CString::new(a.as_str())
                    .map_err(|_| DpdkError(format!("EAL argument {a:?} contains a NUL byte")))?,
            );
        }
        let mut argv: Vec<*mut c_char> = argv_owned
            .iter()
            .map(|c| c.as_ptr() as *mut c_char)
            .collect();
        // SAFETY: argv holds valid NUL-terminated strings that outlive the
        // call (and the Eal, which keeps them); the EAL may permute the
        // pointer array, which is ours to lose.
        let rc = unsafe { sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            // SAFETY: rte_errno is a per-thread int the failed call just set.
            let errno = unsafe { sys::rte_errno() };
            EAL_STARTED.store(false, Ordering::SeqCst);
            return Err(DpdkError(format!(
                "EAL initialisation failed: {}",
                strerror(errno)
            )));
        }
        // SAFETY: installs async-signal-safe handlers that only set a flag.
        unsafe { sys::tg_install_stop_handlers() };
        Ok(Eal { _argv: argv_owned })
    }

    pub fn main_lcore(&self) -> u32 {
        // SAFETY: valid after rte_eal_init.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The worker lcores (every enabled lcore but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore walks the EAL's lcore table; with
        // skip_main = 1, wrap = 0 it ends with RTE_MAX_LCORE.
        let mut l = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while l < sys::RTE_MAX_LCORE {
            out.push(l);
            // SAFETY: as above.
            l = unsafe { sys::rte_get_next_lcore(l, 1, 0) };
        }
        out
    }

    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // SAFETY: any lcore id is accepted; unknown ones give SOCKET_ID_ANY.
        unsafe { sys::rte_lcore_to_socket_id(lcore) }
    }

    /// Ports the EAL found (PCI allow-list, vdevs).
    pub fn ports(&self) -> Vec<PortId> {
        // SAFETY: plain query after init.
        let n = unsafe { sys::rte_eth_dev_count_avail() };
        let mut out = Vec::new();
        let mut id = 0u16;
        while out.len() < usize::from(n) && id < sys::RTE_MAX_ETHPORTS as u16 {
            // SAFETY: any port id may be asked about.
            if unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0 {
                out.push(PortId(id));
            }
            id += 1;
        }
        out
    }

    pub fn has_hugepages(&self) -> bool {
        // SAFETY: plain query after init.
        unsafe { sys::rte_eal_has_hugepages() != 0 }
    }

    /// Runs `f` on worker lcore `lcore`. The result comes back from `join`.
    pub fn launch<T: Send + 'static>(
        &self,
        lcore: u32,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<LcoreJob<T>, DpdkError> {
        struct Job<T> {
            f: Option<Box<dyn FnOnce() -> T + Send>>,
            out: Option<T>,
        }
        extern "C" fn trampoline<T>(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the Box<Job<T>> leaked in `launch`, reached by
            // this lcore only until `join` waits for it.
            let job = unsafe { &mut *(arg as *mut Job<T>) };
            if let Some(f) = job.f.take() {
                job.out = Some(f());
            }
            0
        }
        let job = Box::into_raw(Box::new(Job::<T> {
            f: Some(Box::new(f)),
            out: None,
        }));
        // SAFETY: the trampoline matches lcore_function_t; the job pointer
        // stays valid until LcoreJob::join reclaims it after waiting.
        let rc =
            unsafe { sys::rte_eal_remote_launch(Some(trampoline::<T>), job as *mut c_void, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so no lcore holds the pointer.
            drop(unsafe { Box::from_raw(job) });
            return Err(DpdkError(format!(
                "cannot launch on lcore {lcore}: {}",
                strerror(rc)
            )));
        }
        let take = move || -> Option<T> {
            // SAFETY: called once, after rte_eal_wait_lcore returned, so the
            // lcore no longer touches the job.
            let mut b = unsafe { Box::from_raw(job) };
            b.out.take()
        };
        Ok(LcoreJob {
            lcore,
            take: Some(Box::new(take)),
        })
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: every port, mempool and lcore job is gone before the Eal
        // (they borrow it or are joined first); cleanup runs once.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// A function running on a worker lcore.
pub struct LcoreJob<T> {
    lcore: u32,
    take: Option<Box<dyn FnOnce() -> Option<T>>>,
}

impl<T> LcoreJob<T> {
    /// Waits for the lcore to return and hands back what it returned.
    pub fn join(mut self) -> Option<T> {
        // SAFETY: waits on an lcore we launched.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        self.take.take().and_then(|t| t())
    }
}

impl<T> Drop for LcoreJob<T> {
    fn drop(&mut self) {
        if let Some(t) = self.take.take() {
            // SAFETY: as in join: wait first, then reclaim the job.
            unsafe { sys::rte_eal_wait_lcore(self.lcore) };
            drop(t());
        }
    }
}

/// A pool of packet buffers.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
    size: u32,
}

// SAFETY: rte_mempool is built for concurrent use from many lcores.
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

/// Bytes of packet data one default mbuf holds.
pub const MBUF_DATA_ROOM: u16 = (sys::RTE_MBUF_DEFAULT_BUF_SIZE - sys::RTE_PKTMBUF_HEADROOM) as u16;

impl Mempool {
    /// `n` mbufs of the default size on `socket`, with a per-lcore cache.
    pub fn new(_eal: &Eal, name: &str, n: u32, socket: i32) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError("mempool name has a NUL".into()))?;
        // SAFETY: valid name; sizes are plain integers; returns NULL on error.
        let p = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                256,
                0,
                sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        match NonNull::new(p) {
            Some(ptr) => Ok(Mempool { ptr, size: n }),
            None => {
                // SAFETY: rte_errno was set by the failed create.
                let errno = unsafe { sys::rte_errno() };
                Err(DpdkError(format!(
                    "cannot create a pool of {n} mbufs ({} MB): {}; give the EAL more memory (-m) \
                     or hugepages",
                    (u64::from(n) * u64::from(sys::RTE_MBUF_DEFAULT_BUF_SIZE + 128)) >> 20,
                    strerror(errno)
                )))
            }
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn in_use(&self) -> u32 {
        // SAFETY: a read-only walk of the pool's counters.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports using the pool are stopped and closed first (Port
        // borrows nothing, so callers drop ports before the pool).
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}

/// One packet buffer, owned. Freed exactly once.
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an mbuf may move between lcores; only its owner touches it.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// The packet bytes (first segment; scattered RX is off). Read from the
    /// mbuf's fields here rather than through the shim: this runs for every
    /// packet and a call into C cannot be inlined.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the mbuf is live and ours; data_len bytes start data_off
        // bytes into its buffer, and they live as long as the mbuf.
        unsafe {
            let m = &*self.0.as_ptr();
            let p = (m.buf_addr as *const u8).add(usize::from(m.data_off));
            debug_assert_eq!(p, sys::rte_pktmbuf_mtod(self.0.as_ptr()), "rte_mbuf layout");
            debug_assert_eq!(m.data_len, sys::rte_pktmbuf_data_len(self.0.as_ptr()));
            std::slice::from_raw_parts(p, usize::from(m.data_len))
        }
    }

    /// What the NIC found of the L4 and the IPv4 header checksums
    /// (Unknown where the port does not check them). Reads the flags field
    /// in Rust: this runs for every packet.
    #[inline]
    pub fn checksums(&self, flags: &ChecksumFlags) -> (crate::io::NicCheck, crate::io::NicCheck) {
        // SAFETY: reads one field of a live mbuf we own.
        let ol = unsafe { (*self.0.as_ptr()).ol_flags };
        let judge = |mask: u64, bad: u64| match ol & mask {
            0 => crate::io::NicCheck::Unknown,
            x if x == bad => crate::io::NicCheck::Bad,
            // GOOD, or NONE (both bits: the data's checksum is wrong but
            // its integrity was verified, e.g. virtio).
            _ => crate::io::NicCheck::Good,
        };
        (
            judge(flags.l4_mask, flags.l4_bad),
            judge(flags.ip_mask, flags.ip_bad),
        )
    }

    /// The NIC's RSS hash, when it computed one.
    pub fn rss_hash(&self) -> Option<u32> {
        // SAFETY: reads two fields of a live mbuf.
        unsafe {
            let m = self.0.as_ptr();
            (sys::tg_pktmbuf_has_rss_hash(m) != 0).then(|| sys::tg_pktmbuf_rss_hash(m))
        }
    }

    fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and nothing else frees it.
        unsafe { sys::rte_pktmbuf_free(self.0.as_ptr()) };
    }
}

/// Frees every mbuf in `pkts` with one call back to the pool.
pub fn free_bulk(pkts: &mut [Option<Mbuf>]) {
    let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); BURST_SIZE];
    let mut n = 0;
    for m in pkts.iter_mut() {
        if let Some(m) = m.take() {
            if n == BURST_SIZE {
                // SAFETY: raw[..n] are mbufs we own, handed back once.
                unsafe { sys::rte_pktmbuf_free_bulk(raw.as_mut_ptr(), n as u32) };
                n = 0;
            }
            raw[n] = m.into_raw();
            n += 1;
        }
    }
    if n > 0 {
        // SAFETY: as above.
        unsafe { sys::rte_pktmbuf_free_bulk(raw.as_mut_ptr(), n as u32) };
    }
}

/// Receives up to `out.len()` (at most `BURST_SIZE`) packets; returns how
/// many it put at the front of `out`.
pub fn rx_burst(port: PortId, queue: QueueId, out: &mut [Option<Mbuf>]) -> usize {
    let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); BURST_SIZE];
    let want = out.len().min(BURST_SIZE) as u16;
    // SAFETY: raw has room for `want` pointers; the queue is set up and
    // polled by this lcore only.
    let n = unsafe { sys::rte_eth_rx_burst(port.0, queue.0, raw.as_mut_ptr(), want) };
    let n = usize::from(n);
    for (slot, p) in out.iter_mut().zip(&raw[..n]) {
        *slot = NonNull::new(*p).map(Mbuf);
    }
    n
}

/// Sends `pkts`, retrying up to `retries` times while the queue takes some;
/// what it still refuses is freed. Returns (sent, refused, refused bytes).
pub fn tx_burst(
    port: PortId,
    queue: QueueId,
    pkts: &mut [Option<Mbuf>],
    retries: u32,
) -> (usize, usize, u64) {
    let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); BURST_SIZE];
    let mut n = 0;
    for m in pkts.iter_mut().take(BURST_SIZE) {
        if let Some(m) = m.take() {
            raw[n] = m.into_raw();
            n += 1;
        }
    }
    let mut sent = 0usize;
    let mut tries = 0;
    while sent < n {
        // SAFETY: raw[sent..n] are mbufs we own; the queue is used by this
        // lcore only; the NIC takes ownership of what it accepts.
        let k = unsafe {
            sys::rte_eth_tx_burst(
                port.0,
                queue.0,
                raw[sent..n].as_mut_ptr(),
                (n - sent) as u16,
            )
        };
        sent += usize::from(k);
        if k == 0 {
            tries += 1;
            if tries > retries {
                break;
            }
        }
    }
    let mut refused_bytes = 0u64;
    for p in &raw[sent..n] {
        // SAFETY: still ours: the NIC did not take it. Wrapping it frees it.
        if let Some(m) = NonNull::new(*p).map(Mbuf) {
            refused_bytes += m.data().len() as u64;
        }
    }
    (sent, n - sent, refused_bytes)
}

/// What a port offers, from rte_eth_dev_info_get.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub name: String,
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
    pub hash_key_size: u8,
    pub reta_size: u16,
    pub rx_offload_capa: u64,
    pub socket: i32,
    pub mtu: u16,
}

/// How a port came up, reported at start.
#[derive(Debug, Clone)]
pub struct PortReport {
    pub info: PortInfo,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// Hash types in use (RTE_ETH_RSS_* bits), 0 without RSS.
    pub rss_hf: u64,
    /// The symmetric key reads back from the port.
    pub key_accepted: bool,
    /// The port checks TCP checksums on receive and says so per packet.
    pub rx_checksum: bool,
    pub link_up: bool,
    pub link_speed_mbps: u32,
}

/// NIC counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A configured port.
pub struct Port {
    pub id: PortId,
    started: bool,
}

const RX_DESC: u16 = 1024;
const TX_DESC: u16 = 1024;

/// Descriptors a port holds per queue: what a mempool must cover.
pub fn mbufs_per_queue() -> u32 {
    u32::from(RX_DESC) + u32::from(TX_DESC)
}

pub fn port_info(id: PortId) -> Result<PortInfo, DpdkError> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-parameter.
    check("rte_eth_dev_info_get", unsafe {
        sys::rte_eth_dev_info_get(id.0, &mut info)
    })?;
    let mut name = [0 as c_char; 64];
    // SAFETY: name has room for RTE_ETH_NAME_MAX_LEN (64) bytes.
    let _ = unsafe { sys::rte_eth_dev_get_name_by_port(id.0, name.as_mut_ptr()) };
    // SAFETY: the name buffer is NUL-terminated by the call (zeroed before).
    let name = unsafe { CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: driver_name points at the driver's static name.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    let mut mtu = 0u16;
    // SAFETY: mtu is a valid out-parameter.
    let _ = unsafe { sys::rte_eth_dev_get_mtu(id.0, &mut mtu) };
    // SAFETY: plain query.
    let socket = unsafe { sys::rte_eth_dev_socket_id(id.0) };
    Ok(PortInfo {
        name,
        driver,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        rss_offloads: info.flow_type_rss_offloads,
        hash_key_size: info.hash_key_size,
        reta_size: info.reta_size,
        rx_offload_capa: info.rx_offload_capa,
        socket,
        mtu,
    })
}

/// The mbuf flag bits that carry the RX L4 and IPv4 checksum status,
/// read once.
#[derive(Debug, Clone, Copy)]
pub struct ChecksumFlags {
    l4_mask: u64,
    l4_bad: u64,
    ip_mask: u64,
    ip_bad: u64,
}

impl ChecksumFlags {
    pub fn get() -> Self {
        static FLAGS: std::sync::OnceLock<ChecksumFlags> = std::sync::OnceLock::new();
        *FLAGS.get_or_init(|| {
            // SAFETY: each returns a constant.
            unsafe {
                debug_assert_eq!(
                    sys::tg_rx_l4_cksum_mask(),
                    sys::tg_rx_l4_cksum_good() | sys::tg_rx_l4_cksum_bad()
                );
                ChecksumFlags {
                    l4_mask: sys::tg_rx_l4_cksum_mask(),
                    l4_bad: sys::tg_rx_l4_cksum_bad(),
                    ip_mask: sys::tg_rx_ip_cksum_mask(),
                    ip_bad: sys::tg_rx_ip_cksum_bad(),
                }
            }
        })
    }
}

/// The RSS hash types Tollgate asks for: IPv4/IPv6 with TCP and UDP ports.
pub fn wanted_rss_hf() -> u64 {
    // SAFETY: returns a constant.
    unsafe { sys::tg_rss_hf_ip_tcp_udp() }
}

impl Port {
    /// Configures `queues` RX and TX queues. With `rss`, RSS spreads with the
    /// symmetric key over the hash types the PMD supports.
    pub fn configure(
        id: PortId,
        queues: u16,
        rss: bool,
        pool: &Mempool,
    ) -> Result<(Port, PortReport), DpdkError> {
        let info = port_info(id)?;
        let mut conf = sys::rte_eth_conf::default();
        let mut key = SYMMETRIC_KEY;
        let rss_hf = if rss {
            wanted_rss_hf() & info.rss_offloads
        } else {
            0
        };
        if rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // The NIC checks TCP and IPv4 header checksums where it can: the
        // worker then needs no software checksum for packets it vouches for.
        // SAFETY: returns a constant.
        let tcp_cksum = unsafe { sys::tg_rx_offload_tcp_cksum() };
        let rx_checksum = info.rx_offload_capa & tcp_cksum != 0;
        if rx_checksum {
            conf.rxmode.offloads |= tcp_cksum;
        }
        // SAFETY: returns a constant.
        let ip_cksum = unsafe { sys::tg_rx_offload_ipv4_cksum() };
        if info.rx_offload_capa & ip_cksum != 0 {
            conf.rxmode.offloads |= ip_cksum;
        }
        let what = |s: &str| format!("port {} ({}): {s}", id.0, info.name);
        // SAFETY: conf is fully initialised (zeroed, then set); the key it
        // points at outlives the call, which copies it.
        check(&what("configure"), unsafe {
            sys::rte_eth_dev_configure(id.0, queues, queues, &conf)
        })?;
        let socket = if info.socket < 0 {
            0
        } else {
            info.socket as u32
        };
        for q in 0..queues {
            // SAFETY: NULL confs take the PMD defaults; the pool outlives the
            // port (callers drop ports first).
            check(&what("rx queue setup"), unsafe {
                sys::rte_eth_rx_queue_setup(
                    id.0,
                    q,
                    RX_DESC,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
            // SAFETY: as above.
            check(&what("tx queue setup"), unsafe {
                sys::rte_eth_tx_queue_setup(id.0, q, TX_DESC, socket, std::ptr::null())
            })?;
        }
        // SAFETY: configured above.
        check(&what("start"), unsafe { sys::rte_eth_dev_start(id.0) })?;
        if rss_hf != 0 && info.reta_size > 0 {
            // Entry i -> queue i mod n on every port, as SoftRss spreads, so
            // a flow lands on the same worker whichever port it enters by.
            let groups =
                usize::from(info.reta_size).div_ceil(sys::RTE_ETH_RETA_GROUP_SIZE as usize);
            let mut reta = vec![sys::rte_eth_rss_reta_entry64::default(); groups];
            for (g, entry) in reta.iter_mut().enumerate() {
                entry.mask = u64::MAX;
                for (i, q) in entry.reta.iter_mut().enumerate() {
                    *q = ((g * 64 + i) % usize::from(queues)) as u16;
                }
            }
            // SAFETY: reta holds reta_size entries in groups of 64.
            check(&what("RSS redirection table"), unsafe {
                sys::rte_eth_dev_rss_reta_update(id.0, reta.as_mut_ptr(), info.reta_size)
            })?;
        }
        // Promiscuous: a bump in the wire or a mirror port sees frames for
        // other MACs. Some PMDs (pcap) do not support it; that is fine.
        // SAFETY: started port.
        let _ = unsafe { sys::rte_eth_promiscuous_enable(id.0) };
        let key_accepted = rss_hf != 0 && {
            let mut back = [0u8; 64];
            let mut rc = sys::rte_eth_rss_conf {
                rss_key: back.as_mut_ptr(),
                rss_key_len: back.len() as u8,
                ..Default::default()
            };
            // SAFETY: rc points at a 64-byte buffer, large enough for any key.
            let ok = unsafe { sys::rte_eth_dev_rss_hash_conf_get(id.0, &mut rc) } == 0;
            ok && back[..SYMMETRIC_KEY.len()] == SYMMETRIC_KEY
        };
        let mut link = sys::rte_eth_link::default();
        // SAFETY: link is a valid out-parameter.
        let _ = unsafe { sys::rte_eth_link_get_nowait(id.0, &mut link) };
        let report = PortReport {
            info,
            rx_queues: queues,
            tx_queues: queues,
            rss_hf,
            key_accepted,
            rx_checksum,
            link_up: link.link_status() != 0,
            link_speed_mbps: link.link_speed,
        };
        Ok((Port { id, started: true }, report))
    }

    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid out-parameter.
        let _ = unsafe { sys::rte_eth_stats_get(self.id.0, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Every extended counter the PMD has, by name.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        // SAFETY: a NULL buffer asks for the count.
        let n = unsafe { sys::rte_eth_xstats_get(self.id.0, std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        let n = n as usize;
        let mut vals = vec![sys::rte_eth_xstat::default(); n];
        let mut names = vec![sys::rte_eth_xstat_name::default(); n];
        // SAFETY: both buffers hold n entries.
        let got = unsafe { sys::rte_eth_xstats_get(self.id.0, vals.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got_names =
            unsafe { sys::rte_eth_xstats_get_names(self.id.0, names.as_mut_ptr(), n as u32) };
        if got < 0 || got_names < 0 {
            return Vec::new();
        }
        vals.iter()
            .take(got as usize)
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates names within the fixed array.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((s.to_string_lossy().into_owned(), v.value))
            })
            .collect()
    }

    pub fn stop(&mut self) {
        if self.started {
            // SAFETY: the port was started; no lcore polls it any more.
            unsafe {
                sys::rte_eth_dev_stop(self.id.0);
                sys::rte_eth_dev_close(self.id.0);
            }
            self.started = false;
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether SIGINT or SIGTERM arrived (or a stop was asked for).
pub fn stop_requested() -> bool {
    // SAFETY: reads a sig_atomic_t flag.
    unsafe { sys::tg_stop_requested() != 0 }
}

pub fn request_stop() {
    // SAFETY: sets a sig_atomic_t flag.
    unsafe { sys::tg_request_stop() }
}

/// The TSC and its rate, for the once-per-burst clock.
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter.
    unsafe { sys::rte_rdtsc() }
}

pub fn tsc_hz() -> u64 {
    // SAFETY: valid after EAL init.
    unsafe { sys::rte_get_tsc_hz() }
}

pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's lcore id.
    unsafe { sys::rte_lcore_id() }
}

/// Mbufs as they cross a ring between lcores.
pub struct MbufBurst {
    pub port: PortId,
    pub now_ns: u64,
    pub len: usize,
    pub mbufs: [Option<Mbuf>; BURST_SIZE],
}

impl MbufBurst {
    pub fn new(port: PortId) -> Self {
        MbufBurst {
            port,
            now_ns: 0,
            len: 0,
            mbufs: [const { None }; BURST_SIZE],
        }
    }
}
