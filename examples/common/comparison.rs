//! Two deep networks side by side on the 8×8 digits — a plain stack and the same stack with a
//! remedy (BatchNorm, highway gates): their gradient at initialization, the verdicts, training,
//! and the report with its figures. Shared by the `batchnorm` and `highway` examples; each keeps
//! its own networks, command line and story.

use std::time::Instant;

use gradflow::data::Dataset;
use gradflow::diagnose::Diagnosis;
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::optim::SgdConfig;
use gradflow::report::plot::{ChartSpec, Scale, Series, line_chart};
use gradflow::train::{EpochStats, History, Trainer};
use gradflow::{Error, Network, Result};
use serde_json::{Value, json};

use super::Output;

/// Training samples in the observed pass at initialization.
pub const INSPECT_BATCH: usize = 256;

/// Deeper than this, the gradient table shows a selection of layers.
const ALL_ROWS_UP_TO: usize = 30;

/// One network of the comparison: its diagnosis at initialization and how training went.
pub struct Compared {
    /// `"plain"`, `"batchnorm"`, `"highway"`.
    pub name: &'static str,
    pub diagnosis: Diagnosis,
    /// `None` when training stopped on a non-finite value.
    pub history: Option<History>,
    /// Why training stopped early, if it did.
    pub stopped: Option<String>,
    pub parameters: usize,
    pub seconds: f64,
}

impl Compared {
    /// The statistics of the last epoch trained.
    pub fn last_epoch(&self) -> Option<&EpochStats> {
        self.history.as_ref().and_then(|h| h.last())
    }

    /// ‖dL/dh‖ and ‖dL/dW‖ of every hidden layer (index 0 nearest the input), at initialization.
    fn hidden_norms(&self) -> (Vec<f64>, Vec<f64>) {
        let layers = self.diagnosis.layers.iter().map(|l| &l.layer).filter(|l| !l.is_output);
        layers.map(|l| (l.grad_norm.unwrap_or(f64::NAN), l.weight_grad_norm.unwrap_or(f64::NAN))).unzip()
    }
}

