//! Where PostgreSQL's programs are.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::HarnessError;

/// The programs the harness runs; a directory counts only if it has them all.
const PROGRAMS: [&str; 3] = ["initdb", "postgres", "psql"];

/// Debian installs each major version's programs in `<this>/<version>/bin`.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The directory of PostgreSQL's programs: `$PG_BIN` if set; else the real
/// directory of the `initdb` found on `PATH` (symlinks followed), if `postgres`
/// and `psql` are beside it; else the highest version's `/usr/lib/postgresql/*/bin`.
pub fn bin_dir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_programs(&dir) {
            Ok(dir)
        } else {
            Err(HarnessError::BinariesNotFound { looked: format!("PG_BIN={} lacks one", dir.display()) })
        };
    }
    if let Some(dir) = std::env::var_os("PATH").as_deref().and_then(initdb_dir_on_path) {
        return Ok(dir);
    }
    let versions = std::fs::read_dir(DEBIAN_ROOT)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versions: Vec<&OsStr> = versions.iter().map(|name| name.as_os_str()).collect();
    versions.sort_by_key(|name| version_key(name));
    versions
        .iter()
        .rev()
        .map(|version| Path::new(DEBIAN_ROOT).join(version).join("bin"))
        .find(|dir| has_programs(dir))
        .ok_or_else(|| HarnessError::BinariesNotFound {
            looked: format!("not beside an initdb on PATH, nor in {DEBIAN_ROOT}/*/bin"),
        })
}

/// The real directory of the first `initdb` on `path`, if it has the other programs.
fn initdb_dir_on_path(path: &OsStr) -> Option<PathBuf> {
    let initdb = std::env::split_paths(path).map(|dir| dir.join("initdb")).find(|initdb| initdb.is_file())?;
    // `/usr/local/bin/initdb` may be a lone symlink into the real directory.
    let dir = initdb.canonicalize().ok()?.parent()?.to_path_buf();
    has_programs(&dir).then_some(dir)
}

fn has_programs(dir: &Path) -> bool {
    PROGRAMS.iter().all(|program| dir.join(program).is_file())
}

/// Orders Debian's version directories numerically ("9.6" < "15"); names that
/// are not versions sort first, so they are tried last.
fn version_key(name: &OsStr) -> Vec<u32> {
    name.to_str()
        .and_then(|name| name.split('.').map(|part| part.parse().ok()).collect::<Option<Vec<u32>>>())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically_with_non_versions_first() {
        let mut names = ["15", "9.6", "common", "10", "16.1"].map(OsStr::new);
        names.sort_by_key(|name| version_key(name));
        assert_eq!(names, ["common", "9.6", "10", "15", "16.1"].map(OsStr::new));
    }

    #[test]
    fn finds_the_real_directory_behind_a_symlinked_initdb() {
        let real = tempfile::tempdir().unwrap();
        for program in PROGRAMS {
            std::fs::write(real.path().join(program), "").unwrap();
        }
        let linked = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(real.path().join("initdb"), linked.path().join("initdb")).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([empty.path(), linked.path()]).unwrap();

        assert_eq!(initdb_dir_on_path(&path), Some(real.path().canonicalize().unwrap()));
    }

    #[test]
    fn an_initdb_without_postgres_beside_it_does_not_count() {
        let lone = tempfile::tempdir().unwrap();
        std::fs::write(lone.path().join("initdb"), "").unwrap();
        assert_eq!(initdb_dir_on_path(lone.path().as_os_str()), None);
    }
}
