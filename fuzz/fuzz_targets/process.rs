//! process.json as `brig exec --process` reads it, then the checks exec makes on it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(process) = libcontainer::config::process_from_json(data, "process.json") {
        let _ = libcontainer::config::validate_process(&process);
    }
});
