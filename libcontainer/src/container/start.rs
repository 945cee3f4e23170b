//! `start`: release init from the exec FIFO so it execs the user program.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::state::{ContainerDir, State, Status};
use crate::utils::process_alive;

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let mut state = dir.load()?.ok_or_else(|| Error::NotFound(id.into()))?;
    start_locked(&dir, &mut state)
}

pub(crate) fn start_locked(dir: &ContainerDir, state: &mut State) -> Result<()> {
    if state.status != Status::Created {
        return Err(Error::WrongState {
            op: "start",
            id: state.id.clone(),
            status: state.status.to_string(),
        });
    }
    let fifo_path = dir.fifo_path();
    // Non-blocking: a dead init must give an error, not a hang.
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo_path.display()))?;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "wait for init on the exec fifo"),
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(&fifo, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "read the exec fifo"),
        }
        if !process_alive(state.pid, state.init_start_time) {
            return Err(Error::Init(format!(
                "container init {} exited before start",
                state.pid
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    state.status = Status::Running;
    dir.save(state)
}
