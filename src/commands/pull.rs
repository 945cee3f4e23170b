//! `brig pull`: an image from a registry, an OCI layout or an archive into the verified store.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use libcontainer::image::bundle::{self, BundleOptions};
use libcontainer::image::pull::{self, Progress, PullOptions, Pulled};
use libcontainer::image::reference::Reference;
use libcontainer::image::registry::RegistryOptions;
use libcontainer::image::registry_source::RegistrySource;
use libcontainer::image::source::Source;
use libcontainer::image::store::Store;
use libcontainer::image::unpack;
use oci_spec::image::Descriptor;
use oci_spec::runtime::Spec;

use crate::Cli;

/// Pull an image into the image store and verify every byte of it
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The platform to take from a multi-platform image: os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Registry credentials file (containers-auth.json / Docker config.json format)
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Registry credentials: user[:password]
    #[arg(long)]
    pub creds: Option<String>,
    /// Talk to the registry over plain HTTP
    #[arg(long)]
    pub plain_http: bool,
    /// Print no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// The image store (default: /var/lib/brig/images, $XDG_DATA_HOME/brig/images when not root)
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The image: [host[:port]/]repo[:tag][@digest], oci:DIR[:NAME], oci-archive:FILE[:NAME],
    /// docker-archive:FILE[:NAME:TAG]
    pub reference: String,
    /// Write only BUNDLE/rootfs, no config.json
    #[arg(long, requires = "bundle", conflicts_with = "config_only")]
    pub rootfs_only: bool,
    /// Write only BUNDLE/config.json (the layers are unpacked into a temporary directory to
    /// resolve the image's User)
    #[arg(long, requires = "bundle")]
    pub config_only: bool,
    /// A bundle directory (absent or empty) to write rootfs/ and config.json into
    pub bundle: Option<PathBuf>,
}

impl Args {
    /// The flags `run --image` and `spec --image` pull with.
    pub fn for_reference(reference: &str, store: Option<PathBuf>, quiet: bool) -> Self {
        Args {
            platform: None,
            authfile: None,
            creds: None,
            plain_http: false,
            quiet,
            store,
            reference: reference.to_string(),
            rootfs_only: false,
            config_only: false,
            bundle: None,
        }
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let Some(bundle) = &args.bundle else {
        let (_, pulled) = pull_image(args)?;
        print_pulled(&pulled)?;
        return Ok(0);
    };
    // One pipeline: each layer unpacked while it downloads (issue 15).
    let options = BundleOptions {
        args: None,
        rootfs_only: args.rootfs_only,
        config_only: args.config_only,
        terminal: None,
        readonly: None,
        cgroups_path: None,
        cache: None,
        volatile: false,
    };
    let rootless = rootless_config(cli)?;
    let base = base_spec(rootless)?;
    let (reference, source, store, pull_options) = prepare(args)?;
    let existed = bundle.exists();
    let started = Instant::now();
    let terminal = !args.quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars = terminal.then(|| (Bars::new(&multi, false), Bars::new(&multi, true)));
    let (progress, unpack_progress): (&dyn Progress, &dyn Progress) = match &bars {
        Some((download, unpack)) => (download, unpack),
        None => (&pull::NoProgress, &pull::NoProgress),
    };
    let (pulled, stats) = bundle::pull_bundle(
        source.as_ref(),
        &reference,
        &store,
        &pull_options,
        bundle,
        base,
        &options,
        progress,
        unpack_progress,
    )
    .with_context(|| format!("pull {reference} into bundle {}", bundle.display()))?;
    if !args.quiet {
        print_fetched(&pulled, started);
    }
    print_pulled(&pulled)?;
    finish_bundle(
        bundle,
        &pulled.manifest,
        &options,
        &stats,
        existed,
        started,
        args.quiet,
        rootless,
    )?;
    Ok(0)
}

fn print_pulled(pulled: &Pulled) -> Result<()> {
    let mut out = super::stdout();
    writeln!(out, "manifest {}", pulled.manifest.digest())?;
    writeln!(out, "config {}", pulled.config)?;
    out.flush()?;
    Ok(())
}

/// The store's image for `reference` if it has one (no network), else a pull.
pub fn find_or_pull(args: &Args) -> Result<(Store, Descriptor)> {
    let reference: Reference = args.reference.parse()?;
    let root = args.store.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root)?;
    if let Some(manifest) = bundle::find(&store, &reference)? {
        return Ok((store, manifest));
    }
    let (store, pulled) = pull_image(args)?;
    Ok((store, pulled.manifest))
}

/// Whether `pull REF BUNDLE` writes a rootless config.json: `--rootless` says, else the
/// caller does (an unprivileged caller could not run the default one).
pub fn rootless_config(cli: &Cli) -> Result<bool> {
    match cli.rootless.as_deref() {
        None => Ok(libcontainer::rootless::unprivileged()),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => bail!("--rootless: {other:?} is not true or false"),
    }
}

