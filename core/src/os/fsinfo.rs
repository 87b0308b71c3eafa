//! Free space of a filesystem, for the disk engine (which refuses to create
//! a segment below `store.min_free`) and `ringcast doctor`.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes an unprivileged writer may still use on the filesystem holding
/// `path` (`statvfs`: available blocks × fragment size).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated path and `st` a zeroed statvfs the
    // call fills; nothing is kept past the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temp_dir_has_some_and_a_missing_path_is_an_error() {
        assert!(free_bytes(&std::env::temp_dir()).expect("statvfs") > 0);
        assert!(free_bytes(Path::new("/no/such/path/ringcast")).is_err());
    }
}
