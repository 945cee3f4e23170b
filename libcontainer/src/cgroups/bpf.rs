//! cgroup v2 has no devices controller: device access is decided by an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup. The program is built here
//! from the same ordered rule list the v1 devices controller gets (the last matching rule
//! decides, no match denies), loaded with bpf(2) and attached; a previous program of ours is
//! detached after the new one is in place, so `update` never leaves a gap.
//!
//! Written by hand (no aya/libbpf): the program is a straight line of compares, and
//! building it needs no C toolchain and no ELF loader.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::devices::Rule;
use crate::error::{Context, Error, Result};
use crate::sys::bpf as sys;

pub use crate::sys::bpf::Insn;

// Opcodes (class | op | source) this program uses.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 is the context on entry; r2 type, r3 access, r4 major, r5 minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type is
// (access << 16) | type.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;
pub const ACC_MKNOD: i32 = 1;
pub const ACC_READ: i32 = 2;
pub const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// The program for `rules` (in order; the last match decides, nothing matching denies).
pub fn device_program(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut prog = vec![
        insn(LDX_W, R2, R1, 0, 0),
        insn(AND_K, R2, 0, 0, 0xffff),
        insn(LDX_W, R3, R1, 0, 0),
        insn(RSH_K, R3, 0, 0, 16),
        insn(LDX_W, R4, R1, 4, 0),
        insn(LDX_W, R5, R1, 8, 0),
    ];
    let all = ACC_READ | ACC_WRITE | ACC_MKNOD;
    for rule in rules.iter().rev() {
        // Each block: compares that jump to the next block on a mismatch, then the verdict.
        let mut checks: Vec<(u8, u8, u8, i32)> = Vec::new();
        match rule.kind {
            'a' => {}
            'c' => checks.push((JNE_K, R2, 0, DEV_CHAR)),
            'b' => checks.push((JNE_K, R2, 0, DEV_BLOCK)),
            other => {
                return Err(Error::Other(format!(
                    "device rule of unknown type {other:?}"
                )))
            }
        }
        let access = access_bits(&rule.access);
        if rule.kind != 'a' && access != all {
            // Every requested bit must be in the rule: (access & rule) == access.
            checks.push((MOV_X, R1, R3, 0));
            checks.push((AND_K, R1, 0, access));
            checks.push((JNE_X, R1, R3, 0));
        }
        if rule.kind != 'a' {
            if let Some(major) = rule.major {
                checks.push((JNE_K, R4, 0, number(major)?));
            }
            if let Some(minor) = rule.minor {
                checks.push((JNE_K, R5, 0, number(minor)?));
            }
        }
        let len = checks.len() + 2;
        for (i, (code, dst, src, imm)) in checks.into_iter().enumerate() {
            let off = if code == JNE_K || code == JNE_X {
                (len - i - 1) as i16
            } else {
                0
            };
            prog.push(insn(code, dst, src, off, imm));
        }
        prog.push(insn(MOV_K, R0, 0, 0, i32::from(rule.allow)));
        prog.push(insn(EXIT, 0, 0, 0, 0));
        if rule.kind == 'a' {
            // Matches everything: the rules before it can never decide.
            return Ok(prog);
        }
    }
    prog.push(insn(MOV_K, R0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

fn number(n: i64) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Other(format!("device number {n} is out of range")))
}

// bpf(2) program and attach types.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let mut log = vec![0u8; 64 * 1024];
    match sys::prog_load(
        BPF_PROG_TYPE_CGROUP_DEVICE,
        prog,
        c"Apache",
        b"brig_devices",
        &mut log,
    ) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let verifier = String::from_utf8_lossy(&log);
            let verifier = verifier.trim_end_matches('\0').trim();
            Err(Error::Other(format!(
                "load the device eBPF program: {}{}",
                crate::error::errno_text(e),
                if verifier.is_empty() {
                    String::new()
                } else {
                    format!(" (verifier: {verifier})")
                }
            )))
        }
    }
}