/// Trains `net` with plain SGD and cross-entropy; a run that diverges is reported, not an error.
pub fn train(
    name: &'static str,
    diagnosis: Diagnosis,
    mut net: Network<f32>,
    sgd: SgdConfig,
    trainer: &Trainer,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<Compared> {
    let mut optimizer = sgd.build::<f32>()?;
    eprintln!("training the {name} network");
    let started = Instant::now();
    let fitted =
        trainer.fit(&mut net, &mut optimizer, &CrossEntropy::new(Reduction::Mean), train, Some(test));
    let seconds = started.elapsed().as_secs_f64();
    let (history, stopped) = match fitted {
        Ok(history) => (Some(history), None),
        // A diverging run is a result worth reporting, not a crash of the demonstration.
        Err(e @ Error::NonFinite { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    Ok(Compared { name, diagnosis, history, stopped, parameters: net.num_parameters(), seconds })
}

/// The rows shown of `n` layers: all of them up to [`ALL_ROWS_UP_TO`], else the first three,
/// every fifth and the last three.
fn shown_rows(n: usize) -> Vec<usize> {
    (0..n).filter(|&i| n <= ALL_ROWS_UP_TO || i < 3 || i + 3 >= n || (i + 1) % 5 == 0).collect()
}

/// The gradient of the two networks, layer by layer; `weights` says what ‖dL/dW‖ covers in the
/// second network (e.g. "the Linear weight and BatchNorm's γ together").
pub fn print_gradient_table(models: &[Compared], weights: &str) {
    let norms: Vec<(Vec<f64>, Vec<f64>)> = models.iter().map(Compared::hidden_norms).collect();
    let n = norms.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    println!(
        "Gradient at initialization, per hidden layer (1 = nearest the input; {INSPECT_BATCH} training samples):"
    );
    let (a, b) = (models[0].name, models[1].name);
    let (wa, wb) = (8 + a.chars().count(), 8 + b.chars().count());
    println!("  layer   ‖dL/dh‖ {a}   ‖dL/dh‖ {b}   ‖dL/dW‖ {a}   ‖dL/dW‖ {b}");
    let at = |v: &[f64], i: usize| v.get(i).map_or("-".to_string(), |x| format!("{x:.3e}"));
    let mut previous = None;
    for i in shown_rows(n) {
        if previous.is_some_and(|p| p + 1 != i) {
            println!("  {:>5}", "…");
        }
        println!(
            "  {:>5}   {:>wa$}   {:>wb$}   {:>wa$}   {:>wb$}",
            i + 1,
            at(&norms[0].0, i),
            at(&norms[1].0, i),
            at(&norms[0].1, i),
            at(&norms[1].1, i)
        );
        previous = Some(i);
    }
    println!(
        "  (‖dL/dh‖: gradient w.r.t. each hidden layer's output; ‖dL/dW‖: w.r.t. its weights — for {b} \
         {weights})"
    );
}

/// The width of the name column.
fn name_width(models: &[Compared]) -> usize {
    models.iter().map(|m| m.name.chars().count()).max().unwrap_or(0) + 1
}

/// Each network's verdict at initialization, with its evidence and first remedy.
pub fn print_verdicts(models: &[Compared]) {
    let w = name_width(models);
    let indent = " ".repeat(w + 3);
    println!("\nDiagnosis at initialization");
    for model in models {
        let d = &model.diagnosis;
        println!(
            "  {:<w$} verdict {:<10} first/last ‖dL/dh‖ = {}   ×{} per layer",
            model.name,
            d.verdict.name(),
            d.gradient_ratio.map_or("-".into(), |r| format!("{r:.2e}")),
            d.per_layer_factor.map_or("-".into(), |f| format!("{f:.3}")),
        );
        for line in &d.evidence {
            println!("{indent}· {line}");
        }
        if let Some(remedy) = d.remedies.first() {
            println!("{indent}first remedy: {remedy}");
        }
    }
}

/// Loss, accuracy, size and time of each network after training.
pub fn print_summary(models: &[Compared]) {
    let w = name_width(models);
    println!("\nAfter training");
    println!("  {:<w$}  verdict at init   train loss   train acc   test acc   parameters   time", "model");
    let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.1}%", 100.0 * a));
    for model in models {
        let last = model.last_epoch();
        println!(
            "  {:<w$}  {:<16}  {:>10}   {:>9}   {:>8}   {:>10}   {:.1} s",
            model.name,
            model.diagnosis.verdict.name(),
            last.map_or("-".into(), |e| format!("{:.4}", e.train_loss)),
            pct(last.and_then(|e| e.train_accuracy)),
            pct(last.and_then(|e| e.test_accuracy)),
            model.parameters,
            model.seconds
        );
        if let Some(why) = &model.stopped {
            println!("  {:w$}  training stopped: {why}", "");
        }
    }
}

/// The second network's test accuracy minus the first's.
pub fn print_accuracy_difference(models: &[Compared]) {
    let test = |m: &Compared| m.last_epoch().and_then(|e| e.test_accuracy);
    if let (Some(first), Some(second)) = (test(&models[0]), test(&models[1])) {
        println!(
            "  {} − {} test accuracy: {:+.1} points (chance is 10%, loss ln 10 ≈ 2.303)",
            models[1].name,
            models[0].name,
            100.0 * (second - first)
        );
    }
}

/// `(1, v₀), (2, v₁), …`: values by layer or by epoch, counted from 1.
fn from_one(values: &[f64]) -> Vec<(f64, f64)> {
    values.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect()
}

/// The four line charts of a comparison, one series per network (two for the loss).
#[derive(Default)]
pub struct Figures {
    grad: Vec<Series>,
    weight: Vec<Series>,
    loss: Vec<Series>,
    accuracy: Vec<Series>,
}

impl Figures {
    /// One network's ‖dL/dh‖ and ‖dL/dW‖ by hidden layer at initialization, and its epochs.
    pub fn add(&mut self, name: &str, grad: &[f64], weight: &[f64], epochs: &[EpochStats]) {
        let loss: Vec<f64> = epochs.iter().map(|e| e.train_loss).collect();
        let test_loss: Vec<f64> = epochs.iter().filter_map(|e| e.test_loss).collect();
        let test_accuracy: Vec<f64> = epochs.iter().filter_map(|e| e.test_accuracy).collect();
        self.grad.push(Series::new(name, from_one(grad)));
        self.weight.push(Series::new(name, from_one(weight)));
        self.loss.push(Series::new(format!("{name} (train)"), from_one(&loss)).group(name));
        self.loss.push(Series::new(format!("{name} (test)"), from_one(&test_loss)).group(name));
        self.accuracy.push(Series::new(name, from_one(&test_accuracy)));
    }

    /// Writes grad_norm_by_layer.svg, weight_grad_norm_by_layer.svg (titled with `title`, which
    /// names the networks), loss_by_epoch.svg and test_accuracy_by_epoch.svg.
    pub fn write(&self, output: &Output, title: &str) -> Result<()> {
        let by_layer = |what: &str| {
            ChartSpec::new(format!("{what} by layer — {title}"))
                .x_label("hidden layer (1 = nearest the input)")
                .y_label(what)
                .y_scale(Scale::Log10)
        };
        line_chart(output.path("grad_norm_by_layer.svg"), &by_layer("‖dL/dh‖"), &self.grad)?;
        line_chart(output.path("weight_grad_norm_by_layer.svg"), &by_layer("‖dL/dW‖"), &self.weight)?;
        line_chart(
            output.path("loss_by_epoch.svg"),
            &ChartSpec::new("Cross-entropy loss by epoch").x_label("epoch").y_label("loss"),
            &self.loss,
        )?;
        line_chart(
            output.path("test_accuracy_by_epoch.svg"),
            &ChartSpec::new("Test accuracy by epoch").x_label("epoch").y_label("accuracy"),
            &self.accuracy,
        )
    }
}

/// Writes `report.json` (the `settings` object with a `models` entry added) and four figures:
/// the gradient by layer at initialization (`title` names the networks), the weight gradient
/// by layer, the loss and the test accuracy by epoch.
pub fn write_report(models: &[Compared], title: &str, settings: Value, output: &Output) -> Result<()> {
    let mut entries = Vec::new();
    let mut figures = Figures::default();
    for model in models {
        let (grad, weight) = model.hidden_norms();
        let epochs = model.history.as_ref().map(|h| h.epochs.as_slice()).unwrap_or_default();
        let loss: Vec<f64> = epochs.iter().map(|e| e.train_loss).collect();
        let test_loss: Vec<f64> = epochs.iter().filter_map(|e| e.test_loss).collect();
        let train_accuracy: Vec<f64> = epochs.iter().filter_map(|e| e.train_accuracy).collect();
        let test_accuracy: Vec<f64> = epochs.iter().filter_map(|e| e.test_accuracy).collect();
        let d = &model.diagnosis;
        entries.push(json!({
            "name": model.name,
            "grad_norm_by_layer": grad,
            "weight_grad_norm_by_layer": weight,
            "gradient_ratio_first_to_last": d.gradient_ratio,
            "per_layer_factor": d.per_layer_factor,
            "loss_by_epoch": loss,
            "test_loss_by_epoch": test_loss,
            "train_accuracy": train_accuracy.last(),
            "test_accuracy": test_accuracy.last(),
            "train_accuracy_by_epoch": train_accuracy,
            "test_accuracy_by_epoch": test_accuracy,
            "verdict": d.verdict.name(),
            "evidence": d.evidence,
            "remedies": d.remedies.iter().map(|r| r.text()).collect::<Vec<_>>(),
            "training_stopped": model.stopped,
            "parameters": model.parameters,
            "train_seconds": model.seconds,
        }));
        figures.add(model.name, &grad, &weight, epochs);
    }
    figures.write(output, title)?;
    let mut report = settings;
    report["models"] = Value::Array(entries);
    output.write_json("report.json", &report)?;
    Ok(())
}
