//! Files only their owner may read: the databases (readings, users, sessions and key hashes)
//! and the folders the server makes for them.

use std::io;
use std::path::Path;

/// Makes `path` a file only its owner reads and writes (0600): created so if missing (empty,
/// as redb wants a new database), narrowed if it exists.
pub fn private_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Creates `dir` (and its parents) if missing; one it creates only its owner may enter (0700).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_old_files_end_up_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("data");
        private_dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        let fresh = sub.join("a.redb");
        private_file(&fresh).unwrap();
        assert_eq!((mode(&fresh), std::fs::metadata(&fresh).unwrap().len()), (0o600, 0));
        let old = sub.join("b.redb");
        std::fs::write(&old, b"kept").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&old).unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read(&old).unwrap(), b"kept");
    }
}
