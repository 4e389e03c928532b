//! A whole [`Recording`] as JSON lines (schema `gradflow.recording.jsonl`, version 1): written by
//! [`write_recording_jsonl`] and by the Python recorder in `python/` (`gradflow_torch`), read
//! back by [`read_recording_jsonl`], which checks every line.
//!
//! # Schema `gradflow.recording.jsonl`, version 1
//! One JSON object per line ([JSON lines](https://jsonlines.org/)), as [`MetricsWriter`] writes
//! them. The first line is the header; every other line has a `type`:
//!
//! ```text
//! {"schema":"gradflow.recording.jsonl","schema_version":1,"float":"f32","producer":"gradflow_torch 0.1.0",
//!  "config":{"every_n_steps":1,"activations":true,"parameters":true,"updates":true,"saturation_level":0.05}}
//! {"type":"layer","path":"0","kind":"Linear","description":"Linear(64→64)","layer_number":null,
//!  "depth":0,"is_container":false,"activation":null}
//! {"type":"layer","path":"1","kind":"tanh","description":"tanh","layer_number":null,"depth":0,
//!  "is_container":false,"activation":{"name":"tanh","family":"Saturating","max_derivative":1.0}}
//! {"type":"loss","step":0,"loss":2.31}
//! {"type":"step","path":"0","step":0,"grad_output":{"count":2048,"l2_norm":0.01,…},"grad_input":null,
//!  "activation":{"output":{…},"saturated_fraction":null,"dead_fraction":null,"mean_derivative":null},
//!  "params":[{"name":"weight","grad":{…},"value_norm":4.6,"grad_to_value_ratio":0.002,
//!             "update_to_value_ratio":null}]}
//! ```
//!
//! - the header carries the [`Recording`]'s `float` and `config` ([`RecorderConfig`]), and
//!   optionally the `producer` (ignored);
//! - a `layer` line has the fields of a [`LayerRecord`] except its steps; it comes before the
//!   first `step` line of its layer, and layers are listed in the order they first ran forward
//!   (network order for the diagnosis when the paths are not numbers);
//! - a `step` line has the fields of a [`LayerStepRecord`] and the `path` of its layer; steps of a
//!   layer may come in any order, each at most once; its `gates` (a layer's
//!   [`GateStats`](crate::hooks::GateStats): `name`, `value`, `grad`) are written only for layers
//!   with gates and may be absent;
//! - a `loss` line is a [`StepLoss`](crate::hooks::StepLoss), at most one per step.
//!
//! Field names and meanings are those of the Rust types ([`TensorStats`], [`ActivationStats`],
//! [`ParamStats`], [`ActivationInfo`]). Every field is required (optional values are written as
//! `null`); unknown fields are ignored, so version 1 can gain fields; a change of meaning or a
//! removal will bump `schema_version`. Every number is finite (JSON has no NaN): non-finite
//! entries of a tensor are counted in its `non_finite_count`, and a non-finite loss is not
//! written.
//!
//! ```
//! use gradflow::export::{parse_recording_jsonl, recording_to_jsonl};
//! use gradflow::hooks::Recording;
//!
//! let text = recording_to_jsonl(&Recording::default())?;
//! assert!(text.starts_with(r#"{"schema":"gradflow.recording.jsonl","schema_version":1,"#));
//! assert_eq!(parse_recording_jsonl(&text, "memory")?, Recording::default());
//!
//! let err = parse_recording_jsonl(&text.replace("\"schema_version\":1", "\"schema_version\":2"), "run.jsonl");
//! assert!(err.unwrap_err().to_string().contains("run.jsonl: line 1: field `schema_version`"));
//! # Ok::<(), gradflow::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::MetricsWriter;
use crate::activation::ActivationFamily;
use crate::hooks::{
    ActivationInfo, ActivationStats, ChannelStats, GateStats, LayerRecord, LayerStepRecord, ParamStats,
    RecorderConfig, Recording, StepLoss, TensorStats,
};
use crate::{Error, Result};

/// The `schema` of the header line of a recording in JSON lines.
pub const RECORDING_JSONL_SCHEMA: &str = "gradflow.recording.jsonl";

/// The `schema_version` this version of gradflow writes and reads.
pub const RECORDING_JSONL_VERSION: u64 = 1;

