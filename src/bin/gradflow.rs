//! `gradflow`: the gradient-flow doctor on the command line.
//!
//! Diagnoses a recording — a PyTorch run recorded with the Python module `gradflow_torch`
//! (`python/` in the repository), or a gradflow recording saved with
//! `gradflow::export::write_recording_jsonl` or `gradflow::report::json::write_file` — with the
//! same verdicts, evidence and remedies as `gradflow::diagnose::diagnose`, and writes the same
//! reports as `gradflow::report::write_dir`.
//!
//! ```text
//! gradflow diagnose RUN.jsonl [--step N] [--json]
//! gradflow report RUN.jsonl --out DIR [--step N]
//! ```
//!
//! Exit status: 0 when the command ran (whatever the verdict), 1 when the recording cannot be
//! read or a report cannot be written, 2 for a command line it does not understand. Errors go
//! to standard error and name the file, line and field.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gradflow::diagnose::{Diagnosis, Thresholds, diagnose, diagnose_step};
use gradflow::export::read_recording_jsonl;
use gradflow::hooks::Recording;
use gradflow::report::{json, table, write_dir};

const USAGE: &str = "\
gradflow — see where your gradient vanishes, and fix it

Usage:
  gradflow diagnose RUN [--step N] [--json]
      Print the diagnosis of a recorded run: a table of the hidden layers, the verdict
      (healthy, vanishing, exploding, saturated, dead, non-finite, unstable, stalled), the
      evidence and the remedies. --step N diagnoses step N alone (default: the first recorded
      step, and how training went over the whole run). --json prints the diagnosis as JSON
      (schema gradflow.diagnosis/1) instead.
  gradflow report RUN --out DIR [--step N]
      Write the reports into DIR: diagnosis.txt, diagnosis.json, recording.json,
      recording.csv, hidden_layers.csv and SVG charts (gradient by layer, layer x step
      heatmap, loss by step).
  gradflow --help | --version

RUN is a recording in JSON lines (schema gradflow.recording.jsonl, as written by the Python
recorder gradflow_torch or gradflow::export::write_recording_jsonl), or a .json file written
by gradflow::report::json::write_file.";

/// A command line that was understood.
#[derive(Debug)]
enum Command {
    Help,
    Version,
    Diagnose { run: PathBuf, step: Option<u64>, json: bool },
    Report { run: PathBuf, out: PathBuf, step: Option<u64> },
}

fn main() -> ExitCode {
    // `std::env::args` panics on an argument that is not UTF-8: refuse it like any other
    // command line that is not understood.
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let args = match args {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("gradflow: the argument {bad:?} is not UTF-8 text\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let command = match parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("gradflow: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradflow: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Command, String> {
    let Some((name, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    match name.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "-V" | "--version" => return Ok(Command::Version),
        "diagnose" | "report" => {}
        other => return Err(format!("unknown command `{other}` (expected diagnose or report)")),
    }
    let (mut run, mut out, mut step, mut json) = (None, None, None, false);
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| rest.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--step" => {
                let text = value("--step")?;
                step =
                    Some(text.parse::<u64>().map_err(|_| format!("--step: `{text}` is not a step number"))?);
            }
            "--out" | "-o" if name == "report" => out = Some(PathBuf::from(value("--out")?)),
            "--json" if name == "diagnose" => json = true,
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option `{flag}` for `{name}`"));
            }
            path if run.is_none() => run = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument `{extra}`: one recording at a time")),
        }
    }
    let run = run.ok_or_else(|| format!("`{name}` needs the recording to read (RUN.jsonl)"))?;
    if name == "diagnose" {
        Ok(Command::Diagnose { run, step, json })
    } else {
        let out = out.ok_or("`report` needs --out DIR")?;
        Ok(Command::Report { run, out, step })
    }
}

fn run(command: Command) -> gradflow::Result<()> {
    let mut text = String::new();
    match command {
        Command::Help => text = format!("{USAGE}\n"),
        Command::Version => text = format!("gradflow {}\n", env!("CARGO_PKG_VERSION")),
        Command::Diagnose { run, step, json: as_json } => {
            let recording = read(&run)?;
            let diagnosis = diagnosis_of(&recording, step)?;
            text = if as_json {
                format!("{}\n", json::diagnosis_to_string(&diagnosis)?)
            } else {
                table::render(&diagnosis)
            };
        }
        Command::Report { run, out, step } => {
            let recording = read(&run)?;
            let diagnosis = diagnosis_of(&recording, step)?;
            let written = write_dir(&recording, &diagnosis, &out)?;
            text += &format!("{}: {}\n", run.display(), diagnosis.verdict.name());
            for path in written {
                text += &format!("wrote {}\n", path.display());
            }
        }
    }
    print_out(&text)
}

/// Writes `text` to standard output. `print!` panics when the reader has gone (`gradflow
/// diagnose run.jsonl | head -3`): a closed pipe ends the output quietly, as in other command
/// line tools, and any other write error is an error naming standard output.
fn print_out(text: &str) -> gradflow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(gradflow::Error::io("standard output", e))
        }
        _ => Ok(()),
    }
}

/// A recording in JSON lines, or in JSON (`.json`, schema `gradflow.recording/1`).
fn read(path: &Path) -> gradflow::Result<Recording> {
    if path.extension().is_some_and(|e| e == "json") {
        json::read_file(path)
    } else {
        read_recording_jsonl(path)
    }
}

fn diagnosis_of(recording: &Recording, step: Option<u64>) -> gradflow::Result<Diagnosis> {
    let thresholds = Thresholds::default();
    match step {
        Some(step) => diagnose_step(recording, step, &thresholds),
        None => diagnose(recording, &thresholds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn command_lines_parse_or_say_what_is_wrong() {
        assert!(matches!(
            parse(&args("diagnose run.jsonl")),
            Ok(Command::Diagnose { step: None, json: false, .. })
        ));
        assert!(matches!(
            parse(&args("diagnose --step 3 run.jsonl --json")),
            Ok(Command::Diagnose { step: Some(3), json: true, .. })
        ));
        assert!(matches!(parse(&args("report run.jsonl --out dir")), Ok(Command::Report { .. })));
        assert!(matches!(parse(&args("--version")), Ok(Command::Version)));
        for (line, expected) in [
            ("", "no command"),
            ("cure run.jsonl", "unknown command `cure`"),
            ("diagnose", "needs the recording"),
            ("diagnose a b", "unexpected argument `b`"),
            ("diagnose run.jsonl --step x", "`x` is not a step number"),
            ("diagnose run.jsonl --step", "--step needs a value"),
            ("diagnose run.jsonl --out d", "unknown option `--out`"),
            ("report run.jsonl", "needs --out DIR"),
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.contains(expected), "{line:?}: {err}");
        }
    }
}
