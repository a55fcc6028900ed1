//! Property tests of the scenario parser (`lab::scenario::Scenario::parse`),
//! and the check that a scenario file cannot run commands.
//!
//! A scenario file is input the harness trusts to describe a grid of runs:
//! it must never crash the harness, every mistake in it must come back as
//! the one-line usage error the CLI prints (exit 2), and nothing in it may
//! make the harness run a command. What is checked:
//!
//! - (a) arbitrary strings, and TOML-like ones glued from pieces, never make
//!   `parse` panic; every error is one non-empty line naming the file;
//! - (b) the real scenario files in `scenarios/*.toml`, changed at random
//!   (a line deleted, duplicated or replaced, a value changed to another TOML
//!   type or to a hostile string, a key inserted, from the known parameters
//!   or not), the same; and what parses still has a grid of 1 to 10000
//!   points;
//! - keys that would name a command (`command`, `exec`, `pre_run`, `shell`,
//!   `script`, ...) are rejected with the key named, and string values with
//!   shell metacharacters are rejected as bad values, both by `parse` and by
//!   `harness sweep FILE --dry-run` (exit 2), and the file such a command
//!   would create is never created.
//!
//! Each property runs a fixed number of cases (`ProptestConfig::cases`), so
//! its time is bounded (a few seconds at most on the 2-core development
//! machine, in release).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use lab::scenario::Scenario;
use proptest::prelude::*;
use proptest::sample::Index;

/// A fixed number of cases per property, so CI time is bounded.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

const PATH: &str = "props/scenario.toml";

/// Parses `source`; checks what must hold of any outcome (a failed check is
/// returned, not panicked, so shrinking stays quiet).
fn parse_checked(source: &str) -> Result<(), TestCaseError> {
    match Scenario::parse(Path::new(PATH), source) {
        Ok(s) => {
            prop_assert!(
                (1..=10_000).contains(&s.points.len()),
                "{} points: {:?}",
                s.points.len(),
                source
            );
            prop_assert!(s.runs() >= 1);
            prop_assert_eq!(s.source.as_str(), source);
        }
        Err(e) => {
            let e = e.0;
            prop_assert!(!e.trim().is_empty(), "empty error for {:?}", source);
            prop_assert!(!e.contains('\n'), "a multi-line error {:?} for {:?}", e, source);
            prop_assert!(
                e.starts_with(&format!("{PATH}:")),
                "{:?} does not name the file, for {:?}",
                e,
                source
            );
        }
    }
    Ok(())
}

/// The real scenario files, with their names.
fn real_scenarios() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "scenario files in {}: {files:?}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

// --------------------------------------------------------------- strategies

/// Pieces of TOML, so random input reaches the scenario checks, not only
/// the TOML parser.
const PIECES: &[&str] = &[
    "name = \"x\"\n",
    "description = \"d\"\n",
    "model = ",
    "model = \"reuseport\"\n",
    "workers = ",
    "concurrency = ",
    "rate = ",
    "duration = ",
    "connections = ",
    "stall_worker = ",
    "slow_worker = ",
    "service = ",
    "threads = ",
    "\"reuseport\"",
    "\"node-seed\"",
    "\"50%\"",
    "\"2s\"",
    "\"0:1s:300ms\"",
    "\"0:10\"",
    "\"spin:50us\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    ".",
    "\n",
    "#",
    "\"",
    "'",
    "\"\"\"",
    "\\n",
    "\\u0000",
    "0",
    "1",
    "-1",
    "4",
    "1e400",
    "inf",
    "nan",
    "9223372036854775807",
    "18446744073709551616",
    "true",
    "1979-05-27T07:32:00Z",
    "[table]\n",
    "[[array]]\n",
    " ",
    "\t",
    "\r\n",
];

fn toml_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

