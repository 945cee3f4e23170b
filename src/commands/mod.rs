//! One file per subcommand: flags in, a libcontainer call, output and exit code out.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
#[cfg(feature = "image")]
pub mod images;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
#[cfg(feature = "image")]
pub mod pull;
pub mod restore;
pub mod resume;
#[cfg(feature = "image")]
pub mod rmi;
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

/// A table as `list` and `images` print it: a header row, then one line a row, each column
/// left-aligned to its widest cell and three spaces apart, no trailing blanks.
pub fn write_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let header = header.map(String::from);
    let mut widths = [0usize; N];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

/// The error line for `err`: the library's option names become this CLI's flags, and control
/// characters (a NUL in a config string) are escaped so the line stays one readable line.
pub fn error_message(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err
        .chain()
        .map(
            |cause| match cause.downcast_ref::<libcontainer::error::Error>() {
                Some(libcontainer::error::Error::Option { option, reason }) => {
                    format!("{}: {reason}", flag(option))
                }
                _ => cause.to_string(),
            },
        )
        .collect();
    escape_controls(&parts.join(": "))
}

/// The flag that sets the library option `option`.
fn flag(option: &str) -> String {
    match option {
        "sub_cgroups" => "--cgroup".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_flags_and_controls_are_escaped() {
        let err = anyhow::Error::new(libcontainer::error::Error::option(
            "console_socket",
            "is only for a process with a terminal",
        ));
        assert_eq!(
            error_message(&err),
            "--console-socket: is only for a process with a terminal"
        );
        let err = anyhow::Error::new(libcontainer::error::Error::option("sub_cgroups", "bad"));
        assert_eq!(error_message(&err), "--cgroup: bad");
        let err = anyhow::anyhow!("exec a\0b").context("start");
        assert_eq!(error_message(&err), "start: exec a\\u{0}b");
    }

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let mut out = Vec::new();
        let rows = [
            ["abc".to_string(), "1".to_string(), String::new()],
            ["d".to_string(), "12345".to_string(), "x".to_string()],
        ];
        write_table(&mut out, ["ID", "PID", "END"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID    PID     END\nabc   1\nd     12345   x\n"
        );
        let mut out = Vec::new();
        write_table(&mut out, ["NAME", "SIZE"], &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "NAME   SIZE\n");
    }
}
