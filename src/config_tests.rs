//! Tests for [`super`]: each layer of the precedence, the file format, and validation.

use std::process::Command;

use super::*;
use crate::cli::{Cli, Command as CliCommand};

const FILE: &str = r#"
[coordinator]
pg_listen = "127.0.0.1:6000"
http_listen = "127.0.0.1:6001"
control_listen = "127.0.0.1:6002"
data_dir = "/var/lib/basin"
max_message_bytes = "1MiB"
target_partitions = 8

[standalone]
executors = 3

[executor]
coordinator = "http://10.0.0.1:50050"
listen = "10.0.0.2:50051"
memory_limit = 1073741824
data_dir = "/var/lib/basin-executor"

[[users]]
name = "alice"
password = "secret"

[[users]]
name = "bob"
password = "hunter2"
"#;

fn file() -> FileConfig {
    FileConfig::parse(FILE).expect("the sample file parses")
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = coordinator_config(&CoordinatorArgs::default(), &FileConfig::default(), None)
        .expect("defaults are valid");
    let defaults = CoordinatorConfig::local_default();
    assert_eq!(config.pg_listen, defaults.pg_listen);
    assert_eq!(config.http_listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.control_listen.to_string(), "127.0.0.1:50050");
    assert_eq!(config.data_dir, PathBuf::from("./basin-data"));
    assert_eq!(config.max_message_bytes, 64 << 20);
    assert_eq!(config.target_partitions, 0);
    assert!(config.users.is_empty());
    assert!(!config.insecure_no_auth);

    let standalone = standalone_config(&StandaloneArgs::default(), &FileConfig::default(), None)
        .expect("defaults are valid");
    assert_eq!(standalone.executors, 2);
    assert_eq!(standalone.executor_memory_limit_bytes, 0);
    assert_eq!(
        config.distribute_min_bytes,
        64 << 20,
        "a coordinator's executors bring cores of their own"
    );
    assert_eq!(
        standalone.coordinator.distribute_min_bytes,
        standalone_distribute_min_bytes(standalone.coordinator.memory_limit_bytes),
        "standalone's executors share the coordinator's cores"
    );
    assert!(standalone.coordinator.distribute_min_bytes >= STANDALONE_DISTRIBUTE_MIN_BYTES);
    assert_eq!(
        standalone_distribute_min_bytes(0),
        STANDALONE_DISTRIBUTE_MIN_BYTES
    );
    assert_eq!(standalone_distribute_min_bytes(6 << 30), 6 << 30);
    let told = StandaloneArgs {
        coordinator: CoordinatorArgs {
            distribute_min_bytes: Some(ByteSize(0)),
            ..CoordinatorArgs::default()
        },
        ..StandaloneArgs::default()
    };
    let standalone =
        standalone_config(&told, &FileConfig::default(), None).expect("defaults are valid");
    assert_eq!(standalone.coordinator.distribute_min_bytes, 0);

    let executor = executor_config(&ExecutorArgs::default(), &FileConfig::default())
        .expect("defaults are valid");
    assert_eq!(executor.coordinator_url, "http://127.0.0.1:50050");
    assert_eq!(executor.listen.to_string(), "127.0.0.1:0");
    assert_eq!(executor.memory_limit_bytes, 0);
    assert_eq!(
        executor.data_dir, None,
        "no shards without a data directory"
    );
}

#[test]
fn file_overrides_defaults() {
    let file = file();
    let config = coordinator_config(&CoordinatorArgs::default(), &file, None).expect("valid");
    assert_eq!(config.pg_listen.to_string(), "127.0.0.1:6000");
    assert_eq!(config.http_listen.to_string(), "127.0.0.1:6001");
    assert_eq!(config.control_listen.to_string(), "127.0.0.1:6002");
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/basin"));
    assert_eq!(config.max_message_bytes, 1 << 20);
    assert_eq!(config.target_partitions, 8);
    let names: Vec<_> = config.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);

    let standalone = standalone_config(&StandaloneArgs::default(), &file, None).expect("valid");
    assert_eq!(standalone.executors, 3);
    assert_eq!(standalone.executor_memory_limit_bytes, 1 << 30);

    let executor = executor_config(&ExecutorArgs::default(), &file).expect("valid");
    assert_eq!(executor.coordinator_url, "http://10.0.0.1:50050");
    assert_eq!(executor.listen.to_string(), "10.0.0.2:50051");
    assert_eq!(executor.memory_limit_bytes, 1 << 30);
    assert_eq!(
        executor.data_dir,
        Some(PathBuf::from("/var/lib/basin-executor"))
    );
}

#[test]
fn flags_override_file() {
    let file = file();
    let args = StandaloneArgs {
        coordinator: CoordinatorArgs {
            pg_listen: Some("127.0.0.1:7000".parse().expect("address")),
            max_message_bytes: Some(ByteSize(4096)),
            target_partitions: Some(2),
            ..CoordinatorArgs::default()
        },
        executors: Some(1),
        memory_limit: Some(ByteSize(2 << 30)),
    };
    let standalone = standalone_config(&args, &file, None).expect("valid");
    assert_eq!(
        standalone.coordinator.pg_listen.to_string(),
        "127.0.0.1:7000"
    );
    assert_eq!(
        standalone.coordinator.http_listen.to_string(),
        "127.0.0.1:6001",
        "unset flags fall through to the file"
    );
    assert_eq!(standalone.coordinator.max_message_bytes, 4096);
    assert_eq!(standalone.coordinator.target_partitions, 2);
    assert_eq!(standalone.executors, 1);
    assert_eq!(standalone.executor_memory_limit_bytes, 2 << 30);

    let args = ExecutorArgs {
        coordinator_url: Some("http://127.0.0.1:1".to_owned()),
        ..ExecutorArgs::default()
    };
    let executor = executor_config(&args, &file).expect("valid");
    assert_eq!(executor.coordinator_url, "http://127.0.0.1:1");
    assert_eq!(executor.listen.to_string(), "10.0.0.2:50051");
}

