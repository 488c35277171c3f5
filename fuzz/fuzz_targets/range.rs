//! `Range` parsing against a reference model in u128 arithmetic: never
//! panics or overflows, and a served range is always non-empty and inside
//! the content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::range::{RangeRequest, parse_range};

/// `1*DIGIT`, saturating into u128 (more than any u64).
fn number(raw: &str) -> Option<u128> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.bytes().fold(0u128, |n, b| {
        n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    }))
}

/// Exact order of two decimals of any length, digit by digit.
fn less(a: &str, b: &str) -> bool {
    let a: Vec<u8> = a.bytes().skip_while(|&d| d == b'0').collect();
    let b: Vec<u8> = b.bytes().skip_while(|&d| d == b'0').collect();
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    a < b
}

/// RFC 9110 written out plainly, for one range.
fn model(raw: &str, size: u64) -> RangeRequest {
    let size = u128::from(size);
    let raw = raw.trim();
    if raw.len() < 6 || !raw.is_char_boundary(6) || !raw[..6].eq_ignore_ascii_case("bytes=") {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = raw[6..].split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let clamp = |n: u128| u64::try_from(n).unwrap();
    if first.is_empty() {
        return match number(last) {
            None => RangeRequest::Ignored,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Bytes(clamp(size - n.min(size)), clamp(size)),
        };
    }
    let Some(start) = number(first) else {
        return RangeRequest::Ignored;
    };
    let end = if last.is_empty() {
        size
    } else {
        match number(last) {
            Some(n) if !less(last, first) => n.saturating_add(1).min(size),
            _ => return RangeRequest::Ignored,
        }
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Bytes(clamp(start), clamp(end))
}

fuzz_target!(|input: (u64, u8, &str)| {
    let (size, pick, raw) = input;
    // Small sizes and the extremes matter most; the fuzzer also picks any.
    let size = match pick % 4 {
        0 => size % 256,
        1 => u64::MAX - (size % 4),
        _ => size,
    };
    let got = parse_range(raw, size);
    if let RangeRequest::Bytes(start, end) = got {
        assert!(start < end && end <= size, "{raw:?} on {size}: {got:?}");
    }
    assert_eq!(got, model(raw, size), "{raw:?} on {size}");
});