/// TOML values of every type, and strings no parameter should accept.
fn toml_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(&["0", "-0", "1", "1024", "1025", "-5", "0x10", "1_000"][..]).prop_map(str::to_string),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        prop::sample::select(&["inf", "-inf", "nan", "0.0", "1e-300", "5e3"][..]).prop_map(str::to_string),
        any::<bool>().prop_map(|b| b.to_string()),
        prop::sample::select(&["1979-05-27", "07:32:00", "1979-05-27T07:32:00-08:00"][..]).prop_map(str::to_string),
        // Strings: a few that parse somewhere, hostile ones, and random ones
        // (TOML-escaped, so the file stays valid TOML).
        prop::sample::select(
            &[
                "reuseport",
                "node-seed",
                "nginx-mutex",
                "50%",
                "0%",
                "2s",
                "0ms",
                "0:1s:300ms",
                "0:10",
                "spin:50us",
                "sleep:1ms",
                "threads",
                "poisson",
                "cpu",
                "",
                " ",
                "reuseport; touch /tmp/scenario-props",
                "$(touch /tmp/scenario-props)",
                "`id`",
                "a\nb",
                "line\r\nbreak",
                "\u{0}",
                "../../etc/passwd",
            ][..]
        )
        .prop_map(toml_string),
        any::<String>().prop_map(|s| toml_string(&s)),
        // Multi-line and literal strings.
        "[a-z0-9 :%]{0,12}".prop_map(|s| format!("\"\"\"\n{s}\n\"\"\"")),
        "[a-z0-9 :%]{0,12}".prop_map(|s| format!("'{s}'")),
    ];
    scalar.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                let kv: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", kv.join(", "))
            }),
        ]
    })
}

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The keys a scenario knows, keys that would run something, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(lab::params::scenario_keys().collect::<Vec<_>>()).prop_map(str::to_string),
        prop::sample::select(
            &[
                "name",
                "description",
                "repetitions",
                "shuffle",
                "seed",
                "command",
                "exec",
                "pre_run",
                "shell",
                "script",
                "\"quoted key\"",
                "\"a\\nb\"",
                "model.sub",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
    ]
}

/// One change to a scenario file's lines.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Replace(Index, String),
    /// Gives the value of the `key = value` line at the index another value.
    Revalue(Index, String),
    Insert(Index, String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Duplicate),
        (
            any::<Index>(),
            prop_oneof![
                1 => toml_like(),
                3 => (key(), toml_value()).prop_map(|(k, v)| format!("{k} = {v}"))
            ]
        )
            .prop_map(|(i, l)| Mutation::Replace(i, l)),
        (any::<Index>(), toml_value()).prop_map(|(i, v)| Mutation::Revalue(i, v)),
        (any::<Index>(), key(), toml_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
    ]
}