/// The recording as JSON lines (schema [`RECORDING_JSONL_SCHEMA`], version
/// [`RECORDING_JSONL_VERSION`]): the header, the layers, then for every step its loss and its
/// layers' statistics.
///
/// # Errors
/// [`Error::Data`] if a line cannot be serialized (it can for recordings made by a recorder).
pub fn recording_to_jsonl(recording: &Recording) -> Result<String> {
    let mut out = MetricsWriter::new(Vec::new(), "recording");
    write_lines(recording, &mut out)?;
    let bytes = out.into_inner()?;
    String::from_utf8(bytes)
        .map_err(|e| Error::Data { source_name: "recording".into(), reason: format!("not UTF-8: {e}") })
}

/// Writes the recording as JSON lines ([`recording_to_jsonl`]) to `path`, creating its parent
/// directory if it is missing; the file appears complete or not at all.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written.
pub fn write_recording_jsonl(recording: &Recording, path: impl AsRef<Path>) -> Result<()> {
    crate::io::write_atomically(path.as_ref(), recording_to_jsonl(recording)?.as_bytes())
}

/// The header line, fields in this order.
#[derive(Serialize)]
struct HeaderLine<'a> {
    schema: &'a str,
    schema_version: u64,
    float: &'a str,
    producer: &'a str,
    config: &'a RecorderConfig,
}

/// A `layer` line: a [`LayerRecord`] without its steps.
#[derive(Serialize)]
struct LayerLine<'a> {
    r#type: &'a str,
    path: &'a str,
    kind: &'a str,
    description: &'a str,
    layer_number: Option<usize>,
    depth: usize,
    is_container: bool,
    activation: &'a Option<ActivationInfo>,
}

/// A `step` line: the path of the layer and its [`LayerStepRecord`].
#[derive(Serialize)]
struct StepLine<'a> {
    r#type: &'a str,
    path: &'a str,
    #[serde(flatten)]
    record: &'a LayerStepRecord,
}

/// A `loss` line: a [`StepLoss`].
#[derive(Serialize)]
struct LossLine<'a> {
    r#type: &'a str,
    #[serde(flatten)]
    loss: &'a StepLoss,
}

