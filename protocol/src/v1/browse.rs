//! The routes the hub's web page uses beyond the agents' API: listing a
//! folder, searching paths, recently deleted files, conflict copies,
//! connected clients, and the tree-shaped changes a person makes (upload a
//! whole file, move or remove a folder with its contents, keep one side of
//! a conflict). Any client with a token may use them.

use serde::{Deserialize, Serialize};

use super::{Entry, EntryKind};
use crate::SyncPath;

/// The origin of the changes these routes make when the request names none.
pub const WEB_ORIGIN: &str = "web";

fn web_origin() -> String {
    WEB_ORIGIN.to_owned()
}

/// `GET /v1/list?dir=D[&after=CURSOR][&limit=N]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// The folder to list: `""` (the default) for the top, else a path
    /// without leading or trailing `/`.
    #[serde(default)]
    pub dir: String,
    /// Continue after this cursor (`next` of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Page size, 1 to [`LIST_MAX_LIMIT`]; default [`LIST_DEFAULT_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Entries per `/v1/list` page unless `limit` says otherwise.
pub const LIST_DEFAULT_LIMIT: u32 = 200;
/// The largest `limit` `/v1/list` and `/v1/search` accept.
pub const LIST_MAX_LIMIT: u32 = 1_000;

/// One live file or folder as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// The last segment of `path`.
    pub name: String,
    /// The whole path.
    pub path: SyncPath,
    /// File or folder.
    pub kind: EntryKind,
    /// Bytes; 0 for a folder.
    pub size: u64,
    /// As [`Entry::mtime_ns`]; 0 for a folder that was never committed.
    pub mtime_ns: i64,
    /// The current version; 0 for a folder that exists only because files
    /// are committed under it.
    pub version: u64,
    /// Who made the current version; `""` for such a folder.
    pub origin: String,
    /// When the current version was committed; 0 for such a folder.
    pub committed_ms: i64,
}

impl Listed {
    /// The listing of a committed, live entry.
    pub fn from_entry(entry: &Entry) -> Self {
        Self {
            name: entry.path.file_name().to_owned(),
            path: entry.path.clone(),
            kind: entry.kind,
            size: entry.size,
            mtime_ns: entry.mtime_ns,
            version: entry.version,
            origin: entry.origin.clone(),
            committed_ms: entry.committed_ms,
        }
    }

    /// A folder that holds committed files but was never committed itself.
    pub fn implied_folder(path: SyncPath) -> Self {
        Self {
            name: path.file_name().to_owned(),
            path,
            kind: EntryKind::Dir,
            size: 0,
            mtime_ns: 0,
            version: 0,
            origin: String::new(),
            committed_ms: 0,
        }
    }
}

/// The answer to `GET /v1/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    /// The folder listed, as asked.
    pub dir: String,
    /// The folder's live children, in the byte order of the paths they
    /// hold: a folder never committed comes where its first path does
    /// (`docs/a.txt` sorts after `docs.txt`). A page shows them as it likes.
    pub entries: Vec<Listed>,
    /// More children follow: ask again with `after` = this.
    pub next: Option<String>,
}

/// `GET /v1/search?q=TEXT[&limit=N]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Matched case-insensitively anywhere in a path; 1 to 200 bytes.
    pub q: String,
    /// At most this many results, 1 to [`LIST_MAX_LIMIT`]; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The answer to `GET /v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The text searched for, as asked.
    pub q: String,
    /// Live files and folders whose path contains `q`, by path.
    pub entries: Vec<Listed>,
    /// More matched than `limit`.
    pub more: bool,
}

/// `GET /v1/deleted[?before=CURSOR][&limit=N]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeletedQuery {
    /// Continue after this cursor (`next` of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Page size, 1 to [`LIST_MAX_LIMIT`]; default [`LIST_DEFAULT_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A path whose current version is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The deleted path.
    pub path: SyncPath,
    /// File or folder, as it was.
    pub kind: EntryKind,
    /// The tombstone's version.
    pub version: u64,
    /// When it was deleted, in ms since the epoch.
    pub deleted_ms: i64,
    /// Who deleted it.
    pub deleted_by: String,
    /// The newest version that holds content: `POST /v1/restore` it to
    /// bring the file back. `None` for a folder.
    pub restorable_version: Option<u64>,
    /// That version's size in bytes.
    pub size: u64,
}

/// The answer to `GET /v1/deleted`: newest deletion first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletedResponse {
    /// One page of deleted paths.
    pub entries: Vec<Deleted>,
    /// Older deletions follow: ask again with `before` = this.
    pub next: Option<u64>,
}

/// A live conflict copy and the file it conflicts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The conflict copy.
    pub copy: Listed,
    /// The original's current live entry; `None` once it is gone.
    pub original: Option<Listed>,
    /// Who wrote the copy's content, as its name says.
    pub copy_origin: String,
    /// When the copy was made, as its name says: RFC 3339, UTC
    /// (`2026-11-24T10:15:00Z`).
    pub copy_made: String,
}

