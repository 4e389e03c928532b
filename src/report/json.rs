//! JSON export of a [`Recording`] (and of a [`Diagnosis`]) with a versioned schema.
//!
//! # Schema `gradflow.recording/1`
//! The document is the [`Recording`] with a `schema` field first. Field names are those of the
//! Rust types ([`Recording`], [`LayerRecord`](crate::hooks::LayerRecord),
//! [`LayerStepRecord`](crate::hooks::LayerStepRecord), [`ParamStats`](crate::hooks::ParamStats),
//! [`TensorStats`](crate::hooks::TensorStats), [`ActivationStats`](crate::hooks::ActivationStats)),
//! whose documentation defines each number. Absent values are `null`; every number is finite.
//!
//! ```json
//! {
//!   "schema": "gradflow.recording/1",
//!   "float": "f32",
//!   "config": { "every_n_steps": 1, "activations": true, "parameters": true,
//!               "updates": true, "saturation_level": 0.05 },
//!   "layers": [
//!     { "path": "0", "kind": "Linear", "description": "Linear(8→16)", "depth": 0,
//!       "is_container": false, "activation": null,
//!       "steps": [
//!         { "step": 0,
//!           "grad_output": { "count": 64, "l2_norm": 0.21, "mean": 0.001, "std": 0.026,
//!                            "max_abs": 0.07, "non_finite_count": 0 },
//!           "grad_input": null,
//!           "activation": { "output": { "count": 64, "l2_norm": 4.1, "mean": 0.02, "std": 0.51,
//!                                       "max_abs": 1.2, "non_finite_count": 0 },
//!                           "saturated_fraction": null, "dead_fraction": null,
//!                           "mean_derivative": null },
//!           "params": [
//!             { "name": "weight",
//!               "grad": { "count": 128, "l2_norm": 0.3, "mean": 0.0, "std": 0.026,
//!                         "max_abs": 0.09, "non_finite_count": 0 },
//!               "value_norm": 4.6, "grad_to_value_ratio": 0.065, "update_to_value_ratio": 0.0065 }
//!           ] } ] },
//!     { "path": "1", "kind": "tanh", "description": "tanh", "depth": 0, "is_container": false,
//!       "activation": { "name": "tanh", "family": "Saturating", "max_derivative": 1.0 },
//!       "steps": [ "…" ] }
//!   ]
//! }
//! ```
//!
//! Version 1 will only gain fields (readers ignore unknown ones); a change of meaning or a
//! removal will bump the number, and [`from_str`] refuses other versions with an error.
//!
//! A [`Diagnosis`] is written the same way under the schema [`DIAGNOSIS_SCHEMA_VERSION`], with
//! the fields of [`Diagnosis`] (remedies as their variant names, e.g. `"RectifierActivations"`),
//! including `theory`, the mean-field prediction beside the measurement
//! ([`TheoryComparison`](crate::diagnose::TheoryComparison), `null` unless the diagnosis was made
//! [`Diagnosis::with_theory`]); a file without it reads back with `theory` absent.

use std::path::Path;

use serde::Serialize;

use crate::diagnose::Diagnosis;
use crate::hooks::Recording;
use crate::{Error, Result};

/// The schema of a recording file.
pub const SCHEMA_VERSION: &str = "gradflow.recording/1";

/// The schema of a diagnosis file.
pub const DIAGNOSIS_SCHEMA_VERSION: &str = "gradflow.diagnosis/1";

#[derive(Serialize)]
struct Envelope<'a, T> {
    schema: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

fn pretty<T: Serialize>(schema: &str, body: &T, name: &str) -> Result<String> {
    serde_json::to_string_pretty(&Envelope { schema, body })
        .map_err(|e| Error::Data { source_name: name.into(), reason: format!("cannot write JSON: {e}") })
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::io::write_atomically(path, text.as_bytes())
}

/// The recording as pretty-printed JSON (schema [`SCHEMA_VERSION`]).
///
/// ```
/// use gradflow::hooks::Recording;
/// use gradflow::report::json;
///
/// let text = json::to_string(&Recording::default())?;
/// assert!(text.contains("\"schema\": \"gradflow.recording/1\""));
/// assert_eq!(json::from_str(&text)?, Recording::default());
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Data`] if serialization fails (it does not for recordings made by a recorder).
pub fn to_string(recording: &Recording) -> Result<String> {
    pretty(SCHEMA_VERSION, recording, "recording")
}

/// Writes the recording as JSON to `path`.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written.
pub fn write_file(recording: &Recording, path: impl AsRef<Path>) -> Result<()> {
    write(path.as_ref(), &to_string(recording)?)
}

/// Reads a recording from JSON text.
///
/// # Errors
/// [`Error::Data`] when the text is not JSON, has no `schema` or another one than
/// [`SCHEMA_VERSION`], or does not match the schema (with serde's line and column).
pub fn from_str(text: &str) -> Result<Recording> {
    parse(text, "<string>")
}

/// Reads a recording from a JSON file written by [`write_file`].
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read, [`Error::Data`] naming it when its
/// content is not a recording of this schema version.
pub fn read_file(path: impl AsRef<Path>) -> Result<Recording> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(&text, &path.display().to_string())
}

fn parse(text: &str, name: &str) -> Result<Recording> {
    let data = |reason: String| Error::Data { source_name: name.to_string(), reason };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| data(format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(data(format!(
                "schema is \"{other}\", this version of gradflow reads \"{SCHEMA_VERSION}\""
            )));
        }
        None => return Err(data(format!("no \"schema\" field: not a {SCHEMA_VERSION} file"))),
    }
    serde_json::from_value(value).map_err(|e| data(format!("does not match {SCHEMA_VERSION}: {e}")))
}

/// The diagnosis as pretty-printed JSON (schema [`DIAGNOSIS_SCHEMA_VERSION`]).
///
/// # Errors
/// [`Error::Data`] if serialization fails.
pub fn diagnosis_to_string(diagnosis: &Diagnosis) -> Result<String> {
    pretty(DIAGNOSIS_SCHEMA_VERSION, diagnosis, "diagnosis")
}

/// Writes the diagnosis as JSON to `path`.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written.
pub fn write_diagnosis_file(diagnosis: &Diagnosis, path: impl AsRef<Path>) -> Result<()> {
    write(path.as_ref(), &diagnosis_to_string(diagnosis)?)
}
