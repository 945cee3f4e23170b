//! The runtime's binary out of the container's reach (CVE-2019-5736).
//!
//! brig enters containers without a re-exec: init and the processes of `exec` are clones of
//! the brig that the engine ran, so `/proc/<pid>/exe` of each is that binary, and a program
//! run as `#!/proc/self/exe` from inside the container runs it too. Whoever opens that link
//! could write the host's brig. So `create`, `run` and `exec` first re-execute themselves from
//! a sealed memfd copy of the binary: the link then names an anonymous in-memory file that
//! nobody can write or grow (F_SEAL_WRITE and friends, F_SEAL_SEAL so the seals stay), and the
//! host's file is never reachable from a container process.
//!
//! The copy is made per invocation (runc 1.1's `cloned_binary.c` does the same for every
//! `runc init`): a copy made once and kept would have to be proven unwritable on every reuse.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::error::{Context, Error, Result};

/// Set in the environment of the re-executed brig: were its binary still not a sealed copy,
/// it must fail rather than loop.
const MARKER: &str = "_BRIG_SEALED_EXE";

fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Whether this process runs from a sealed copy of brig.
pub fn running_sealed() -> Result<bool> {
    let exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    Ok(is_sealed(&exe))
}

fn is_sealed(file: &impl AsFd) -> bool {
    match fcntl(file, FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(seals()),
        // Not a memfd (EINVAL): the binary on disk.
        Err(_) => false,
    }
}

/// Copy this process's binary into a memfd and seal it.
pub fn sealed_copy() -> Result<OwnedFd> {
    let mut exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable under vm.memfd_noexec=1; older kernels
    // reject the flag.
    let memfd = match memfd_create(c"brig", flags | MFdFlags::from_bits_retain(libc::MFD_EXEC)) {
        Err(Errno::EINVAL) => memfd_create(c"brig", flags),
        other => other,
    }
    .ctx(|| "create a memfd for the sealed copy of brig")?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).ctx(|| "copy brig into its memfd")?;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals())).ctx(|| "seal the copy of brig")?;
    Ok(copy.into())
}

/// Unless already running from a sealed copy, re-execute this very command from one. Returns
/// only when there is nothing to do; it never starts anything itself.
pub fn ensure_sealed() -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    if std::env::var_os(MARKER).is_some() {
        return Err(Error::Other(
            "brig was re-executed from its sealed copy but does not run from it".into(),
        ));
    }
    let copy = sealed_copy()?;
    let argv = std::env::args_os()
        .map(|a| c_string(a.into_vec()))
        .collect::<Result<Vec<_>>>()?;
    let mut envp = std::env::vars_os()
        .filter(|(k, _)| k != MARKER)
        .map(|(k, v)| {
            let mut pair = k.into_vec();
            pair.push(b'=');
            pair.extend(v.into_vec());
            c_string(pair)
        })
        .collect::<Result<Vec<_>>>()?;
    envp.push(c_string(OsString::from(format!("{MARKER}=1")).into_vec())?);
    let err = match nix::unistd::execveat(&copy, c"", &argv, &envp, AtFlags::AT_EMPTY_PATH) {
        Err(err) => err,
        Ok(never) => match never {},
    };
    Err(err).ctx(|| "re-execute brig from its sealed copy")
}

fn c_string(bytes: Vec<u8>) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Other("argument or environment has a NUL byte".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_copy_is_sealed_and_cannot_be_written() {
        let copy = sealed_copy().unwrap();
        assert!(is_sealed(&copy));
        let mut file = File::from(copy);
        assert!(
            file.write_all(b"x").is_err(),
            "a sealed copy refused a write"
        );
        assert!(file.set_len(0).is_err(), "a sealed copy refused to shrink");
    }

    #[test]
    fn the_test_binary_on_disk_is_not_sealed() {
        assert!(!running_sealed().unwrap());
    }
}
