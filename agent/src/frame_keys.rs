//! The device's sealed-frame key material on disk:
//! `<data_dir>/frame/context.json`, the [`FrameKeys`] JSON of
//! `flotta_proto::frame_keys` (hex bytes), mode 0600.
//!
//! It arrives three ways: in a TLS batch answer (`BatchResponse::frame_keys`,
//! whenever the epoch the device announced differs from the server's), in
//! the Flotta registration answer (`content.frameKeys`, when the server puts
//! it there), and in a pre-provisioned board image (`flotta-server provision`
//! writes the same file). A `Rekey` item of a sealed answer replaces it too.
//!
//! Replaced atomically ([`write_atomic`]: temp file, fsync, rename, directory
//! fsync; a newly made `frame/` directory is fsynced into its parent), so a
//! power loss leaves the old or the new keys. The key material never reaches
//! a log: `FrameKeys`' `Debug` shows the key id and epoch only, and the
//! errors here name the file, never its content.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use flotta_proto::frame::{FrameContext, FrameError, KeyId, Role};
use flotta_proto::frame_keys::FrameKeys;

use crate::fsutil::write_atomic;

/// The key file, relative to the data directory.
pub const FRAME_KEYS_FILE: &str = "frame/context.json";
/// Owner only: it holds the master secret.
const FILE_MODE: u32 = 0o600;
/// A key file is about 150 bytes; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 4096;

/// Why the key file could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum FrameKeysError {
    /// Reading or writing the file failed.
    #[error("frame key file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is there but is not valid key material (the message says
    /// which field, never a value).
    #[error("frame key file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The keys do not make a context for this device (device id length).
    #[error("frame context for this device: {0}")]
    Context(FrameError),
}

impl FrameKeysError {
    /// Whether trying later may succeed: I/O may; invalid keys need new ones
    /// (a TLS window fetches them, or a new provisioning).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ),
            Self::Invalid { .. } | Self::Context(_) => false,
        }
    }
}

/// The key file under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FRAME_KEYS_FILE)
}

/// The stored keys, `None` if there are none yet.
///
/// # Errors
/// [`FrameKeysError::Io`] if the file cannot be read,
/// [`FrameKeysError::Invalid`] if it does not hold valid keys.
pub fn load(data_dir: &Path) -> Result<Option<FrameKeys>, FrameKeysError> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FrameKeysError::Io { path, source }),
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FrameKeysError::Invalid {
            path,
            reason: format!(
                "{} bytes, a key file has at most {MAX_FILE_BYTES}",
                bytes.len()
            ),
        });
    }
    let keys: FrameKeys = serde_json::from_slice(&bytes).map_err(|e| FrameKeysError::Invalid {
        path: path.clone(),
        // serde_json names the field and position, not the value.
        reason: e.to_string(),
    })?;
    keys.validate()
        .map_err(|reason| FrameKeysError::Invalid { path, reason })?;
    Ok(Some(keys))
}

/// The epoch of the stored keys, for `BatchRequest::frame_epoch`: `None` if
/// there are none or they cannot be read (the server then sends them again,
/// which replaces a damaged file).
pub fn held_epoch(data_dir: &Path) -> Option<u32> {
    load(data_dir).ok().flatten().map(|k| k.epoch)
}

/// Store `keys` durably (replacing any earlier ones), mode 0600.
///
/// # Errors
/// [`FrameKeysError::Invalid`] for keys that do not validate (nothing is
/// written); [`FrameKeysError::Io`] if writing fails.
pub fn store(data_dir: &Path, keys: &FrameKeys) -> Result<(), FrameKeysError> {
    let path = path(data_dir);
    keys.validate().map_err(|reason| FrameKeysError::Invalid {
        path: path.clone(),
        reason,
    })?;
    let dir = path.parent().unwrap_or(data_dir);
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|source| FrameKeysError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // The new directory's entry must survive a power loss too.
        File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| FrameKeysError::Io {
                path: data_dir.to_path_buf(),
                source,
            })?;
    }
    let json = serde_json::to_vec(keys).map_err(|e| FrameKeysError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &json, FILE_MODE).map_err(|source| FrameKeysError::Io { path, source })
}

/// The device's sending context for `keys` (its Flotta device id is bound
/// into every frame).
///
/// # Errors
/// [`FrameKeysError::Context`] if the device id is empty or longer than 253
/// bytes.
pub fn device_context(keys: &FrameKeys, device_id: &str) -> Result<FrameContext, FrameKeysError> {
    FrameContext::new(
        Role::Device,
        KeyId(keys.key_id),
        keys.epoch,
        &keys.master_secret,
        &keys.master_salt,
        device_id.as_bytes(),
    )
    .map_err(FrameKeysError::Context)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn keys(epoch: u32) -> FrameKeys {
        FrameKeys {
            key_id: [0xca, 0xfe, 0, 1],
            epoch,
            master_secret: [0x5a; 32],
            master_salt: vec![7; 8],
        }
    }

    #[test]
    fn store_load_replace_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        assert_eq!(held_epoch(dir.path()), None);
        store(dir.path(), &keys(1)).unwrap();
        store(dir.path(), &keys(2)).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(keys(2)));
        assert_eq!(held_epoch(dir.path()), Some(2));
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path(dir.path()).with_extension("tmp").exists());
    }

    #[test]
    fn reads_the_provisioned_json_and_never_prints_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let json = format!(
            r#"{{"keyId":"cafe0001","epoch":3,"masterSecret":"{}","masterSalt":"0707070707070707"}}"#,
            "5a".repeat(32)
        );
        std::fs::write(&file, json).unwrap();
        let k = load(dir.path()).unwrap().unwrap();
        assert_eq!(k, keys(3));
        let ctx = device_context(&k, "dev-1").unwrap();
        assert_eq!((ctx.key_id(), ctx.epoch()), (KeyId([0xca, 0xfe, 0, 1]), 3));
        assert!(!format!("{k:?} {ctx:?}").contains("5a5a"));
    }

    #[test]
    fn damaged_file_is_an_error_naming_no_secret_and_epoch_is_none() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), &keys(1)).unwrap();
        let file = path(dir.path());
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("cafe0001", "cafe01")).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(!err.is_retriable());
        let msg = err.to_string();
        assert!(
            msg.contains("expected 4 bytes") && !msg.contains("5a5a"),
            "{msg}"
        );
        assert_eq!(held_epoch(dir.path()), None, "the server sends keys again");
        std::fs::write(&file, vec![b' '; 5000]).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(FrameKeysError::Invalid { .. })
        ));
    }

    #[test]
    fn device_id_must_fit_the_frame_context() {
        assert!(matches!(
            device_context(&keys(1), ""),
            Err(FrameKeysError::Context(_))
        ));
        assert!(device_context(&keys(1), &"d".repeat(254)).is_err());
    }
}
