//! # Initialization decides whether the signal and the gradient survive 30 layers
//!
//! For deep tanh and ReLU networks (`--depth` hidden layers `Linear(n→n) + activation`, then
//! `Linear(n→10)`, n = `--width`, zero biases), six weight initializations with the same seed:
//!
//! | label | weights | σ_w·√n, the factor per layer on the signal's RMS |
//! |---|---|---|
//! | `normal(0.01)` | N(0, 0.01²) | 0.01·√128 = 0.11: the signal and the gradient vanish |
//! | `standard` | U(±1/√n), PyTorch's `nn.Linear` default and Glorot & Bengio's "standard" eq. (1) | 1/√3 = 0.58 |
//! | `glorot` | Glorot uniform, gain 1: U(±√(6/(n+n))) | 1 |
//! | `he` | He/Kaiming normal, fan_in: N(0, gain²/n) with the activation's gain (√2 for ReLU, 5/3 for tanh) | the gain |
//! | `orthogonal` | gain × a random orthogonal matrix (Saxe et al. 2014), the activation's gain | the gain, exactly |
//! | `normal(1)` | N(0, 1) | √128 = 11.3: ReLU explodes, tanh saturates |
//!
//! The two fixed standard deviations are chosen to sit far on either side of 1/√n at n = 128:
//! 0.01 (a common "small random numbers" choice) shrinks the signal ×0.11 per layer and 1.0 (the
//! unit normal, `torch.nn.init.normal_`'s default) grows it ×11; 0.2 would already explode a ReLU
//! network (×1.6 per layer) but too slowly to see at a glance.
//!
//! The inputs are a batch of standard normal vectors of width n (so that every hidden layer is
//! square and Glorot's Var(W) = 2/(fan_in + fan_out) is exactly 1/fan_in), the labels random
//! classes; one forward and backward pass of cross-entropy is observed with the recorder. For
//! every (activation, initializer) it reports the standard deviation of each hidden layer's
//! output (forward) and ‖dL/dh‖ at each hidden layer (backward), and the diagnosis's verdict.
//!
//! What to look for, the pictures of Glorot & Bengio (2010, "Understanding the difficulty of
//! training deep feedforward neural networks", figs. 6–7) and He et al. (2015, "Delving Deep
//! into Rectifiers", §2.2 and fig. 3):
//! - tanh: the standard U(±1/√n) shrinks activations and gradients layer after layer, Glorot's
//!   normalized initialization keeps both;
//! - ReLU: Glorot's scale halves the second moment of the signal at every layer (×0.71 per layer
//!   on its RMS, and on the gradient), He's gain √2 keeps it.
//!
//! The network runs in f64: 30 layers of ×0.08 take the signal to 10⁻³³, below what f32 holds.
//!
//! ```text
//! cargo run --example initializers
//! cargo run --example initializers -- --depth 50 --width 256 --large-std 0.2
//! ```
//!
//! Writes `report.json` and, per activation, `<activation>_forward.svg` and
//! `<activation>_backward.svg` into `target/gradflow/initializers/` (or `--out DIR`).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use gradflow::activation::{self, Activation, ActivationFamily};
use gradflow::diagnose::{Diagnosis, HiddenLayer};
use gradflow::init::{GlorotUniform, Initializer, KaimingNormal, LinearDefault, Normal, Orthogonal, Zeros};
use gradflow::report::plot::{ChartSpec, Scale, Series, line_chart};
use gradflow::theory::{InputScale, predict_model};
use gradflow::{Error, Network, Result, Sequential};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::json;

const EXAMPLE: &str = "initializers";
const CLASSES: usize = 10;

/// Deep tanh and ReLU networks under six initializations: activation std by layer (forward)
/// and gradient norm by layer (backward), the pictures of Glorot & Bengio (2010) and He et al.
/// (2015).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Hidden layers, each Linear(width→width) + activation (at least 2).
    #[arg(long, default_value_t = 30)]
    depth: usize,
    /// Units per hidden layer, and input features.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Activations, comma-separated (any name of gradflow::activation::by_name).
    #[arg(long, alias = "activation", value_delimiter = ',', default_value = "tanh,relu")]
    activations: Vec<String>,
    /// Standard deviation of the "small" normal initialization.
    #[arg(long, default_value_t = 0.01)]
    small_std: f64,
    /// Standard deviation of the "large" normal initialization.
    #[arg(long, default_value_t = 1.0)]
    large_std: f64,
    /// Samples in the batch of standard normal inputs.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Seed of the weights (the same for every initializer) and of the inputs and labels.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (default: target/gradflow/initializers/).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The six initializations, labelled, for a layer followed by an activation of gain `gain`.
