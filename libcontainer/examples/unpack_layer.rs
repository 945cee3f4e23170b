//! Apply layer blobs to a new rootfs and print the throughput (used by hack/unpack-bench.sh).
//!
//! usage: unpack_layer ROOTFS MEDIA_TYPE:DIFF_ID:BLOB...

use std::time::Instant;

use libcontainer::image::unpack::{unpack, Layer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rootfs, specs) = args
        .split_first()
        .ok_or("usage: ROOTFS MEDIA_TYPE:DIFF_ID:BLOB...")?;
    let mut layers = Vec::new();
    let mut compressed = 0;
    for spec in specs {
        // The media type has no ':'; the diff_id has exactly one.
        let mut parts = spec.splitn(4, ':');
        let (Some(media_type), Some(alg), Some(hex), Some(blob)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("bad layer spec {spec:?}").into());
        };
        let file = std::fs::File::open(blob)?;
        compressed += file.metadata()?.len();
        layers.push(Layer {
            reader: file,
            media_type: media_type.to_string(),
            diff_id: format!("{alg}:{hex}"),
        });
    }
    let start = Instant::now();
    let stats = unpack(std::path::Path::new(rootfs), layers)?;
    let secs = start.elapsed().as_secs_f64();
    let tar: u64 = stats.iter().map(|s| s.tar_bytes).sum();
    let entries: u64 = stats.iter().map(|s| s.entries).sum();
    println!(
        "{} layers, {entries} entries, {:.1} MB compressed, {:.1} MB tar in {secs:.2}s: {:.1} MB/s (uncompressed)",
        stats.len(),
        compressed as f64 / 1e6,
        tar as f64 / 1e6,
        tar as f64 / 1e6 / secs
    );
    Ok(())
}
