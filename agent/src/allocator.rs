//! The agent's one tuning of the C allocator: at most two glibc malloc
//! arenas.
//!
//! glibc gives each thread that allocates an arena of its own (up to eight
//! per core) and keeps what is freed in it for that arena's next use. The
//! agent's threads (tokio workers, the blocking pool that reads and hashes
//! files, SQLite's workers) each touch megabytes during a burst, so a
//! daemon that had moved ten thousand small files stayed about 16 MiB
//! larger than it needs, measured with the peer bench (peak RSS of A during
//! workload b: 52.9 MiB with glibc's default, 36.3 MiB with two arenas, at
//! the same speed). This is what `MALLOC_ARENA_MAX=2` does, without asking
//! every user to set it.

/// Caps glibc's malloc arenas at two. Call before any thread is started:
/// arenas made before stay.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas() {
    // A user's own MALLOC_ARENA_MAX wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: `mallopt` takes two integers, no pointers; glibc serialises it
    // with every other allocator call. It fails only for an unknown
    // parameter, and the default stays then.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Other allocators (musl, macOS, Windows) keep no per-thread arenas.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}
