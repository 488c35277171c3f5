//! What a test sees of the hub's chunk store, on either back end: the
//! files under `<data-dir>/chunks` or the objects of the test's bucket
//! (read and changed with plain HTTP, as moto allows). Tests damage,
//! truncate or remove chunks through these, as bit rot or an operator
//! would.

use std::path::PathBuf;
use std::time::SystemTime;

use sf_protocol::Sha256Hex;
use sf_test_support::s3::TestBucket;

use super::HubStorage;

impl HubStorage {
    fn chunk_file(&self, hash: &Sha256Hex) -> PathBuf {
        let hex = hash.to_hex();
        self.data_path().join("chunks").join(&hex[..2]).join(hex)
    }

    /// The stored bytes of chunk `hash`, or `None` when absent.
    pub async fn chunk_bytes(&self, hash: &Sha256Hex) -> Option<Vec<u8>> {
        match &self.bucket {
            Some(bucket) => {
                bucket
                    .get_object(&TestBucket::chunk_key(&hash.to_hex()))
                    .await
            }
            None => std::fs::read(self.chunk_file(hash)).ok(),
        }
    }

    /// Replaces the stored bytes of chunk `hash` (damage).
    pub async fn write_chunk(&self, hash: &Sha256Hex, bytes: Vec<u8>) {
        match &self.bucket {
            Some(bucket) => {
                bucket
                    .put_object(&TestBucket::chunk_key(&hash.to_hex()), bytes)
                    .await
            }
            None => std::fs::write(self.chunk_file(hash), bytes).unwrap(),
        }
    }

    /// Flips one bit in the middle of chunk `hash`, as bit rot would.
    pub async fn damage_chunk(&self, hash: &Sha256Hex) {
        let mut bytes = self.chunk_bytes(hash).await.expect("the chunk is stored");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        self.write_chunk(hash, bytes).await;
    }

    /// Removes chunk `hash` from the store.
    pub async fn remove_chunk(&self, hash: &Sha256Hex) {
        match &self.bucket {
            Some(bucket) => {
                sf_test_support::s3::client()
                    .delete(bucket.object_url(&TestBucket::chunk_key(&hash.to_hex())))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .expect("delete the object");
            }
            None => std::fs::remove_file(self.chunk_file(hash)).unwrap(),
        }
    }

    /// How many chunks the store holds.
    pub async fn chunk_count(&self) -> usize {
        match &self.bucket {
            Some(bucket) => bucket.keys("chunks/").await.len(),
            None => count_files(&self.data_path().join("chunks")),
        }
    }

    /// How many damaged copies were moved aside.
    pub async fn damaged_count(&self) -> usize {
        match &self.bucket {
            Some(bucket) => bucket.keys("damaged/").await.len(),
            None => std::fs::read_dir(self.data_path().join("damaged"))
                .map_or(0, |entries| entries.count()),
        }
    }

    /// Makes chunk `hash` look last used at `when`, where the store can
    /// (files); `false` for a bucket, whose objects' ages cannot be set.
    pub fn age_chunk(&self, hash: &Sha256Hex, when: SystemTime) -> bool {
        if self.bucket.is_some() {
            return false;
        }
        std::fs::File::options()
            .write(true)
            .open(self.chunk_file(hash))
            .unwrap()
            .set_modified(when)
            .unwrap();
        true
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += count_files(&path);
        } else {
            count += 1;
        }
    }
    count
}
