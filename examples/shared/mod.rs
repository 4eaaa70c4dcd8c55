//! What the examples share: one-line errors, the `--backend` and `--engine` choices as clap
//! values, and the progress bar.
#![allow(dead_code)]

use std::process::ExitCode;

use clap::{
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    Parser,
};
use grokking::{device::BackendKind, Engine};
use indicatif::{ProgressBar, ProgressStyle};

/// Parses the arguments and runs `run`: `--help`/`--version` print and succeed, a bad argument
/// is one line on stderr (clap's message up to its first blank line, joined) and exit code 2, an
/// error from `run` is one `error: ...` line and exit code 1.
pub fn main_with<A: Parser>(run: impl FnOnce(&A) -> anyhow::Result<()>) -> ExitCode {
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let lines: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
            let line = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
            eprintln!(
                "{}",
                if line.is_empty() {
                    "error: bad arguments"
                } else {
                    &line
                }
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--backend`: one of [`BackendKind::ALL`] by name, each with its description in `--help`.
pub fn backend() -> impl TypedValueParser<Value = BackendKind> {
    let names = BackendKind::ALL.map(|k| PossibleValue::new(k.name()).help(k.description()));
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a listed name"))
}

/// `--engine`: one of [`Engine::ALL`] by name, each with its description in `--help`.
pub fn engine() -> impl TypedValueParser<Value = Engine> {
    let names = Engine::ALL.map(|e| PossibleValue::new(e.name()).help(e.description()));
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a listed name"))
}

/// A progress bar over `len` `unit`s, with elapsed time, the estimate and a message.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let template =
        format!("{{bar:30}} {{pos}}/{{len}} {unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}");
    ProgressBar::new(len)
        .with_style(ProgressStyle::with_template(&template).expect("valid template"))
}
