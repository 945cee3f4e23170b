//! ioprio_set(2): the I/O scheduling class and priority.

use nix::errno::Errno;

const IOPRIO_WHO_PROCESS: i32 = 1;

/// Set the I/O priority `value` (class << 13 | level) of this process.
pub fn ioprio_set_self(value: i32) -> nix::Result<()> {
    // SAFETY: ioprio_set with integer arguments only (IOPRIO_WHO_PROCESS, this process).
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}
