//! Issue 18: what the binary costs at every start, before any of brig's code runs.

use std::path::Path;
use std::process::{Command, Stdio};

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

/// Peak RSS of `brig create` (GNU time's %M: ru_maxrss, the larger of the two images of the
/// re-exec; init is not waited for) stays under 3 MB (issue 18). Most of it is the binary's
/// text: the kernel maps 64 KB around every page fault, so the start path's functions must
/// sit together (build.rs, hack/symbol-order.txt) or nearly all 6 MB of text gets mapped.
#[test]
fn create_peaks_under_three_megabytes() {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "{} (GNU time, hack/install-deps.sh) is missing",
        time.display()
    );
    let mut bundle = Bundle::new("footprint-rss");
    bundle.set_args(&["/bin/true"]);
    let report = bundle.dir.join("maxrss");
    let mut peaks = Vec::new();
    // The first create also brings the binary into the page cache (the later ones see it
    // whole, as a busy host does).
    for _ in 0..4 {
        let id = unique_id("rss");
        let mut cmd = Command::new(time);
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&report)
            .arg(brig_binary())
            .arg("--root")
            .arg(&bundle.root)
            .args(["create", "-b"])
            .arg(&bundle.dir)
            .arg(&id)
            .stdin(Stdio::null());
        ok(&output_via_files(&mut cmd, &bundle.dir));
        ok(&bundle.brig(&["delete", "--force", &id]));
        let text = std::fs::read_to_string(&report).unwrap();
        let kb: u64 = text.split_whitespace().last().unwrap().parse().unwrap();
        peaks.push(kb);
    }
    let warm = &mut peaks[1..];
    warm.sort_unstable();
    let median = warm[warm.len() / 2];
    assert!(
        median <= 3 * 1024,
        "peak RSS of create {median} KB (runs: {peaks:?}), more than 3 MB: if the start path or \
         Cargo.lock changed, hack/symbol-order.sh regenerates the functions build.rs puts first"
    );
}
