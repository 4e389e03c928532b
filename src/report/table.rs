//! A text table of a [`Diagnosis`] for the terminal: one row per hidden layer with a log-scale
//! bar of its gradient norm, then the verdict, the evidence and the remedies.

use std::fmt::Write;

use crate::diagnose::{Diagnosis, LayerDiagnosis, TheoryAgreement};

/// How [`render_with`] draws the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Width of the log-scale bar of ‖dL/dh‖, in characters (default 30).
    pub bar_width: usize,
    /// Draw the bar with `#` instead of `█` (default `false`).
    pub ascii: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { bar_width: 30, ascii: false }
    }
}

/// [`render_with`] with the default options.
///
/// ```
/// use gradflow::{Network, Sequential, Mode};
/// use gradflow::activation::Tanh;
/// use gradflow::hooks::Recorder;
/// use gradflow::diagnose::{diagnose, Thresholds};
/// use gradflow::report::table;
/// use ndarray::Array2;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(8).repeat(3, 16, Tanh).linear(2).build(&mut rng)?;
/// let mut net = Network::new(model);
/// let (result, recorder) = net.with_hook(Recorder::default(), |net| {
///     net.forward(Array2::ones((4, 8)).view(), Mode::Train)?;
///     net.backward(Array2::ones((4, 2)).view())
/// });
/// result?;
/// let text = table::render(&diagnose(recorder.recording(), &Thresholds::default())?);
/// assert!(text.contains("Linear+tanh") && text.contains("model:"));
/// println!("{text}");
/// # Ok::<(), gradflow::Error>(())
/// ```
pub fn render(diagnosis: &Diagnosis) -> String {
    render_with(diagnosis, &TableOptions::default())
}

