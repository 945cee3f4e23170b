//! sched_setattr(2): the scheduling policy and its parameters (nix wraps only the affinity).

use nix::errno::Errno;

/// `struct sched_attr` as of Linux 4.13 (SCHED_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Set this thread's scheduling attributes (`attr.size` says which version of the struct).
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    // SAFETY: sched_setattr reads `attr.size` bytes of a live sched_attr; `size` is at most
    // size_of::<SchedAttr>() as every caller builds it.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}
