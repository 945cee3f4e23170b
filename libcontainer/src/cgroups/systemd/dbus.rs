//! The few calls brig makes to systemd's manager over D-Bus (zbus, blocking): the system bus,
//! or systemd's private socket when no dbus-daemon runs (as systemctl does); rootless, the
//! user's own manager ([`Systemd::connect_user`]) on the user's bus or its private socket.

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

/// The addresses of the user's manager, in the order they are tried: `$DBUS_SESSION_BUS_ADDRESS`,
/// else the user bus `$XDG_RUNTIME_DIR/bus` (runc's order), then the manager's private socket
/// `$XDG_RUNTIME_DIR/systemd/private` (as `systemctl --user` does when there is no user bus).
/// `true`: a direct (peer-to-peer) connection to systemd.
pub fn user_addresses(session: Option<&str>, runtime_dir: Option<&Path>) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    if let Some(address) = session.filter(|a| !a.is_empty()) {
        found.push((address.to_string(), false));
    }
    if let Some(dir) = runtime_dir.filter(|d| d.is_absolute()) {
        let bus = dir.join("bus");
        found.push((format!("unix:path={}", bus.display()), false));
        let private = dir.join("systemd/private");
        found.push((format!("unix:path={}", private.display()), true));
    }
    found
}

impl Systemd {
    /// The manager a unit is on: the system's, or the user's (rootless).
    pub fn connect_for(unit: &super::Unit) -> Result<Systemd> {
        match unit.user_manager {
            Some(_) => Systemd::connect_user(),
            None => Systemd::connect(),
        }
    }

    /// The caller's own systemd manager (rootless `--systemd-cgroup`, as runc does it). The
    /// caller authenticates as its uid outside a user namespace it may be root of (rootless
    /// podman's), which is the uid the manager runs as.
    pub fn connect_user() -> Result<Systemd> {
        if !booted() {
            return Err(Error::option(
                "systemd_cgroup",
                "systemd is not running on this host (no /run/systemd/system); run without it for the cgroupfs driver",
            ));
        }
        let uid = crate::rootless::outside_uid();
        let session = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
        let mut tried = Vec::new();
        if session.as_deref().is_none_or(str::is_empty) {
            tried.push("$DBUS_SESSION_BUS_ADDRESS is unset".to_string());
        }
        if runtime_dir.is_none() {
            tried.push("$XDG_RUNTIME_DIR is unset".to_string());
        }
        for (address, p2p) in user_addresses(session.as_deref(), runtime_dir.as_deref()) {
            let socket = address.strip_prefix("unix:path=");
            if socket.is_some_and(|s| !Path::new(s).exists()) {
                tried.push(format!("no {}", socket.unwrap_or_default()));
                continue;
            }
            let built = zbus::blocking::connection::Builder::address(address.as_str())
                .map(|b| {
                    let b = b.user_id(uid).method_timeout(JOB_TIMEOUT);
                    if p2p {
                        b.p2p()
                    } else {
                        b
                    }
                })
                .and_then(|b| b.build());
            match built {
                Ok(conn) => return Ok(Systemd { conn, p2p }),
                Err(e) => tried.push(format!("{address}: {e}")),
            }
        }
        Err(Error::option(
            "systemd_cgroup",
            format!(
                "rootless: cannot reach the systemd user manager of uid {uid} ({}); start one \
                 (`loginctl enable-linger`, or log in) or run without --systemd-cgroup",
                tried.join("; ")
            ),
        ))
    }

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

    /// The manager's own cgroup (`ControlGroup`): a user manager's units are below it, e.g.
    /// `/user.slice/user-1000.slice/user@1000.service`.
    pub fn control_group(&self) -> std::result::Result<String, CallError> {
        let dest = if self.p2p { None } else { Some(DEST) };
        let reply = self.conn.call_method(
            dest,
            PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(MANAGER, "ControlGroup"),
        )?;
        let value: OwnedValue = reply.body().deserialize()?;
        match &*value {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(CallError {
                name: None,
                text: format!("ControlGroup is not a string: {other:?}"),
            }),
        }
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
    // systemd never answers (the process ends soon after). A thread that cannot start (a
    // pids limit reached) is an error, not a wait that never ends.
    let spawned = std::thread::Builder::new()
        .name("systemd-job".into())
        .spawn(move || {
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
    if let Err(e) = spawned {
        return Err(CallError {
            name: None,
            text: format!("start a thread to wait for job {}: {e}", job.as_str()),
        });
    }
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
    use std::path::Path;

    #[test]
    fn the_user_manager_is_tried_where_runc_and_systemctl_look() {
        let run = Some(Path::new("/run/user/1000"));
        let bus = ("unix:path=/run/user/1000/bus".to_string(), false);
        let private = ("unix:path=/run/user/1000/systemd/private".to_string(), true);
        assert_eq!(
            super::user_addresses(Some("unix:path=/tmp/b"), run),
            vec![
                ("unix:path=/tmp/b".to_string(), false),
                bus.clone(),
                private.clone()
            ]
        );
        assert_eq!(super::user_addresses(Some(""), run), vec![bus, private]);
        assert!(super::user_addresses(None, None).is_empty());
        assert!(super::user_addresses(None, Some(Path::new("rel"))).is_empty());
    }

    #[test]
    fn versions_as_systemd_spells_them() {
        assert_eq!(super::parse_version("252.38-1~deb12u1"), 252);
        assert_eq!(super::parse_version("v255"), 255);
        assert_eq!(super::parse_version("weird"), 0);
    }
}
