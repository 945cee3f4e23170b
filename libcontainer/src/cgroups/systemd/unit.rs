//! runc's `[slice]:[prefix]:[name]` form of `linux.cgroupsPath` with `--systemd-cgroup`: which
//! unit the container gets, in which slice, and where systemd puts its cgroup.
//!
//! Rootless (runc's rules), the unit is the user's own systemd manager's: the empty slice is
//! `user.slice`, and every path is below the manager's cgroup (its `ControlGroup`, e.g.
//! `/user.slice/user-1000.slice/user@1000.service`), which is the root of its units' paths.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The container's transient unit, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `<prefix>-<name>.scope`, or `<name>` when it is a `.slice`.
    pub name: String,
    /// The slice a scope goes in (`system.slice`, `-.slice` for the root slice); for a
    /// transient slice, its parent (systemd derives it from the name).
    pub slice: String,
    /// Rootless: the unit is the user manager's, and this is the manager's own cgroup, which
    /// the unit's path is below (absent for the system manager, as in older state files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_manager: Option<String>,
}

impl Unit {
    /// The unit for `linux.cgroupsPath` (empty: `:brig:<id>`, in `system.slice`, or in
    /// `user.slice` for a `user` manager's unit, whose cgroup is set by [`Unit::in_manager`]).
    pub fn parse(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<Unit> {
        let path = cgroups_path.unwrap_or("");
        let (slice, prefix, name) = if path.is_empty() {
            ("", "brig", id)
        } else {
            let parts: Vec<&str> = path.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(Error::config(
                    "linux.cgroupsPath",
                    format!(
                        "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {path:?} instead"
                    ),
                ));
            };
            (slice, prefix, name)
        };
        if name.is_empty() || name.contains('/') || prefix.contains('/') {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("{path:?}: the name must be set and neither prefix nor name may hold a slash (slice:prefix:name)"),
            ));
        }
        let slice = match slice {
            "" if user => "user.slice".to_string(),
            "" => "system.slice".to_string(),
            "-" => "-.slice".to_string(),
            s => s.to_string(),
        };
        // Checked for its form here, so a bad slice fails before systemd is asked.
        expand_slice(&slice)?;
        let name = if name.ends_with(".slice") {
            expand_slice(name)?;
            name.to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(Unit {
            name,
            slice,
            user_manager: None,
        })
    }

    /// The unit of the user manager whose cgroup is `manager_cgroup` (its `ControlGroup`).
    pub fn in_manager(mut self, manager_cgroup: &str) -> Result<Unit> {
        if !manager_cgroup.starts_with('/') || manager_cgroup.split('/').any(|c| c == "..") {
            return Err(Error::Other(format!(
                "systemd: the user manager's ControlGroup {manager_cgroup:?} is not an absolute cgroup path"
            )));
        }
        self.user_manager = Some(manager_cgroup.to_string());
        Ok(self)
    }

    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }

    /// The unit's cgroup below the hierarchy's root, where systemd makes it: a scope in its
    /// slice, a slice where its dashes put it.
    pub fn cgroup(&self) -> Result<String> {
        let own = if self.is_slice() {
            expand_slice(&self.name)?
        } else {
            let parent = expand_slice(&self.slice)?;
            format!("{}/{}", parent.trim_end_matches('/'), self.name)
        };
        Ok(match &self.user_manager {
            Some(root) => format!("{}{own}", root.trim_end_matches('/')),
            None => own,
        })
    }
}

