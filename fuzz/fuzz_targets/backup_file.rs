//! `backup::verify` on arbitrary files: `vmsd restore` runs it over the whole file before it
//! writes a single record, so it must refuse anything damaged with a message, never panic,
//! and only accept a file whose trailer counts and hashes exactly the records before it.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = match tempfile::NamedTempFile::new() {
        Ok(f) => f,
        Err(e) => panic!("no temporary file: {e}"),
    };
    if let Err(e) = file.write_all(data).and_then(|()| file.flush()) {
        panic!("cannot write the temporary file: {e}");
    }
    match vmsd::backup::verify(file.path()) {
        Ok(records) => {
            // Accepted: the line after the header and `records` records is a trailer that
            // counts them.
            let text = String::from_utf8_lossy(data);
            let trailer = text
                .lines()
                .nth(records as usize + 1)
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
            let trailer = trailer.unwrap_or_default();
            assert_eq!(trailer["end"], true, "{records} records");
            assert_eq!(trailer["records"], records);
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