fn initializers(args: &Args, gain: f64) -> Result<Vec<(String, Arc<dyn Initializer>)>> {
    Ok(vec![
        (format!("normal({})", args.small_std), Arc::new(Normal::new(0.0, args.small_std)?)),
        ("standard".into(), Arc::new(LinearDefault)),
        ("glorot".into(), Arc::new(GlorotUniform::default())),
        ("he".into(), Arc::new(KaimingNormal::fan_in())),
        ("orthogonal".into(), Arc::new(Orthogonal::new(gain)?)),
        (format!("normal({})", args.large_std), Arc::new(Normal::new(0.0, args.large_std)?)),
    ])
}

/// One (activation, initializer) network at initialization.
struct Outcome {
    label: String,
    initializer: String,
    /// √(fan_in · mean(W²)) over the hidden weights: the weights' factor per layer.
    weight_gain: f64,
    diagnosis: Diagnosis,
}

impl Outcome {
    fn hidden(&self) -> impl Iterator<Item = &HiddenLayer> {
        self.diagnosis.layers.iter().map(|l| &l.layer).filter(|l| !l.is_output)
    }

    fn series(&self, pick: impl Fn(&HiddenLayer) -> Option<f64>) -> Vec<Option<f64>> {
        self.hidden().map(pick).collect()
    }

    /// Activation std at the last hidden layer over the first's.
    fn forward_ratio(&self) -> Option<f64> {
        let stds = self.series(|l| l.activation_std);
        match (stds.first().copied().flatten(), stds.last().copied().flatten()) {
            (Some(first), Some(last)) if first > 0.0 => Some(last / first),
            _ => None,
        }
    }

    /// What the forward signal does over the depth: shrinks or grows by more than 10×, or
    /// stays; "saturated" when most tanh/sigmoid units of some layer are.
    fn forward_verdict(&self) -> &'static str {
        let saturated = max_of(&self.series(|l| l.saturated_fraction)).is_some_and(|s| s > 0.5);
        match self.forward_ratio() {
            _ if saturated => "saturated",
            Some(r) if r < 0.1 => "shrinks",
            Some(r) if r > 10.0 => "grows",
            Some(_) => "kept",
            None => "-",
        }
    }
}

/// What was measured for one activation.
struct ActivationRun {
    activation: Arc<dyn Activation<f64>>,
    outcomes: Vec<Outcome>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &Args) -> Result<()> {
    let component = "initializers example";
    if args.depth < 2 {
        return Err(Error::config(
            component,
            "--depth",
            format!("needs at least 2 hidden layers, got {}", args.depth),
        ));
    }
    if args.width == 0 || args.batch == 0 {
        return Err(Error::config(component, "--width/--batch", "must be at least 1"));
    }
    if args.activations.is_empty() {
        return Err(Error::config(component, "--activations", "name at least one activation"));
    }
    for (field, std) in [("--small-std", args.small_std), ("--large-std", args.large_std)] {
        if !(std > 0.0 && std.is_finite()) {
            return Err(Error::config(component, field, format!("must be positive and finite, got {std}")));
        }
    }
    Ok(())
}

