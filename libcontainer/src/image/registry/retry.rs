//! When to try a request again: which failures are worth it, and how long a registry asks us
//! to wait (`Retry-After`, in seconds or as an HTTP-date).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a failed connection attempt means for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The host name does not resolve: asking again will not change that.
    Unresolvable,
    /// Nothing listens there (connection refused): the registry is down or the port wrong.
    Refused,
    /// TLS, protocol or URL errors: the same request fails the same way.
    Permanent,
    /// A timeout or a dropped connection: worth another try.
    Transient,
}

impl Failure {
    pub fn of(e: &ureq::Error) -> Failure {
        match e {
            ureq::Error::HostNotFound => Failure::Unresolvable,
            ureq::Error::Io(io) => {
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                {
                    return Failure::Permanent;
                }
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    return Failure::Refused;
                }
                // std's getaddrinfo error has no ErrorKind of its own.
                if io.to_string().contains("failed to lookup address") {
                    return Failure::Unresolvable;
                }
                Failure::Transient
            }
            ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => Failure::Transient,
            _ => Failure::Permanent,
        }
    }

    pub fn retryable(self) -> bool {
        self == Failure::Transient
    }

    /// Why the registry cannot be reached, when that is the whole story.
    pub fn unreachable_reason(self) -> Option<&'static str> {
        match self {
            Failure::Unresolvable => Some("the host name does not resolve"),
            Failure::Refused => Some("connection refused"),
            _ => None,
        }
    }
}

/// The delay a `Retry-After` value asks for: delta-seconds, or an HTTP-date (a date in the
/// past means now). None when the value is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = UNIX_EPOCH + Duration::from_secs(parse_http_date(value)?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The three formats RFC 9110 says a recipient must accept, as seconds since the epoch:
/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and
/// asctime `Sun Nov  6 08:49:37 1994`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split([' ', ',', '-']).filter(|p| !p.is_empty()).collect();
    let (day, month, year, time) = match parts.as_slice() {
        [_, day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        [_, month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: u64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut year: u64 = year.parse().ok()?;
    if year < 100 {
        // RFC 850's two digits: the nearest century that is not far in the future.
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day)? * 86400 + h * 3600 + m * 60 + sec)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's method).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146097 + doe).checked_sub(719468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        // 784111777 is 1994-11-06T08:49:37Z.
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(s), Some(784111777), "{s}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1835481599)
        );
        for bad in [
            "",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_values() {
        let now = UNIX_EPOCH + Duration::from_secs(784111770);
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("later", now), None);
    }

    #[test]
    fn failures() {
        assert_eq!(
            Failure::of(&ureq::Error::HostNotFound),
            Failure::Unresolvable
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::of(&ureq::Error::Io(refused)), Failure::Refused);
        let dns = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert_eq!(Failure::of(&ureq::Error::Io(dns)), Failure::Unresolvable);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(Failure::of(&ureq::Error::Io(reset)).retryable());
        assert!(!Failure::of(&ureq::Error::BadUri("x".into())).retryable());
    }
}
