//! One file per subcommand: flags in, a libcontainer call, output and exit code out.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::io::{self, StdoutLock, Write};

/// Standard output for what a command prints. A reader that goes away early (`brig state ID |
/// grep -q running`) ends the output, not brig: the rest is dropped and the command succeeds,
/// as a program that SIGPIPE kills by default would stop. brig ignores SIGPIPE (a hook that
/// does not read its stdin must not kill `create`), so print! would panic on EPIPE, and with
/// panic=abort that is SIGABRT.
pub struct Stdout {
    inner: StdoutLock<'static>,
    closed: bool,
}

pub fn stdout() -> Stdout {
    Stdout {
        inner: io::stdout().lock(),
        closed: false,
    }
}

impl Stdout {
    fn gone<T>(&mut self, result: io::Result<T>, written: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(written)
            }
            other => other,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.gone(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.gone(result, ())
    }
}
