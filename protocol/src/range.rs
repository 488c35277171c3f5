//! The HTTP `Range` header (RFC 9110, section 14) as the hub serves it:
//! one `bytes=` range per request, clamped to the content, never overflowing.
//!
//! The answer is one of three: serve a part (206), the range cannot be served
//! (416), or ignore the header and serve everything (200). RFC 9110 lets a
//! server ignore a `Range` it does not understand, so malformed headers,
//! other units and multi-range requests get the whole content.

/// What a `Range` header asks for, against a content of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve bytes `start..end` (end exclusive); always `start < end <= size`.
    Bytes(u64, u64),
    /// A well-formed range that selects nothing: answer 416.
    Unsatisfiable,
    /// Malformed, another unit, or several ranges: serve the whole content.
    Ignored,
}

/// Parses a single `bytes=` range against a content of `size` bytes.
///
/// Positions past the end are clamped (`bytes=5-18446744073709551615` on 100
/// bytes is `5..100`), positions too large for a `u64` count as "past the
/// end", and a suffix longer than the content selects all of it. A first
/// position at or past the end, and a zero-length suffix, are unsatisfiable.
pub fn parse_range(raw: &str, size: u64) -> RangeRequest {
    let raw = raw.trim();
    // The unit is case-insensitive (RFC 9110, 14.1).
    let Some(spec) = raw
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &raw[6..])
    else {
        return RangeRequest::Ignored;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-suffix`: the last `suffix` bytes.
        return match digits(last) {
            None => RangeRequest::Ignored,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Bytes(size - suffix.min(size), size),
        };
    }
    // `first-last` or the open-ended `first-`.
    let Some(start) = digits(first) else {
        return RangeRequest::Ignored;
    };
    let last = match (last.is_empty(), digits(last)) {
        (true, _) => None,
        // Compared as written: saturated values beyond u64 would look equal.
        (false, Some(n)) if !is_less(last, first) => Some(n),
        // Not a number, or `last < first`: an invalid range.
        (false, _) => return RangeRequest::Ignored,
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    // `start < size` here, so `size - 1` and the `+ 1` cannot overflow.
    let end = last.map_or(size, |last| last.min(size - 1) + 1);
    RangeRequest::Bytes(start, end)
}

/// Whether the decimal `a` is less than the decimal `b`, both `1*DIGIT`, at
/// any length.
fn is_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) < (b.len(), b)
}

/// `1*DIGIT` as a number; values beyond `u64::MAX` saturate (they can only
/// mean "past the end"). `None` for anything but ASCII digits, including
/// the empty string and a sign, which Rust's `parse` would accept.
fn digits(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Bytes(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), Bytes(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), Bytes(90, 100));
        assert_eq!(parse_range("bytes=-500", 100), Bytes(0, 100));
        assert_eq!(parse_range("bytes=50-500", 100), Bytes(50, 100));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), Ignored);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ignored);
        assert_eq!(parse_range("items=0-1", 100), Ignored);
    }

    #[test]
    fn huge_positions_never_overflow() {
        let max = u64::MAX;
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 100),
            Bytes(0, 100)
        );
        assert_eq!(
            parse_range("bytes=5-18446744073709551615", 100),
            Bytes(5, 100)
        );
        assert_eq!(
            parse_range("bytes=5-18446744073709551615", max),
            Bytes(5, max)
        );
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", max),
            Bytes(0, max)
        );
        assert_eq!(
            parse_range("bytes=0-99999999999999999999999", 7),
            Bytes(0, 7)
        );
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 7),
            Unsatisfiable
        );
        assert_eq!(
            parse_range("bytes=18446744073709551615-18446744073709551615", max),
            Unsatisfiable
        );
        assert_eq!(
            parse_range("bytes=-18446744073709551615", 100),
            Bytes(0, 100)
        );
        assert_eq!(
            parse_range("bytes=-99999999999999999999999", 3),
            Bytes(0, 3)
        );
        assert_eq!(parse_range("bytes=-1", max), Bytes(max - 1, max));
        assert_eq!(parse_range("bytes=007-0010", 100), Bytes(7, 11));
    }

    #[test]
    fn positions_beyond_u64_keep_their_order() {
        // Found by the range fuzz target: both ends saturated to u64::MAX
        // and compared equal, so `last < first` answered 416, not ignored.
        let max = u64::MAX;
        assert_eq!(
            parse_range("bytes=99999999999999999999-18446744073709551616", max),
            Ignored
        );
        assert_eq!(
            parse_range("bytes=18446744073709551616-18446744073709551617", max),
            Unsatisfiable
        );
        assert_eq!(parse_range("bytes=0100-099", 1000), Ignored);
    }

    #[test]
    fn empty_content_has_no_satisfiable_range() {
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=x", 0), Ignored);
    }

    #[test]
    fn garbage_is_ignored() {
        for raw in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-b",
            "bytes=a-5",
            "bytes=+1-5",
            "bytes=1-+5",
            "bytes=-+5",
            "bytes=--5",
            "bytes=1--5",
            "bytes=1-2-3",
            "bytes=0x10-",
            "bytes=１-２",
            "bytés=0-1",
            "é",
            "bytes=0-1, 3-4",
        ] {
            assert_eq!(parse_range(raw, 100), Ignored, "{raw:?}");
        }
    }

    #[test]
    fn unit_is_case_insensitive_and_whitespace_is_tolerated() {
        assert_eq!(parse_range("Bytes=0-0", 100), Bytes(0, 1));
        assert_eq!(parse_range("BYTES=-1", 100), Bytes(99, 100));
        assert_eq!(parse_range("  bytes= 3 - 4 ", 100), Bytes(3, 5));
    }
}
