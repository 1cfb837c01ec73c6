//! Files vmsd writes outside sled: created with their final mode from the start, so that a
//! secret (a private key, the first admin's password, a backup) is never readable by others,
//! not even between create and chmod; and the private directories they live in.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of everything only vmsd may read.
pub const PRIVATE: u32 = 0o600;

/// Creates `dir` (and missing parents) readable by its owner only; an existing one is left
/// as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Opens `path` for writing as a new, empty file of mode `mode`. `create_new` applies the mode
/// only to a file it creates, so a leftover is removed first; the umask may clear bits of a
/// public file (a certificate), so the exact mode is set again.
pub fn create_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// Writes `contents` as a new file of mode `mode` and flushes it to disk.
pub fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = create_with_mode(path, mode)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Writes a file that only its owner may read.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_with_mode(path, contents, PRIVATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> io::Result<u32> {
        Ok(fs::metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn files_get_their_mode_and_replace_leftovers() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let secret = dir.path().join("secret");
        fs::write(&secret, b"an old, longer, world-readable leftover")?;
        fs::set_permissions(&secret, Permissions::from_mode(0o644))?;
        write_private(&secret, b"new")?;
        assert_eq!(
            (fs::read(&secret)?, mode(&secret)?),
            (b"new".to_vec(), 0o600)
        );
        let public = dir.path().join("public");
        write_with_mode(&public, b"cert", 0o644)?;
        assert_eq!(mode(&public)?, 0o644);
        let nested = dir.path().join("a/b");
        create_private_dir(&nested)?;
        assert_eq!(
            (mode(&dir.path().join("a"))?, mode(&nested)?),
            (0o700, 0o700)
        );
        Ok(())
    }
}
