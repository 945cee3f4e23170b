//! capget(2), capset(2) and the capability prctls (bounding set, ambient set). nix wraps none of
//! them; the caps crate's versions allocate and go through its own enum, which cannot name
//! capabilities newer than the crate, and capset here must not allocate (it runs after the
//! seccomp filter is in).

use nix::errno::Errno;

/// The three capability sets of a thread, as 64-bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const HEADER: Header = Header {
    version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
    pid: 0,
};

/// capget(2) of the calling thread.
pub fn get() -> nix::Result<Sets> {
    let mut data = [Data::default(); 2];
    // SAFETY: capget reads a v3 header and writes two data words, all living across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &HEADER as *const Header,
            data.as_mut_ptr(),
        )
    };
    Errno::result(ret)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(Sets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// capset(2) of the calling thread, the three sets at once. Allocates nothing.
pub fn set(sets: Sets) -> nix::Result<()> {
    let word = |set: u64, i: usize| (set >> (32 * i)) as u32;
    let data: [Data; 2] = std::array::from_fn(|i| Data {
        effective: word(sets.effective, i),
        permitted: word(sets.permitted, i),
        inheritable: word(sets.inheritable, i),
    });
    // SAFETY: capset reads a v3 header and two data words that live across the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &HEADER as *const Header, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// prctl(PR_CAPBSET_DROP): remove capability `index` from the bounding set.
pub fn drop_bounding(index: u8) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE): add capability `index` to the ambient set.
pub fn raise_ambient(index: u8) -> nix::Result<()> {
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
    Errno::result(ret).map(drop)
}