/// systemd's path for a slice: `a-b.slice` is `/a.slice/a-b.slice`, `-.slice` the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::config(
            "linux.cgroupsPath",
            format!("invalid slice name {slice:?}: {why}"),
        )
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(bad("a slice ends in .slice"));
    };
    if slice.contains('/') {
        return Err(bad(
            "a slice has no slash (sub-slices are joined by dashes)",
        ));
    }
    if stem == "-" {
        return Ok("/".to_string());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(bad("dashes separate non-empty parts"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// A cgroupsPath that is runc's systemd form (for the fs driver's error).
pub fn looks_like_systemd(path: &str) -> bool {
    path.split(':').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_names_its_unit_and_cgroup() {
        let cases = [
            (
                None,
                "brig-c1.scope",
                "system.slice",
                "/system.slice/brig-c1.scope",
            ),
            (
                Some(""),
                "brig-c1.scope",
                "system.slice",
                "/system.slice/brig-c1.scope",
            ),
            (
                Some(":p:n"),
                "p-n.scope",
                "system.slice",
                "/system.slice/p-n.scope",
            ),
            (Some("-:p:n"), "p-n.scope", "-.slice", "/p-n.scope"),
            (
                Some("user-1000.slice:p:n"),
                "p-n.scope",
                "user-1000.slice",
                "/user.slice/user-1000.slice/p-n.scope",
            ),
            (
                Some(":p:a-b.slice"),
                "a-b.slice",
                "system.slice",
                "/a.slice/a-b.slice",
            ),
        ];
        for (path, unit, slice, cgroup) in cases {
            let u = Unit::parse(path, "c1", false).unwrap();
            assert_eq!(
                (u.name.as_str(), u.slice.as_str()),
                (unit, slice),
                "{path:?}"
            );
            assert_eq!(u.cgroup().unwrap(), cgroup, "{path:?}");
        }
    }

    #[test]
    fn a_user_managers_units_are_below_its_cgroup() {
        let manager = "/user.slice/user-1000.slice/user@1000.service";
        let cases = [
            (
                None,
                "brig-c1.scope",
                "user.slice",
                "/user.slice/brig-c1.scope",
            ),
            (
                Some(":p:n"),
                "p-n.scope",
                "user.slice",
                "/user.slice/p-n.scope",
            ),
            (
                Some("user.slice:brig:c1"),
                "brig-c1.scope",
                "user.slice",
                "/user.slice/brig-c1.scope",
            ),
            (Some("-:p:n"), "p-n.scope", "-.slice", "/p-n.scope"),
            (
                Some("app-x.slice:p:n"),
                "p-n.scope",
                "app-x.slice",
                "/app.slice/app-x.slice/p-n.scope",
            ),
            (
                Some(":p:a-b.slice"),
                "a-b.slice",
                "user.slice",
                "/a.slice/a-b.slice",
            ),
        ];
        for (path, unit, slice, cgroup) in cases {
            let u = Unit::parse(path, "c1", true).unwrap();
            assert_eq!(
                (u.name.as_str(), u.slice.as_str()),
                (unit, slice),
                "{path:?}"
            );
            // Not yet placed: the path as the manager sees it.
            assert_eq!(u.cgroup().unwrap(), cgroup, "{path:?}");
            let placed = u.in_manager(&format!("{manager}/")).unwrap();
            assert_eq!(
                placed.cgroup().unwrap(),
                format!("{manager}{cgroup}"),
                "{path:?}"
            );
        }
        // The root manager's ("/", as systemd says it in a container) adds nothing.
        let u = Unit::parse(None, "c1", true)
            .unwrap()
            .in_manager("/")
            .unwrap();
        assert_eq!(u.cgroup().unwrap(), "/user.slice/brig-c1.scope");
        for bad in ["", "user.slice", "/a/../b"] {
            assert!(
                Unit::parse(None, "c1", true)
                    .unwrap()
                    .in_manager(bad)
                    .is_err(),
                "{bad:?}"
            );
        }
        // Recorded in the state only when set (older state files read as the system's).
        let u = Unit::parse(None, "c1", true)
            .unwrap()
            .in_manager(manager)
            .unwrap();
        let text = serde_json::to_string(&u).unwrap();
        assert!(text.contains("user@1000.service"), "{text}");
        let back: Unit = serde_json::from_str(&text).unwrap();
        assert_eq!(back, u);
    }

    #[test]
    fn bad_forms_say_what_is_expected() {
        for bad in ["/a/b", "a:b", "a:b:c:d", "x"] {
            let err = Unit::parse(Some(bad), "c", false).unwrap_err().to_string();
            assert!(err.contains("slice:prefix:name"), "{bad}: {err}");
        }
        for bad in [
            "a/b.slice:p:n",
            "nope:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            ":p:",
            ":p:a/b",
        ] {
            assert!(Unit::parse(Some(bad), "c", false).is_err(), "{bad}");
            assert!(Unit::parse(Some(bad), "c", true).is_err(), "{bad}");
        }
        assert!(looks_like_systemd("system.slice:brig:x"));
        assert!(!looks_like_systemd("/a/b"));
    }
}