/// Unpacks the image into `bundle` and writes its config.json from `brig spec`'s default, or
/// from `brig spec --rootless`'s when `rootless` (see [`fit_rootless_ids`]). The unpack itself
/// follows the caller: as root, entries get their owners; as anyone else, they stay the
/// caller's and their owners are recorded (`image::unpack::Ownership`).
pub fn write_bundle(
    store: &Store,
    manifest: &Descriptor,
    bundle: &Path,
    options: &BundleOptions,
    quiet: bool,
    rootless: bool,
) -> Result<()> {
    let base = base_spec(rootless)?;
    let existed = bundle.exists();
    let started = Instant::now();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars = (!quiet && std::io::stderr().is_terminal()).then(|| Bars::new(&multi, true));
    let progress: &dyn Progress = match &bars {
        Some(bars) => bars,
        None => &pull::NoProgress,
    };
    let stats =
        bundle::write_bundle_with_progress(store, manifest, bundle, base, options, progress)
            .with_context(|| format!("write bundle {}", bundle.display()))?;
    finish_bundle(
        bundle, manifest, options, &stats, existed, started, quiet, rootless,
    )
}

/// The config.json a bundle starts from: `brig spec`'s, or `brig spec --rootless`'s.
fn base_spec(rootless: bool) -> Result<Spec> {
    Ok(if rootless {
        serde_json::from_str(&libcontainer::spec_template::rootless_spec_text(
            libcontainer::spec_template::Rootless {
                uid: libcontainer::rootless::euid(),
                gid: libcontainer::rootless::egid(),
            },
        ))
        .context("the default rootless config")?
    } else {
        serde_json::from_value(libcontainer::spec_template::default_spec())
            .context("the default config")?
    })
}

/// What follows a bundle's writing: the rootless id mappings, and the summary line.
#[allow(clippy::too_many_arguments)]
fn finish_bundle(
    bundle: &Path,
    manifest: &Descriptor,
    options: &BundleOptions,
    stats: &[unpack::LayerStats],
    existed: bool,
    started: Instant,
    quiet: bool,
    rootless: bool,
) -> Result<()> {
    if rootless && !options.rootfs_only {
        if let Err(e) = fit_rootless_ids(bundle) {
            // What write_bundle made goes, as on its own failures.
            if existed {
                let _ = unpack::remove_tree(&bundle.join("rootfs"));
                let _ = std::fs::remove_file(bundle.join("config.json"));
            } else {
                let _ = unpack::remove_tree(bundle);
            }
            return Err(e.context(format!(
                "write bundle {}: image {}",
                bundle.display(),
                manifest.digest()
            )));
        }
    }
    if !quiet {
        let bytes: u64 = stats.iter().map(|s| s.tar_bytes).sum();
        let recorded: u64 = stats.iter().map(|s| s.owners_recorded).sum();
        let secs = started.elapsed().as_secs_f64();
        let _ = writeln!(
            std::io::stderr(),
            "unpacked {} layers ({:.1} MB) into {} in {secs:.2}s",
            stats.len(),
            bytes as f64 / 1e6,
            bundle.display(),
        );
        if recorded > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "rootless: {recorded} entries not owned by root are owned by uid {} (root of a \
                 rootless container), their owners recorded in user.rootlesscontainers",
                libcontainer::rootless::euid()
            );
        }
    }
    Ok(())
}

/// A rootless config maps container root to the caller alone, as runc's does. An image whose
/// process runs as another uid or gid (its `User`, or groups of it) needs more: the caller's
/// subordinate ranges then map container ids 1.. (podman's default rootless mapping), and
/// without ranges large enough the bundle is refused, naming the ids.
fn fit_rootless_ids(bundle: &Path) -> Result<()> {
    use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let mut spec: Spec =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    let Some(user) = spec.process().as_ref().map(|p| p.user().clone()) else {
        return Ok(());
    };
    let max_uid = user.uid();
    let max_gid = user
        .additional_gids()
        .iter()
        .flatten()
        .copied()
        .chain([user.gid()])
        .max()
        .unwrap_or(0);
    if max_uid == 0 && max_gid == 0 {
        return Ok(());
    }
    let mapping = |kind: &str, file: &str, own: u32, need: u32| -> Result<Vec<LinuxIdMapping>> {
        let root = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(own)
            .size(1u32)
            .build()?;
        if need == 0 {
            return Ok(vec![root]);
        }
        let ranges = libcontainer::rootless::caller_ranges(file);
        let Some(range) = ranges.iter().find(|r| r.count >= u64::from(need)) else {
            bail!(
                "the image's process runs as {kind} {need} (its User, or a group of it), \
                 which a rootless container cannot give: container root is {kind} {own} \
                 (the caller) alone, and {file} gives {kind} {own} no range of {need} ids or \
                 more to map container {kind}s from 1 (add one, e.g. usermod --add-sub{kind}s)"
            )
        };
        let size = u32::try_from(range.count.min(u64::from(u32::MAX - 1))).unwrap_or(65536);
        let start = u32::try_from(range.start).context("subordinate range start")?;
        Ok(vec![
            root,
            LinuxIdMappingBuilder::default()
                .container_id(1u32)
                .host_id(start)
                .size(size)
                .build()?,
        ])
    };
    let uids = mapping(
        "uid",
        "/etc/subuid",
        libcontainer::rootless::euid(),
        max_uid,
    )?;
    let gids = mapping(
        "gid",
        "/etc/subgid",
        libcontainer::rootless::egid(),
        max_gid,
    )?;
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(());
    };
    linux.set_uid_mappings(Some(uids));
    linux.set_gid_mappings(Some(gids));
    spec.set_linux(Some(linux));
    let text = serde_json::to_vec_pretty(&spec).context("serialize config.json")?;
    libcontainer::atomic_file::write(&path, &text, 0o644)?;
    Ok(())
}

