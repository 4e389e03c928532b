//! Writing a file whole: to a temporary sibling, then renamed over the target, so that a reader
//! never sees half a file and a failed write leaves any existing file as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, flushed to disk,
/// then renamed), creating the parent directory if it is missing. The file gets the mode any new
/// file gets (0666 less the umask: usually 0644), like `std::fs::write`.
///
/// # Errors
/// [`Error::Io`] naming the file (or directory) that could not be written.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let temporary = temporary_sibling(path);
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(Error::io(path, source));
    }
    Ok(())
}

/// `dir/.name.gradflow-<pid>-<n>.tmp` beside `path`.
fn temporary_sibling(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.gradflow-{}-{unique}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_whole_file_with_the_usual_mode_and_replaces_an_old_one() {
        let dir = std::env::temp_dir().join(format!("gradflow-atomic-{}", std::process::id()));
        let path = dir.join("sub").join("out.bin");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // What a plain `File::create` gives under this process's umask.
            let reference = dir.join("reference");
            std::fs::write(&reference, b"").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&reference));
            assert_ne!(mode(&path) & 0o044, 0, "readable by others, not 0600");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_names_the_file_and_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("gradflow-atomic-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The target is a directory: the rename fails.
        let target = dir.join("taken");
        std::fs::create_dir_all(target.join("inside")).unwrap();
        let err = write_atomically(&target, b"x").unwrap_err();
        assert!(matches!(&err, Error::Io { path, .. } if path == &target), "{err}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