fn write_lines<W: std::io::Write>(recording: &Recording, out: &mut MetricsWriter<W>) -> Result<()> {
    out.write_record(&HeaderLine {
        schema: RECORDING_JSONL_SCHEMA,
        schema_version: RECORDING_JSONL_VERSION,
        float: &recording.float,
        producer: concat!("gradflow ", env!("CARGO_PKG_VERSION")),
        config: &recording.config,
    })?;
    for layer in &recording.layers {
        out.write_record(&LayerLine {
            r#type: "layer",
            path: &layer.path,
            kind: &layer.kind,
            description: &layer.description,
            layer_number: layer.layer_number,
            depth: layer.depth,
            is_container: layer.is_container,
            activation: &layer.activation,
        })?;
    }
    let mut losses = recording.losses.iter().peekable();
    for step in recording.steps() {
        while let Some(loss) = losses.next_if(|l| l.step <= step) {
            out.write_record(&LossLine { r#type: "loss", loss })?;
        }
        for layer in &recording.layers {
            if let Some(record) = layer.at_step(step) {
                out.write_record(&StepLine { r#type: "step", path: &layer.path, record })?;
            }
        }
    }
    for loss in losses {
        out.write_record(&LossLine { r#type: "loss", loss })?;
    }
    Ok(())
}

/// Reads a recording written as JSON lines by [`write_recording_jsonl`] or by the Python
/// recorder (`gradflow_torch`), checking every line ([`parse_recording_jsonl`]).
///
/// ```no_run
/// use gradflow::diagnose::diagnose;
/// use gradflow::export::read_recording_jsonl;
/// use gradflow::report::table;
///
/// let recording = read_recording_jsonl("run.jsonl")?;
/// print!("{}", table::render(&diagnose(&recording, &Default::default())?));
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read; [`Error::Data`] naming the file, the
/// line and the field for anything [`parse_recording_jsonl`] refuses.
pub fn read_recording_jsonl(path: impl AsRef<Path>) -> Result<Recording> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| Error::Data {
        source_name: name.clone(),
        reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse_recording_jsonl(&text, &name)
}

/// Parses a recording from JSON lines; `name` (a file name) identifies it in errors.
///
/// Everything is checked before anything is returned, so a recording is either complete or an
/// error: the header (schema and version), every line (a JSON object, with every field of its
/// type present and of the right type), every number (finite; norms, deviations and ratios not
/// negative; shares in [0, 1]; `non_finite_count` at most `count`), and the whole (every `step`
/// line names a layer declared before it; no layer, layer step or loss twice; `depth` is the
/// number of dots in `path`). Blank lines are skipped.
///
/// # Errors
/// [`Error::Data`] whose message names `name`, the line and the field, e.g.
/// ``run.jsonl: line 7: field `params[0].grad.l2_norm`: missing``.
pub fn parse_recording_jsonl(text: &str, name: &str) -> Result<Recording> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((first, header)) = lines.next() else {
        return Err(Error::Data {
            source_name: name.into(),
            reason: format!("empty: no header line (a {RECORDING_JSONL_SCHEMA} file starts with one)"),
        });
    };
    let ctx = Ctx { name, line: first + 1 };
    let header = ctx.object(header)?;
    let mut recording = read_header(&Fields::new(&ctx, &header, ""))?;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut seen_steps: Vec<HashSet<u64>> = Vec::new();
    let mut loss_steps: HashSet<u64> = HashSet::new();
    for (number, text) in lines {
        let ctx = Ctx { name, line: number + 1 };
        let object = ctx.object(text)?;
        let line = Fields::new(&ctx, &object, "");
        match line.str("type")? {
            "layer" => {
                let layer = read_layer(&line)?;
                if index.contains_key(&layer.path) {
                    return Err(line.error("path", format!("layer `{}` is declared twice", layer.path)));
                }
                index.insert(layer.path.clone(), recording.layers.len());
                recording.layers.push(layer);
                seen_steps.push(HashSet::new());
            }
            "step" => {
                let path = line.str("path")?;
                let Some(&i) = index.get(path) else {
                    return Err(
                        line.error("path", format!("no `layer` line before this one declares `{path}`"))
                    );
                };
                let record = read_step(&line)?;
                if !seen_steps[i].insert(record.step) {
                    return Err(
                        line.error("step", format!("step {} of layer `{path}` appears twice", record.step))
                    );
                }
                recording.layers[i].steps.push(record);
            }
            "loss" => {
                let step = line.u64("step")?;
                let loss = line.f64("loss")?;
                if !loss_steps.insert(step) {
                    return Err(line.error("step", format!("the loss of step {step} appears twice")));
                }
                recording.losses.push(StepLoss { step, loss });
            }
            other => {
                return Err(
                    line.error("type", format!("unknown line type `{other}` (expected layer, step or loss)"))
                );
            }
        }
    }
    for layer in &mut recording.layers {
        layer.steps.sort_by_key(|s| s.step);
    }
    recording.losses.sort_by_key(|l| l.step);
    Ok(recording)
}

/// Where a line is: the file and the line number (from 1).
struct Ctx<'a> {
    name: &'a str,
    line: usize,
}

impl Ctx<'_> {
    fn error(&self, reason: String) -> Error {
        Error::Data { source_name: self.name.to_string(), reason: format!("line {}: {reason}", self.line) }
    }

    fn object(&self, text: &str) -> Result<Map<String, Value>> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(self.error(format!("expected a JSON object, found {}", kind_of(&other)))),
            Err(e) => {
                let hint = if ["NaN", "Infinity"].iter().any(|w| text.contains(w)) {
                    " (NaN and Infinity are not JSON numbers: a recording holds finite numbers only)"
                } else if e.is_eof() {
                    " (the line is truncated)"
                } else {
                    ""
                };
                Err(self.error(format!("not valid JSON: {e}{hint}")))
            }
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of one JSON object on a line, at `prefix` (e.g. `params[0].grad.`).
struct Fields<'a> {
    ctx: &'a Ctx<'a>,
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    fn new(ctx: &'a Ctx<'a>, map: &'a Map<String, Value>, prefix: &str) -> Self {
        Fields { ctx, map, prefix: prefix.to_string() }
    }

    fn error(&self, field: &str, reason: String) -> Error {
        self.ctx.error(format!("field `{}{field}`: {reason}", self.prefix))
    }

    fn get(&self, field: &str) -> Result<&'a Value> {
        self.map.get(field).ok_or_else(|| self.error(field, "missing".into()))
    }

    fn expected(&self, field: &str, what: &str, found: &Value) -> Error {
        self.error(field, format!("expected {what}, found {}", kind_of(found)))
    }

    fn str(&self, field: &str) -> Result<&'a str> {
        let value = self.get(field)?;
        value.as_str().ok_or_else(|| self.expected(field, "a string", value))
    }

    fn bool(&self, field: &str) -> Result<bool> {
        let value = self.get(field)?;
        value.as_bool().ok_or_else(|| self.expected(field, "true or false", value))
    }

    fn u64(&self, field: &str) -> Result<u64> {
        let value = self.get(field)?;
        value.as_u64().ok_or_else(|| self.expected(field, "a whole number ≥ 0", value))
    }

    fn usize(&self, field: &str) -> Result<usize> {
        let n = self.u64(field)?;
        usize::try_from(n).map_err(|_| self.error(field, format!("{n} is too large")))
    }

    fn f64(&self, field: &str) -> Result<f64> {
        let value = self.get(field)?;
        let x = value.as_f64().ok_or_else(|| self.expected(field, "a number", value))?;
        // serde_json only produces finite numbers; checked anyway, as the schema promises it.
        if x.is_finite() { Ok(x) } else { Err(self.error(field, format!("{x} is not finite"))) }
    }

    /// A number ≥ 0.
    fn non_negative(&self, field: &str) -> Result<f64> {
        let x = self.f64(field)?;
        if x >= 0.0 { Ok(x) } else { Err(self.error(field, format!("{x} is negative"))) }
    }

    /// A number in [0, 1].
    fn share(&self, field: &str) -> Result<f64> {
        let x = self.f64(field)?;
        if (0.0..=1.0).contains(&x) { Ok(x) } else { Err(self.error(field, format!("{x} is not in [0, 1]"))) }
    }

    /// A present field that may be `null`, read with `read` otherwise.
    fn nullable<T>(&self, field: &str, read: impl FnOnce(&Self, &str) -> Result<T>) -> Result<Option<T>> {
        if self.get(field)?.is_null() { Ok(None) } else { read(self, field).map(Some) }
    }

    /// `None` when `field` is absent or null (a field written only when it applies).
    fn optional<T>(&self, field: &str, read: impl FnOnce(&Self, &str) -> Result<T>) -> Result<Option<T>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => read(self, field).map(Some),
        }
    }

    /// The object in `field`.
    fn object(&self, field: &str) -> Result<Fields<'a>> {
        let value = self.get(field)?;
        let map = value.as_object().ok_or_else(|| self.expected(field, "an object", value))?;
        Ok(Fields::new(self.ctx, map, &format!("{}{field}.", self.prefix)))
    }

    fn array(&self, field: &str) -> Result<&'a Vec<Value>> {
        let value = self.get(field)?;
        value.as_array().ok_or_else(|| self.expected(field, "an array", value))
    }

    /// Each object of the array in `field`, read by `read` (errors name `field[i].…`).
    fn objects<T>(&self, field: &str, read: impl Fn(&Fields<'a>) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for (i, value) in self.array(field)?.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let map = value.as_object().ok_or_else(|| self.expected(&field, "an object", value))?;
            out.push(read(&Fields::new(self.ctx, map, &format!("{}{field}.", self.prefix)))?);
        }
        Ok(out)
    }
}

