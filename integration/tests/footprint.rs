//! Issue 18: what the binary costs at every start, before any of brig's code runs.

use integration::*;

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The tags of the binary's dynamic section (ELF64, little endian).
fn dynamic_tags(elf: &[u8]) -> Vec<u64> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "not an ELF64 LE binary");
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20) as usize,
        u16_at(elf, 0x36),
        u16_at(elf, 0x38),
    );
    let mut tags = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        // PT_DYNAMIC
        if u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()) != 2 {
            continue;
        }
        let (offset, size) = (u64_at(elf, ph + 8) as usize, u64_at(elf, ph + 32) as usize);
        for entry in elf[offset..offset + size].chunks_exact(16) {
            match u64_at(entry, 0) {
                0 => break,
                tag => tags.push(tag),
            }
        }
    }
    tags
}

/// The static-pie brig relocates itself at every start, twice for create, run and exec (the
/// re-exec from the sealed binary): its relative relocations are packed (DT_RELR), a few KB
/// to read rather than some 370 KB of RELA entries.
#[test]
fn the_binary_packs_its_relocations() {
    let elf = std::fs::read(brig_binary()).unwrap();
    const DT_RELR: u64 = 36;
    let tags = dynamic_tags(&elf);
    assert!(
        tags.contains(&DT_RELR),
        "{} has no DT_RELR (dynamic tags {tags:?}): build it with hack/build.sh",
        brig_binary().display()
    );
}