#[test]
fn env_users_replace_file_users() {
    let config = coordinator_config(
        &CoordinatorArgs::default(),
        &file(),
        Some("carol:pa:ss, dave:x"),
    )
    .expect("valid");
    let users: Vec<_> = config
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.password.as_str()))
        .collect();
    assert_eq!(users, [("carol", "pa:ss"), ("dave", "x")]);
}

#[test]
fn env_users_must_have_passwords() {
    for text in ["carol", "carol:", ":secret"] {
        let err = coordinator_config(&CoordinatorArgs::default(), &file(), Some(text))
            .expect_err("a user without a password is rejected");
        let message = format!("{err:#}");
        assert!(message.contains("BASIN_USERS"), "{message}");
        assert!(
            !message.contains("secret"),
            "passwords never appear in errors: {message}"
        );
    }
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    for text in [
        "pg_listen = \"127.0.0.1:1\"", // coordinator keys live in [coordinator]
        "[coordinator]\npg_lisen = \"127.0.0.1:1\"", // typo
        "[coordinator]\npg_listen = \"localhost\"",
        "[coordinator]\nmax_message_bytes = \"lots\"",
        "[coordinator]\nmax_message_bytes = -1",
        "[[users]]\nname = \"alice\"",
    ] {
        assert!(
            FileConfig::parse(text).is_err(),
            "{text:?} should be rejected"
        );
    }
}

#[test]
fn validation_errors_are_reported() {
    let args = CoordinatorArgs {
        pg_listen: Some("0.0.0.0:5433".parse().expect("address")),
        ..CoordinatorArgs::default()
    };
    let err = coordinator_config(&args, &FileConfig::default(), None)
        .expect_err("non-loopback without users or --insecure-no-auth");
    assert!(err.to_string().contains("--insecure-no-auth"), "{err}");

    let args = CoordinatorArgs {
        insecure_no_auth: Some(true),
        ..args
    };
    coordinator_config(&args, &FileConfig::default(), None).expect("explicitly insecure is ok");

    let args = ExecutorArgs {
        listen: Some("0.0.0.0:50051".parse().expect("address")),
        ..ExecutorArgs::default()
    };
    let err = executor_config(&args, &FileConfig::default()).expect_err("needs advertise URL");
    assert!(err.to_string().contains("--advertise-url"), "{err}");

    let args = StandaloneArgs {
        executors: Some(1000),
        ..StandaloneArgs::default()
    };
    assert!(standalone_config(&args, &FileConfig::default(), None).is_err());
}

/// Set in the environment of the child test process started by
/// [`environment_sits_between_flags_and_file`].
const CHILD_MARKER: &str = "BASIN_TEST_CONFIG_CHILD";

/// The environment layer needs real environment variables, which this (multi-threaded, `unsafe`
/// free) test binary cannot set for itself: it runs [`environment_child`] in a child process
/// with the variables set.
#[test]
fn environment_sits_between_flags_and_file() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let path = dir.path().join("basin.toml");
    std::fs::write(&path, FILE).expect("write config file");
    let output = Command::new(std::env::current_exe().expect("path of the test binary"))
        .args(["--exact", "config::tests::environment_child", "--nocapture"])
        .env(CHILD_MARKER, "1")
        .env("BASIN_CONFIG", &path)
        .env("BASIN_PG_LISTEN", "127.0.0.1:7000")
        .env("BASIN_HTTP_LISTEN", "127.0.0.1:7001")
        .env("BASIN_INSECURE_NO_AUTH", "yes")
        .env("BASIN_USERS", "erin:pw")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn environment_child() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return; // Only meaningful inside environment_sits_between_flags_and_file.
    }
    let cli = Cli::try_parse_args(["basin", "coordinator", "--http-listen", "127.0.0.1:9001"])
        .expect("parse");
    let Some(CliCommand::Coordinator(args)) = &cli.command else {
        panic!("expected coordinator subcommand");
    };
    let file = FileConfig::load(cli.config.as_deref()).expect("BASIN_CONFIG names the file");
    let env_users = std::env::var("BASIN_USERS").ok();
    let config = coordinator_config(args, &file, env_users.as_deref()).expect("valid");
    assert_eq!(
        config.pg_listen.to_string(),
        "127.0.0.1:7000",
        "env beats file"
    );
    assert_eq!(
        config.http_listen.to_string(),
        "127.0.0.1:9001",
        "flag beats env"
    );
    assert_eq!(
        config.control_listen.to_string(),
        "127.0.0.1:6002",
        "file beats default"
    );
    assert!(config.insecure_no_auth, "boolean from env");
    assert_eq!(config.users.len(), 1);
    assert_eq!(config.users[0].name, "erin");
}

/// The sample file in docs/configuration.md stays in step with what Basin accepts.
#[test]
fn documented_example_file_parses() {
    let doc = include_str!("../docs/configuration.md");
    let start = doc
        .find("```toml\n# basin.toml")
        .expect("docs/configuration.md has the complete example")
        + "```toml\n".len();
    let length = doc[start..].find("```").expect("example block is closed");
    let file = FileConfig::parse(&doc[start..start + length]).expect("documented example parses");
    let standalone = standalone_config(&StandaloneArgs::default(), &file, None)
        .expect("documented example is valid");
    assert_eq!(standalone.executors, 2);
    assert_eq!(standalone.coordinator.users.len(), 1);
    let executor = executor_config(&ExecutorArgs::default(), &file).expect("valid executor part");
    assert_eq!(executor.memory_limit_bytes, 8 << 30);
}
