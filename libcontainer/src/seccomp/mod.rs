//! `linux.seccomp`: the profile compiled to BPF (`compile`, pure), installed with seccomp(2)
//! (`install`), and the `SCMP_ACT_NOTIFY` listener handed to the seccomp agent (`agent`).
//! `bpf` runs a compiled filter without the kernel (tests, install order).

mod agent;
mod bpf;
mod compile;
mod install;
mod x32;

pub use agent::send_to_agent;
pub use compile::{compile, Filters, Listener, ACTIONS, ARCHS, FLAGS, OPERATORS};
pub use install::supported_flags;

#[cfg(test)]
mod tests;
