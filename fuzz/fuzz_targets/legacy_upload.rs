//! The legacy upload framing: `X-Meta-Length` (up to the first newline of
//! the input), then that many bytes of metadata. Never panics; accepted
//! lengths are in bounds; accepted metadata round-trips; a path failure is
//! only reported for well-formed JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::legacy::{
    MAX_META_LENGTH, UploadFramingError, decode_upload_meta, parse_meta_length,
};

fn check_meta(bytes: &[u8]) {
    match decode_upload_meta(bytes) {
        Ok(meta) => {
            let again = serde_json::to_vec(&meta).unwrap();
            let back = decode_upload_meta(&again).unwrap();
            assert_eq!(back.path, meta.path);
            assert_eq!(back.base_sha, meta.base_sha);
        }
        Err(UploadFramingError::InvalidPath(err)) => {
            assert!(serde_json::from_slice::<serde_json::Value>(bytes).is_ok());
            assert!(
                err.to_string()
                    .starts_with(sf_protocol::path::PATH_ERROR_PREFIX)
            );
        }
        Err(UploadFramingError::InvalidMeta(detail)) => assert!(!detail.is_empty()),
        Err(other) => panic!("metadata decoding gave a header error: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    match parse_meta_length(Some(header)) {
        Ok(n) => {
            assert!((1..=MAX_META_LENGTH).contains(&n));
            let text = std::str::from_utf8(header).unwrap();
            assert_eq!(text.trim().parse::<u64>().ok(), Some(n));
            let n = usize::try_from(n).unwrap();
            if body.len() >= n {
                check_meta(&body[..n]);
            }
        }
        Err(UploadFramingError::BadMetaLength) => {}
        Err(other) => panic!("a present header gave {other:?}"),
    }
    check_meta(data);
});
