//! `vmsd backup` and `vmsd restore`: a consistent, versioned export of every record (ids and
//! id counters included, since they live in trees) to one file, and its import into an empty
//! data dir.
//!
//! The file is JSON lines: a header `{"format":"vmsd-backup","version":1,"schema_version":N,
//! "created_at":T}`, one `{"t":tree,"k":hex,"v":hex}` per record, and a trailer
//! `{"end":true,"records":N,"sha256":hex}` whose hash covers every line before it, so a
//! truncated or edited file is refused before anything is written. Hex keeps binary keys
//! (big-endian ids, token hashes) exact and the file greppable.
//!
//! Both run offline: sled's lock on the data dir makes them refuse while the daemon runs, and
//! that is what makes the export consistent across trees.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::app::STORE_CACHE_BYTES;
use crate::files;
use crate::model::now;
use crate::store::{Store, StoreError, SCHEMA_VERSION};

pub const FORMAT: &str = "vmsd-backup";
pub const VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u64,
    schema_version: u64,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    t: String,
    k: String,
    v: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
    sha256: String,
}

fn open_store(data_dir: &Path) -> Result<Store, String> {
    Store::open(data_dir, STORE_CACHE_BYTES).map_err(|e| open_failure(data_dir, &e))
}

fn open_failure(data_dir: &Path, e: &StoreError) -> String {
    format!(
        "cannot open the database in {} (is vmsd running? stop it first): {e}",
        data_dir.display()
    )
}

/// Writes every record of the store in `data_dir` to `file` (0600, written aside and renamed
/// into place so a failed backup never leaves a half file under the final name).
pub fn backup(data_dir: &Path, file: &Path) -> Result<u64, String> {
    if !data_dir.join("db").exists() {
        return Err(format!("no database in {}", data_dir.display()));
    }
    let store = open_store(data_dir)?;
    let partial = partial_path(file);
    let out = files::create_with_mode(&partial, files::PRIVATE)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let mut out = BufWriter::new(out);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut write_line = |line: String, out: &mut BufWriter<std::fs::File>| -> Result<(), String> {
        digest.update(line.as_bytes());
        digest.update(b"\n");
        writeln!(out, "{line}").map_err(|e| format!("cannot write {}: {e}", partial.display()))
    };
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        schema_version: SCHEMA_VERSION,
        created_at: now(),
    };
    write_line(to_line(&header)?, &mut out)?;
    let mut records = 0u64;
    for entry in store.export_entries() {
        let (tree, key, value) = entry.map_err(|e| e.to_string())?;
        let record = Record {
            t: tree.into(),
            k: hex::encode(key),
            v: hex::encode(value),
        };
        write_line(to_line(&record)?, &mut out)?;
        records += 1;
    }
    let trailer = Trailer {
        end: true,
        records,
        sha256: hex::encode(digest.finish()),
    };
    writeln!(out, "{}", to_line(&trailer)?).map_err(|e| e.to_string())?;
    let file_handle = out.into_inner().map_err(|e| e.to_string())?;
    file_handle.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&partial, file)
        .map_err(|e| format!("cannot move the backup into {}: {e}", file.display()))?;
    Ok(records)
}

/// Loads `file` into the store in `data_dir`, which must hold no data unless `force`, in
/// which case the existing database is moved aside to `db.replaced-<unix time>` first.
pub fn restore(data_dir: &Path, file: &Path, force: bool) -> Result<u64, String> {
    // First pass: the whole file must be intact before a single record is written.
    let expected = verify(file)?;
    let db = data_dir.join("db");
    if db.exists() {
        // A damaged database is what a restore is for: with --force it is moved aside like
        // one holding data. A database in use never is.
        let in_the_way = match Store::open(data_dir, STORE_CACHE_BYTES) {
            Ok(store) => (!store.is_empty()).then(|| "already holds data".to_owned()),
            Err(e @ StoreError::Locked) => return Err(open_failure(data_dir, &e)),
            Err(e) => Some(format!("holds a database that does not open ({e})")),
        };
        if let Some(why) = in_the_way {
            if !force {
                return Err(format!(
                    "{} {why}; restore into an empty data dir, or pass --force to move the current database aside",
                    data_dir.display()
                ));
            }
            let aside = data_dir.join(format!("db.replaced-{}", now()));
            std::fs::rename(&db, &aside)
                .map_err(|e| format!("cannot move {} aside: {e}", db.display()))?;
        }
    }
    files::create_private_dir(data_dir).map_err(|e| e.to_string())?;
    let store = open_store(data_dir)?;
    let reader = BufReader::new(std::fs::File::open(file).map_err(|e| e.to_string())?);
    let mut written = 0u64;
    for line in reader.lines().skip(1) {
        let line = line.map_err(|e| e.to_string())?;
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            break; // the trailer, already verified
        };
        let key = hex::decode(&record.k).map_err(|e| e.to_string())?;
        let value = hex::decode(&record.v).map_err(|e| e.to_string())?;
        store
            .import_entry(&record.t, &key, &value)
            .map_err(|e| e.to_string())?;
        written += 1;
    }
    store.flush_blocking().map_err(|e| e.to_string())?;
    if written != expected {
        return Err(format!(
            "restored {written} records, the backup holds {expected}"
        ));
    }
    Ok(written)
}

