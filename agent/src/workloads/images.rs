//! Images offline-first: archives placed on the device (`<data_dir>/images/
//! *.tar`, written into the board image at provisioning, or copied from a
//! USB stick) are loaded with `podman load` at start, so a workload whose
//! image is there deploys without a registry and without the radio.
//!
//! Loading a big archive costs a Pi Zero a minute, so each archive is
//! loaded once: `<state_dir>/loaded-images.json` remembers each file's
//! size, modification time and the images it held; an archive is loaded
//! again only when it changed or one of its images is gone (pruned).
//! A file that is not an image archive is reported once, and its
//! neighbours still load.

use std::collections::BTreeMap;
use std::path::Path;

use flotta_proto::payload::{Event, Level};
use serde::{Deserialize, Serialize};

use super::podman::Podman;

/// The record of loaded archives.
pub const LOADED_FILE: &str = "loaded-images.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Loaded {
    size: u64,
    modified_ms: u128,
    images: Vec<String>,
    /// The load failed (not retried until the file changes).
    failed: bool,
}

/// Load the archives in `images_dir` that are new or changed (module
/// docs); the events to report.
pub fn load_archives(podman: &mut dyn Podman, images_dir: &Path, state_dir: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let Ok(entries) = std::fs::read_dir(images_dir) else {
        return events;
    };
    let record = state_dir.join(LOADED_FILE);
    let mut known: BTreeMap<String, Loaded> = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    files.sort();
    let mut changed = false;
    for path in &files {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        if let Some(k) = known.get(&name)
            && k.size == meta.len()
            && k.modified_ms == modified_ms
            && (k.failed
                || k.images
                    .iter()
                    .all(|i| podman.image_exists(i).unwrap_or(false)))
        {
            continue;
        }
        let loaded = match podman.load(path) {
            Ok(images) => Loaded {
                size: meta.len(),
                modified_ms,
                images,
                failed: false,
            },
            Err(e) => {
                events.push(Event {
                    reason: "Failed".into(),
                    message: format!("image archive {}: {e}", path.display()),
                    level: Level::Warn,
                });
                Loaded {
                    size: meta.len(),
                    modified_ms,
                    images: Vec::new(),
                    failed: true,
                }
            }
        };
        known.insert(name, loaded);
        changed = true;
    }
    let before = known.len();
    known.retain(|name, _| {
        files
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == *name))
    });
    if changed || known.len() != before {
        let bytes = serde_json::to_vec(&known).unwrap_or_default();
        if let Err(e) = std::fs::create_dir_all(state_dir)
            .and_then(|()| crate::fsutil::write_atomic(&record, &bytes, 0o644))
        {
            events.push(Event {
                reason: "Failed".into(),
                message: format!("{}: {e}", record.display()),
                level: Level::Warn,
            });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::workloads::containers::ObservedContainer;
    use crate::workloads::plan::ObservedPod;
    use crate::workloads::podman::PodmanError;

    #[derive(Default)]
    struct Loader {
        loads: Vec<PathBuf>,
        images: Vec<String>,
    }

    impl Podman for Loader {
        fn pods(&mut self) -> Result<Vec<ObservedPod>, PodmanError> {
            Ok(Vec::new())
        }
        fn play(&mut self, _: &Path, _: Option<&Path>) -> Result<(), PodmanError> {
            unreachable!()
        }
        fn remove(&mut self, _: &str) -> Result<(), PodmanError> {
            unreachable!()
        }
        fn image_exists(&mut self, image: &str) -> Result<bool, PodmanError> {
            Ok(self.images.iter().any(|i| i == image))
        }
        fn containers(&mut self) -> Result<Vec<ObservedContainer>, PodmanError> {
            Ok(Vec::new())
        }
        fn start(&mut self, _: &str) -> Result<(), PodmanError> {
            unreachable!()
        }
        fn load(&mut self, archive: &Path) -> Result<Vec<String>, PodmanError> {
            self.loads.push(archive.to_owned());
            let text = std::fs::read_to_string(archive).unwrap_or_default();
            if text.starts_with("garbage") {
                return Err(PodmanError::Failed {
                    args: "load".into(),
                    status: "exit status: 125".into(),
                    code: Some(125),
                    stderr: "Error: payload does not match any of the supported image formats"
                        .into(),
                });
            }
            self.images.push(text.clone());
            Ok(vec![text])
        }
    }

    #[test]
    fn each_archive_is_loaded_once_until_it_changes_or_its_image_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let (images, state) = (dir.path().join("images"), dir.path().join("state"));
        let mut p = Loader::default();
        // No directory: nothing to do.
        assert!(load_archives(&mut p, &images, &state).is_empty());
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("cam.tar"), "localhost/cam:1").unwrap();
        std::fs::write(images.join("bad.tar"), "garbage").unwrap();
        std::fs::write(images.join("notes.txt"), "ignored").unwrap();
        let events = load_archives(&mut p, &images, &state);
        assert_eq!(events.len(), 1);
        assert!(
            events[0].message.contains("bad.tar")
                && events[0].message.contains("supported image formats")
        );
        assert_eq!(p.loads.len(), 2);
        // Again: nothing loaded, nothing reported.
        assert!(load_archives(&mut p, &images, &state).is_empty());
        assert_eq!(p.loads.len(), 2);
        // Pruned: loaded again.
        p.images.clear();
        load_archives(&mut p, &images, &state);
        assert_eq!(p.loads.len(), 3);
        // Changed: loaded again.
        std::fs::write(images.join("cam.tar"), "localhost/cam:22").unwrap();
        load_archives(&mut p, &images, &state);
        assert_eq!(p.loads.last().unwrap(), &images.join("cam.tar"));
        assert_eq!(p.loads.len(), 4);
        assert!(p.images.contains(&"localhost/cam:22".to_owned()));
    }
}
