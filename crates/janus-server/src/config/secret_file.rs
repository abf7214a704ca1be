//! `cluster.secret_file`: a cluster secret kept in a file that nodes share,
//! created with a random secret by whichever node starts first.

use std::io::Write as _;
use std::path::Path;

/// Random bytes in a generated secret (shown as hex: 64 characters).
const GENERATED_BYTES: usize = 32;

/// The text of `file`; when it does not exist, first creates it (and its
/// directory) holding a new random secret, readable by its owner only,
/// and says so (`true`). Nodes starting at once agree: the file appears
/// whole (a hard link to a complete temporary file), and only the first
/// link succeeds.
pub(crate) fn read_or_create(file: &Path) -> std::io::Result<(String, bool)> {
    match std::fs::read_to_string(file) {
        Ok(text) => return Ok((text, false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut random = [0u8; GENERATED_BYTES];
    rand::Rng::fill(&mut rand::rng(), &mut random[..]);
    let secret: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let temporary = file.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut out| {
        out.write_all(format!("{secret}\n").as_bytes())?;
        out.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, file) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    });
    // The temporary name goes either way; the file (ours or another node's) stays.
    let _ = std::fs::remove_file(&temporary);
    let created = linked?;
    Ok((std::fs::read_to_string(file)?, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_call_creates_a_private_random_secret_and_later_ones_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shared/cluster-secret");
        let (first, created) = read_or_create(&file).unwrap();
        assert!(created);
        assert_eq!(first.trim().len(), 2 * GENERATED_BYTES);
        assert!(first.trim().bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
        assert_eq!(read_or_create(&file).unwrap(), (first.clone(), false), "a second node reads the same secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(read_or_create(&other.path().join("s")).unwrap().0, first, "each new file gets a new secret");
        let left: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn an_existing_secret_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster-secret");
        std::fs::write(&file, "my-own-cluster-secret-0001\n").unwrap();
        assert_eq!(read_or_create(&file).unwrap(), ("my-own-cluster-secret-0001\n".to_owned(), false));
    }
}
