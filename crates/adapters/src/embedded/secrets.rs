//! Secrets as owner-only files under `<data dir>/secrets/`, one file per secret.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use shipwatch_service::model::{SecretName, SecretValue};
use shipwatch_service::ports::{SecretStore, StoreError, StoreResult};

use super::{EmbeddedError, prepare_private_dir, set_mode};

/// Folder of the secret files inside the data folder.
pub const SECRETS_FOLDER: &str = "secrets";

/// Longest file name most file systems accept.
const MAX_FILE_NAME: usize = 255;

/// [`SecretStore`] on files: 0600 files in a 0700 folder, replaced atomically (temp file + rename).
#[derive(Clone)]
pub struct EmbeddedSecretStore {
    folder: PathBuf,
}

impl std::fmt::Debug for EmbeddedSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSecretStore")
            .field("folder", &self.folder)
            .finish()
    }
}

impl EmbeddedSecretStore {
    /// Uses `<dir>/secrets/`, creating both folders owner-only.
    pub fn open(dir: &Path) -> Result<Self, EmbeddedError> {
        prepare_private_dir(dir)?;
        let folder = dir.join(SECRETS_FOLDER);
        prepare_private_dir(&folder)?;
        Ok(Self { folder })
    }

    fn path_of(&self, name: &SecretName) -> StoreResult<PathBuf> {
        let file_name = file_name_for(name.as_str());
        if file_name.len() > MAX_FILE_NAME {
            return Err(StoreError::Unavailable(
                "secret name too long for a file name".to_owned(),
            ));
        }
        Ok(self.folder.join(file_name))
    }
}

/// Maps a secret name to one flat file name: `a-z`, `0-9` and `-` stay, every other byte becomes
/// `_XX` (hex). The result has no `/`, no `.` and no upper case, so it cannot leave the folder,
/// cannot collide with the `.tmp-` files, and stays distinct on case-insensitive file systems.
pub fn file_name_for(name: &str) -> String {
    let mut file_name = String::with_capacity(name.len() + 16);
    for byte in name.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
            file_name.push(char::from(byte));
        } else {
            file_name.push_str(&format!("_{byte:02x}"));
        }
    }
    file_name
}

fn io_error(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    // The error names the operation and the OS reason, never the value.
    move |e| StoreError::Unavailable(format!("{operation}: {e}"))
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn write_atomically(folder: &Path, target: &Path, value: &[u8]) -> std::io::Result<()> {
    let temporary = folder.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut file = create_private_file(&temporary)?;
        // Also right when a umask or an old file would say otherwise.
        set_mode(&temporary, 0o600)?;
        file.write_all(value)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)
    })();
    if written.is_err() {
        // Best effort: a leftover temp file holds the value, so do not leave it behind.
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    // Make the rename itself durable.
    std::fs::File::open(folder).and_then(|dir| dir.sync_all())
}

#[async_trait]
impl SecretStore for EmbeddedSecretStore {
    async fn put_secret(&self, name: &SecretName, value: &SecretValue) -> StoreResult<()> {
        let target = self.path_of(name)?;
        let folder = self.folder.clone();
        let value = value.clone();
        tokio::task::spawn_blocking(move || {
            write_atomically(&folder, &target, value.expose().as_bytes())
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("secret write task failed: {e}")))?
        .map_err(io_error("write secret"))
    }

    async fn get_secret(&self, name: &SecretName) -> StoreResult<Option<SecretValue>> {
        let path = self.path_of(name)?;
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(|text| Some(SecretValue::new(text)))
                .map_err(|_| StoreError::Corrupt("secret file is not UTF-8".to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read secret")(e)),
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("secret read task failed: {e}")))?
    }

    async fn delete_secret(&self, name: &SecretName) -> StoreResult<()> {
        let path = self.path_of(name)?;
        tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete secret")(e)),
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("secret delete task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::file_name_for;

    #[test]
    fn file_names_cannot_escape_the_folder() {
        let name = file_name_for("shipwatch/../../etc/passwd");
        assert!(!name.contains('/'));
        assert!(!name.contains('.'));
        assert_eq!(file_name_for("a/b"), "a_2fb");
        assert_ne!(file_name_for("A"), file_name_for("a"));
    }
}
