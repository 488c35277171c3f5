//! The command line, the environment and the config file: precedence,
//! parsing, and the token never taken as an argument.

use super::*;

fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
    let mut all = vec!["sf-agent"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).map(|cli| cli.run)
}

fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, text).unwrap();
    let shown = file.to_str().unwrap().to_owned();
    (dir, shown)
}

const FULL_FILE: &str = r#"
    hub = "http://file:1"
    dir = "/from/file"
    name = "from-file"
    scan_interval = 30
    debounce_ms = 500
    poll = true
    notify = false
"#;

#[test]
#[allow(unsafe_code)]
fn flags_win_over_the_environment_over_the_config_file_over_defaults() {
    let (_dir, file) = config_file(FULL_FILE);
    // SAFETY: variables of this test alone (each argument below is
    // given one), set before anything reads them.
    unsafe {
        std::env::set_var("SF_TEST_PRECEDENCE_NAME", "from-env");
        std::env::set_var("SF_TEST_PRECEDENCE_DEBOUNCE", "700");
    }
    let command = || {
        Cli::command()
            .mut_arg("name", |a| a.env("SF_TEST_PRECEDENCE_NAME"))
            .mut_arg("debounce_ms", |a| a.env("SF_TEST_PRECEDENCE_DEBOUNCE"))
    };
    let load = |args: &[&str]| {
        let mut all = vec!["sf-agent", "--config", &file];
        all.extend_from_slice(args);
        Cli::load_from(command(), all).unwrap().run
    };

    let settings = load(&[]);
    assert_eq!(settings.hub, ["http://file:1"], "file over default");
    assert_eq!(settings.dir, Some(PathBuf::from("/from/file")));
    assert_eq!(settings.scan_interval, Some(30));
    assert!(settings.poll);
    assert!(!settings.notify());
    assert_eq!(settings.name.as_deref(), Some("from-env"), "env over file");
    assert_eq!(settings.debounce_ms, 700, "env over file");
    assert_eq!(settings.origin.file, Some(PathBuf::from(&file)));
    assert_eq!(settings.origin.given, ["name", "debounce_ms"]);

    let settings = load(&[
        "--hub",
        "http://flag:2",
        "--dir",
        "/from/flag",
        "--name",
        "from-flag",
        "--debounce-ms",
        "9",
        "--scan-interval",
        "5",
        "--no-notify",
    ]);
    assert_eq!(settings.hub, ["http://flag:2"], "flag over file");
    assert_eq!(settings.dir, Some(PathBuf::from("/from/flag")));
    assert_eq!(settings.name.as_deref(), Some("from-flag"), "flag over env");
    assert_eq!(settings.debounce_ms, 9, "flag over env");
    assert_eq!(settings.scan_interval, Some(5));

    // Nothing anywhere: the defaults.
    let (_empty_dir, empty) = config_file("");
    let settings = Cli::load_from(Cli::command(), ["sf-agent", "--config", &empty])
        .unwrap()
        .run;
    assert_eq!(settings.hub, ["http://127.0.0.1:8080"]);
    assert_eq!(settings.debounce_ms, 150);
    assert!(!settings.poll && settings.notify());
    assert_eq!((settings.dir, settings.name), (None, None));
}

#[test]
fn commands_take_the_folder_and_the_hub_from_the_config_file() {
    let (_dir, file) = config_file(FULL_FILE);
    let cli = Cli::load_from(
        Cli::command(),
        ["sf-agent", "history", "--config", &file, "notes/a.txt"],
    )
    .unwrap();
    let Some(Command::History { at, path, .. }) = cli.command else {
        panic!("not history");
    };
    assert_eq!(path, PathBuf::from("notes/a.txt"));
    assert_eq!(at.dir, Some(PathBuf::from("/from/file")));
    assert!(at.hub.is_empty(), "the folder's own hub comes first");
    assert_eq!(at.file_hub, ["http://file:1"]);
    assert_eq!(at.name.as_deref(), Some("from-file"));

    let cli = Cli::load_from(
        Cli::command(),
        ["sf-agent", "trash", "--config", &file, "--dir", "/d"],
    )
    .unwrap();
    let Some(Command::Trash { at, .. }) = cli.command else {
        panic!("not trash");
    };
    assert_eq!(at.dir, Some(PathBuf::from("/d")));
}

