//! Skipping a test whose service (PostgreSQL, Prometheus, a schema file) is
//! not installed: a loud `skipped` line on a developer's machine, a failure
//! in CI, where every test must run.

/// Whether we run in CI (`CI` set to anything but `false`, `0` or nothing),
/// where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A service a test needs is missing: panics in CI, otherwise prints a loud
/// `skipped` line (the caller then returns).
pub fn unavailable(test: &str, what: &str, how: &str) {
    if in_ci() {
        panic!("{test}: {what}; CI must run this check: {how}");
    }
    eprintln!(
        "\n==================== skipped: {test}: {what} ====================\n\
         {how}\n"
    );
}

/// The running test's name: the test harness names the thread that runs a
/// test (and `#[tokio::test]`'s `block_on`) after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned()
}