/// Checks the header, every record's shape and the trailer's count and hash; returns the count.
pub fn verify(file: &Path) -> Result<u64, String> {
    let reader = BufReader::new(
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
    );
    let mut lines = reader.lines();
    let bad = |what: &str| format!("{} is not a usable vmsd backup: {what}", file.display());
    let header_line = lines
        .next()
        .ok_or_else(|| bad("empty file"))?
        .map_err(|e| e.to_string())?;
    let header: Header = serde_json::from_str(&header_line).map_err(|_| bad("no header"))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(bad(&format!(
            "format {} version {}",
            header.format, header.version
        )));
    }
    if header.schema_version != SCHEMA_VERSION {
        return Err(bad(&format!(
            "schema version {}; this vmsd reads {SCHEMA_VERSION}",
            header.schema_version
        )));
    }
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(header_line.as_bytes());
    digest.update(b"\n");
    for (records, line) in (0u64..).zip(lines) {
        let line = line.map_err(|e| e.to_string())?;
        if let Ok(trailer) = serde_json::from_str::<Trailer>(&line) {
            if !trailer.end || trailer.records != records {
                return Err(bad("record count does not match the trailer"));
            }
            if trailer.sha256 != hex::encode(digest.finish()) {
                return Err(bad("checksum mismatch"));
            }
            return Ok(records);
        }
        let record: Record = serde_json::from_str(&line).map_err(|_| bad("malformed record"))?;
        if hex::decode(&record.k).is_err() || hex::decode(&record.v).is_err() {
            return Err(bad("malformed record"));
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    Err(bad("truncated (no trailer)"))
}

fn to_line<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuditEntry;
    use crate::permissions::{LicenseLevel, Pool};

    fn seeded(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let store = Store::open(dir, 1 << 20)?;
        let entry = AuditEntry {
            id: store.next_audit_id(),
            at: 1,
            actor_id: None,
            action: "x".into(),
            target_type: "account".into(),
            target_id: Some(1),
            fields: vec![],
        };
        store.write_blocking(|tx| {
            tx.next_id("account")?;
            tx.next_id("account")?;
            tx.put_pool(LicenseLevel::L2, &Pool { all: 5, used: 1 })?;
            tx.put_camera(&crate::model::test_camera(7, Some("site/door")))?;
            tx.put_camera(&crate::model::test_camera(8, None))?;
            tx.audit(&entry)
        })?;
        store.secret_or_insert(STREAM_KEY_NAME, &[7u8; 32])?;
        Ok(())
    }

    use crate::app::STREAM_KEY_SECRET as STREAM_KEY_NAME;

    #[test]
    fn round_trip_keeps_every_record_and_counter() -> Result<(), Box<dyn std::error::Error>> {
        let src = tempfile::tempdir()?;
        seeded(src.path())?;
        let file = src.path().join("b.vmsdb");
        let n = backup(src.path(), &file)?;
        assert!(n >= 4);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );

        let dst = tempfile::tempdir()?;
        assert_eq!(restore(dst.path(), &file, false)?, n);
        let (a, b) = (
            Store::open(src.path(), 1 << 20)?,
            Store::open(dst.path(), 1 << 20)?,
        );
        let left: Vec<_> = a.export_entries().collect::<Result<_, _>>()?;
        let right: Vec<_> = b.export_entries().collect::<Result<_, _>>()?;
        assert_eq!(left, right);
        // Counters came along: the next account id continues after the restored ones.
        let next = b.write_blocking(|tx| tx.next_id("account"))?;
        assert_eq!(next, 3);
        assert_eq!(b.next_audit_id(), 2);
        // The stream token key and the media path index came along (SPEC §8): a restored box
        // keeps checking the tokens it issued, and its paths name the same cameras.
        assert_eq!(
            b.secret_or_insert(STREAM_KEY_NAME, &[0u8; 32])?,
            vec![7u8; 32]
        );
        assert_eq!(b.camera_id_by_media_path("site/door")?, Some(7));
        assert_eq!(b.camera_id_by_media_path("cam8")?, Some(8));
        assert_eq!(b.camera_id_by_media_path("cam7")?, None);
        Ok(())
    }

    #[test]
    fn restore_refuses_damaged_files_and_non_empty_targets(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let src = tempfile::tempdir()?;
        seeded(src.path())?;
        let file = src.path().join("b.vmsdb");
        backup(src.path(), &file)?;
        let text = std::fs::read_to_string(&file)?;

        let truncated = src.path().join("t.vmsdb");
        let cut: Vec<&str> = text.lines().collect();
        std::fs::write(&truncated, cut[..cut.len() - 1].join("\n"))?;
        let dst = tempfile::tempdir()?;
        assert!(restore(dst.path(), &truncated, false).is_err_and(|e| e.contains("truncated")));
        assert!(
            !dst.path().join("db").exists(),
            "nothing written for a bad file"
        );

        let edited = src.path().join("e.vmsdb");
        std::fs::write(
            &edited,
            text.replacen("\"t\":\"counters\"", "\"t\":\"accounts\"", 1),
        )?;
        assert!(restore(dst.path(), &edited, false).is_err_and(|e| e.contains("checksum")));

        // The source itself is not empty: refused without --force, moved aside with it.
        assert!(restore(src.path(), &file, false).is_err_and(|e| e.contains("already holds data")));
        assert!(restore(src.path(), &file, true).is_ok());
        let moved = std::fs::read_dir(src.path())?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("db.replaced-"));
        assert!(moved);
        Ok(())
    }
}
