//! What engines hit that the other tests do not: behaviour found by running brig under
//! containerd and podman (hack/dropin.sh).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use integration::*;
use serde_json::json;

/// A user-namespace container whose rootfs belongs to its root, as podman --uidmap makes it.
fn userns_bundle(name: &str, script: &str) -> Bundle {
    let mut b = Bundle::with_script(name, script);
    b.add_user_namespace(100000, 100000);
    let chown = Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(chown.success());
    b
}

#[test]
fn bind_sources_out_of_the_user_namespaces_reach_are_mounted() {
    // Sources under a directory only host root may enter (a 0700 state root, a private home).
    let mut b = userns_bundle(
        "usernsbind",
        "cat /data/hello /file; touch /data/x 2>/dev/null || echo ro",
    );
    let private = b.dir.join("private");
    std::fs::create_dir_all(private.join("data")).unwrap();
    std::fs::write(private.join("data/hello"), "from-dir\n").unwrap();
    std::fs::write(private.join("file"), "from-file\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.join("data");
    let file = private.join("file");
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind",
                           "source": data, "options": ["rbind", "ro"]}));
        mounts.push(json!({"destination": "/file", "type": "bind",
                           "source": file, "options": ["bind"]}));
    });
    let out = ok(&b.run(&unique_id("usernsbind")));
    assert_eq!(out, "from-dir\nfrom-file\nro\n");
    assert!(b.leaked_mounts().is_empty());
}

#[test]
fn a_missing_bind_source_in_a_user_namespace_names_the_mount() {
    let mut b = userns_bundle("usernsmissing", "true");
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": "/no/such/dir", "options": ["bind"]}),
        );
    });
    let err = fails(&b.run(&unique_id("usernsmissing")));
    assert!(
        err.contains("mounts[") && err.contains(".source /no/such/dir"),
        "{err}"
    );
    assert!(b.containers().is_empty());
}