fn apply(source: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    for m in mutations {
        let n = lines.len();
        match m {
            Mutation::Delete(i) if n > 0 => {
                lines.remove(i.index(n));
            }
            Mutation::Duplicate(i) if n > 0 => {
                let i = i.index(n);
                lines.insert(i, lines[i].clone());
            }
            Mutation::Replace(i, l) if n > 0 => lines[i.index(n)] = l.clone(),
            Mutation::Revalue(i, v) => {
                // The i-th line that assigns a value (a multi-line list keeps
                // its other lines: the file then may not be TOML, also fine).
                let assigns: Vec<usize> = (0..n)
                    .filter(|&k| !lines[k].trim_start().starts_with('#') && lines[k].contains(" = "))
                    .collect();
                if !assigns.is_empty() {
                    let k = assigns[i.index(assigns.len())];
                    let key = lines[k].split(" = ").next().unwrap_or("").to_string();
                    lines[k] = format!("{key} = {v}");
                }
            }
            Mutation::Insert(i, k, v) => lines.insert(i.index(n + 1), format!("{k} = {v}")),
            _ => {}
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

// --------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config(16_384))]

    /// (a) Any string: no panic; an error is one line naming the file.
    #[test]
    fn arbitrary_text_never_panics_and_errors_are_one_line(
        source in prop_oneof![any::<String>(), toml_like()],
    ) {
        // CPU-heavy: not beside a test that measures (taken per case).
        let _g = crate::common::serial();
        parse_checked(&source)?;
    }
}

proptest! {
    #![proptest_config(config(8192))]

    /// (b) The real scenario files, damaged at random: no panic; an error is
    /// one line naming the file; what parses has a bounded grid.
    #[test]
    fn mutated_real_scenarios_never_panic_and_errors_are_one_line(
        file in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let _g = crate::common::serial();
        let files = real_scenarios();
        let (_, text) = &files[file.index(files.len())];
        let source = apply(text, &mutations);
        parse_checked(&source)?;
    }
}

// ------------------------------------------------------------- plain tests

/// What the mutations start from parses, so they test the checks and not
/// only a broken file.
#[test]
fn the_real_scenarios_parse() {
    for (name, text) in real_scenarios() {
        if let Err(e) = Scenario::parse(Path::new(&name), &text) {
            panic!("{name}: {}", e.0);
        }
    }
}

/// A path no other run of this test (or anything else) uses, not yet there.
fn marker(tag: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let p = std::env::temp_dir().join(format!("x-scenario-props-{}-{nanos}-{tag}", std::process::id()));
    assert!(!p.exists(), "{} already exists", p.display());
    p
}

/// `harness sweep FILE --dry-run` on `source` (written to a scratch file):
/// exit code and stderr. With `--dry-run` a scenario that slipped through
/// would only be listed, never run.
fn dry_run(name: &str, source: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("scenario-props-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, source).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .expect("harness runs");
    let _ = std::fs::remove_dir_all(&dir);
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

const BASE: &str = "name = \"cmd\"\ndescription = \"d\"\nmodel = \"reuseport\"\nworkers = 2\nconnections = 10\n";

#[test]
fn scenario_files_cannot_run_commands() {
    let keys = [
        "command", "exec", "pre_run", "post_run", "shell", "script", "cmd", "run", "hook", "setup", "before", "after",
        "env",
    ];
    for key in keys {
        let made = marker(key);
        let touch = format!("touch {}", made.display());
        for (shape, line) in [
            ("string", format!("{key} = {}", toml_string(&touch))),
            ("argv", format!("{key} = [\"sh\", \"-c\", {}]", toml_string(&touch))),
            ("table", format!("[{key}]\ncommand = {}", toml_string(&touch))),
        ] {
            let source = format!("{BASE}{line}\n");
            let e = match Scenario::parse(Path::new("cmd.toml"), &source) {
                Ok(_) => panic!("{key} ({shape}) accepted:\n{source}"),
                Err(e) => e.0,
            };
            // The line and the key (a table shows as `[key]` there), and why.
            let named = match shape {
                "table" => format!("cmd.toml:6: [{key}]: "),
                _ => format!("cmd.toml:6: {key}: "),
            };
            assert!(
                e.starts_with(&named) && e.contains(&format!("unknown field `{key}`")),
                "{key} ({shape}): {e}"
            );
            assert!(!e.contains('\n'), "{key} ({shape}): {e:?}");
            let (code, stderr) = dry_run(&format!("cmd-{key}"), &source);
            assert_eq!(code, Some(2), "{key} ({shape}): {stderr}");
            assert!(
                stderr.contains(&format!("unknown field `{key}`")),
                "{key} ({shape}): {stderr}"
            );
            assert!(!made.exists(), "{key} ({shape}) created {}", made.display());
        }
    }
}

#[test]
fn shell_metacharacters_in_values_are_bad_values() {
    let made = marker("meta");
    let touch = format!("touch {}", made.display());
    let hostile = |good: &str| {
        [
            format!("{good}; {touch}"),
            format!("{good} && {touch}"),
            format!("{good} | sh -c '{touch}'"),
            format!("$({touch})"),
            format!("`{touch}`"),
            format!("{good}\n{touch}"),
        ]
    };
    // Every string-valued parameter, with a value it accepts.
    let params = [
        ("model", "reuseport"),
        ("duration", "1s"),
        ("warmup", "100ms"),
        ("timeout", "1s"),
        ("interval", "1s"),
        ("service", "spin:50us"),
        ("slow_worker", "0:10"),
        ("stall_worker", "0:1s:300ms"),
        ("fleet", "threads"),
        ("steer", "cpu"),
        ("rate", "50%"),
        ("arrivals", "poisson"),
    ];
    for (key, good) in params {
        // The good value is accepted where the key is (so the rejection
        // below is the value's fault, not the key's or the combination's).
        let mut base = String::from("name = \"meta\"\ndescription = \"d\"\nworkers = 2\n");
        if key != "model" {
            base.push_str("model = \"reuseport\"\n");
        }
        if key != "duration" {
            base.push_str("connections = 10\n");
        }
        if key == "arrivals" {
            base.push_str("rate = 100\n");
        }
        let line = base.lines().count() + 1;
        let ok = format!("{base}{key} = {}\n", toml_string(good));
        if let Err(e) = Scenario::parse(Path::new("meta.toml"), &ok) {
            panic!("{key} = {good:?} should be accepted: {}\n{ok}", e.0);
        }
        for bad in hostile(good) {
            let source = format!("{base}{key} = {}\n", toml_string(&bad));
            let e = match Scenario::parse(Path::new("meta.toml"), &source) {
                Ok(_) => panic!("{key} = {bad:?} accepted"),
                Err(e) => e.0,
            };
            assert!(
                e.starts_with(&format!("meta.toml:{line}: {key}: ")),
                "{key} = {bad:?}: {e}"
            );
            assert!(!e.contains('\n'), "{key} = {bad:?}: a multi-line error {e:?}");
            assert!(!made.exists(), "{key} = {bad:?} created {}", made.display());
        }
        // The binary too (the first hostile value; the others take the same path).
        let source = format!("{base}{key} = {}\n", toml_string(&hostile(good)[0]));
        let (code, stderr) = dry_run(&format!("meta-{key}"), &source);
        assert_eq!(code, Some(2), "{key}: {stderr}");
        assert!(stderr.contains(&format!(":{line}: {key}: ")), "{key}: {stderr}");
        assert!(!made.exists(), "{key} created {}", made.display());
    }
}
