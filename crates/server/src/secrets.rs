//! Secrets the embedded default generates once and keeps under `DATA_DIR` (mode 0600): the JWT
//! secret of development (`<data>/jwt-secret`) and the key of local presigned URLs
//! (`<data>/presign-secret`).

use std::{
    io::{self, Write},
    path::Path,
};

use rand::RngCore;

/// File name of the generated JWT secret under the data directory.
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// File name of the generated presign key under the data directory.
pub const PRESIGN_SECRET_FILE: &str = "presign-secret";

/// Bytes of randomness of a generated secret (written as hex: 64 characters).
const SECRET_BYTES: usize = 32;

/// The secret stored at `path`, created (random, hex, mode 0600) when missing.
///
/// Creation is race-free: the secret is written to a temporary file, then linked to `path`,
/// which fails if another process got there first (its secret is then read and used). Blocking
/// file I/O: call it at start-up, outside the runtime or in `spawn_blocking`.
///
/// # Errors
/// The directory or the file cannot be created or read, or the file is empty.
pub fn load_or_create(path: &Path) -> io::Result<String> {
    if let Some(secret) = read_existing(path)? {
        return Ok(secret);
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        hex::encode(rand::random::<[u8; 8]>())
    ));
    let written = (|| {
        let mut file = open_private(&temp)?;
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    })();
    let published = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match published {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(secret)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_existing(path)?
            .ok_or_else(|| io::Error::other(format!("{} is empty", path.display()))),
        Err(e) => Err(e),
    }
}

fn read_existing(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.is_empty() {
                return Err(io::Error::other(format!(
                    "{} is empty: delete it to have a new secret generated",
                    path.display()
                )));
            }
            warn_if_readable_by_others(path);
            Ok(Some(secret.to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "a secret file is readable by other users: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/jwt-secret");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(load_or_create(&path).unwrap(), first);
        // No temporary file is left.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("jwt-secret")]);
    }

    #[test]
    fn concurrent_creators_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let secrets: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(secrets.iter().all(|s| *s == secrets[0]), "{secrets:?}");
    }

    #[test]
    fn an_empty_file_is_an_error_not_a_blank_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "\n").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
