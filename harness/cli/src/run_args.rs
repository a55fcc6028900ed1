//! `harness run`'s options, made from the parameter table (`lab::params`):
//! every run parameter's flag, value name, help and default come from its
//! one definition there, and so do its parsing and its checks.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use lab::params::{self, Given, Kind, Param, Value};

/// The options of `harness run`, as given.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// Every parameter given, its values read.
    pub given: Given,
    /// Where the files go.
    pub out: Option<PathBuf>,
}

/// A switch: a yes/no parameter without a value (`--respawn`).
fn is_switch(p: &Param) -> bool {
    p.kind == Kind::Bool && p.value_name.is_empty()
}

fn arg(p: &'static Param) -> Arg {
    let help = match p.default {
        Some(d) => format!("{} [default: {d}]", p.help),
        None => p.help.to_string(),
    };
    let a = Arg::new(p.key).long(p.flag).help(help);
    if is_switch(p) {
        return a.action(ArgAction::SetTrue);
    }
    a.value_name(p.value_name)
        .action(if p.repeat { ArgAction::Append } else { ArgAction::Set })
        // Read here too, so a bad value is refused as clap refuses any:
        // one line naming the flag and the value.
        .value_parser(move |s: &str| p.parse_text(s).map(|_| s.to_string()))
}

impl Args for RunArgs {
    fn augment_args(cmd: Command) -> Command {
        let cmd = params::PARAMS.iter().fold(cmd, |cmd, p| cmd.arg(arg(p)));
        cmd.arg(
            Arg::new("out")
                .long("out")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Output directory [default: results/<timestamp>-<model>]"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        RunArgs::augment_args(cmd)
    }
}

impl FromArgMatches for RunArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<RunArgs, clap::Error> {
        let mut args = RunArgs::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for p in params::PARAMS {
            if is_switch(p) {
                if m.get_flag(p.key) {
                    self.given.push(p, vec![Value::Bool(true)]);
                }
                continue;
            }
            let Some(texts) = m.get_many::<String>(p.key) else {
                continue;
            };
            let values = texts
                .map(|t| p.parse_text(t))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))?;
            self.given.push(p, values);
        }
        if let Some(out) = m.get_one::<PathBuf>("out") {
            self.out = Some(out.clone());
        }
        Ok(())
    }
}
