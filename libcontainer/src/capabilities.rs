//! `process.capabilities`: the five sets, applied with one capset so no ordering trap can bite.

use caps::Capability;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Context, Error, Result};

/// Bit masks of the five sets, limited to what the running kernel knows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn mask(set: &Option<Capabilities>, last: u8) -> u64 {
    set.iter().flatten().fold(0u64, |acc, cap| {
        // oci-spec names them without the prefix.
        match format!("CAP_{cap}").parse::<Capability>() {
            Ok(c) if c.index() <= last => acc | (1u64 << c.index()),
            _ => {
                tracing::debug!("capability CAP_{cap} is not known to this kernel: skipped");
                acc
            }
        }
    })
}

impl CapSets {
    pub fn from_spec(caps: &LinuxCapabilities) -> CapSets {
        let last = last_cap();
        CapSets {
            bounding: mask(caps.bounding(), last),
            effective: mask(caps.effective(), last),
            inheritable: mask(caps.inheritable(), last),
            permitted: mask(caps.permitted(), last),
            ambient: mask(caps.ambient(), last),
        }
    }

    /// Drop from the bounding set what it does not list; needs CAP_SETPCAP, so do it first.
    pub fn apply_bounding(&self) -> Result<()> {
        for index in 0..=last_cap() {
            if self.bounding & (1u64 << index) == 0 {
                // SAFETY: prctl with integer arguments only.
                let ret = unsafe {
                    libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0)
                };
                nix::errno::Errno::result(ret)
                    .ctx(|| format!("drop capability {index} from the bounding set"))?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted and inheritable at once, then the ambient set.
    pub fn apply(&self) -> Result<()> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let word = |set: u64, i: usize| (set >> (32 * i)) as u32;
        let data: [Data; 2] = std::array::from_fn(|i| Data {
            effective: word(self.effective, i),
            permitted: word(self.permitted, i),
            inheritable: word(self.inheritable, i),
        });
        // SAFETY: capset reads a v3 header and two data words that live across the call.
        let ret =
            unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
        nix::errno::Errno::result(ret)
            .ctx(|| "set capabilities (effective, permitted, inheritable)")?;
        caps::clear(None, caps::CapSet::Ambient)
            .map_err(|e| Error::Other(format!("clear ambient capabilities: {e}")))?;
        for index in 0..64u8 {
            if self.ambient & (1u64 << index) != 0 {
                // SAFETY: prctl with integer arguments only.
                let ret = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        libc::c_ulong::from(index),
                        0,
                        0,
                    )
                };
                // The kernel raises only what is permitted and inheritable; runc's own spec
                // lists ambient caps without inheritable ones, and runc silently goes on.
                match nix::errno::Errno::result(ret) {
                    Err(nix::errno::Errno::EPERM) => tracing::debug!(
                        "ambient capability {index} not raised: it is not both permitted and inheritable"
                    ),
                    other => other.map(drop).ctx(|| format!("raise ambient capability {index}"))?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_from_names() {
        let caps: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"]
        }))
        .unwrap();
        let sets = CapSets::from_spec(&caps);
        assert_eq!(sets.bounding, (1 << 5) | 1);
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.inheritable, 0);
    }
}
