//! The image tests' scratch: hack/make-image.sh's busybox layout, a store and a state root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{brig_binary, mounts_under, output_via_files, stderr, unique_id, workspace};

/// A directory with hack/make-image.sh's busybox layout (`layout`, tag `v1`: user brig, uid
/// 1000), an image store (`store`) and a state root (`state`), removed at the end after
/// deleting the containers left in it (which unmounts their rootfs) and unmounting what is
/// still mounted below it.
pub struct ImageScratch(pub PathBuf);

impl ImageScratch {
    pub fn new(name: &str) -> ImageScratch {
        let dir = std::env::temp_dir().join(format!("brig-it-{}", unique_id(name)));
        fs::create_dir_all(&dir).unwrap();
        let scratch = ImageScratch(dir);
        let out = Command::new(workspace().join("hack/make-image.sh"))
            .arg(scratch.layout())
            .arg("v1")
            .output()
            .unwrap();
        assert!(out.status.success(), "make-image.sh: {}", stderr(&out));
        scratch
    }

    pub fn layout(&self) -> PathBuf {
        self.0.join("layout")
    }

    /// The layout's image, `oci:DIR:v1`.
    pub fn image(&self) -> String {
        format!("oci:{}:v1", self.layout().display())
    }

    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }

    pub fn root(&self) -> PathBuf {
        self.0.join("state")
    }

    /// The bundle `run --image` makes for container `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.root().join("bundles").join(id)
    }

    /// `brig --root STATE ARGS...` with `env` added.
    pub fn cmd(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(brig_binary());
        cmd.envs(env.iter().copied())
            .arg("--root")
            .arg(self.root())
            .args(args);
        cmd
    }

    pub fn brig(&self, args: &[&str]) -> Output {
        self.cmd(&[], args).output().unwrap()
    }

    /// `pull --quiet --store STORE ARGS... IMAGE DEST`.
    pub fn pull(&self, args: &[&str], dest: &Path) -> Output {
        let (image, store) = (self.image(), self.store());
        let mut all = vec!["pull", "--quiet", "--store", store.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend([image.as_str(), dest.to_str().unwrap()]);
        self.brig(&all)
    }

    /// `run --image IMAGE --store STORE ARGS...`, its output through files (a detached
    /// container keeps its stdio open).
    pub fn run_image(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let (image, store) = (self.image(), self.store());
        let mut all = vec!["run", "--image", &image, "--store", store.to_str().unwrap()];
        all.extend_from_slice(args);
        output_via_files(&mut self.cmd(env, &all), &self.0)
    }
}

impl Drop for ImageScratch {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if id != "bundles" {
                    let _ = self.brig(&["delete", "--force", &id]);
                }
            }
        }
        for m in mounts_under(&self.0).iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if mounts_under(&self.0).is_empty() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