#[test]
fn a_named_config_file_must_exist_and_be_right() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Cli::load_from(
        Cli::command(),
        [
            "sf-agent".as_ref(),
            "--config".as_ref(),
            missing.as_os_str(),
        ],
    )
    .unwrap_err();
    assert!(matches!(err, LoadError::ConfigFile(_)), "{err}");
    assert!(err.to_string().contains("nope.toml"), "{err}");

    let (_dir, file) = config_file("dir = \"/x\"\nintervall = 3\n");
    let err = Cli::load_from(Cli::command(), ["sf-agent", "status", "--config", &file])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`intervall`") && err.contains(&file), "{err}");
}

#[test]
fn a_token_is_never_taken_from_the_command_line() {
    for args in [
        &["--token", "sft_x"][..],
        &["--sf-token", "sft_x"],
        &["--token-env", "sft_x"],
        &["sft_x"],
    ] {
        assert!(parse(args).is_err(), "{args:?} was accepted");
    }
}

#[test]
fn several_hubs_are_taken_comma_separated_or_repeated() {
    let hubs = |args: &[&str]| parse(args).map(|s| s.hub);
    assert_eq!(hubs(&[]).unwrap(), ["http://127.0.0.1:8080"]);
    assert_eq!(hubs(&["--hub", "http://a:1/"]).unwrap(), ["http://a:1"]);
    let both = ["http://a:1", "https://b"];
    assert_eq!(hubs(&["--hub", "http://a:1,https://b/"]).unwrap(), both);
    assert_eq!(hubs(&["--hub", "http://a:1, https://b"]).unwrap(), both);
    assert_eq!(
        hubs(&["--hub", "http://a:1", "--hub", "https://b"]).unwrap(),
        both
    );
}

#[test]
fn a_bad_hub_url_is_named_with_what_to_do() {
    for (args, wrong) in [
        (
            &["--hub", "hub.lan:8080"][..],
            "does not start with http://",
        ),
        (&["--hub", "http://a:1,"], "is empty (a stray comma?)"),
        (
            &["--hub", "http://a:1", "--hub", "http://b/sf"],
            "has a path",
        ),
    ] {
        let err = parse(args).unwrap_err().to_string();
        assert!(err.contains(wrong), "{args:?}: {err}");
        assert!(err.contains("http://host[:port]"), "{args:?}: {err}");
    }
}

#[test]
fn access_reads_the_token_from_one_place_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "sft_from_file\n").unwrap();
    let file_arg = file.to_str().unwrap();

    let mut settings = parse(&["--token-file", file_arg]).unwrap();
    settings.token_env = EnvToken::new(None);
    let access = settings.access().unwrap();
    let token = access.token.expect("a token");
    assert_eq!(
        token.source(),
        &credentials::TokenSource::File(file.clone())
    );
    assert_eq!(
        token.header_value().to_str().unwrap(),
        "Bearer sft_from_file"
    );

    settings.token_env = EnvToken::new(Some("sft_from_env".into()));
    assert!(matches!(
        settings.access(),
        Err(CredentialsError::TwoTokens)
    ));

    settings.token_file = None;
    let token = settings.access().unwrap().token.expect("a token");
    assert_eq!(token.source(), &credentials::TokenSource::Env);
    assert!(!format!("{settings:?}").contains("sft_from_env"));

    // Blank SF_TOKEN (compose passes unset variables as "") is no token.
    settings.token_env = EnvToken::new(Some("  ".into()));
    assert!(settings.access().unwrap().token.is_none());

    // A missing CA file is an error that names it.
    settings.ca_cert = Some(dir.path().join("ca.pem"));
    let err = settings.access().unwrap_err();
    assert!(err.to_string().contains("ca.pem"), "{err}");
}
