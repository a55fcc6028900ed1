//! `harness external NAME...`: real servers under the seed's load, each
//! beside the harness model that works the same way, cross-checked against
//! the servers' own counts.
//!
//! It runs the shipped scenario `scenarios/external.toml` through the sweep
//! machinery, narrowed to the servers named (and their counterparts unless
//! `--no-counterparts`), so the files, charts and report are those of any
//! sweep. It then prints, for every server worker, the load generator's count
//! beside the server's own, and fails (exit 1) on any difference.

use std::path::{Path, PathBuf};

use crate::output::out_dir;

use super::reproduce;
use crate::account::{CountSource, RunResult};
use crate::scenario::Scenario;
use crate::sweep;
use crate::UsageError;

use super::reproduce::Done;
use crate::servers::Server;

/// The scenario `harness external all` runs (file order).
pub const SCENARIO: &str = include_str!("../../../../scenarios/external.toml");
const SCENARIO_PATH: &str = "scenarios/external.toml";

/// What `harness external` was asked for.
pub struct Options {
    pub servers: Vec<Server>,
    pub counterparts: bool,
    pub out: Option<PathBuf>,
    pub connections: u64,
    pub concurrency: usize,
}

/// Server names from the command line; `all` is every server.
pub fn parse_servers(names: &[String]) -> Result<Vec<Server>, UsageError> {
    let mut servers = Vec::new();
    for n in names {
        if n == "all" {
            servers.extend(Server::ALL);
        } else {
            servers.push(n.parse::<Server>().map_err(|e| UsageError(format!("{e} or all")))?);
        }
    }
    let mut seen = Vec::new();
    servers.retain(|s| {
        let new = !seen.contains(s);
        seen.push(*s);
        new
    });
    Ok(servers)
}

/// The shipped scenario with its model list, load and size replaced.
pub fn scenario(
    servers: &[Server],
    counterparts: bool,
    connections: u64,
    concurrency: usize,
) -> Result<Scenario, UsageError> {
    // Servers that share a counterpart sit together, the counterpart after them.
    let mut models: Vec<String> = Vec::new();
    for s in servers {
        if models.iter().any(|m| m == s.name()) {
            continue;
        }
        let kin = servers.iter().filter(|k| k.counterpart() == s.counterpart());
        models.extend(kin.map(|k| k.name().to_string()));
        if counterparts {
            models.push(s.counterpart().name().to_string());
        }
    }
    let list = models.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ");
    let start = SCENARIO.find("\nmodel = [").expect("external.toml has a model list") + 1;
    let end = start + SCENARIO[start..].find(']').expect("the model list ends") + 1;
    let text = format!("{}model = [{list}]{}", &SCENARIO[..start], &SCENARIO[end..]);
    let text = reproduce::with_load(&text, connections, concurrency);
    Scenario::parse(Path::new(SCENARIO_PATH), &text)
}

/// Runs the servers (and their counterparts) under the seed's load.
pub fn run(o: Options) -> anyhow::Result<Done> {
    if o.servers.is_empty() {
        return Err(UsageError(format!("name one or more servers: {} or all", Server::names())).into());
    }
    let scn = scenario(&o.servers, o.counterparts, o.connections, o.concurrency)?;
    let (_, stamp) = records::meta::utc_now();
    let opts = sweep::Options {
        out: out_dir(o.out, &stamp, "external"),
        resume: false,
        seed: Some(0),
        quiet: false,
    };
    let outcome = sweep::run(&scn, &opts)?;
    let results: Vec<&RunResult> = outcome.results.iter().map(|(_, r)| r).collect();
    let mut text = String::from("\n");
    text.push_str(&reproduce::comparison(&results));
    text.push('\n');
    let mut differ = 0;
    for r in results.iter().filter(|r| r.source == CountSource::Server) {
        let (t, n) = cross_check(r);
        text.push_str(&t);
        differ += n;
    }
    for r in &results {
        text.push_str(&format!("{}: {}\n", r.summary.model, crate::conservation::line(r)));
    }
    text.push_str(&format!("files: {}\n", outcome.dir.display()));
    if differ > 0 {
        text.push_str(&format!(
            "{differ} server workers' own counts differ from the load generator's attribution (see above)\n"
        ));
    }
    let ok = outcome.ok() && differ == 0;
    Ok(Done { outcome, text, ok })
}

/// Each worker's own count beside the load generator's, in the seed's words;
/// returns the text and how many workers differ.
pub fn cross_check(r: &RunResult) -> (String, usize) {
    let mut s = format!(
        "{}: the server's own counts against the load generator's\n",
        r.summary.model
    );
    let mut differ = 0;
    for w in &r.workers {
        let same = w.accepted == w.attributed && w.requests == w.attributed_requests;
        differ += usize::from(!same);
        s.push_str(&format!(
            "  worker {} got {} connections {} requests; load generator: {} connections {} requests{}\n",
            w.pid,
            w.accepted,
            w.requests,
            w.attributed,
            w.attributed_requests,
            if same { "" } else { "  <- DIFFERS" }
        ));
    }
    (s, differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::Subject;

    #[test]
    fn the_shipped_scenario_pairs_each_server_with_its_counterpart() {
        let s = scenario(&Server::ALL, true, 100, 2).unwrap();
        let names: Vec<String> = s.points.iter().map(|p| p.subject().name().to_string()).collect();
        for server in Server::ALL {
            let i = names.iter().position(|n| n == server.name()).unwrap();
            let c = names.iter().position(|n| n == server.counterpart().name()).unwrap();
            assert!(
                c > i || names[..i].contains(&server.counterpart().name().to_string()),
                "{names:?}"
            );
        }
        // Node's SCHED_NONE among the servers before shared-epoll, SCHED_RR
        // right before dispatch-rr: only kin between a server and its model.
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        for (server, model) in [("node-none", "shared-epoll"), ("node-rr", "dispatch-rr")] {
            let (i, c) = (at(server), at(model));
            assert!(c > i, "{names:?}");
            assert!(
                names[i..c]
                    .iter()
                    .all(|n| n.parse::<Server>().is_ok_and(|s| s.counterpart().name() == model)),
                "{names:?}"
            );
        }
        assert_eq!(at("dispatch-rr"), at("node-rr") + 1, "{names:?}");
        assert_eq!(s.points[0].spec(None).stop, loadgen::Stop::Connections(100));
    }

    #[test]
    fn names_narrow_the_scenario() {
        let servers = parse_servers(&["nginx-mutex".into(), "nginx-mutex".into()]).unwrap();
        let s = scenario(&servers, true, 100, 2).unwrap();
        let subjects: Vec<Subject> = s.points.iter().map(|p| p.subject()).collect();
        assert_eq!(
            subjects,
            vec![
                Subject::Server(Server::NginxMutex),
                Subject::Model(fleet::model::Model::AcceptMutex)
            ]
        );
        let alone = scenario(&servers, false, 100, 2).unwrap();
        assert_eq!(alone.points.len(), 1);
        assert_eq!(parse_servers(&["all".into()]).unwrap(), Server::ALL.to_vec());
        let e = parse_servers(&["apache".into()]).unwrap_err().0;
        assert!(e.contains("'apache'") && e.contains("or all"), "{e}");
    }
}