fn read_header(header: &Fields<'_>) -> Result<Recording> {
    match header.map.get("schema").and_then(Value::as_str) {
        Some(RECORDING_JSONL_SCHEMA) => {}
        Some(other) => {
            return Err(header.error(
                "schema",
                format!("is \"{other}\": not a recording in JSON lines (\"{RECORDING_JSONL_SCHEMA}\")"),
            ));
        }
        None => {
            return Err(header.error(
                "schema",
                format!(
                    "missing: the first line must be the header {{\"schema\":\"{RECORDING_JSONL_SCHEMA}\",\
                     \"schema_version\":{RECORDING_JSONL_VERSION},…}}"
                ),
            ));
        }
    }
    let version = header.u64("schema_version")?;
    if version != RECORDING_JSONL_VERSION {
        return Err(header.error(
            "schema_version",
            format!("is {version}, this version of gradflow reads version {RECORDING_JSONL_VERSION}"),
        ));
    }
    let float = header.str("float")?;
    // Any scalar-type name is kept ("f32", "f64", or a PyTorch run's "bf16", "f16"; empty when
    // nothing was recorded); only its shape is checked.
    if float.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
        return Err(header.error("float", format!("`{float}` is not a scalar type name")));
    }
    let c = header.object("config")?;
    let config = RecorderConfig {
        every_n_steps: c.u64("every_n_steps")?,
        activations: c.bool("activations")?,
        parameters: c.bool("parameters")?,
        updates: c.bool("updates")?,
        saturation_level: c.f64("saturation_level")?,
    };
    config.validate().map_err(|e| header.error("config", e.to_string()))?;
    Ok(Recording { float: float.to_string(), config, layers: Vec::new(), losses: Vec::new() })
}