/// Ids of the device programs attached to the cgroup now.
fn attached(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let count = sys::prog_query(cgroup.as_fd(), BPF_CGROUP_DEVICE, &mut ids)
        .ctx(|| "list the cgroup's device programs")?;
    ids.truncate(count);
    Ok(ids)
}

/// Load the program for `rules` and make it the only device program of the cgroup at `path`.
pub fn install_device_filter(path: &Path, rules: &[Rule]) -> Result<()> {
    let prog = device_program(rules)?;
    let cgroup = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open cgroup {}", path.display()))?;
    let old = attached(&cgroup)?;
    let fd = load(&prog)?;
    sys::prog_attach(
        cgroup.as_fd(),
        fd.as_fd(),
        BPF_CGROUP_DEVICE,
        BPF_F_ALLOW_MULTI,
    )
    .ctx(|| format!("attach the device eBPF program to {}", path.display()))?;
    for id in old {
        let Ok(old_fd) = sys::prog_get_fd_by_id(id) else {
            continue; // gone already
        };
        sys::prog_detach(cgroup.as_fd(), old_fd.as_fd(), BPF_CGROUP_DEVICE)
            .ctx(|| format!("detach the old device eBPF program from {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{defaults, Rule};

    /// Runs a device program the way the kernel would, for the opcodes it uses.
    fn run(prog: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                AND_K => r[dst] &= i.imm as i64 as u64,
                RSH_K => r[dst] >>= i.imm,
                MOV_K => r[dst] = i.imm as i64 as u64,
                MOV_X => r[dst] = r[src],
                JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JNE_K | JNE_X => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn default_rules_allow_the_standard_nodes_only() {
        let mut rules = vec![rule(false, 'a', None, None, "rwm")];
        rules.extend(defaults(&[]));
        let prog = device_program(&rules).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, DEV_CHAR, rw, 136, 7), 1, "a pts");
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 0, "a disk");
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0),
            1,
            "mknod of any node"
        );
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'b', Some(8), None, "r"),
            rule(false, 'b', Some(8), Some(1), "rwm"),
        ];
        let prog = device_program(&rules).unwrap();
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_WRITE, 8, 0),
            0,
            "write not allowed"
        );
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0),
            0,
            "every requested bit must be allowed"
        );
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 1), 0, "denied later");
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 8, 0), 0, "type matters");
        // An allow-all at the end opens everything.
        let open = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'a', None, None, "rwm"),
        ];
        let prog = device_program(&open).unwrap();
        assert_eq!(run(&prog, DEV_BLOCK, ACC_WRITE, 8, 0), 1);
        assert_eq!(prog.len(), 8, "rules before an 'a' rule are not compiled");
    }

    /// Where a scratch cgroup2 directory can go: below our own cgroup in the unified hierarchy.
    fn scratch_cgroup() -> std::path::PathBuf {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let (point, root) =
            crate::cgroups::detect::unified_mount(&mounts).expect("a cgroup2 mount");
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = crate::cgroups::detect::own_cgroup(&own, &[]).unwrap();
        crate::cgroups::paths::place(
            Path::new(&format!("brig-bpf-test-{}", std::process::id())),
            &own,
            &root,
            &point,
        )
    }

    /// The kernel loads the program and enforces it on a process in the cgroup.
    #[test]
    fn the_kernel_enforces_the_program() {
        let dir = scratch_cgroup();
        std::fs::create_dir(&dir).unwrap();
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
        ];
        let installed = install_device_filter(&dir, &rules);
        // Replacing it works too (update).
        let replaced = installed
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|()| install_device_filter(&dir, &rules).map_err(|e| e.to_string()));
        // A shell that moves itself into the cgroup, then tries both devices.
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "echo $$ > \"$1\" || exit 10; \
                 : < /dev/null || exit 11; \
                 (: < /dev/zero) 2>/dev/null && exit 12; exit 0",
                "sh",
            ])
            .arg(dir.join("cgroup.procs"))
            .status()
            .unwrap();
        let _ = std::fs::remove_dir(&dir);
        installed.unwrap();
        replaced.unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "10: could not join, 11: /dev/null denied, 12: /dev/zero allowed"
        );
    }
}
