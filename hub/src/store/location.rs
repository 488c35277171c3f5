//! Where the chunk store is, as `--store` (env `SF_STORE`) says: `local`
//! (the default: `<data-dir>/chunks`) or `s3://BUCKET[/PREFIX]`, an
//! S3-compatible bucket reached with the standard `AWS_*` variables.

use std::fmt;
use std::str::FromStr;

/// The store `--store` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// Chunks in the data directory, on this hub's disk.
    #[default]
    Local,
    /// Chunks in an S3-compatible bucket, shared by every hub that names it.
    Bucket(BucketLocation),
}

/// A bucket and the key prefix under which the store keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLocation {
    pub bucket: String,
    /// Empty, or `a/b` (no leading or trailing slash).
    pub prefix: String,
}

/// How to reach a bucket, beyond what `AWS_*` variables the S3 client reads
/// itself: given explicitly, these win.
#[derive(Clone, Default)]
pub struct BucketAccess {
    /// `AWS_ENDPOINT_URL`: a MinIO, Garage or Ceph server; unset: AWS.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (default us-east-1).
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`: never shown by `Debug`.
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for BucketAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketAccess")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "(redacted)"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreLocationError {
    #[error(
        "--store {0:?} is not a store this hub knows: give `local` (the data directory) or \
         `s3://BUCKET[/PREFIX]` (an S3-compatible bucket; set AWS_ENDPOINT_URL, AWS_REGION, \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )]
    UnknownScheme(String),
    #[error(
        "--store {0:?}: {1:?} is not a valid bucket name (3 to 63 lowercase letters, digits, \
         dots and hyphens, starting and ending with a letter or digit)"
    )]
    BadBucket(String, String),
    #[error(
        "--store {0:?}: the prefix must be path segments of printable text without `.` or `..` \
         or empty segments, e.g. s3://bucket/synced-folder/team-a"
    )]
    BadPrefix(String),
}

impl FromStr for StoreLocation {
    type Err = StoreLocationError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed == "local" {
            return Ok(Self::Local);
        }
        let Some(rest) = trimmed.strip_prefix("s3://") else {
            return Err(StoreLocationError::UnknownScheme(value.to_owned()));
        };
        let rest = rest.trim_end_matches('/');
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_bucket_name(bucket) {
            return Err(StoreLocationError::BadBucket(
                value.to_owned(),
                bucket.to_owned(),
            ));
        }
        let prefix_ok = prefix.is_empty()
            || prefix.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && !segment.chars().any(char::is_control)
            });
        if !prefix_ok {
            return Err(StoreLocationError::BadPrefix(value.to_owned()));
        }
        Ok(Self::Bucket(BucketLocation {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Bucket(location) => location.fmt(f),
        }
    }
}

impl fmt::Display for BucketLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// S3's rules for bucket names (the common subset every S3-compatible
/// server accepts).
fn is_bucket_name(name: &str) -> bool {
    let edges_ok =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edges_ok(name.chars().next())
        && edges_ok(name.chars().last())
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations_parse_or_say_what_is_wrong() {
        let bucket = |bucket: &str, prefix: &str| {
            StoreLocation::Bucket(BucketLocation {
                bucket: bucket.into(),
                prefix: prefix.into(),
            })
        };
        let cases: &[(&str, Result<StoreLocation, &str>)] = &[
            ("", Ok(StoreLocation::Local)),
            ("local", Ok(StoreLocation::Local)),
            ("s3://chunks", Ok(bucket("chunks", ""))),
            ("s3://chunks/", Ok(bucket("chunks", ""))),
            ("s3://my.chunks-1/a/b/", Ok(bucket("my.chunks-1", "a/b"))),
            ("s3://Chunks", Err("not a valid bucket name")),
            ("s3://ab", Err("not a valid bucket name")),
            ("s3://-chunks", Err("not a valid bucket name")),
            ("s3://chunks/a//b", Err("the prefix must be")),
            ("s3://chunks/a/../b", Err("the prefix must be")),
            ("/var/lib/chunks", Err("not a store this hub knows")),
            ("gs://chunks", Err("not a store this hub knows")),
        ];
        for (input, expected) in cases {
            let parsed = input.parse::<StoreLocation>();
            match expected {
                Ok(location) => assert_eq!(parsed.as_ref(), Ok(location), "{input}"),
                Err(says) => {
                    let err = parsed.expect_err(input).to_string();
                    assert!(err.contains(says), "{input}: {err}");
                }
            }
        }
        assert_eq!(
            "s3://chunks/a/b"
                .parse::<StoreLocation>()
                .unwrap()
                .to_string(),
            "s3://chunks/a/b"
        );
    }
}
