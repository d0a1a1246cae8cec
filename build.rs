//! Finds the system libraries the data plane is built on with pkg-config
//! and records their versions for `tollgate --version`. When one is missing
//! the build says which Debian package to install. Nothing links against
//! them yet: the DPDK port and rule-engine stages add that when they land.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let libs = [
        ("libdpdk", "TOLLGATE_DPDK_VERSION", "libdpdk-dev"),
        (
            "libhs",
            "TOLLGATE_HYPERSCAN_VERSION",
            "libhyperscan-dev (or libvectorscan-dev)",
        ),
    ];
    for (lib, var, package) in libs {
        let version = Command::new("pkg-config")
            .args(["--modversion", lib])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match version {
            Some(v) => println!("cargo:rustc-env={var}={v}"),
            None => {
                println!("cargo:rustc-env={var}=not found");
                println!(
                    "cargo:warning=pkg-config cannot find {lib}: install {package} \
                     (scripts/setup.sh does)"
                );
            }
        }
    }
}