/// The table: a header line, then one row per hidden layer (numbered from 1 at the input, the
/// output layer last: the layer numbers hook events carry) with
/// `#`, `layer` (e.g. `Linear+tanh`), `path` (the paths of its children, as in hook events and
/// safetensors names), `‖dL/dh‖`, a bar whose length is the log of ‖dL/dh‖
/// between the smallest and largest power of ten in the table, `‖dW‖/‖W‖`, `sat%` (saturated
/// units), `dead%` (dead units), `gate` (the mean gate value, e.g. a highway layer's `T`: only
/// when some layer has gates) and the layer's verdict; `-` marks a quantity that was not
/// recorded or does not apply. Then the model's verdict, the evidence, how training went (when
/// the diagnosis has a [`crate::diagnose::TrainingDiagnosis`]) and the numbered remedies. A
/// diagnosis made [`Diagnosis::with_theory`] shows the mean-field prediction beside the
/// measurement in one line after the evidence ([`crate::diagnose::TheoryComparison::summary`]),
/// with the likely causes when they disagree.
pub fn render_with(diagnosis: &Diagnosis, options: &TableOptions) -> String {
    let rows = &diagnosis.layers;
    let (lo, hi) = decades(rows);
    let label_width = rows.iter().map(|r| r.layer.label.chars().count()).max().unwrap_or(5).max(5);
    let paths: Vec<String> = rows.iter().map(|r| compact_paths(&r.layer.paths)).collect();
    let path_width = paths.iter().map(|p| p.chars().count()).max().unwrap_or(4).max(4);
    let number_width = rows.len().to_string().len().max(1);
    let bar_width = options.bar_width.max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gradient flow at step {} ({} layers; layer 1 is nearest the input)",
        diagnosis.step,
        rows.len()
    );
    let scale = format!("log ‖dL/dh‖: 1e{lo} … 1e{hi}");
    // The gate column only for networks with gates (highway layers).
    let gates = rows.iter().any(|r| r.layer.gate_mean.is_some());
    let gate_cell = |text: &str| if gates { format!("{text:>6}  ") } else { String::new() };
    let _ = writeln!(
        out,
        "{:>number_width$}  {:<label_width$}  {:<path_width$}  {:>8}  {:<bar_width$}  {:>9}  {:>5}  {:>5}  {}verdict",
        "#",
        "layer",
        "path",
        "‖dL/dh‖",
        scale,
        "‖dW‖/‖W‖",
        "sat%",
        "dead%",
        gate_cell("gate")
    );
    let block = if options.ascii { '#' } else { '█' };
    for (row, path) in rows.iter().zip(&paths) {
        let l = &row.layer;
        let bar: String = match l.grad_norm {
            Some(g) if g > 0.0 => {
                let share = (g.log10() - lo as f64) / (hi - lo) as f64;
                let len = ((share * bar_width as f64).round() as usize).clamp(1, bar_width);
                std::iter::repeat_n(block, len).collect()
            }
            _ => String::new(),
        };
        let output = if l.is_output { " (output)" } else { "" };
        let _ = writeln!(
            out,
            "{:>number_width$}  {:<label_width$}  {:<path_width$}  {:>8}  {:<bar_width$}  {:>9}  {:>5}  {:>5}  {}{}{output}",
            l.index.saturating_add(1),
            l.label,
            path,
            sci(l.grad_norm),
            bar,
            sci(l.grad_to_weight_ratio),
            percent(l.saturated_fraction),
            percent(l.dead_fraction),
            gate_cell(&l.gate_mean.map_or_else(|| "-".to_string(), |g| format!("{g:.3}"))),
            row.verdict,
        );
    }
    let _ = writeln!(out, "\nmodel: {}", diagnosis.verdict.name().to_uppercase());
    if !diagnosis.evidence.is_empty() {
        let _ = writeln!(out, "gradient flow at step {}: {}", diagnosis.step, diagnosis.flow_verdict);
        for e in &diagnosis.evidence {
            let _ = writeln!(out, "  - {e}");
        }
    } else if diagnosis.training.is_some() {
        let _ = writeln!(out, "gradient flow at step {}: {}", diagnosis.step, diagnosis.flow_verdict);
    }
    if let Some(theory) = &diagnosis.theory {
        let _ = writeln!(out, "{}", theory.summary());
        let heading = match theory.agreement {
            TheoryAgreement::Disagree => Some("  what can explain it, most specific first:"),
            TheoryAgreement::NotMeasured => Some("  why:"),
            _ => None,
        };
        if let Some(heading) = heading {
            let _ = writeln!(out, "{heading}");
            for c in &theory.causes {
                let _ = writeln!(out, "  - {c}");
            }
        }
    }
    if let Some(training) = &diagnosis.training {
        let _ = writeln!(
            out,
            "training, steps {}–{}: {}",
            training.first_step, training.last_step, training.verdict
        );
        for e in &training.evidence {
            let _ = writeln!(out, "  - {e}");
        }
    }
    if !diagnosis.remedies.is_empty() {
        let _ = writeln!(out, "remedies:");
        for (i, r) in diagnosis.remedies.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, r.text());
        }
    }
    out
}

/// The paths of a layer's children: `"4"`, `"0–1"` for consecutive numbers, else joined by commas.
fn compact_paths(paths: &[String]) -> String {
    let numbers: Option<Vec<u64>> = paths.iter().map(|p| p.parse().ok()).collect();
    match numbers.as_deref() {
        Some([first, .., last]) if last - first + 1 == paths.len() as u64 => format!("{first}–{last}"),
        _ => paths.join(","),
    }
}

/// The powers of ten that bound the positive gradient norms (at least one decade apart).
fn decades(rows: &[LayerDiagnosis]) -> (i32, i32) {
    let logs = rows.iter().filter_map(|r| r.layer.grad_norm).filter(|&g| g > 0.0).map(f64::log10);
    let (min, max) = logs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !min.is_finite() {
        return (0, 1);
    }
    let (lo, hi) = (min.floor() as i32, max.ceil() as i32);
    (lo, hi.max(lo + 1))
}

fn sci(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.1e}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", 100.0 * x))
}
