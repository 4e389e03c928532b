//! [`write_dir`]: every report of a recording and its diagnosis into one directory — what
//! `gradflow report RUN.jsonl --out DIR` writes.

use std::path::{Path, PathBuf};

use crate::diagnose::Diagnosis;
use crate::hooks::Recording;
use crate::{Error, Result};

/// Writes the reports of `recording` and its `diagnosis` into `dir` (created if missing) and
/// returns the paths written, in this order:
///
/// | file | what | written by |
/// |---|---|---|
/// | `diagnosis.txt` | the verdict table, evidence and remedies | [`super::table::render`] |
/// | `diagnosis.json` | the diagnosis (schema `gradflow.diagnosis/1`) | [`super::json::write_diagnosis_file`] |
/// | `recording.json` | the recording (schema `gradflow.recording/1`) | [`super::json::write_file`] |
/// | `recording.csv` | every layer, step and statistic, in long form | [`super::csv::write_file`] |
/// | `hidden_layers.csv` | one row per hidden layer and step | [`super::csv::write_hidden_layers_file`] |
/// | `grad_norm_by_layer.svg` | ‖dL/dh‖ and ‖dL/dW‖ by hidden layer at the diagnosed step | [`super::plot::line_chart`] |
/// | `grad_norm_heatmap.svg` | ‖dL/dh‖, hidden layer × recorded step | [`super::plot::heatmap`] |
/// | `loss_by_step.svg` | the loss of every step (when at least two were recorded) | [`super::plot::line_chart`] |
///
/// The SVG charts need the `plots` feature (on by default); without it only the text, JSON
/// and CSV files are written. A chart with nothing to show (no positive gradient norm) is
/// skipped.
///
/// ```
/// use gradflow::{Network, Sequential, Mode};
/// use gradflow::activation::Tanh;
/// use gradflow::diagnose::diagnose;
/// use gradflow::hooks::Recorder;
/// use gradflow::ndarray::Array2;
/// use gradflow::rand::SeedableRng;
///
/// let mut rng = gradflow::rand::rngs::StdRng::seed_from_u64(0);
/// let mut net = Network::new(Sequential::<f32>::builder(4).repeat(3, 8, Tanh).linear(2).build(&mut rng)?);
/// let (result, recorder) = net.with_hook(Recorder::default(), |net| {
///     net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
///     net.backward(Array2::ones((3, 2)).view())
/// });
/// result?;
/// let diagnosis = diagnose(recorder.recording(), &Default::default())?;
/// let dir = std::env::temp_dir().join(format!("gradflow-doc-report-{}", std::process::id()));
/// let written = gradflow::report::write_dir(recorder.recording(), &diagnosis, &dir)?;
/// assert!(written[0].ends_with("diagnosis.txt"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the directory or file that cannot be written; [`Error::Data`] if a
/// report cannot be serialized.
pub fn write_dir(
    recording: &Recording,
    diagnosis: &Diagnosis,
    dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut file = |name: &str| {
        let path = dir.join(name);
        written.push(path.clone());
        path
    };
    crate::io::write_atomically(&file("diagnosis.txt"), super::table::render(diagnosis).as_bytes())?;
    super::json::write_diagnosis_file(diagnosis, file("diagnosis.json"))?;
    super::json::write_file(recording, file("recording.json"))?;
    super::csv::write_file(recording, file("recording.csv"))?;
    super::csv::write_hidden_layers_file(recording, file("hidden_layers.csv"))?;
    #[cfg(feature = "plots")]
    charts::write(recording, diagnosis, dir, &mut written)?;
    Ok(written)
}

#[cfg(feature = "plots")]
mod charts {
    use std::path::{Path, PathBuf};

    use ndarray::Array2;

    use crate::Result;
    use crate::diagnose::Diagnosis;
    use crate::hooks::Recording;
    use crate::report::plot::{ChartSpec, HeatmapSpec, Scale, Series, heatmap, line_chart};

    /// Points `(layer number, value)` of the positive values (a log axis shows no others).
    fn by_layer(values: impl Iterator<Item = (usize, Option<f64>)>) -> Vec<(f64, f64)> {
        values
            .filter_map(|(i, v)| v.filter(|&v| v > 0.0 && v.is_finite()).map(|v| ((i + 1) as f64, v)))
            .collect()
    }

    pub(super) fn write(
        recording: &Recording,
        diagnosis: &Diagnosis,
        dir: &Path,
        written: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let hidden = || diagnosis.layers.iter().filter(|l| !l.layer.is_output);
        let grad = by_layer(hidden().map(|l| (l.layer.index, l.layer.grad_norm)));
        let weight = by_layer(hidden().map(|l| (l.layer.index, l.layer.weight_grad_norm)));
        let series: Vec<Series> = [("‖dL/dh‖", grad), ("‖dL/dW‖", weight)]
            .into_iter()
            .filter(|(_, points)| !points.is_empty())
            .map(|(name, points)| Series::new(name, points))
            .collect();
        if !series.is_empty() {
            let spec = ChartSpec::new(format!(
                "Gradient by hidden layer at step {} — verdict: {}",
                diagnosis.step,
                diagnosis.verdict.name()
            ))
            .x_label("hidden layer (1 = nearest the input)")
            .y_label("gradient norm")
            .y_scale(Scale::Log10);
            let path = dir.join("grad_norm_by_layer.svg");
            line_chart(&path, &spec, &series)?;
            written.push(path);
        }

        let steps = recording.steps();
        let per_step: Vec<Vec<f64>> = steps
            .iter()
            .map(|&s| {
                let layers = recording.hidden_layers(s);
                layers.into_iter().filter(|l| !l.is_output).map(|l| l.grad_norm.unwrap_or(f64::NAN)).collect()
            })
            .collect();
        let rows = per_step.iter().map(Vec::len).max().unwrap_or(0);
        let any_value = per_step.iter().flatten().any(|&v| v > 0.0 && v.is_finite());
        if rows > 0 && any_value {
            let labels: Vec<String> = (1..=rows).map(|i| format!("layer {i}")).collect();
            let values = Array2::from_shape_fn((rows, steps.len()), |(l, s)| {
                per_step[s].get(l).copied().unwrap_or(f64::NAN)
            });
            let columns: Vec<f64> = steps.iter().map(|&s| s as f64).collect();
            let spec = HeatmapSpec::new("‖dL/dh‖ by hidden layer and step")
                .x_label("step")
                .y_label("hidden layer (1 = input side)")
                .value_label("‖dL/dh‖")
                .color_scale(Scale::Log10);
            let path = dir.join("grad_norm_heatmap.svg");
            heatmap(&path, &spec, &labels, &columns, values.view())?;
            written.push(path);
        }

        if recording.losses.len() >= 2 {
            let points: Vec<(f64, f64)> = recording.losses.iter().map(|l| (l.step as f64, l.loss)).collect();
            let spec = ChartSpec::new("Training loss by step").x_label("step").y_label("loss");
            let path = dir.join("loss_by_step.svg");
            line_chart(&path, &spec, &[Series::new("loss", points)])?;
            written.push(path);
        }
        Ok(())
    }
}
