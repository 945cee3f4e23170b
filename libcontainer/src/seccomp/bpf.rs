//! A classic-BPF interpreter for the instructions brig's filters use: the unit tests and the
//! install order check a compiled filter's answer without the kernel.

use seccompiler::sock_filter;

use super::compile::{BPF_JA, BPF_JEQ_K, BPF_JGT_K, BPF_JSET_K, BPF_LD_W_ABS, BPF_RET_K};

/// The seccomp_data a filter reads: (arch, nr, args).
pub(crate) struct Call {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

/// Run `program` on `call` as the kernel would; `None` for an instruction seccompiler never
/// emits (or a jump out of the program).
pub(crate) fn evaluate(program: &[sock_filter], call: &Call) -> Option<u32> {
    let load = |offset: u32| -> Option<u32> {
        Some(match offset {
            0 => call.nr,
            4 => call.arch,
            8 | 12 => 0, // instruction pointer
            16..=63 => {
                let arg = call.args[((offset - 16) / 8) as usize];
                if (offset - 16).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => return None,
        })
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = program.get(pc)?;
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            BPF_LD_W_ABS => acc = load(insn.k)?,
            0x54 => acc &= insn.k, // ALU AND K
            BPF_JA => pc += insn.k as usize,
            BPF_JEQ_K => pc += jump(acc == insn.k),
            BPF_JGT_K => pc += jump(acc > insn.k),
            0x35 => pc += jump(acc >= insn.k),
            BPF_JSET_K => pc += jump(acc & insn.k != 0),
            BPF_RET_K => return Some(insn.k),
            _ => return None,
        }
    }
}

/// Whether a filter's answer lets the call through (LOG does, after logging it).
pub(crate) fn lets_through(ret: Option<u32>) -> bool {
    matches!(ret, Some(r) if r == libc::SECCOMP_RET_ALLOW || r == libc::SECCOMP_RET_LOG)
}
