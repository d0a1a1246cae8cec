//! The deployment scripts' dry runs against a fake sysfs tree, so what they
//! would do on an edge box is checked on any machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct FakeSys(PathBuf);

impl FakeSys {
    /// A PF `ens1f0` with 8 possible VFs (two already listed) and two NUMA
    /// nodes with 2 MB hugepages.
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("tollgate-sysfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dev = root.join("class/net/ens1f0/device");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("sriov_totalvfs"), "8\n").unwrap();
        std::fs::write(dev.join("sriov_numvfs"), "0\n").unwrap();
        for (i, pci) in ["0000:3b:02.0", "0000:3b:02.1"].iter().enumerate() {
            let d = root.join("bus/pci/devices").join(pci);
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::symlink(&d, dev.join(format!("virtfn{i}"))).unwrap();
        }
        for n in 0..2 {
            let h = root.join(format!(
                "devices/system/node/node{n}/hugepages/hugepages-2048kB"
            ));
            std::fs::create_dir_all(&h).unwrap();
            std::fs::write(h.join("nr_hugepages"), "0\n").unwrap();
        }
        FakeSys(root)
    }

    fn run(&self, script: &str, args: &[&str]) -> Output {
        Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(script),
        )
        .args(args)
        .env("SYSFS", &self.0)
        .output()
        .unwrap()
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bind_vfs_dry_run_prints_every_step_and_the_eal_arguments() {
    let fs = FakeSys::new("vfs");
    let out = fs.run("bind-vfs.sh", &["ens1f0", "2", "--bump", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let dev = fs.0.join("class/net/ens1f0/device");
    assert_eq!(lines[0], format!("echo 0 > {}/sriov_numvfs", dev.display()));
    assert_eq!(lines[1], format!("echo 2 > {}/sriov_numvfs", dev.display()));
    assert_eq!(lines[2], "ip link set ens1f0 vf 0 trust on spoofchk off");
    assert_eq!(lines[3], "ip link set ens1f0 vf 1 trust on spoofchk off");
    assert_eq!(lines[4], "modprobe vfio-pci");
    assert_eq!(lines[5], "dpdk-devbind.py --bind=vfio-pci 0000:3b:02.0");
    assert_eq!(lines[6], "dpdk-devbind.py --bind=vfio-pci 0000:3b:02.1");
    assert_eq!(
        lines[7],
        "EAL arguments for tollgate run: -a 0000:3b:02.0 -a 0000:3b:02.1"
    );
    // Nothing was written in a dry run.
    assert_eq!(
        std::fs::read_to_string(dev.join("sriov_numvfs")).unwrap(),
        "0\n"
    );
}

#[test]
fn bind_vfs_refuses_what_cannot_work() {
    let fs = FakeSys::new("vfs-bad");
    let out = fs.run("bind-vfs.sh", &["ens1f0", "9", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("supports 1 to 8 VFs"));
    let out = fs.run("bind-vfs.sh", &["eth7", "2", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no network interface 'eth7'"));
    let out = fs.run("bind-vfs.sh", &["ens1f0", "two"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hugepages_dry_run_reserves_on_every_node() {
    let fs = FakeSys::new("huge");
    let out = fs.run("hugepages.sh", &["512", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for n in 0..2 {
        let f = fs.0.join(format!(
            "devices/system/node/node{n}/hugepages/hugepages-2048kB/nr_hugepages"
        ));
        assert!(s.contains(&format!("echo 512 > {}", f.display())), "{s}");
    }
    let out = fs.run("hugepages.sh", &["256", "--node", "1", "--dry-run"]);
    assert!(text(&out.stdout).contains("node1") && !text(&out.stdout).contains("node0"));
    assert_eq!(fs.run("hugepages.sh", &["lots"]).status.code(), Some(2));
}
