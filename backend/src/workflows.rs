//! The workflow catalog (SPEC §9): every executable file in the workflows
//! directory is a workflow, its id the file name without extension and its
//! description the file's first comment line.
//!
//! The directory is read again on every call, so a workflow added or removed
//! while the manager runs is seen at once; there is no cache to go stale.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use shared::api::Workflow;

/// The example workflows shipped in the repository (`workflows/`): what the
/// tests and the bench run.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows");

/// How much of a program is read to find its description: a header comment
/// sits at the top, and a large binary must not be read whole.
pub const DESCRIPTION_READ_LIMIT: u64 = 4096;

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The workflows directory is missing or unreadable.
    #[error("cannot read the workflows directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// The workflows in one directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
}

/// A workflow found in the directory: its id and its program.
struct Entry {
    id: String,
    path: PathBuf,
}

impl Catalog {
    /// The catalog of `dir` (`--workflows DIR`); nothing is read until asked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory this catalog reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every workflow, sorted by id.
    pub fn list(&self) -> Result<Vec<Workflow>, CatalogError> {
        let entries = self.entries()?;
        Ok(entries
            .into_iter()
            .map(|entry| Workflow { description: description_of(&entry.path), id: entry.id })
            .collect())
    }

    /// How many workflows there are (without reading their descriptions).
    pub fn count(&self) -> Result<usize, CatalogError> {
        Ok(self.entries()?.len())
    }

    /// The program of workflow `id`, or `None` if the catalog has no such
    /// workflow now. An id that could name a path outside the directory
    /// (`/`, `..`, NUL) or a hidden file is never found.
    pub fn find(&self, id: &str) -> Result<Option<PathBuf>, CatalogError> {
        if !is_plain_id(id) {
            return Ok(None);
        }
        Ok(self.entries()?.into_iter().find(|entry| entry.id == id).map(|entry| entry.path))
    }

    /// The workflows in the directory, sorted by id, one per id: when two files
    /// share an id (`deploy.sh`, `deploy.py`) the first file name in byte order
    /// wins, so the choice does not depend on the order the system lists them in.
    fn entries(&self) -> Result<Vec<Entry>, CatalogError> {
        let read_dir = |source| CatalogError::ReadDir { dir: self.dir.clone(), source };
        let mut found: Vec<(String, Entry)> = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(read_dir)? {
            let item = item.map_err(read_dir)?;
            let file_name = item.file_name();
            // Ids are text (they go into JSON and URLs); other names are not workflows.
            let Some(name) = file_name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let path = item.path();
            // `metadata` follows a symbolic link: a link to a program is a workflow.
            match fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 => {}
                Ok(_) => continue,
                // Removed since it was listed, or a dangling link: not a workflow.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "skipping a workflow that cannot be examined");
                    continue;
                }
            }
            let id = Path::new(name).file_stem().and_then(|stem| stem.to_str()).unwrap_or(name).to_owned();
            found.push((name.to_owned(), Entry { id, path }));
        }
        found.sort_by(|(name_a, a), (name_b, b)| a.id.cmp(&b.id).then_with(|| name_a.cmp(name_b)));
        found.dedup_by(|(_, later), (_, first)| later.id == first.id);
        Ok(found.into_iter().map(|(_, entry)| entry).collect())
    }
}

/// An id that can only name a file directly inside the directory.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && !id.starts_with('.') && !id.contains(['/', '\0']) && !id.contains("..")
}

/// The first non-empty comment line of `path` after its `#!` line, `""` if
/// there is none or the file cannot be read: one unreadable program must not
/// hide the rest of the catalog.
fn description_of(path: &Path) -> String {
    let mut head = Vec::new();
    let read = File::open(path).and_then(|file| file.take(DESCRIPTION_READ_LIMIT).read_to_end(&mut head));
    if let Err(error) = read {
        tracing::warn!(path = %path.display(), %error, "cannot read a workflow's description");
        return String::new();
    }
    description_in(&String::from_utf8_lossy(&head))
}

