//! The harness itself: `wait_converged` must fail, and say precisely why,
//! when the sides differ (a checker that always passes proves nothing).

use std::fs;
use std::time::Duration;

use sf_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_converged_reports_every_difference() {
    let sandbox = Sandbox::new("harness");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let x = sandbox.dir("x");
    let y = sandbox.dir("y");
    let short = Duration::from_millis(600);

    // Empty folders, empty hub: converged; `.sf` is not looked at.
    write_file(&x.join(".sf/state.db"), "agent state");
    wait_converged(&[x.as_path(), y.as_path()], hub.url(), short)
        .await
        .unwrap();

    write_file(&x.join("same.txt"), "same");
    write_file(&y.join("same.txt"), "same");
    write_file(&x.join("differs.txt"), "x version");
    write_file(&y.join("differs.txt"), "y version");
    write_file(&x.join("only-x/file.txt"), "x");
    fs::create_dir_all(y.join("only-y-dir")).unwrap();
    write_file(&x.join("mode.sh"), "#!/bin/sh\n");
    write_file(&y.join("mode.sh"), "#!/bin/sh\n");
    set_mode(&y.join("mode.sh"), 0o755);

    let err = wait_converged(&[x.as_path(), y.as_path()], hub.url(), short)
        .await
        .unwrap_err();
    eprintln!("{err}");
    let line = |path: &str| {
        err.lines()
            .find(|l| l.contains(&format!("{path:?}")))
            .unwrap_or_else(|| panic!("no line for {path} in:\n{err}"))
            .to_owned()
    };
    // Agreeing folders still differ from the (empty) hub.
    assert!(line("same.txt").ends_with("| hub=missing"), "{err}");
    let differs = line("differs.txt");
    assert!(
        differs.contains(&format!("x={}", &sha256("x version").to_hex()[..12]))
            && differs.contains(&format!("y={}", &sha256("y version").to_hex()[..12]))
            && differs.contains("hub=missing"),
        "{differs}"
    );
    assert!(line("only-x/file.txt").contains("y=missing"), "{err}");
    assert!(line("only-x").contains("x=present | y=missing | hub=missing"));
    assert!(line("only-y-dir").contains("x=missing | y=present"));
    assert!(line("mode.sh").contains("+x"), "{err}");

    // Leaving paths out of the folders' views.
    for path in ["differs.txt", "only-x/file.txt", "mode.sh", "same.txt"] {
        fs::remove_file(x.join(path)).unwrap();
        let _ = fs::remove_file(y.join(path));
    }
    wait_converged_except(
        &[x.as_path(), y.as_path()],
        hub.url(),
        short,
        |p, is_dir| is_dir && (p == "only-x" || p == "only-y-dir"),
    )
    .await
    .unwrap();
}
