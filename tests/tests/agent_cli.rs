//! The agent's commands through the real binaries against a real hub:
//! `history` and `restore` (an older version and a deleted file arriving
//! in the agents' folders), `conflicts` (listing, `--keep local` and
//! `--keep remote` with every content kept somewhere), `trash` (listing,
//! `--restore` that never overwrites), their `--json`, the config file
//! running an agent with no flags, and `install-service --print`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

/// `sf-agent ARGS…` as a user types it.
fn cli(args: &[&dyn AsRef<std::ffi::OsStr>]) -> CliOutput {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    agent_cli::<_, &str, &str>(&args, &[])
}

async fn converge(dirs: &[&Path], hub: &Hub) {
    wait_converged(dirs, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn wait_for_content(path: &Path, content: &str) {
    wait_until(
        CONVERGE,
        &format!("{} holds {content:?}", path.display()),
        || std::fs::read(path).is_ok_and(|b| b == content.as_bytes()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_restore_through_the_hub() {
    let sandbox = Sandbox::new("cli-history");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];
    let token = hub.token_file();
    let a_file = a_dir.join("notes/a.txt");

    sandbox.step("two versions");
    write_file(&a_file, "one\n");
    converge(&both, &hub).await;
    write_file(&a_file, "two, longer\n");
    converge(&both, &hub).await;

    sandbox.step("the hub shows both agents connected, by name");
    let activity: serde_json::Value = sf_test_support::bearer_client(&hub.token())
        .get(format!("{}/v1/activity", hub.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: BTreeSet<&str> = activity["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|agent| agent["agent"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["a", "b"]), "{activity}");

    sandbox.step("history, as text and JSON, by relative and absolute path");
    let text = cli(&[
        &"history",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"notes/a.txt",
    ])
    .ok();
    assert!(text.contains("notes/a.txt on http://"), "{text}");
    assert!(text.contains("2 versions"), "{text}");
    assert!(text.contains("file (current)"), "{text}");
    assert!(text.contains("12 B") && text.contains("4 B"), "{text}");
    let json = cli(&[
        &"history",
        &"--dir",
        &b_dir,
        &"--token-file",
        &token,
        &"--json",
        &b_dir.join("notes/a.txt"),
    ])
    .json();
    assert_eq!(json["path"], "notes/a.txt");
    let versions = json["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{json}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["size"], 4);
    assert_eq!(versions[0]["current"], false);
    assert_eq!(versions[1]["current"], true);
    assert_eq!(versions[1]["origin"], "a");
    assert_eq!(versions[1]["sha256"], sha256("two, longer\n").to_string());
    assert!(versions[1]["committed_ms"].as_i64().unwrap() > 0);

    sandbox.step("paths outside the folder and unknown paths are errors");
    let err = cli(&[
        &"history",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"/etc/hostname",
    ])
    .err();
    assert!(err.contains("outside the synced folder"), "{err}");
    let err = cli(&[
        &"history",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"../b/notes/a.txt",
    ])
    .err();
    assert!(err.contains("outside the synced folder"), "{err}");
    let err = cli(&[
        &"history",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"never.txt",
    ])
    .err();
    assert!(err.contains("has no version of never.txt"), "{err}");

    sandbox.step("restore without --version: the version before");
    let json = cli(&[
        &"restore",
        &"--dir",
        &b_dir,
        &"--token-file",
        &token,
        &"--name",
        &"laptop-b",
        &"--json",
        &"notes/a.txt",
    ])
    .json();
    assert_eq!(json["restored_version"], 1, "{json}");
    assert_eq!(json["new_version"], 3, "{json}");
    assert_eq!(json["changed"], true, "{json}");
    assert_eq!(json["agent_running"], true, "{json}");
    wait_for_content(&a_file, "one\n").await;
    wait_for_content(&b_dir.join("notes/a.txt"), "one\n").await;
    converge(&both, &hub).await;
    let history = hub_history(hub.url(), "notes/a.txt").await.unwrap();
    assert_eq!(
        history.last().unwrap().origin,
        "laptop-b",
        "the restore's origin is --name"
    );

    sandbox.step("restore a deleted file: the last version with content");
    std::fs::remove_file(&a_file).unwrap();
    converge(&both, &hub).await;
    assert!(!b_dir.join("notes/a.txt").exists());
    let text = cli(&[
        &"restore",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"notes/a.txt",
    ])
    .ok();
    assert!(
        text.contains("restored notes/a.txt to the content of version 3"),
        "{text}"
    );
    assert!(text.contains("now version 5"), "{text}");
    wait_for_content(&a_file, "one\n").await;
    wait_for_content(&b_dir.join("notes/a.txt"), "one\n").await;

    sandbox.step("restore --version N; a deletion cannot be restored");
    cli(&[
        &"restore",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"--version",
        &"2",
        &"notes/a.txt",
    ])
    .ok();
    wait_for_content(&b_dir.join("notes/a.txt"), "two, longer\n").await;
    let err = cli(&[
        &"restore",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"--version",
        &"4",
        &"notes/a.txt",
    ])
    .err();
    assert!(
        err.contains("version 4 of notes/a.txt is its deletion"),
        "{err}"
    );
    let err = cli(&[
        &"restore",
        &"--dir",
        &a_dir,
        &"--token-file",
        &token,
        &"--version",
        &"99",
        &"notes/a.txt",
    ])
    .err();
    assert!(err.contains("has no version 99"), "{err}");
    converge(&both, &hub).await;

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}

/// A script that records its arguments, as `notify-send` on the agent's PATH.
fn fake_notify_send(dir: &Path) -> (String, std::path::PathBuf) {
    let bin = dir.join("bin");
    let log = dir.join("notifications.log");
    write_file(
        &bin.join("notify-send"),
        format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", log.display()),
    );
    set_mode(&bin.join("notify-send"), 0o755);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_listed_and_resolved_with_nothing_lost() {
    let sandbox = Sandbox::new("cli-conflicts");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
    let (path, notifications) = fake_notify_send(sandbox.path());
    let notify_on = AgentOptions {
        config: Some("notify = true\n".into()),
        env: vec![("PATH".into(), path)],
        ..AgentOptions::default()
    };
    let mut b = Agent::start_with(hub.url(), &b_dir, "b", &[], notify_on).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("two files edited on both sides while B is stopped");
    write_file(&a_dir.join("x.txt"), "base x\n");
    write_file(&a_dir.join("docs/y.md"), "base y\n");
    converge(&both, &hub).await;
    assert!(b.stop().await.success());
    let (x_a, x_b, y_a, y_b) = (
        "x from a\n",
        "x from b!\n",
        "y from a\n",
        "y from b, longer\n",
    );
    write_file(&a_dir.join("x.txt"), x_a);
    write_file(&a_dir.join("docs/y.md"), y_a);
    wait_hub(hub.url(), CONVERGE, "A's edits", |index| {
        index.get("x.txt") == Some(&sha256(x_a)) && index.get("docs/y.md") == Some(&sha256(y_a))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    write_file(&b_dir.join("x.txt"), x_b);
    write_file(&b_dir.join("docs/y.md"), y_b);
    b.restart().await;
    converge(&both, &hub).await;
    let every: BTreeSet<Sha256Hex> = [x_a, x_b, y_a, y_b].into_iter().map(sha256).collect();

    sandbox.step("a desktop notification for B's conflict copies");
    wait_until(CONVERGE, "B's notification", || {
        std::fs::read_to_string(&notifications)
            .is_ok_and(|n| n.contains("conflict") && n.contains("x.txt"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    sandbox.step("conflicts: listed next to their files, as text and JSON");
    let text = cli(&[&"conflicts", &"--dir", &a_dir]).ok();
    assert!(text.contains("2 conflict copies"), "{text}");
    assert!(text.contains("x (conflict b "), "{text}");
    assert!(text.contains("docs/y.md"), "{text}");
    let json = cli(&[&"conflicts", &"--dir", &a_dir, &"--json"]).json();
    let listed = json["conflicts"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{json}");
    let y = listed
        .iter()
        .find(|c| c["original"] == "docs/y.md")
        .unwrap();
    assert_eq!(y["origin"], "b");
    assert_eq!(y["copy_size"], y_b.len());
    assert_eq!(y["original_size"], y_a.len());
    assert!(y["copy_mtime_ms"].as_i64().unwrap() > 0);
    let y_copy = y["copy"].as_str().unwrap().to_owned();
    let x_copy = listed.iter().find(|c| c["original"] == "x.txt").unwrap()["copy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(is_conflict_copy(&x_copy, "x.txt", &["b"]), "{x_copy}");

    sandbox.step("--keep remote x.txt (named by the file): the copy goes to the trash");
    let text = cli(&[
        &"conflicts",
        &"--dir",
        &a_dir,
        &"--keep",
        &"remote",
        &"x.txt",
    ])
    .ok();
    assert!(text.contains("kept x.txt as it is"), "{text}");
    converge(&both, &hub).await;
    for dir in both {
        assert_eq!(read_file(&dir.join("x.txt")), x_a.as_bytes());
        assert!(!dir.join(&x_copy).exists(), "{}", dir.display());
    }
    let trashed = trashed_copies(&a_dir, &x_copy);
    assert_eq!(trashed.len(), 1, "{trashed:?}");
    assert_eq!(read_file(&trashed[0]), x_b.as_bytes());
    let copy_history = hub_history(hub.url(), &x_copy).await.unwrap();
    assert!(copy_history.last().unwrap().deleted, "{copy_history:?}");
    assert!(copy_history.iter().any(|e| e.sha256 == Some(sha256(x_b))));

    sandbox.step("--keep local (named by the copy, absolute): the copy takes the file's place");
    let json = cli(&[
        &"conflicts",
        &"--dir",
        &b_dir,
        &"--keep",
        &"local",
        &"--json",
        &b_dir.join(&y_copy),
    ])
    .json();
    assert_eq!(json["kept"], "local", "{json}");
    assert_eq!(json["original"], "docs/y.md", "{json}");
    assert!(
        json["trashed"].as_str().unwrap().starts_with(".sf/trash/"),
        "{json}"
    );
    converge(&both, &hub).await;
    for dir in both {
        assert_eq!(
            read_file(&dir.join("docs/y.md")),
            y_b.as_bytes(),
            "{}",
            dir.display()
        );
        assert!(!dir.join(&y_copy).exists(), "{}", dir.display());
    }
    let trashed = trashed_copies(&b_dir, "docs/y.md");
    assert!(
        trashed.iter().any(|t| read_file(t) == y_a.as_bytes()),
        "B's trash keeps the file's previous content: {trashed:?}"
    );
    let y_history = hub_history(hub.url(), "docs/y.md").await.unwrap();
    assert!(
        y_history.iter().any(|e| e.sha256 == Some(sha256(y_a))),
        "{y_history:?}"
    );

    sandbox.step("nothing lost, nothing left");
    wait_until(CONVERGE, "B's status lists no conflict copy", || {
        agent_status(&b_dir).contains("conflict copies: 0")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut kept = BTreeSet::new();
    for path in ["x.txt", "docs/y.md", x_copy.as_str(), y_copy.as_str()] {
        for entry in hub_history(hub.url(), path).await.unwrap() {
            kept.extend(entry.sha256);
        }
    }
    assert!(every.is_subset(&kept), "{every:?} ⊄ {kept:?}");
    let json = cli(&[&"conflicts", &"--dir", &a_dir, &"--json"]).json();
    assert_eq!(json["conflicts"].as_array().unwrap().len(), 0, "{json}");
    let err = cli(&[
        &"conflicts",
        &"--dir",
        &a_dir,
        &"--keep",
        &"local",
        &"x.txt",
    ])
    .err();
    assert!(err.contains("has none"), "{err}");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trash_is_listed_and_put_back_without_overwriting() {
    let sandbox = Sandbox::new("cli-trash");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("a file deleted in A goes to B's trash");
    write_file(&a_dir.join("d/t.txt"), "keep me\n");
    converge(&both, &hub).await;
    std::fs::remove_file(a_dir.join("d/t.txt")).unwrap();
    converge(&both, &hub).await;
    assert!(!b_dir.join("d/t.txt").exists());

    let text = cli(&[&"trash", &"--dir", &b_dir]).ok();
    assert!(text.contains("1 file in the trash"), "{text}");
    assert!(text.contains("d/t.txt"), "{text}");
    let json = cli(&[&"trash", &"--dir", &b_dir, &"--json"]).json();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{json}");
    assert_eq!(items[0]["path"], "d/t.txt");
    assert_eq!(items[0]["size"], 8);
    let trash_path = items[0]["trash_path"].as_str().unwrap().to_owned();
    assert!(b_dir.join(&trash_path).is_file(), "{trash_path}");

    sandbox.step("--restore never overwrites");
    write_file(&b_dir.join("d/t.txt"), "a new file\n");
    converge(&both, &hub).await;
    let err = cli(&[&"trash", &"--dir", &b_dir, &"--restore", &"d/t.txt"]).err();
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(read_file(&b_dir.join("d/t.txt")), b"a new file\n");

    sandbox.step("--restore --to: back in the folder and on the hub");
    let json = cli(&[
        &"trash",
        &"--dir",
        &b_dir,
        &"--restore",
        &b_dir.join(&trash_path),
        &"--to",
        &"d/t (restored).txt",
        &"--json",
    ])
    .json();
    assert_eq!(json["restored"], "d/t (restored).txt", "{json}");
    converge(&both, &hub).await;
    assert_eq!(read_file(&a_dir.join("d/t (restored).txt")), b"keep me\n");
    let json = cli(&[&"trash", &"--dir", &b_dir, &"--json"]).json();
    assert_eq!(json["items"].as_array().unwrap().len(), 0, "{json}");
    let err = cli(&[&"trash", &"--dir", &b_dir, &"--restore", &"d/t.txt"]).err();
    assert!(err.contains("nothing of d/t.txt is in the trash"), "{err}");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_runs_the_agent_with_no_flags() {
    let sandbox = Sandbox::new("cli-config");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let dir = sandbox.dir("folder");
    let token = write_token_file(&sandbox.dir("keys"), "token", &hub.token());
    let config = format!(
        "# sf-agent's config\nhub = \"{}\"\ndir = \"{}\"\nname = \"from-config\"\n\
         token_file = \"{}\"\nstate_home = \"{}\"\nnotify = false\n",
        hub.url(),
        dir.display(),
        token.display(),
        sandbox.dir("state").display()
    );
    let mut agent = Agent::start_with(
        hub.url(),
        &dir,
        "configured",
        &[],
        AgentOptions {
            config: Some(config.clone()),
            no_args: true,
            ..AgentOptions::default()
        },
    )
    .await;

    sandbox.step("a file reaches the hub under the config file's name");
    write_file(&dir.join("hello.txt"), "configured\n");
    converge(&[dir.as_path()], &hub).await;
    let history = hub_history(hub.url(), "hello.txt").await.unwrap();
    assert_eq!(history.last().unwrap().origin, "from-config", "{history:?}");

    sandbox.step("commands find the folder, hub and token in it too");
    let config_home = agent.config_home();
    let env = [("XDG_CONFIG_HOME", config_home.as_os_str())];
    let json = agent_cli(&["history", "--json", "hello.txt"], &env).json();
    assert_eq!(json["versions"].as_array().unwrap().len(), 1, "{json}");
    let status = agent_cli(&["status"], &env).ok();
    assert!(status.contains("agent:    running"), "{status}");

    sandbox.step("install-service --print: the unit runs this agent on the file");
    let unit = agent_cli(&["install-service", "--print"], &env).ok();
    let file = config_home.join("synced-folder/agent.toml");
    let exe = binary("sf-agent").canonicalize().unwrap();
    assert!(
        unit.contains(&format!(
            "\nExecStart={} --config {}\n",
            exe.display(),
            file.display()
        )),
        "{unit}"
    );
    assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
    assert!(unit.contains("\nWantedBy=default.target\n"), "{unit}");
    assert!(
        unit.contains(&format!(
            "\nDescription=synced-folder agent for {}\n",
            dir.display()
        )),
        "{unit}"
    );
    let no_systemd = sandbox.dir("no-systemd");
    let err = agent_cli(
        &["install-service"],
        &[
            ("XDG_CONFIG_HOME", config_home.as_os_str()),
            ("PATH", no_systemd.as_os_str()),
        ],
    )
    .err();
    assert!(
        err.contains("systemctl was not found") && err.contains("--print"),
        "{err}"
    );
    assert!(!config_home.join("systemd").exists(), "nothing was written");

    sandbox.step("a flag wins over the file; an unknown key is an error naming it");
    assert!(agent.stop().await.success());
    let other = sandbox.dir("other");
    let out = agent_cli(
        &["status".as_ref(), "--dir".as_ref(), other.as_os_str()],
        &env,
    )
    .err();
    assert!(out.contains("other"), "--dir beats the file's dir: {out}");
    write_file(&file, format!("{config}scan_intervall = 5\n"));
    let out = agent_cli::<_, &str, &std::ffi::OsStr>(&[] as &[&str], &env);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(out.stderr.contains("`scan_intervall`"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&file.display().to_string()),
        "{}",
        out.stderr
    );
    sandbox.step("done");
}
