//! The synced-folder wire protocol, shared by the hub, the agent and the tests.
//!
//! This crate owns everything two parties must agree on byte for byte:
//! - [`SyncPath`]: the one place where the path rules live;
//! - [`Sha256Hex`]: content and chunk names;
//! - [`chunking`]: the FastCDC parameters that cut files into chunks;
//! - [`conflict`]: how conflict copies are named and read back;
//! - [`platform`]: which names a platform's file system cannot hold;
//! - [`range`]: the HTTP `Range` header, clamped and overflow-free;
//! - [`v1`] and [`legacy`]: the request, response and WebSocket frame types,
//!   and the checked decoding of what a hub sends and a legacy upload starts with.
//!
//! It holds no I/O beyond reading a `Read` to chunk it, and no database types.
//! The protocol itself is written down in `protocol/README.md`.

// The public surface is the contract between hub, agents and tests: every
// item says what it means on the wire.
#![deny(missing_docs)]

pub mod chunking;
pub mod conflict;
pub mod hash;
pub mod legacy;
pub mod path;
pub mod platform;
pub mod range;
pub mod v1;

pub use hash::{HashError, Sha256Hex};
pub use path::{PathError, SyncPath};
