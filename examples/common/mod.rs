//! Shared by the examples: where reports go, how the network is looked at before training, and
//! how figures are written. Each example keeps its own command line (clap) and its story.
#![allow(dead_code)]

pub mod comparison;

use std::path::{Path, PathBuf};

use gradflow::diagnose::{Diagnosis, Thresholds, diagnose_step};
use gradflow::hooks::{Recorder, RecorderConfig, Recording};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::{Error, Float, Mode, Network, Result};
use ndarray::{Array2, s};

/// The directory reports go to: `--out DIR`, or `target/gradflow/<example>/` in the crate.
pub struct Output {
    dir: PathBuf,
}

impl Output {
    /// Creates the directory (and its parents).
    pub fn new(example: &str, out: Option<PathBuf>) -> Result<Self> {
        let dir = out.unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("gradflow").join(example)
        });
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        Ok(Output { dir })
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `value` as pretty JSON to `name` and returns the path.
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> Result<PathBuf> {
        let path = self.path(name);
        let text = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
        std::fs::write(&path, text + "\n").map_err(|source| Error::Io { path: path.clone(), source })?;
        Ok(path)
    }
}

/// One forward and backward pass of softmax cross-entropy on the first `batch` rows, observed by
/// a [`Recorder`] with every statistic on; the gradients are zeroed afterwards, so the network is
/// left as it was. Returns the recording and its diagnosis.
pub fn inspect<F: Float>(
    net: &mut Network<F>,
    inputs: &Array2<F>,
    classes: &[usize],
    batch: usize,
) -> Result<(Recording, Diagnosis)> {
    let rows = batch.min(inputs.nrows());
    let x = inputs.slice(s![..rows, ..]);
    let handle = net.attach_hook(Recorder::new(RecorderConfig::all())?);
    let pass = (|| {
        let output = net.forward(x, Mode::Train)?;
        let (_, grad) =
            CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(&classes[..rows]))?;
        net.backward(grad.view())
    })();
    let recording = net.detach_hook(handle).expect("attached above").into_recording();
    net.zero_grad();
    pass?;
    let step = recording.steps().first().copied().unwrap_or(0);
    let diagnosis = diagnose_step(&recording, step, &Thresholds::default())?;
    Ok((recording, diagnosis))
}

/// Formats a duration in seconds with one decimal.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// An aligned text table: `align` has one letter per column, `l` (left) or `r` (right); widths
/// are counted in characters, so `‖` and `×` line up. Columns are separated by two spaces.
pub fn table(align: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let right: Vec<bool> = (0..cols).map(|c| align.as_bytes().get(c) == Some(&b'r')).collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .zip(&right)
            .map(|((cell, &w), &r)| {
                let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                if r { format!("{pad}{cell}") } else { format!("{cell}{pad}") }
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

/// What [`train_steps`] saw: the loss of every step, and whether training stopped early on a
/// non-finite loss (divergence).
pub struct StepRun {
    pub losses: Vec<f64>,
    pub diverged: bool,
}

/// Trains `net` with softmax cross-entropy for `steps` minibatch steps of `batch` rows drawn
/// (with replacement) from `inputs` by `rng`, stepping `optimizer`; stops at a non-finite loss.
pub fn train_steps<F: Float>(
    net: &mut Network<F>,
    optimizer: &mut dyn gradflow::Optimizer<F>,
    inputs: &Array2<F>,
    classes: &[usize],
    steps: usize,
    batch: usize,
    rng: &mut impl rand::Rng,
) -> Result<StepRun> {
    let loss = CrossEntropy::new(Reduction::Mean);
    let mut losses = Vec::with_capacity(steps);
    let mut x = Array2::zeros((batch, inputs.ncols()));
    let mut y = vec![0; batch];
    for _ in 0..steps {
        for (r, target) in y.iter_mut().enumerate() {
            let i = rng.random_range(0..inputs.nrows());
            x.row_mut(r).assign(&inputs.row(i));
            *target = classes[i];
        }
        let output = net.forward(x.view(), Mode::Train)?;
        let (value, grad) = loss.value_and_grad(output, Targets::Classes(&y))?;
        let value = value.as_f64();
        losses.push(value);
        if !value.is_finite() || !grad.iter().all(|g| g.is_finite()) {
            net.zero_grad();
            return Ok(StepRun { losses, diverged: true });
        }
        net.backward(grad.view())?;
        net.step(optimizer)?;
        net.zero_grad();
    }
    Ok(StepRun { losses, diverged: false })
}

/// Accuracy of `net` (in eval mode) on `inputs`; `None` when an output is not finite.
pub fn eval_accuracy<F: Float>(
    net: &mut Network<F>,
    inputs: &Array2<F>,
    classes: &[usize],
) -> Result<Option<f64>> {
    let output = net.predict(inputs.view())?;
    if !output.iter().all(|v| v.is_finite()) {
        return Ok(None);
    }
    gradflow::loss::accuracy(output.view(), classes).map(Some)
}