/// The answer to `GET /v1/conflicts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictsResponse {
    /// By the copy's path; at most [`CONFLICTS_MAX`].
    pub conflicts: Vec<Conflict>,
    /// More conflict copies exist than were listed.
    #[serde(default)]
    pub more: bool,
}

/// The most conflicts `/v1/conflicts` lists.
pub const CONFLICTS_MAX: usize = 1_000;

/// `POST /v1/conflicts/resolve`: which side of a conflict stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The copy's content becomes the original's new version; the copy is
    /// removed.
    Copy,
    /// The original stays as it is; the copy is removed.
    Original,
}

/// `POST /v1/conflicts/resolve`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveRequest {
    /// The conflict copy.
    pub copy: SyncPath,
    /// Which side stays.
    pub keep: Keep,
    /// Who makes the change, recorded as each version's origin; the same
    /// rules as [`super::CommitRequest::origin`]. `"web"` (the hub's page)
    /// when left out.
    #[serde(default = "web_origin")]
    pub origin: String,
}

/// The answer to `POST /v1/conflicts/resolve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveResponse {
    /// The original's entry afterwards.
    pub kept: Entry,
}

/// A client connected to a hub's WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedClient {
    /// The name of the token it signed in with; `None` under `--no-auth`.
    pub token: Option<String>,
    /// The agent's name (`X-SF-Agent`), or `"web"` for the hub's page.
    pub agent: Option<String>,
    /// The peer's address as the hub sees it (a proxy's, behind one).
    pub address: Option<String>,
    /// When it connected, in ms since the epoch.
    pub connected_ms: i64,
}

/// The answer to `GET /v1/activity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityResponse {
    /// Clients connected to this hub's WebSocket now (other hubs sharing
    /// the database have their own).
    pub agents: Vec<ConnectedClient>,
    /// The latest changes, newest first (at most [`ACTIVITY_RECENT`]).
    pub recent: Vec<Entry>,
}

/// Changes `/v1/activity` lists.
pub const ACTIVITY_RECENT: u32 = 50;

/// `POST /v1/upload?path=P&base_version=N[&mtime_ms=M][&origin=O]`, body:
/// the bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadQuery {
    /// Where the file goes.
    pub path: SyncPath,
    /// The version the uploader last saw; 0 for a new name. When the path
    /// has moved on since, the upload becomes a conflict copy beside it.
    #[serde(default)]
    pub base_version: u64,
    /// The file's modification time, ms since the epoch; the hub's clock
    /// when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<i64>,
    /// Who makes the change, recorded as each version's origin; the same
    /// rules as [`super::CommitRequest::origin`]. `"web"` (the hub's page)
    /// when left out.
    #[serde(default = "web_origin")]
    pub origin: String,
}

/// The answer to `POST /v1/upload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The version written: of the path, or of its conflict copy.
    pub entry: Entry,
    /// The path had changed since `base_version`: `entry` is a conflict
    /// copy beside it.
    pub conflict: bool,
}

/// `POST /v1/move`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveRequest {
    /// A live file or folder (with everything under it).
    pub from: SyncPath,
    /// Where it goes: nothing live may be there.
    pub to: SyncPath,
    /// Who makes the change, recorded as each version's origin; the same
    /// rules as [`super::CommitRequest::origin`]. `"web"` (the hub's page)
    /// when left out.
    #[serde(default = "web_origin")]
    pub origin: String,
}

/// The answer to `POST /v1/move`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveResponse {
    /// Files and folders moved.
    pub moved: u64,
}

/// `POST /v1/remove`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// A live file or folder; a folder goes with everything under it. Each
    /// gets a tombstone: restorable from its history.
    pub path: SyncPath,
    /// Who makes the change, recorded as each version's origin; the same
    /// rules as [`super::CommitRequest::origin`]. `"web"` (the hub's page)
    /// when left out.
    #[serde(default = "web_origin")]
    pub origin: String,
}

/// The answer to `POST /v1/remove`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveResponse {
    /// Files and folders removed.
    pub removed: u64,
}

/// `POST /ui/session`: a token to exchange for a session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRequest {
    /// A token made by `sf-hub token create`.
    pub token: String,
}

/// `GET /ui/session` and `POST /ui/session`: who the page is signed in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// `false` when the hub runs with `--no-auth` (no sign-in).
    pub auth: bool,
    /// The token's name; `None` without sign-in.
    pub token_name: Option<String>,
    /// What the page may do: read-only tokens get a read-only page.
    pub scope: super::Scope,
    /// Sent back in `X-SF-CSRF` with every change the page makes.
    pub csrf: String,
}
