//! Signals as users and engines write them: `9`, `KILL`, `SIGKILL`, `sigkill`.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parse a signal number or name, any case, with or without `SIG` (runc's rules); real-time
/// signals as `RTMIN+N`/`RTMAX-N` too. `0` is the null signal (only checks that the target
/// exists), which `kill` accepts as runc does.
pub fn parse(text: &str) -> Result<i32> {
    let bad = || Error::Other(format!("invalid signal {text:?}"));
    let max = libc::SIGRTMAX();
    if let Ok(n) = text.parse::<i32>() {
        return if (0..=max).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let offset: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + offset;
        return if n <= max { Ok(n) } else { Err(bad()) };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let offset: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?
        };
        let n = max - offset;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    // nix knows each signal by its one canonical name; these two are the aliases it lacks.
    let signal = match name {
        "IOT" => Signal::SIGABRT,
        "POLL" => Signal::SIGIO,
        _ => Signal::from_str(&format!("SIG{name}")).map_err(|_| bad())?,
    };
    Ok(signal as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("sigiot").unwrap(), libc::SIGABRT);
        assert_eq!(parse("POLL").unwrap(), libc::SIGIO);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        assert_eq!(parse("winch").unwrap(), libc::SIGWINCH);
        for bad in ["65", "-1", "NOPE", "SIG", "RTMIN+x", ""] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