/// The reference, its source, the store and the pull options `args` say.
fn prepare(args: &Args) -> Result<(Reference, Box<dyn Source>, Store, PullOptions)> {
    let reference: Reference = args.reference.parse()?;
    let platform = args
        .platform
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--platform")?;
    let source = match libcontainer::image::source::open_local(&reference)? {
        Some(source) => source,
        None => {
            let Reference::Registry(registry) = &reference else {
                bail!("pull {reference}: no transport for this reference")
            };
            let options = RegistryOptions::from_env(
                args.creds.as_deref(),
                args.authfile.as_deref(),
                args.plain_http,
            )
            .with_context(|| format!("pull {reference}: registry credentials"))?;
            Box::new(RegistrySource::new(registry, options)?)
        }
    };
    let root = args.store.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root)?;
    let options = PullOptions {
        platform,
        ..PullOptions::default()
    };
    Ok((reference, source, store, options))
}

fn pull_image(args: &Args) -> Result<(Store, Pulled)> {
    let (reference, source, store, options) = prepare(args)?;
    let started = Instant::now();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars = (!args.quiet && std::io::stderr().is_terminal()).then(|| Bars::new(&multi, false));
    let progress: &dyn Progress = match &bars {
        Some(bars) => bars,
        None => &pull::NoProgress,
    };
    let pulled = pull::pull(source.as_ref(), &reference, &store, &options, progress)?;
    if !args.quiet {
        print_fetched(&pulled, started);
    }
    Ok((store, pulled))
}

fn print_fetched(pulled: &Pulled, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mb = pulled.fetched_bytes as f64 / 1e6;
    let _ = writeln!(
        std::io::stderr(),
        "pulled {}: {} blobs ({mb:.1} MB) in {secs:.2}s ({:.1} MB/s), {} already in the store",
        pulled.name,
        pulled.fetched_blobs,
        mb / secs.max(1e-6),
        pulled.present_blobs,
    );
}

/// A bar per layer on a terminal: the digest's first 12 hex digits, bytes done of the blob's
/// size, then "done" (download) or "unpacked". Left on the screen when finished.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Unpack bars: made on a layer's first bytes (the unpacker calls no `layer_start`).
    unpack: bool,
}

impl Bars {
    /// Bars drawn in `multi` (download and unpack bars of one pipeline share it).
    fn new(multi: &MultiProgress, unpack: bool) -> Self {
        Bars {
            multi: multi.clone(),
            bars: Mutex::new(HashMap::new()),
            unpack,
        }
    }

    fn add(&self, desc: &Descriptor) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(desc.size()));
        let template = if self.unpack {
            "unpack {prefix} [{bar:30}] {bytes}/{total_bytes} {msg}"
        } else {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(desc.digest().digest().chars().take(12).collect::<String>());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(desc.digest().digest().to_string(), bar.clone());
        }
        bar
    }

    fn bar(&self, desc: &Descriptor) -> Option<ProgressBar> {
        let found = self
            .bars
            .lock()
            .ok()
            .and_then(|b| b.get(desc.digest().digest()).cloned());
        match found {
            None if self.unpack => Some(self.add(desc)),
            found => found,
        }
    }
}

impl Progress for Bars {
    fn layer_start(&self, desc: &Descriptor, present: bool) {
        let bar = self.add(desc);
        if present {
            bar.finish_with_message("already in the store");
        }
    }

    fn layer_bytes(&self, desc: &Descriptor, bytes: u64) {
        if let Some(bar) = self.bar(desc) {
            bar.inc(bytes);
        }
    }

    fn layer_done(&self, desc: &Descriptor) {
        if let Some(bar) = self.bar(desc) {
            if !bar.is_finished() {
                bar.set_position(desc.size());
                bar.finish_with_message(if self.unpack { "unpacked" } else { "done" });
            }
        }
    }
}
