//! The few calls brig makes to systemd's manager over D-Bus (zbus, blocking): the system bus,
//! or systemd's private socket when no dbus-daemon runs (as systemctl does).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::MatchRule;

use crate::error::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
const PRIVATE: &str = "/run/systemd/private";
/// How long a start or stop job, or any call, may take (runc's wait is 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A unit property: name and value.
pub type Property = (&'static str, OwnedValue);

/// The error a call gave: the D-Bus error name (`org.freedesktop.systemd1.UnitExists`) and
/// its text, or a transport failure.
#[derive(Debug)]
pub struct CallError {
    pub name: Option<String>,
    pub text: String,
}

impl From<zbus::Error> for CallError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, text, _) => CallError {
                name: Some(name.to_string()),
                text: text.unwrap_or_default(),
            },
            other => CallError {
                name: None,
                text: other.to_string(),
            },
        }
    }
}

impl CallError {
    pub fn is(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }
    pub fn into_error(self, what: &str) -> Error {
        match self.name {
            Some(name) => Error::Other(format!("systemd: {what}: {name}: {}", self.text)),
            None => Error::Other(format!("systemd: {what}: {}", self.text)),
        }
    }
}

/// A connection to systemd.
pub struct Systemd {
    conn: Connection,
    /// Talking to systemd directly: no bus to name the destination or filter signals.
    p2p: bool,
}

/// systemd runs as PID 1 here (sd_booted(3)'s test).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

impl Systemd {
    pub fn connect() -> Result<Systemd> {
        if !booted() {
            return Err(Error::option(
                "systemd_cgroup",
                "systemd is not running on this host (no /run/systemd/system); run without it for the cgroupfs driver",
            ));
        }
        let bus_err = if Path::new(SYSTEM_BUS).exists()
            || std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some()
        {
            match zbus::blocking::connection::Builder::system()
                .and_then(|b| b.method_timeout(JOB_TIMEOUT).build())
            {
                Ok(conn) => return Ok(Systemd { conn, p2p: false }),
                Err(e) => e.to_string(),
            }
        } else {
            format!("no {SYSTEM_BUS}")
        };
        let conn =
            zbus::blocking::connection::Builder::address(format!("unix:path={PRIVATE}").as_str())
                .map(|b| b.p2p().method_timeout(JOB_TIMEOUT))
                .and_then(|b| b.build())
                .map_err(|e| {
                    Error::Other(format!(
                        "systemd: connect to the system bus ({bus_err}) or to {PRIVATE}: {e}"
                    ))
                })?;
        Ok(Systemd { conn, p2p: true })
    }

    fn call<B>(&self, method: &str, body: &B) -> std::result::Result<zbus::Message, CallError>
    where
        B: serde::ser::Serialize + zbus::zvariant::DynamicType,
    {
        let dest = if self.p2p { None } else { Some(DEST) };
        Ok(self
            .conn
            .call_method(dest, PATH, Some(MANAGER), method, body)?)
    }

    /// systemd's major version (`Version`: "252.38-1~deb12u1", "v255"); 0 when unreadable.
    pub fn version(&self) -> u32 {
        let dest = if self.p2p { None } else { Some(DEST) };
        let reply = self.conn.call_method(
            dest,
            PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(MANAGER, "Version"),
        );
        let Ok(reply) = reply else { return 0 };
        let Ok(value) = reply.body().deserialize::<OwnedValue>() else {
            return 0;
        };
        let text = match &*value {
            Value::Str(s) => s.to_string(),
            _ => return 0,
        };
        parse_version(&text)
    }

    /// Start a transient unit and wait for its job; `Err` names the job's result when it failed.
    pub fn start_transient_unit(
        &self,
        name: &str,
        properties: Vec<Property>,
    ) -> std::result::Result<(), CallError> {
        let jobs = self.job_signals()?;
        let aux: Vec<(&str, Vec<(&str, OwnedValue)>)> = Vec::new();
        let reply = self.call("StartTransientUnit", &(name, "replace", properties, aux))?;
        let job: OwnedObjectPath = reply.body().deserialize()?;
        wait_job(jobs, job)
    }

    /// Stop a unit and wait; a unit that is not there is stopped already.
    pub fn stop_unit(&self, name: &str) -> std::result::Result<(), CallError> {
        let jobs = self.job_signals()?;
        let job = match self.call("StopUnit", &(name, "replace")) {
            Ok(reply) => reply.body().deserialize::<OwnedObjectPath>()?,
            Err(e) if e.is("org.freedesktop.systemd1.NoSuchUnit") => return Ok(()),
            Err(e) => return Err(e),
        };
        let waited = wait_job(jobs, job);
        // A failed unit stays listed until reset; nothing of ours should.
        let _ = self.call("ResetFailedUnit", &(name,));
        waited
    }

    /// Change a unit's properties at runtime (`update`).
    pub fn set_unit_properties(
        &self,
        name: &str,
        properties: Vec<Property>,
    ) -> std::result::Result<(), CallError> {
        self.call("SetUnitProperties", &(name, true, properties))?;
        Ok(())
    }

    /// `FreezeUnit` or `ThawUnit` (`method`): systemd answers once the unit's cgroup is
    /// frozen or thawed.
    pub fn freezer(&self, method: &str, name: &str) -> std::result::Result<(), CallError> {
        self.call(method, &(name,))?;
        Ok(())
    }

    /// The JobRemoved signals, subscribed to before the job is queued so none is missed.
    fn job_signals(&self) -> std::result::Result<MessageIterator, CallError> {
        self.call("Subscribe", &())?;
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .interface(MANAGER)?
            .member("JobRemoved")?
            .build();
        Ok(MessageIterator::for_match_rule(
            rule,
            &self.conn,
            Some(256),
        )?)
    }
}

/// Wait for JobRemoved(id, job, unit, result) of `job`, for at most [`JOB_TIMEOUT`].
fn wait_job(jobs: MessageIterator, job: OwnedObjectPath) -> std::result::Result<(), CallError> {
    let (tx, rx) = mpsc::channel();
    let wanted = job.clone();
    // The blocking iterator has no timeout: it runs on a thread of its own, left behind if
    // systemd never answers (the process ends soon after).
    std::thread::spawn(move || {
        for msg in jobs.flatten() {
            let body = msg.body();
            let Ok((_, path, unit, result)) =
                body.deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if path == wanted {
                let _ = tx.send((unit, result));
                return;
            }
        }
    });
    match rx.recv_timeout(JOB_TIMEOUT) {
        Ok((_, result)) if result == "done" => Ok(()),
        Ok((unit, result)) => Err(CallError {
            name: None,
            text: format!(
                "job {} for {unit} ended with result {result:?}",
                job.as_str()
            ),
        }),
        Err(_) => Err(CallError {
            name: None,
            text: format!(
                "job {} did not finish within {} s",
                job.as_str(),
                JOB_TIMEOUT.as_secs()
            ),
        }),
    }
}

fn parse_version(text: &str) -> u32 {
    let t = text.trim().trim_start_matches('v');
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_as_systemd_spells_them() {
        assert_eq!(super::parse_version("252.38-1~deb12u1"), 252);
        assert_eq!(super::parse_version("v255"), 255);
        assert_eq!(super::parse_version("weird"), 0);
    }
}