fn run(args: Args) -> Result<()> {
    validate(&args)?;
    let activations: Vec<Arc<dyn Activation<f64>>> =
        args.activations.iter().map(|n| activation::by_name::<f64>(n.trim())).collect::<Result<_>>()?;
    let out = common::Output::new(EXAMPLE, args.out.clone())?;
    let started = Instant::now();

    // Inputs and labels from their own stream, so that every network gets the same batch.
    let mut data_rng = StdRng::seed_from_u64(args.seed.wrapping_add(1));
    let inputs: Array2<f64> = Array2::random_using((args.batch, args.width), StandardNormal, &mut data_rng);
    let labels: Vec<usize> = (0..args.batch).map(|_| data_rng.random_range(0..CLASSES)).collect();
    // The mean-field prediction's input scale: the batch's mean square (about 1).
    let input_moment = inputs.iter().map(|v| v * v).sum::<f64>() / inputs.len() as f64;

    let n = args.width;
    println!(
        "initializers: does the signal (forward) and the gradient (backward) survive {} layers?",
        args.depth
    );
    println!(
        "seed {} · {} × [Linear({n}→{n}) + activation] + Linear({n}→{CLASSES}) · biases 0 · f64 · same seed for every initializer",
        args.seed, args.depth
    );
    println!(
        "data: {} standard normal input vectors of width {n}, random labels; one cross-entropy pass",
        args.batch
    );
    println!(
        "σ_w·√n: RMS of the hidden weights × √fan_in, the weights' factor per layer; act std: std of a hidden \
         layer's output;\n‖dL/dh‖: gradient with respect to it; layer 1 is nearest the input; theory ×: the \
         per-layer factor mean-field theory predicts\nfrom the weights (gradflow::theory), and whether the \
         measured one agrees with it (within ×1.1 per layer: Diagnosis::with_theory)"
    );

    let mut runs = Vec::new();
    for activation in &activations {
        let mut outcomes = Vec::new();
        for (label, init) in initializers(&args, activation.gain())? {
            let mut rng = StdRng::seed_from_u64(args.seed);
            let initializer = init.name();
            let model = Sequential::<f64>::builder(n)
                .init(init)
                .bias_init(Zeros)
                .repeat(args.depth, n, activation.clone())
                .linear(CLASSES)
                .build(&mut rng)?;
            let mut net = Network::new(model);
            let weight_gain = weight_gain(&net);
            let prediction = predict_model(net.model(), InputScale::SecondMoment(input_moment))?;
            let (_, diagnosis) = common::inspect(&mut net, &inputs, &labels, args.batch)?;
            let diagnosis = diagnosis.with_theory(&prediction);
            outcomes.push(Outcome { label, initializer, weight_gain, diagnosis });
        }
        let run = ActivationRun { activation: activation.clone(), outcomes };
        print_table(&args, &run);
        runs.push(run);
    }

    let mut written = Vec::new();
    for run in &runs {
        written.extend(plot(&args, &out, run)?);
    }
    written.push(out.write_json("report.json", &report(&args, &runs))?);
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned()))
        .collect();
    println!(
        "\nwrote {} into {} ({})",
        names.join(", "),
        out.dir().display(),
        common::seconds(started.elapsed())
    );
    Ok(())
}

/// √(fan_in · mean(W²)) over the weights of the hidden Linear layers (all but the last).
fn weight_gain(net: &Network<f64>) -> f64 {
    let weights: Vec<_> =
        net.named_parameters().into_iter().filter(|(name, _)| name.ends_with(".weight")).collect();
    let hidden = &weights[..weights.len().saturating_sub(1)];
    let (mut sum, mut count, mut fan_in) = (0.0, 0usize, 0usize);
    for (_, p) in hidden {
        sum += p.value.iter().map(|&w| w * w).sum::<f64>();
        count += p.value.len();
        fan_in = p.value.shape()[1];
    }
    if count == 0 { f64::NAN } else { (fan_in as f64 * sum / count as f64).sqrt() }
}

/// The mean-field prediction of the per-layer factor and whether the measurement agrees, e.g.
/// "0.58 agree".
fn theory_cell(diagnosis: &Diagnosis) -> String {
    match &diagnosis.theory {
        Some(t) => match t.predicted_per_layer_factor {
            Some(f) => format!("{f:.2} {}", t.agreement),
            None => t.agreement.to_string(),
        },
        None => "-".into(),
    }
}

fn sci(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.1e}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", 100.0 * x))
}

fn max_of(values: &[Option<f64>]) -> Option<f64> {
    values.iter().flatten().copied().reduce(f64::max)
}