/// The description in a program's first bytes (see [`description_of`]).
fn description_in(head: &str) -> String {
    head.lines()
        .enumerate()
        .filter(|(number, line)| !(*number == 0 && line.starts_with("#!")))
        .filter_map(|(_, line)| line.trim_start().strip_prefix('#'))
        .map(|comment| comment.trim_start_matches('#').trim())
        .find(|comment| !comment.is_empty())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write a test workflow");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("set its mode");
        path
    }

    fn ids(catalog: &Catalog) -> Vec<String> {
        catalog.list().expect("list").into_iter().map(|workflow| workflow.id).collect()
    }

    #[test]
    fn lists_executable_files_sorted_by_id_without_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "upgrade", "#!/bin/sh\n# Upgrades.\n", 0o755);
        write(dir.path(), "install.sh", "#!/bin/sh\n# Installs.\n", 0o700);
        write(dir.path(), "heal.py", "#!/usr/bin/env python3\n# Heals.\n", 0o750);
        let catalog = Catalog::new(dir.path());
        assert_eq!(
            catalog.list().expect("list"),
            vec![
                Workflow { id: "heal".into(), description: "Heals.".into() },
                Workflow { id: "install".into(), description: "Installs.".into() },
                Workflow { id: "upgrade".into(), description: "Upgrades.".into() },
            ]
        );
    }

    #[test]
    fn ignores_non_executable_files_directories_and_hidden_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "install", "#!/bin/sh\n", 0o755);
        write(dir.path(), "README.md", "# Not a workflow\n", 0o644);
        write(dir.path(), ".hidden", "#!/bin/sh\n", 0o755);
        let subdir = dir.path().join("lib");
        fs::create_dir(&subdir).expect("mkdir");
        fs::set_permissions(&subdir, fs::Permissions::from_mode(0o755)).expect("chmod");
        symlink(dir.path().join("missing"), dir.path().join("dangling")).expect("symlink");
        let catalog = Catalog::new(dir.path());
        assert_eq!(ids(&catalog), ["install"]);
        assert_eq!(catalog.find("README").expect("find"), None);
        assert_eq!(catalog.find("lib").expect("find"), None);
        assert_eq!(catalog.find(".hidden").expect("find"), None);
    }

    #[test]
    fn a_link_to_a_program_is_a_workflow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = write(dir.path(), ".real-scale", "#!/bin/sh\n# Scales.\n", 0o755);
        symlink(&target, dir.path().join("scale")).expect("symlink");
        let catalog = Catalog::new(dir.path());
        assert_eq!(catalog.list().expect("list"), [Workflow { id: "scale".into(), description: "Scales.".into() }]);
    }

    #[test]
    fn two_files_with_one_id_are_one_workflow_the_first_name_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "deploy.sh", "#!/bin/sh\n# From sh.\n", 0o755);
        write(dir.path(), "deploy.py", "#!/usr/bin/env python3\n# From python.\n", 0o755);
        let catalog = Catalog::new(dir.path());
        assert_eq!(
            catalog.list().expect("list"),
            [Workflow { id: "deploy".into(), description: "From python.".into() }]
        );
        assert_eq!(catalog.find("deploy").expect("find"), Some(dir.path().join("deploy.py")));
    }

    #[test]
    fn find_rereads_the_directory_so_a_removed_workflow_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Catalog::new(dir.path());
        assert_eq!(catalog.find("heal").expect("find"), None);
        let path = write(dir.path(), "heal.sh", "#!/bin/sh\n", 0o755);
        assert_eq!(catalog.find("heal").expect("find"), Some(path.clone()));
        fs::remove_file(&path).expect("remove");
        assert_eq!(catalog.find("heal").expect("find"), None);
        assert!(ids(&catalog).is_empty());
    }

    #[test]
    fn an_id_that_could_leave_the_directory_is_never_found() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("workflows");
        fs::create_dir(&dir).expect("mkdir");
        write(root.path(), "outside", "#!/bin/sh\n", 0o755);
        write(&dir, "install", "#!/bin/sh\n", 0o755);
        let catalog = Catalog::new(&dir);
        for id in ["../outside", "..", "./install", "/bin/sh", "install\0", "", "sub/install"] {
            assert_eq!(catalog.find(id).expect("find"), None, "{id:?}");
        }
        assert_eq!(catalog.find("install").expect("find"), Some(dir.join("install")));
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let catalog = Catalog::new(root.path().join("nope"));
        let error = catalog.list().expect_err("missing dir");
        assert!(matches!(&error, CatalogError::ReadDir { source, .. } if source.kind() == io::ErrorKind::NotFound));
        assert!(error.to_string().contains("nope"), "{error}");
        assert!(catalog.find("install").is_err());
    }

    #[test]
    fn the_description_is_the_first_comment_after_the_shebang() {
        assert_eq!(description_in("#!/bin/sh\n# Installs it.\n# More.\n"), "Installs it.");
        assert_eq!(description_in("#!/bin/sh\n\nset -e\n  #   Indented, trimmed.  \n"), "Indented, trimmed.");
        assert_eq!(description_in("#!/bin/sh\n#\n## Heading style\n"), "Heading style");
        assert_eq!(description_in("# No shebang\n"), "No shebang");
        assert_eq!(description_in("#!/bin/sh\necho hi\n"), "");
        assert_eq!(description_in(""), "");
        assert_eq!(description_in("#!/bin/sh\r\n# Windows line ends\r\n"), "Windows line ends");
    }

    #[test]
    fn only_the_head_of_a_program_is_read_for_its_description() {
        let dir = tempfile::tempdir().expect("tempdir");
        let filler = "x".repeat(usize::try_from(DESCRIPTION_READ_LIMIT).expect("small"));
        write(dir.path(), "big", &format!("#!/bin/sh\n{filler}\n# Too far down.\n"), 0o755);
        write(dir.path(), "binary", "\u{7f}ELF\0\0\u{1}garbage\n", 0o755);
        let catalog = Catalog::new(dir.path());
        let listed = catalog.list().expect("list");
        assert!(listed.iter().all(|workflow| workflow.description.is_empty()), "{listed:?}");
    }

    #[test]
    fn the_shipped_workflows_are_listed_with_descriptions() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        let listed = Catalog::new(dir).list().expect("list the shipped workflows");
        let ids: Vec<&str> = listed.iter().map(|workflow| workflow.id.as_str()).collect();
        assert_eq!(ids, ["heal", "install", "scale", "uninstall", "upgrade"]);
        assert!(listed.iter().all(|workflow| !workflow.description.is_empty()), "{listed:?}");
    }
}
