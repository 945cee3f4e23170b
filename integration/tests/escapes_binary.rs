//! Issue 12, escapes 1-3: a container cannot reach brig's binary, init's handle on the host's
//! /proc, or a host directory through `exec --cwd`. Each test performs the attack as the issue
//! describes it, against a copy of brig in the bundle (never the binary other tests use), and
//! checks the host is untouched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use integration::*;

/// A private copy of the brig under test, in the bundle: the attacks may write to it.
fn brig_copy(b: &Bundle) -> PathBuf {
    let copy = b.dir.join("brig-copy");
    std::fs::copy(brig_binary(), &copy).unwrap();
    copy
}

fn with_copy(b: &Bundle, copy: &Path, args: &[&str]) -> Output {
    output_via_files(
        Command::new(copy)
            .arg("--root")
            .arg(&b.root)
            .args(args)
            .current_dir(&b.dir)
            .stdin(Stdio::null()),
        &b.dir,
    )
}

#[test]
fn created_init_exposes_neither_the_binary_nor_the_host_proc() {
    let mut b = Bundle::new("esc-created");
    b.set_args(&["sleep", "100"]);
    let copy = brig_copy(&b);
    let id = unique_id("esc-created");
    ok(&with_copy(&b, &copy, &["create", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();

    // The issue's probe, from a process exec'd into the created container. `-w` asks access(2)
    // only: nothing is written to any sysctl.
    let probe = with_copy(
        &b,
        &copy,
        &[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /proc/1/exe >/dev/null 2>&1 && echo exe-readable; \
             readlink /proc/1/exe; ls -l /proc/1/fd; \
             for f in /proc/1/fd/*; do \
               [ -w $f/sys/kernel/core_pattern ] && echo \"core_pattern-writable via $f\"; \
             done; true",
        ],
    );
    let text = ok(&probe);
    assert!(
        !text.contains("exe-readable"),
        "init's binary readable from the container: {text}"
    );
    assert!(
        !text.contains("core_pattern-writable"),
        "host /proc reachable: {text}"
    );

    // And from the host: init holds no descriptor on the host's procfs (whoever could follow
    // it would be out of the container).
    let host_proc = std::fs::metadata("/proc").unwrap().dev();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        assert_ne!(
            meta.dev(),
            host_proc,
            "init's fd {:?} is on the host's /proc ({:?})",
            entry.file_name(),
            std::fs::read_link(entry.path())
        );
    }
    ok(&with_copy(&b, &copy, &["delete", "--force", &id]));
}

#[test]
fn shebang_proc_self_exe_through_exec_cannot_write_the_binary() {
    let mut b = Bundle::new("esc-5736");
    b.edit(|c| c["root"]["readonly"] = serde_json::json!(false));
    // The container's own process is the watcher: it waits for a process running as
    // `/proc/self/exe /bin/evil`, grabs its /proc/<pid>/exe, and once it has exited (and with it
    // every brig on that binary) reopens the handle for writing.
    b.set_args(&[
        "sh",
        "-c",
        r#"
        for i in $(seq 400); do
            for p in /proc/[0-9]*; do
                if [ "$(tr "\0" " " < $p/cmdline 2>/dev/null)" = "/proc/self/exe /bin/evil " ]; then
                    if exec 3< $p/exe; then echo "grabbed $(readlink $p/exe)" > /result
                    else echo no-handle > /result; touch /grabbed /done; exit 0; fi
                    touch /grabbed
                    while [ -e $p ]; do sleep 0.05; done
                    for t in $(seq 100); do
                        if echo PWNED 2>/dev/null >> /proc/self/fd/3; then echo wrote >> /result; touch /done; exit 0; fi
                        sleep 0.05
                    done
                    echo refused >> /result; touch /done; exit 0
                fi
            done
            sleep 0.05
        done
        echo never-saw-evil > /result; touch /grabbed /done
        "#,
    ]);
    let copy = brig_copy(&b);
    let before = std::fs::read(&copy).unwrap();
    b.add_script("/bin/evil", "#!/proc/self/exe\n");
    let id = unique_id("esc-5736");
    ok(&with_copy(&b, &copy, &["run", "-d", &id]));

    // `exec ID /bin/evil` runs /proc/self/exe of brig's exec process inside the container. Its
    // stderr is a full pipe, so it stays blocked writing its usage error until the watcher holds
    // its /proc/<pid>/exe.
    let script = r#"
        mkfifo err; exec 7<>err; dd if=/dev/zero bs=4096 count=16 >&7 2>/dev/null
        $BRIG exec "$ID" /bin/evil 2>err >/dev/null &
        evil=$!
        i=0; while [ ! -e rootfs/grabbed ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
        dd bs=4096 count=16 <&7 >/dev/null 2>&1 || true
        exec 7<&-
        wait $evil || true
        i=0; while [ ! -e rootfs/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
        cat rootfs/result
    "#;
    let text = ok(&host_script(&b, &copy, &id, script));
    eprintln!("the watcher saw: {text}");
    assert!(
        !text.contains("never-saw-evil"),
        "the attack did not run: {text}"
    );
    let after = std::fs::read(&copy).unwrap();
    assert!(
        after == before,
        "the host's brig binary was written: {text}"
    );
    assert!(!text.contains("wrote"), "{text}");
}

/// `sh -euc script` on the host, in the bundle, with `$BRIG` = the copy and its state root and
/// `$ID` = the container.
fn host_script(b: &Bundle, copy: &Path, id: &str, script: &str) -> Output {
    output_via_files(
        Command::new("sh")
            .args(["-euc", script])
            .env(
                "BRIG",
                format!("{} --root {}", copy.display(), b.root.display()),
            )
            .env("ID", id)
            .current_dir(&b.dir)
            .stdin(Stdio::null()),
        &b.dir,
    )
}

#[test]
fn exec_cwd_through_an_inherited_host_descriptor_is_refused() {
    let mut b = Bundle::new("esc-21626");
    b.set_args(&["sleep", "1000"]);
    let copy = brig_copy(&b);
    let id = unique_id("esc-21626");
    ok(&with_copy(&b, &copy, &["run", "-d", &id]));
    // A host directory four levels below a secret only the host has.
    let host = b.dir.join("host");
    std::fs::create_dir_all(host.join("a/b/c/d")).unwrap();
    let secret = format!("host-secret-{}", std::process::id());
    std::fs::write(host.join("secret"), &secret).unwrap();

    let out = output_via_files(
        Command::new("sh")
            .args([
                "-c",
                r#"exec 9< "$DIR"; exec $BRIG exec --cwd /proc/self/fd/9 "$ID" sh -c 'cd ../../../..; cat secret'"#,
            ])
            .env("BRIG", format!("{} --root {}", copy.display(), b.root.display()))
            .env("DIR", host.join("a/b/c/d"))
            .env("ID", &id)
            .current_dir(&b.dir)
            .stdin(Stdio::null()),
        &b.dir,
    );
    assert!(
        !stdout(&out).contains(&secret),
        "the container read a host file through exec --cwd: {}",
        stdout(&out)
    );
    let err = fails(&out);
    assert!(err.contains("outside the container's root"), "{err}");
}

/// Issue 18: `create`, `run` and `exec` re-execute from the sealed binary before their flags
/// are parsed when any argument names them. A container named like one of them is still only
/// a name to the other commands, and a bad flag of a sealed command is still clap's error.
#[test]
fn command_words_as_arguments_change_nothing() {
    let mut b = Bundle::new("esc-words");
    b.set_args(&["sleep", "1000"]);
    ok(&b.brig(&["create", "exec"]));
    assert_eq!(b.status("exec").as_deref(), Some("created"));
    let text = ok(&b.brig(&["exec", "exec", "echo", "run"]));
    assert_eq!(text.trim(), "run");
    ok(&b.brig(&["kill", "exec", "KILL"]));
    ok(&b.brig(&["delete", "--force", "exec"]));
    assert_eq!(b.state("exec"), None);
    let err = fails(&b.brig(&["run", "--no-such-flag", "x"]));
    assert!(err.contains("--no-such-flag"), "{err}");
}
