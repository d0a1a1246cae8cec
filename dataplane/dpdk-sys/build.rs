//! Finds the system DPDK with pkg-config, compiles the C shim against it and
//! generates bindings with bindgen. Without libdpdk it stops with the package
//! to install.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new("pkg-config").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let Some(version) = pkg_config(&["--modversion", "libdpdk"]) else {
        panic!(
            "pkg-config cannot find libdpdk: install DPDK 22.11 (Debian: apt-get install \
             libdpdk-dev pkg-config; scripts/setup.sh does), or build Tollgate without it: \
             cargo build --no-default-features"
        );
    };
    if !version.starts_with("22.11") {
        println!("cargo:warning=dpdk-sys targets DPDK 22.11; pkg-config found {version}");
    }
    let cflags = pkg_config(&["--cflags", "libdpdk"]).unwrap_or_default();
    let libs = pkg_config(&["--libs", "libdpdk"]).unwrap_or_default();

    // The C shim: DPDK's static-inline fast path as real functions.
    let mut build = cc::Build::new();
    build.file("src/shim.c").opt_level(3).warnings(false);
    let mut clang_args = Vec::new();
    let mut words = cflags.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(f) = words.next() {
                build.flag("-include").flag(f);
                clang_args.push("-include".to_string());
                clang_args.push(f.to_string());
            }
        } else if let Some(dir) = w.strip_prefix("-I") {
            build.include(dir);
            clang_args.push(w.to_string());
        } else {
            build.flag(w);
            if w.starts_with("-D") || w.starts_with("-march") || w.starts_with("-m") {
                clang_args.push(w.to_string());
            }
        }
    }
    build.compile("tollgate_dpdk_shim");

    // Link DPDK's shared libraries; the poll-mode drivers (net_pcap, net_ring,
    // vendor PMDs) are plugins the EAL loads from its driver directory.
    for w in libs.split_whitespace() {
        if let Some(l) = w.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={l}");
        } else if let Some(d) = w.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={d}");
        } else if w.starts_with("-Wl,") {
            println!("cargo:rustc-link-arg={w}");
        }
    }

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&clang_args)
        .clang_arg("-Isrc")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore|has_hugepages|process_type)")
        .allowlist_function("rte_eth_(dev_count_avail|dev_configure|dev_info_get|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|stats_get|stats_reset|xstats_get|xstats_get_names|link_get_nowait|promiscuous_enable|dev_socket_id|dev_set_mtu|dev_get_mtu|find_next_owned_by|dev_rss_reta_update|dev_rss_hash_update|dev_rss_hash_conf_get|macaddr_get|dev_get_name_by_port|dev_is_valid_port)")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count")
        .allowlist_function("rte_socket_id|rte_lcore_(count|index|to_socket_id|is_enabled)|rte_get_next_lcore|rte_get_main_lcore|rte_strerror|rte_get_tsc_hz|rte_version")
        .allowlist_function("tg_.*")
        .allowlist_type("rte_eth_(conf|dev_info|stats|xstat|xstat_name|rss_conf|link|rss_reta_entry64|rxconf|txconf)")
        .allowlist_var("RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_ETH_XSTATS_NAME_SIZE|RTE_ETH_RETA_GROUP_SIZE|RTE_ETH_LINK_UP")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(&out).expect("write bindings");
}
