//! CSV export of a [`Recording`]: a long table of every recorded quantity, and a wide table of
//! the hidden layers (what the plots show).
//!
//! Numbers are written in Rust's shortest round-trip form with an exponent (`1.25e-3`),
//! integers plainly; a missing value is an empty field; fields containing a comma, quote or
//! line break are quoted (RFC 4180).

use std::fmt::Write;
use std::path::Path;

use crate::Result;
use crate::hooks::{Recording, TensorStats};

/// Header of [`to_string`]: one row per step, layer and quantity.
///
/// `quantity` is one of
/// - `grad_output.<stat>` and `grad_input.<stat>`, where `<stat>` is `l2_norm`, `mean`, `std`,
///   `max_abs` or `non_finite_count` (see [`TensorStats`]);
/// - `activation.mean`, `activation.std`, `activation.rms`, `activation.non_finite_count`,
///   `activation.saturated_fraction`, `activation.dead_fraction`;
/// - `param.<name>.grad.<stat>`, `param.<name>.value_norm`, `param.<name>.grad_to_value_ratio`,
///   `param.<name>.update_to_value_ratio` (e.g. `param.weight.grad.l2_norm`).
///
/// Rows come step by step, and within a step in the recording's layer order; quantities that
/// were not recorded have no row.
pub const HEADER: &str = "step,path,kind,depth,quantity,value";

/// Header of [`hidden_layers_to_string`]: one row per step and hidden layer (see
/// [`crate::diagnose::HiddenLayer`], whose fields the columns are; `index` counts from 0 at
/// the input).
pub const HIDDEN_LAYERS_HEADER: &str = "step,index,label,is_output,grad_norm,weight_grad_norm,\
grad_to_weight_ratio,update_to_weight_ratio,activation_std,saturated_fraction,dead_fraction,non_finite_count";

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn number(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| format!("{x:e}"))
}

fn tensor(prefix: &str, stats: &TensorStats, push: &mut dyn FnMut(String, String)) {
    push(format!("{prefix}.l2_norm"), number(Some(stats.l2_norm)));
    push(format!("{prefix}.mean"), number(Some(stats.mean)));
    push(format!("{prefix}.std"), number(Some(stats.std)));
    push(format!("{prefix}.max_abs"), number(Some(stats.max_abs)));
    push(format!("{prefix}.non_finite_count"), stats.non_finite_count.to_string());
}

/// Every recorded quantity, one per row, under [`HEADER`].
///
/// ```
/// use gradflow::hooks::Recording;
/// use gradflow::report::csv;
///
/// assert_eq!(csv::to_string(&Recording::default()), format!("{}\n", csv::HEADER));
/// ```
pub fn to_string(recording: &Recording) -> String {
    let mut out = format!("{HEADER}\n");
    for step in recording.steps() {
        for layer in &recording.layers {
            let Some(r) = layer.at_step(step) else { continue };
            let prefix = format!("{step},{},{},{}", field(&layer.path), field(&layer.kind), layer.depth);
            let mut push = |quantity: String, value: String| {
                let _ = writeln!(out, "{prefix},{},{value}", field(&quantity));
            };
            if let Some(g) = &r.grad_output {
                tensor("grad_output", g, &mut push);
            }
            if let Some(g) = &r.grad_input {
                tensor("grad_input", g, &mut push);
            }
            if let Some(a) = &r.activation {
                push("activation.mean".into(), number(Some(a.output.mean)));
                push("activation.std".into(), number(Some(a.output.std)));
                push("activation.rms".into(), number(Some(a.rms())));
                push("activation.non_finite_count".into(), a.output.non_finite_count.to_string());
                if let Some(s) = a.saturated_fraction {
                    push("activation.saturated_fraction".into(), number(Some(s)));
                }
                if let Some(d) = a.dead_fraction {
                    push("activation.dead_fraction".into(), number(Some(d)));
                }
            }
            for p in &r.params {
                tensor(&format!("param.{}.grad", p.name), &p.grad, &mut push);
                push(format!("param.{}.value_norm", p.name), number(Some(p.value_norm)));
                if let Some(x) = p.grad_to_value_ratio {
                    push(format!("param.{}.grad_to_value_ratio", p.name), number(Some(x)));
                }
                if let Some(x) = p.update_to_value_ratio {
                    push(format!("param.{}.update_to_value_ratio", p.name), number(Some(x)));
                }
            }
        }
    }
    out
}

/// The hidden layers at every recorded step, under [`HIDDEN_LAYERS_HEADER`].
pub fn hidden_layers_to_string(recording: &Recording) -> String {
    let mut out = format!("{HIDDEN_LAYERS_HEADER}\n");
    for step in recording.steps() {
        for l in recording.hidden_layers(step) {
            let _ = writeln!(
                out,
                "{step},{},{},{},{},{},{},{},{},{},{},{}",
                l.index,
                field(&l.label),
                l.is_output,
                number(l.grad_norm),
                number(l.weight_grad_norm),
                number(l.grad_to_weight_ratio),
                number(l.update_to_weight_ratio),
                number(l.activation_std),
                number(l.saturated_fraction),
                number(l.dead_fraction),
                l.non_finite_count,
            );
        }
    }
    out
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::io::write_atomically(path, text.as_bytes())
}

/// Writes [`to_string`] to `path`.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written.
pub fn write_file(recording: &Recording, path: impl AsRef<Path>) -> Result<()> {
    write(path.as_ref(), &to_string(recording))
}

/// Writes [`hidden_layers_to_string`] to `path`.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be written.
pub fn write_hidden_layers_file(recording: &Recording, path: impl AsRef<Path>) -> Result<()> {
    write(path.as_ref(), &hidden_layers_to_string(recording))
}