fn read_layer(line: &Fields<'_>) -> Result<LayerRecord> {
    let path = line.str("path")?;
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(line.error("path", format!("`{path}` is not a dotted layer path")));
    }
    let depth = line.usize("depth")?;
    let dots = path.matches('.').count();
    if depth != dots {
        return Err(line.error("depth", format!("is {depth}, but path `{path}` has {dots} dots")));
    }
    let layer_number = line.nullable("layer_number", |f, k| f.usize(k))?;
    if layer_number == Some(0) {
        return Err(line.error("layer_number", "layers are numbered from 1".into()));
    }
    let activation = line.nullable("activation", |f, k| {
        let a = f.object(k)?;
        let family = match a.str("family")? {
            "Saturating" => ActivationFamily::Saturating,
            "Rectifier" => ActivationFamily::Rectifier,
            "Linear" => ActivationFamily::Linear,
            other => {
                return Err(a.error(
                    "family",
                    format!("unknown family `{other}` (expected Saturating, Rectifier or Linear)"),
                ));
            }
        };
        let max_derivative = a.non_negative("max_derivative")?;
        Ok(ActivationInfo { name: a.str("name")?.to_string(), family, max_derivative })
    })?;
    Ok(LayerRecord {
        path: path.to_string(),
        kind: line.str("kind")?.to_string(),
        description: line.str("description")?.to_string(),
        layer_number,
        depth,
        is_container: line.bool("is_container")?,
        activation,
        steps: Vec::new(),
    })
}

fn read_tensor(f: &Fields<'_>) -> Result<TensorStats> {
    let stats = TensorStats {
        count: f.u64("count")?,
        l2_norm: f.non_negative("l2_norm")?,
        mean: f.f64("mean")?,
        std: f.non_negative("std")?,
        max_abs: f.non_negative("max_abs")?,
        non_finite_count: f.u64("non_finite_count")?,
    };
    if stats.non_finite_count > stats.count {
        return Err(f.error(
            "non_finite_count",
            format!("{} exceeds the count of entries, {}", stats.non_finite_count, stats.count),
        ));
    }
    Ok(stats)
}

/// The per-channel statistics of an activation over images ([`ChannelStats`]).
fn read_channels(f: &Fields<'_>, field: &str) -> Result<ChannelStats> {
    let c = f.object(field)?;
    Ok(ChannelStats {
        channels: c.usize("channels")?,
        dead_fraction: c.nullable("dead_fraction", Fields::share)?,
        saturated_fraction: c.nullable("saturated_fraction", Fields::share)?,
        max_channel_saturation: c.nullable("max_channel_saturation", Fields::share)?,
    })
}

fn read_step(line: &Fields<'_>) -> Result<LayerStepRecord> {
    let tensor = |f: &Fields<'_>, k: &str| read_tensor(&f.object(k)?);
    let activation = line.nullable("activation", |f, k| {
        let a = f.object(k)?;
        Ok(ActivationStats {
            output: tensor(&a, "output")?,
            saturated_fraction: a.nullable("saturated_fraction", Fields::share)?,
            dead_fraction: a.nullable("dead_fraction", Fields::share)?,
            mean_derivative: a.nullable("mean_derivative", Fields::non_negative)?,
            channels: a.optional("channels", read_channels)?,
        })
    })?;
    let params = line.objects("params", |p| {
        Ok(ParamStats {
            name: p.str("name")?.to_string(),
            grad: tensor(p, "grad")?,
            value_norm: p.non_negative("value_norm")?,
            grad_to_value_ratio: p.nullable("grad_to_value_ratio", Fields::non_negative)?,
            update_to_value_ratio: p.nullable("update_to_value_ratio", Fields::non_negative)?,
        })
    })?;
    // Written only for layers with gates: absent (older files, the Python recorder) is none.
    let read_gate = |g: &Fields<'_>| {
        Ok(GateStats {
            name: g.str("name")?.to_string(),
            value: tensor(g, "value")?,
            grad: g.nullable("grad", tensor)?,
        })
    };
    let gates = line.optional("gates", |f, k| f.objects(k, read_gate))?.unwrap_or_default();
    Ok(LayerStepRecord {
        step: line.u64("step")?,
        grad_output: line.nullable("grad_output", tensor)?,
        grad_input: line.nullable("grad_input", tensor)?,
        activation,
        params,
        gates,
    })
}
