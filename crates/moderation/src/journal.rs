//! Append-only line files that a crash cannot corrupt: the resumable `scores.jsonl` of `modrl
//! eval` ([`crate::eval::ScoresWriter`]) and the results (or Parquet journal) of `modrl classify`
//! are both a [`LineJournal`].
//!
//! [`LineJournal::open`] reads the file and hands its bytes to the caller, who validates them
//! before anything is changed (a bad line leaves the file as it was). A last segment without its
//! newline is a write cut short: the caller says whether it is nevertheless a complete line (it
//! then gets its newline) or not (the file is truncated to the last newline, and the segment
//! returned so the caller can say what it dropped). A blank tail is truncated. Each
//! [`LineJournal::append`] writes one line and flushes it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An I/O error on a journal, naming the file and the operation.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot {op}: {source}", path.display())]
pub struct JournalError {
    pub path: PathBuf,
    pub op: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// An open append-only line file.
#[derive(Debug)]
pub struct LineJournal {
    path: PathBuf,
    file: File,
}

/// What [`LineJournal::open`] found.
#[derive(Debug)]
pub struct Reopened {
    pub journal: LineJournal,
    /// The file's content after repair: newline-terminated lines only.
    pub bytes: Vec<u8>,
    /// A non-blank unterminated last segment that was cut off.
    pub dropped: Option<Vec<u8>>,
}

/// The byte length of the newline-terminated part of `bytes`.
pub fn complete_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

impl LineJournal {
    /// Opens (creating if needed) `path` for appending. `inspect` sees the whole content first: an
    /// error leaves the file untouched and is returned; otherwise it says whether a non-blank last
    /// segment without a newline is a complete line to keep.
    pub fn open<E: From<JournalError>>(
        path: &Path,
        inspect: impl FnOnce(&[u8]) -> Result<bool, E>,
    ) -> Result<Reopened, E> {
        let err = |op| {
            move |source| JournalError {
                path: path.to_path_buf(),
                op,
                source,
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err("open"))?;
        let mut bytes = vec![];
        file.read_to_end(&mut bytes).map_err(err("read"))?;
        let keep = inspect(&bytes)?;
        let complete = complete_len(&bytes);
        let mut dropped = None;
        if complete < bytes.len() {
            let tail = &bytes[complete..];
            if !tail.iter().all(u8::is_ascii_whitespace) && keep {
                file.seek(SeekFrom::End(0)).map_err(err("seek"))?;
                file.write_all(b"\n").map_err(err("write"))?;
                bytes.push(b'\n');
            } else {
                if !tail.iter().all(u8::is_ascii_whitespace) {
                    dropped = Some(tail.to_vec());
                }
                file.set_len(complete as u64).map_err(err("truncate"))?;
                bytes.truncate(complete);
            }
        }
        file.seek(SeekFrom::End(0)).map_err(err("seek"))?;
        file.flush().map_err(err("write"))?;
        Ok(Reopened {
            journal: LineJournal {
                path: path.to_path_buf(),
                file,
            },
            bytes,
            dropped,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline, and flushes.
    pub fn append(&mut self, line: &[u8]) -> Result<(), JournalError> {
        let mut b = Vec::with_capacity(line.len() + 1);
        b.extend_from_slice(line);
        b.push(b'\n');
        self.file
            .write_all(&b)
            .and_then(|_| self.file.flush())
            .map_err(|source| self.error("write", source))
    }

    /// Empties the file (e.g. to start a CSV over with its header).
    pub fn clear(&mut self) -> Result<(), JournalError> {
        self.file
            .set_len(0)
            .and_then(|_| self.file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|source| self.error("truncate", source))
    }

    /// Forces what was written to disk.
    pub fn sync(&self) -> Result<(), JournalError> {
        self.file
            .sync_data()
            .map_err(|source| self.error("sync", source))
    }

    fn error(&self, op: &'static str, source: std::io::Error) -> JournalError {
        JournalError {
            path: self.path.clone(),
            op,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path, keep: bool) -> Reopened {
        LineJournal::open::<JournalError>(path, |_| Ok(keep)).unwrap()
    }

    #[test]
    fn a_cut_tail_is_kept_or_dropped_as_the_caller_says() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        std::fs::write(&p, "a\nb\npart").unwrap();
        let r = open(&p, false);
        assert_eq!(r.bytes, b"a\nb\n");
        assert_eq!(r.dropped.as_deref(), Some(&b"part"[..]));
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n");

        std::fs::write(&p, "a\nwhole").unwrap();
        let mut r = open(&p, true);
        assert_eq!(r.bytes, b"a\nwhole\n");
        assert!(r.dropped.is_none());
        r.journal.append(b"c").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nwhole\nc\n");

        // A blank tail goes whatever the caller says; a new file is empty.
        std::fs::write(&p, "a\n  ").unwrap();
        assert_eq!(open(&p, true).bytes, b"a\n");
        assert_eq!(std::fs::read(&p).unwrap(), b"a\n");
        let q = dir.path().join("new.jsonl");
        assert!(open(&q, false).bytes.is_empty());
    }

    #[test]
    fn an_inspection_error_leaves_the_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        std::fs::write(&p, "bad\npart").unwrap();
        #[derive(Debug)]
        struct Bad;
        impl From<JournalError> for Bad {
            fn from(_: JournalError) -> Bad {
                Bad
            }
        }
        assert!(LineJournal::open(&p, |_| Err::<bool, Bad>(Bad)).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"bad\npart");
    }
}
