//! The hub's web page (`/ui/`) in a real browser: headless Chromium driven
//! through chromedriver, against the real `sf-hub` binary (and a real
//! agent where an agent's commit is the point). Each test starts its own
//! hub, chromedriver and browser, so tests run in parallel.
//!
//! - Sign-in and sign-out: a bad token is refused with a message, a good
//!   one lands on the listing; the session cookie is `HttpOnly`; after
//!   sign-out the cookie is gone, the hub refuses it, and a reload asks for
//!   a token again; revoking the token sends the page back to sign-in.
//! - Browsing (breadcrumbs, long and non-Latin names that must not widen
//!   the page, at desktop and phone width), `/` to search, search, and a
//!   download whose bytes equal the hub's.
//! - Uploads by drag-and-drop and by the file picker; an upload over a
//!   file changed meanwhile becomes a conflict copy.
//! - New folder, rename, delete, and restore from Recently deleted.
//! - History: every version listed, an old version downloaded and
//!   restored as a new version.
//! - Conflicts: keep the copy, keep the original.
//! - Live updates from a real agent without reload, the Activity view,
//!   and a hub that goes away (message, reconnection).
//! - A read-only token gets no write controls (and the hub refuses its
//!   writes anyway).
//! - A forged cross-site request (a form POST and a fetch with
//!   credentials, from a page on another port) removes nothing.
//! - A 10,000-entry folder: time to the first rows and to the end, printed.
//! - Screenshots of every view (also at phone size); with
//!   `SF_UI_SCREENSHOTS=DIR` they are copied to DIR (the README's are made
//!   with `SF_UI_SCREENSHOTS=$PWD/docs/screenshots` from the repository root).
//!
//! Needs `chromium` and `chromium-driver` (Debian); without them each test
//! says `skipped` loudly, and fails in CI. Screenshots of the Japanese
//! name want a CJK font (Debian `fonts-ipafont-gothic`); the tests do not.
//!
//! The tests, by module: `sign_in`, `browse`, `files` (uploads, new
//! folder, rename, delete, restore), `history_conflicts`, `live` (and
//! Activity), `access` (read-only, forged requests), `large_folder`, and
//! `views` (screenshots); `page` and `browser` are what they are built on.

#[path = "web_ui/browser.rs"]
mod browser;
#[path = "web_ui/page.rs"]
mod page;
#[path = "web_ui/views.rs"]
mod views;

#[path = "web_ui/access.rs"]
mod access;
#[path = "web_ui/browse.rs"]
mod browse;
#[path = "web_ui/files.rs"]
mod files;
#[path = "web_ui/history_conflicts.rs"]
mod history_conflicts;
#[path = "web_ui/large_folder.rs"]
mod large_folder;
#[path = "web_ui/live.rs"]
mod live;
#[path = "web_ui/sign_in.rs"]
mod sign_in;

/// Bytes that are not text, so a download or upload that mangles them shows.
fn binary_bytes(len: usize, seed: u64) -> Vec<u8> {
    sf_e2e::random_bytes(seed, len)
}
