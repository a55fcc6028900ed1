//! What a run measures: one of the harness's own fleets under an accept
//! model, a real server the harness starts itself (Node.js, nginx), or any
//! server at an address the user names.
//!
//! The name is what the `model` column of every CSV holds. How each runs is
//! in [`crate::running`].

use std::fmt;
use std::net::SocketAddr;

use crate::servers::Server;
use fleet::model::Model;
use loadgen::Attribution;

/// Any server at an address, which the harness did not start.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    /// How a response names the worker that served it.
    pub attribution: Attribution,
    /// Whether a target off loopback may be loaded.
    pub allow_remote: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A fleet the harness forks, under one accept model.
    Model(Model),
    /// A real server the harness starts, loads, stops and cross-checks
    /// against the server's own counts.
    Server(Server),
    /// A server the harness did not start (`--target`): attribution only.
    Target(Target),
}

impl Subject {
    /// The name in the `model` column of the records.
    pub fn name(&self) -> &'static str {
        match self {
            Subject::Model(m) => m.name(),
            Subject::Server(s) => s.name(),
            Subject::Target(_) => "external",
        }
    }

    /// The accept model, when the harness runs the fleet itself.
    pub fn model(&self) -> Option<Model> {
        match self {
            Subject::Model(m) => Some(*m),
            _ => None,
        }
    }

    /// Every name a scenario's `model` key accepts.
    pub fn names() -> String {
        format!("{}, {}", Model::names(), Server::names())
    }
}

impl From<Model> for Subject {
    fn from(m: Model) -> Subject {
        Subject::Model(m)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Target(t) => write!(f, "the server at {}", t.addr),
            _ => f.write_str(self.name()),
        }
    }
}

/// A model name or a server name, as a scenario's `model` key gives it.
impl std::str::FromStr for Subject {
    type Err = String;

    fn from_str(s: &str) -> Result<Subject, String> {
        if let Ok(m) = s.parse::<Model>() {
            return Ok(Subject::Model(m));
        }
        s.parse::<Server>()
            .map(Subject::Server)
            .map_err(|_| format!("unknown model '{s}' (valid: {})", Subject::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_the_same_subject() {
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Subject>().unwrap(), Subject::Model(m));
        }
        for s in Server::ALL {
            assert_eq!(s.name().parse::<Subject>().unwrap(), Subject::Server(s));
        }
        let e = "nginx-fast".parse::<Subject>().unwrap_err();
        assert!(
            e.contains("'nginx-fast'") && e.contains("nginx-reuseport") && e.contains("dispatch-rr"),
            "{e}"
        );
    }
}
