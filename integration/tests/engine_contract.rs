//! What tools written against runc rely on, beyond the runtime spec: `brig spec`'s bundle, exit
//! codes, log lines (and none of them on a container's stdio), `events` lines, `exec --cgroup`,
//! `HOME`, `-v`.

use std::path::Path;
use std::process::Command;

use integration::*;
use serde_json::json;

fn spec_text(program: &Path, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new(program)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("config.json")).unwrap()
}

#[test]
fn spec_writes_what_runc_spec_writes() {
    let dir = std::env::temp_dir().join(unique_id("brig-it-spec"));
    let text = spec_text(&brig_binary(), &dir.join("brig"));
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(config["process"]["terminal"], true);
    assert_eq!(config["process"]["capabilities"]["ambient"], caps);
    assert_eq!(
        config["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(config["hostname"], "brig");
    // Byte for byte what runc writes, but for brig's hostname and spec version.
    let runc = Path::new("/usr/sbin/runc");
    if runc.exists() {
        let theirs = spec_text(runc, &dir.join("runc"));
        let ours = text
            .replacen("\"hostname\": \"brig\"", "\"hostname\": \"runc\"", 1)
            .replacen(
                &format!("\"ociVersion\": {}", config["ociVersion"]),
                "\"ociVersion\": \"1.0.2-dev\"",
                1,
            );
        assert_eq!(ours, theirs);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
