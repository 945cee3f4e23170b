//! config.json as `brig create` reads it: parse, validate, compile seccomp, check sysctls
//! (everything but the bundle's files). Bad input must be an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = libcontainer::config::load_from_bytes(data);
});