fn print_table(args: &Args, run: &ActivationRun) {
    let act = run.activation.name();
    let units = match run.activation.family() {
        ActivationFamily::Saturating => "max sat%",
        _ => "max dead%",
    };
    println!("\n{act} (gain {:.4}): {} hidden layers", run.activation.gain(), args.depth);
    let last = format!("layer {}", args.depth);
    let (std_first, std_last) = ("act std 1".to_string(), format!("act std {}", args.depth));
    let (grad_first, grad_last) = ("‖dL/dh‖ 1".to_string(), format!("‖dL/dh‖ {}", args.depth));
    let header = [
        "initializer",
        "σ_w·√n",
        &std_first,
        &std_last,
        "forward",
        &grad_first,
        &grad_last,
        "1 / last",
        "× per layer",
        "theory ×",
        units,
        "verdict",
    ];
    let rows: Vec<Vec<String>> = run
        .outcomes
        .iter()
        .map(|o| {
            let stds = o.series(|l| l.activation_std);
            let grads = o.series(|l| l.grad_norm);
            let share = match run.activation.family() {
                ActivationFamily::Saturating => max_of(&o.series(|l| l.saturated_fraction)),
                _ => max_of(&o.series(|l| l.dead_fraction)),
            };
            vec![
                o.label.clone(),
                format!("{:.2}", o.weight_gain),
                sci(stds.first().copied().flatten()),
                sci(stds.last().copied().flatten()),
                o.forward_verdict().to_string(),
                sci(grads.first().copied().flatten()),
                sci(grads.last().copied().flatten()),
                sci(o.diagnosis.gradient_ratio),
                o.diagnosis.per_layer_factor.map_or_else(|| "-".into(), |f| format!("{f:.2}")),
                theory_cell(&o.diagnosis),
                percent(share),
                o.diagnosis.verdict.name().to_string(),
            ]
        })
        .collect();
    print!("{}", common::table("lrrrlrrrrlrl", &header, &rows));
    let keep: Vec<&str> = run
        .outcomes
        .iter()
        .filter(|o| {
            o.forward_verdict() == "kept" && o.diagnosis.verdict == gradflow::diagnose::Verdict::Healthy
        })
        .map(|o| o.label.as_str())
        .collect();
    println!(
        "signal and gradient both kept through {} layers ({last} vs layer 1 within 10× and 100×): {}",
        args.depth,
        if keep.is_empty() { "none".to_string() } else { keep.join(", ") }
    );
}

fn plot(args: &Args, out: &common::Output, run: &ActivationRun) -> Result<Vec<PathBuf>> {
    let act = run.activation.name();
    let layer_series = |o: &Outcome, pick: &dyn Fn(&HiddenLayer) -> Option<f64>| {
        let values = o.series(pick);
        Series::new(
            format!("{} (σ_w·√n {:.2})", o.label, o.weight_gain),
            values.iter().enumerate().map(|(i, v)| ((i + 1) as f64, v.unwrap_or(f64::NAN))),
        )
    };
    let x_label = "hidden layer (1 = nearest the input)";
    let forward: Vec<Series> = run.outcomes.iter().map(|o| layer_series(o, &|l| l.activation_std)).collect();
    let backward: Vec<Series> = run.outcomes.iter().map(|o| layer_series(o, &|l| l.grad_norm)).collect();
    let forward_path = out.path(&format!("{act}_forward.svg"));
    let backward_path = out.path(&format!("{act}_backward.svg"));
    let spec = ChartSpec::new(format!(
        "{act}: activation std by layer ({} layers, width {})",
        args.depth, args.width
    ))
    .x_label(x_label)
    .y_label("std of the layer's output")
    .y_scale(Scale::Log10);
    line_chart(&forward_path, &spec, &forward)?;
    let spec = ChartSpec::new(format!(
        "{act}: gradient norm by layer ({} layers, width {})",
        args.depth, args.width
    ))
    .x_label(x_label)
    .y_label("‖dL/dh‖")
    .y_scale(Scale::Log10);
    line_chart(&backward_path, &spec, &backward)?;
    Ok(vec![forward_path, backward_path])
}

fn report(args: &Args, runs: &[ActivationRun]) -> serde_json::Value {
    let activations: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let initializers: Vec<serde_json::Value> = run
                .outcomes
                .iter()
                .map(|o| {
                    json!({
                        "name": o.label,
                        "initializer": o.initializer,
                        "weight_gain": o.weight_gain,
                        "activation_std_by_layer": o.series(|l| l.activation_std),
                        "grad_norm_by_layer": o.series(|l| l.grad_norm),
                        "saturation_by_layer": o.series(|l| l.saturated_fraction),
                        "dead_by_layer": o.series(|l| l.dead_fraction),
                        "forward_ratio": o.forward_ratio(),
                        "forward": o.forward_verdict(),
                        "gradient_ratio": o.diagnosis.gradient_ratio,
                        "per_layer_factor": o.diagnosis.per_layer_factor,
                        "theory": o.diagnosis.theory,
                        "verdict": o.diagnosis.verdict.name(),
                        "evidence": o.diagnosis.evidence,
                    })
                })
                .collect();
            json!({
                "name": run.activation.name(),
                "gain": run.activation.gain(),
                "initializers": initializers,
            })
        })
        .collect();
    json!({
        "example": EXAMPLE,
        "seed": args.seed,
        "depth": args.depth,
        "width": args.width,
        "batch": args.batch,
        "inputs": "standard normal, width = --width; labels uniform over 10 classes",
        "biases": "zeros",
        "float": "f64",
        "small_std": args.small_std,
        "large_std": args.large_std,
        "layer_index": "0 is the hidden layer nearest the input",
        "activations": activations,
    })
}
