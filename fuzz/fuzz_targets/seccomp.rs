//! `linux.seccomp` → BPF: a profile that parses must compile or be refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) {
        let _ = libcontainer::seccomp::compile(&profile);
    }
});
