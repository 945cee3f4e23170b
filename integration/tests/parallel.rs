//! Concurrency: many brig processes on one id serialize; many containers run side by side.

use std::thread;

use integration::*;

#[test]
fn twenty_parallel_creates_of_one_id_make_exactly_one_container() {
    let mut b = Bundle::new("race");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("race");
    let results: Vec<bool> = thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| b.brig(&["create", &id]).status.success()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
    let state = b.state(&id).unwrap();
    assert_eq!(state["status"], "created");
    assert!(pid_alive(state["pid"].as_i64().unwrap()));
    assert_eq!(b.containers(), vec![id.clone()]);
    ok(&b.brig(&["start", &id]));
    assert_eq!(b.status(&id).unwrap(), "running");
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(b.leaked_mounts().is_empty());
}

#[test]
fn twenty_parallel_containers() {
    let b = Bundle::with_script("many", "echo $$ $(hostname)");
    let outputs: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let b = &b;
                s.spawn(move || ok(&b.run(&unique_id(&format!("many{i}")))))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in outputs {
        assert_eq!(out, "1 brig\n");
    }
    assert!(b.containers().is_empty());
    assert!(b.leaked_mounts().is_empty());
}
