//! Processes: leaving a cloned child without the parent's atexit handlers or destructors, and
//! spawning a helper (a hook) tied to its parent with only the standard descriptors.

/// End this process at once with `code`. A cloned child shares its parent's buffers and
/// handlers until it execs: it must not run them.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Make the child that `cmd` spawns die with its parent (PR_SET_PDEATHSIG SIGKILL) and see only
/// descriptors 0-2: every other one is marked close-on-exec between fork and exec. Best effort
/// on the descriptors: a seccomp profile may refuse close_range (a hook inherits init's
/// filter), then each descriptor below RLIMIT_NOFILE (at most 65536) is marked by fcntl.
pub fn spawn_tied_to_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure makes only async-signal-safe calls (prctl, close_range, getrlimit,
    // fcntl) and allocates nothing, as code between fork and exec must.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if super::fd::close_range_cloexec(3).is_err() {
                let max =
                    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                        .map_or(1024, |(soft, _)| soft.min(65536) as i32);
                for fd in 3..max {
                    let _ = super::fd::set_cloexec(fd);
                }
            }
            Ok(())
        });
    }
}
