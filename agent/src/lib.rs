//! The synced-folder agent: keeps one local folder in sync with a hub.
//!
//! Decisions are a pure function ([`reconcile`]) of three views of each path
//! ([`model`]): disk now ([`scan`]), last synced ([`state`]), hub now
//! ([`hub_client`]). Everything else gathers those views or carries out the
//! decisions.

pub mod hub_client;
pub mod ignore;
pub mod model;
pub mod reconcile;
pub mod scan;
