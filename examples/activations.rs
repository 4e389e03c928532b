//! # The same deep network with seven activations
//!
//! One stack of `--depth` hidden layers `Linear(width→width) + activation`, then
//! `Linear(width→10)`, on the embedded 8×8 digits (64 inputs), built for each activation with
//! the same initializer and the same seed, and looked at with one forward and backward pass of
//! cross-entropy at initialization. For each activation it shows ‖dL/dh‖ at every hidden layer
//! (layer 1 is nearest the input), the ratio between the first and the last hidden layer, the
//! factor per layer, the share of saturated (sigmoid, tanh) or dead (ReLU family) units, and the
//! diagnosis's verdict. Then every network is trained for `--epochs` (default 5) with SGD, to
//! see which ones learn.
//!
//! ## The initializer
//! The default, `glorot_uniform_gain`, is Glorot & Bengio's (2010) uniform scheme
//! U(±gain·√(6/(fan_in + fan_out))) with the gain PyTorch's `calculate_gain` recommends for each
//! activation ([`Activation::gain`]: sigmoid 1, tanh 5/3, ReLU √2, LeakyReLU √(2/(1 + 0.01²)),
//! SELU 3/4; gradflow's rule for the others, √2 for ELU and GELU), and zero biases: the same
//! scheme and the same seed for every activation, each at its recommended scale. The hidden
//! layers are square, so this is Var(W) = gain²/fan_in, He et al.'s (2015) variance for ReLU.
//! What is left is the activation's own doing: sigmoid multiplies the gradient by σ' ≤ 1/4 at
//! every layer, and no gain of the weights can undo that without saturating it. GELU vanishes
//! more slowly for another reason: near 0 it is x·Φ(x) ≈ x/2, so a signal that shrinks ends up
//! where the layer's factor is √2·½ ≈ 0.71 (its gain √2 suits unit-variance inputs, not small
//! ones).
//!
//! Other schemes with `--init`: `glorot_uniform` (gain 1, PyTorch's `xavier_uniform_` default)
//! keeps tanh, ELU and SELU but halves the second moment of ReLU, LeakyReLU and GELU networks at
//! every layer (×0.71 per layer for the gradient: they vanish too, and do not learn in 5 epochs);
//! `default` is PyTorch's `nn.Linear` default U(±1/√fan_in) for weights and biases, whose
//! Var(W) = 1/(3·fan_in) makes every one of them vanish. The `initializers` example takes that
//! side of the story.
//!
//! ```text
//! cargo run --example activations
//! cargo run --example activations -- --init glorot_uniform --depth 30
//! cargo run --example activations -- --activations relu,gelu,silu --epochs 10 --lr 0.02
//! ```
//!
//! Writes `report.json`, `grad_norm_by_layer.svg` and `saturation_dead_by_layer.svg` into
//! `target/gradflow/activations/` (or `--out DIR`).

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use gradflow::activation::{self, Activation, ActivationFamily};
use gradflow::data::{Dataset, digits_split};
use gradflow::diagnose::{Diagnosis, HiddenLayer};
use gradflow::init::{self, GlorotUniform, Initializer, LinearDefault, Orthogonal, Zeros};
use gradflow::loss::{CrossEntropy, Reduction};
use gradflow::optim::SgdConfig;
use gradflow::report::plot::{ChartSpec, Scale, Series, line_chart};
use gradflow::train::{Clip, Progress, TrainConfig, Trainer};
use gradflow::{Error, Network, Result, Sequential};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

const EXAMPLE: &str = "activations";
const DIGITS_FEATURES: usize = 64;
const DIGITS_CLASSES: usize = 10;

/// The same deep network with sigmoid, tanh, ReLU, LeakyReLU, ELU, SELU and GELU: gradient norm
/// by layer at initialization, saturated and dead units, and the verdict for each.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Hidden layers, each Linear(width→width) + activation (at least 2).
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Activations to compare, comma-separated; any of identity, sigmoid, tanh, relu,
    /// leaky_relu, elu, selu, gelu, gelu_tanh, silu, softsign, softplus.
    #[arg(
        long,
        alias = "activation",
        value_delimiter = ',',
        default_value = "sigmoid,tanh,relu,leaky_relu,elu,selu,gelu"
    )]
    activations: Vec<String>,
    /// Weight initializer of every Linear layer, the same for all activations: a name of
    /// `gradflow::init::by_name` (default = PyTorch's U(±1/√fan_in), glorot_uniform,
    /// kaiming_uniform, kaiming_normal (gain of the activation), lecun_normal, orthogonal, …), or
    /// glorot_uniform_gain / orthogonal_gain (scaled by the activation's gain). Biases are zero,
    /// except with `default` (PyTorch's U(±1/√fan_in) for biases too).
    #[arg(long, default_value = "glorot_uniform_gain")]
    init: String,
    /// Samples in the inspected batch (taken in order from the training set).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Epochs of SGD training per activation after the inspection (0: inspect only).
    #[arg(long, alias = "train-epochs", default_value_t = 5)]
    epochs: usize,
    /// SGD learning rate (momentum 0.9, minibatches of 64) for `--epochs`.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Gradient clipping for `--epochs`: the global gradient norm is scaled down to at most this.
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Seed of the weights (the same for every activation) and of the train/test split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (default: target/gradflow/activations/).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The weight initializer called `name` for a layer followed by an activation of gain `gain`.
fn weight_init(name: &str, gain: f64) -> Result<Arc<dyn Initializer>> {
    match name {
        "glorot_uniform_gain" => Ok(Arc::new(GlorotUniform::new(gain)?)),
        "orthogonal_gain" => Ok(Arc::new(Orthogonal::new(gain)?)),
        _ => init::by_name(name).map_err(|_| {
            Error::config(
                "activations example",
                "--init",
                format!(
                    "unknown initializer {name:?}; valid names: {}, glorot_uniform_gain, orthogonal_gain",
                    init::NAMES.join(", ")
                ),
            )
        }),
    }
}

/// What was measured for one activation.
struct Outcome {
    activation: Arc<dyn Activation<f32>>,
    init_name: String,
    /// √(fan_in · mean(W²)) over the hidden layers' weights: the factor by which the weights
    /// scale the signal's RMS per layer (1 preserves it for a linear network).
    weight_gain: f64,
    diagnosis: Diagnosis,
    training: Option<Training>,
}

/// What `--epochs` of SGD did: the losses and accuracies per epoch, or where it diverged.
enum Training {
    Done { train_loss: Vec<f64>, test_accuracy: Vec<f64> },
    Diverged(String),
}

impl Outcome {
    /// The hidden layers (all but the output layer), from the input.
    fn hidden(&self) -> impl Iterator<Item = &HiddenLayer> {
        self.diagnosis.layers.iter().map(|l| &l.layer).filter(|l| !l.is_output)
    }

    fn series(&self, pick: impl Fn(&HiddenLayer) -> Option<f64>) -> Vec<Option<f64>> {
        self.hidden().map(pick).collect()
    }

    fn family(&self) -> ActivationFamily {
        self.activation.family()
    }
}

fn build(args: &Args, activation: &Arc<dyn Activation<f32>>) -> Result<(Sequential<f32>, String)> {
    let init = weight_init(&args.init, activation.gain())?;
    let init_name = init.name();
    let builder = Sequential::<f32>::builder(DIGITS_FEATURES).init(init);
    let builder =
        if args.init == "default" { builder.bias_init(LinearDefault) } else { builder.bias_init(Zeros) };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let model =
        builder.repeat(args.depth, args.width, activation.clone()).linear(DIGITS_CLASSES).build(&mut rng)?;
    Ok((model, init_name))
}

fn train(args: &Args, net: &mut Network<f32>, train: &Dataset<f32>, test: &Dataset<f32>) -> Result<Training> {
    let config = TrainConfig::new(args.epochs, 64)
        .seed(args.seed)
        .clip(Clip::Norm(args.clip))
        .progress(Progress::Silent);
    let mut sgd = SgdConfig::new(args.lr).momentum(0.9).build::<f32>()?;
    match Trainer::new(config)?.fit(net, &mut sgd, &CrossEntropy::new(Reduction::Mean), train, Some(test)) {
        Ok(history) => Ok(Training::Done {
            train_loss: history.train_losses(),
            test_accuracy: history.test_accuracies(),
        }),
        Err(Error::NonFinite { location, .. }) => Ok(Training::Diverged(location)),
        Err(e) => Err(e),
    }
}

/// √(fan_in · mean(W²)) over the weights of the hidden Linear layers (all but the last).
fn weight_gain(net: &Network<f32>) -> f64 {
    let weights: Vec<_> =
        net.named_parameters().into_iter().filter(|(name, _)| name.ends_with(".weight")).collect();
    let hidden = &weights[..weights.len().saturating_sub(1)];
    let (mut sum, mut count, mut fan_in) = (0.0, 0usize, 0usize);
    for (_, p) in hidden {
        sum += p.value.iter().map(|&w| f64::from(w) * f64::from(w)).sum::<f64>();
        count += p.value.len();
        fan_in = p.value.shape()[1];
    }
    if count == 0 { f64::NAN } else { (fan_in as f64 * sum / count as f64).sqrt() }
}

/// The initializer as the header shows it.
fn init_description(name: &str) -> Result<String> {
    Ok(match name {
        "glorot_uniform_gain" => {
            "glorot_uniform_gain = U(±gain·√(6/(fan_in+fan_out))), gain = the activation's (calculate_gain)"
                .into()
        }
        "orthogonal_gain" => {
            "orthogonal_gain = gain × a random orthogonal matrix, gain = the activation's".into()
        }
        _ => format!("{name} = {}", weight_init(name, 1.0)?.name()),
    })
}

fn validate(args: &Args) -> Result<()> {
    let component = "activations example";
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
    if !(args.clip > 0.0 && args.clip.is_finite()) {
        return Err(Error::config(
            component,
            "--clip",
            format!("must be positive and finite, got {}", args.clip),
        ));
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err(Error::config(
            component,
            "--lr",
            format!("must be positive and finite, got {}", args.lr),
        ));
    }
    Ok(())
}

fn sci(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.1e}"))
}

fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}"))
}

fn fixed3(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", 100.0 * x))
}

fn max_of(values: &[Option<f64>]) -> Option<f64> {
    values.iter().flatten().copied().reduce(f64::max)
}

fn mean_of(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// Hidden layers shown in the compact per-layer table: 1, the quarter points, and the last.
fn shown_layers(depth: usize) -> Vec<usize> {
    let mut layers: Vec<usize> = [0, depth / 4, depth / 2, 3 * depth / 4, depth - 1].to_vec();
    layers.dedup();
    layers
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

fn run(args: Args) -> Result<()> {
    validate(&args)?;
    let init_text = init_description(&args.init)?;
    let activations: Vec<Arc<dyn Activation<f32>>> =
        args.activations.iter().map(|n| activation::by_name::<f32>(n.trim())).collect::<Result<_>>()?;
    let out = common::Output::new(EXAMPLE, args.out.clone())?;
    let started = Instant::now();

    let (train_set, test_set) = digits_split::<f32>(0.2, args.seed)?;
    let classes = train_set.targets.classes().expect("digits have class targets").to_vec();
    let batch = args.batch.min(train_set.len());
    let bias = if args.init == "default" { "U(±1/√fan_in), PyTorch's default" } else { "0" };

    println!(
        "activations: one deep network, {} activations — where does the gradient go?",
        activations.len()
    );
    println!(
        "seed {} · {} × [Linear({w}→{w}) + activation] + Linear({w}→10) · same seed for all",
        args.seed,
        args.depth,
        w = args.width
    );
    println!("init: {init_text}, biases {bias}");
    println!(
        "data: embedded 8×8 digits ({} train / {} test, 64 inputs); one cross-entropy pass on {batch} training samples",
        train_set.len(),
        test_set.len()
    );
    println!("‖dL/dh‖: gradient with respect to a hidden layer's output; layer 1 is nearest the input\n");

    let mut outcomes = Vec::new();
    for activation in &activations {
        let (model, init_name) = build(&args, activation)?;
        let mut net = Network::new(model);
        let weight_gain = weight_gain(&net);
        let (_, diagnosis) = common::inspect(&mut net, &train_set.inputs, &classes, batch)?;
        let training =
            if args.epochs > 0 { Some(train(&args, &mut net, &train_set, &test_set)?) } else { None };
        outcomes.push(Outcome {
            activation: activation.clone(),
            init_name,
            weight_gain,
            diagnosis,
            training,
        });
    }

    print_summary(&args, &outcomes);
    print_per_layer(&args, &outcomes);
    print_evidence(&outcomes);
    if args.init == "glorot_uniform_gain" {
        println!(
            "\n(each activation at its recommended gain; `--init glorot_uniform` gives them all gain 1, \
             and ReLU, LeakyReLU and GELU vanish too)"
        );
    }

    let grad_chart = out.path("grad_norm_by_layer.svg");
    let units_chart = out.path("saturation_dead_by_layer.svg");
    plot(&args, &outcomes, &grad_chart, &units_chart)?;
    let report = out.write_json("report.json", &report(&args, &outcomes, batch))?;
    println!(
        "\nwrote {}, {}, {} ({})",
        report.display(),
        grad_chart.display(),
        units_chart.display(),
        common::seconds(started.elapsed())
    );
    Ok(())
}

fn print_summary(args: &Args, outcomes: &[Outcome]) {
    let mut header = vec![
        "activation",
        "σ_w·√n",
        "‖dL/dh‖ 1 / last",
        "× per layer",
        "mean |f'|",
        "max sat%",
        "max dead%",
        "verdict",
    ];
    let training = args.epochs > 0;
    let loss_header = format!("loss after {}", args.epochs);
    if training {
        header.extend(["loss epoch 1", loss_header.as_str(), "test acc"]);
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let sat = max_of(&o.series(|l| l.saturated_fraction));
            let dead = max_of(&o.series(|l| l.dead_fraction));
            let mut row = vec![
                o.activation.name().to_string(),
                format!("{:.2}", o.weight_gain),
                sci(o.diagnosis.gradient_ratio),
                fixed(o.diagnosis.per_layer_factor),
                fixed(mean_of(&o.series(|l| l.mean_derivative))),
                percent(sat),
                percent(dead),
                o.diagnosis.verdict.name().to_string(),
            ];
            match &o.training {
                Some(Training::Done { train_loss, test_accuracy }) => {
                    row.push(fixed3(train_loss.first().copied()));
                    row.push(fixed3(train_loss.last().copied()));
                    row.push(percent(test_accuracy.last().copied()));
                }
                Some(Training::Diverged(_)) => row.extend(["diverged".into(), "-".into(), "-".into()]),
                None => {}
            }
            row
        })
        .collect();
    let align = if training { "lrrrrrrlrrr" } else { "lrrrrrrl" };
    print!("{}", common::table(align, &header, &rows));
    println!(
        "σ_w·√n: RMS of the hidden weights × √fan_in, the weights' factor per layer (the gain); \
         ‖dL/dh‖ 1 / last: first hidden layer over the last;\n\
         × per layer: that ratio's geometric mean per layer; mean |f'|: the activation's average \
         derivative; sat%, dead%: the largest share over the layers (`-`: does not apply)"
    );
    if training {
        println!(
            "training: {} epochs of SGD (lr {}, momentum 0.9, batches of 64, gradient norm clipped at {}); \
             loss is the training loss, acc the test accuracy",
            args.epochs, args.lr, args.clip
        );
    }
    for o in outcomes.iter().filter_map(|o| match &o.training {
        Some(Training::Diverged(at)) => Some((o.activation.name(), at)),
        _ => None,
    }) {
        println!("{} diverged (NaN or ∞) at {}; try a smaller --lr or --clip", o.0, o.1);
    }
}

fn print_per_layer(args: &Args, outcomes: &[Outcome]) {
    let layers = shown_layers(args.depth);
    let titles: Vec<String> = layers.iter().map(|i| format!("layer {}", i + 1)).collect();
    let mut header = vec!["‖dL/dh‖"];
    header.extend(titles.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let grads = o.series(|l| l.grad_norm);
            let mut row = vec![o.activation.name().to_string()];
            row.extend(layers.iter().map(|&i| sci(grads[i])));
            row
        })
        .collect();
    println!("\ngradient norm at a few hidden layers (from the input):");
    print!("{}", common::table(&format!("l{}", "r".repeat(layers.len())), &header, &rows));
}

/// The diagnosis's evidence and first remedy for every activation that is not healthy.
fn print_evidence(outcomes: &[Outcome]) {
    let troubled: Vec<&Outcome> = outcomes.iter().filter(|o| !o.diagnosis.remedies.is_empty()).collect();
    for o in troubled {
        println!("\n{}: {}", o.activation.name(), o.diagnosis.verdict.name().to_uppercase());
        for e in o.diagnosis.evidence.iter().take(2) {
            println!("  - {e}");
        }
        println!("  remedy: {}", o.diagnosis.remedies[0].text());
    }
}

fn plot(args: &Args, outcomes: &[Outcome], grad_chart: &Path, units_chart: &Path) -> Result<()> {
    let layer_series = |name: String, values: Vec<Option<f64>>, scale: f64| {
        Series::new(
            name,
            values.iter().enumerate().map(|(i, v)| ((i + 1) as f64, v.map_or(f64::NAN, |v| v * scale))),
        )
    };
    let grads: Vec<Series> = outcomes
        .iter()
        .map(|o| layer_series(o.activation.name().to_string(), o.series(|l| l.grad_norm), 1.0))
        .collect();
    let spec = ChartSpec::new(format!(
        "Gradient norm by layer at initialization ({} layers, width {}, {})",
        args.depth, args.width, args.init
    ))
    .x_label("hidden layer (1 = nearest the input)")
    .y_label("‖dL/dh‖")
    .y_scale(Scale::Log10);
    line_chart(grad_chart, &spec, &grads)?;

    let units: Vec<Series> = outcomes
        .iter()
        .filter_map(|o| match o.family() {
            ActivationFamily::Saturating => Some(layer_series(
                format!("{} saturated", o.activation.name()),
                o.series(|l| l.saturated_fraction),
                100.0,
            )),
            ActivationFamily::Rectifier => Some(layer_series(
                format!("{} dead", o.activation.name()),
                o.series(|l| l.dead_fraction),
                100.0,
            )),
            ActivationFamily::Linear => None,
        })
        .collect();
    if units.is_empty() {
        return Ok(());
    }
    let spec = ChartSpec::new("Saturated (sigmoid, tanh) and dead (ReLU family) units at initialization")
        .x_label("hidden layer (1 = nearest the input)")
        .y_label("% of units");
    line_chart(units_chart, &spec, &units)
}

fn report(args: &Args, outcomes: &[Outcome], batch: usize) -> serde_json::Value {
    let activations: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            json!({
                "name": o.activation.name(),
                "description": o.activation.describe(),
                "family": o.family(),
                "initializer": o.init_name,
                "weight_gain": o.weight_gain,
                "grad_norm_by_layer": o.series(|l| l.grad_norm),
                "activation_std_by_layer": o.series(|l| l.activation_std),
                "mean_derivative_by_layer": o.series(|l| l.mean_derivative),
                "saturation_by_layer": o.series(|l| l.saturated_fraction),
                "dead_by_layer": o.series(|l| l.dead_fraction),
                "mean_saturation": mean_of(&o.series(|l| l.saturated_fraction)),
                "mean_dead": mean_of(&o.series(|l| l.dead_fraction)),
                "gradient_ratio": o.diagnosis.gradient_ratio,
                "per_layer_factor": o.diagnosis.per_layer_factor,
                "verdict": o.diagnosis.verdict.name(),
                "evidence": o.diagnosis.evidence,
                "remedies": o.diagnosis.remedies.iter().map(|r| r.text()).collect::<Vec<_>>(),
                "training": match &o.training {
                    Some(Training::Done { train_loss, test_accuracy }) => json!({
                        "train_loss_by_epoch": train_loss,
                        "test_accuracy_by_epoch": test_accuracy,
                    }),
                    Some(Training::Diverged(at)) => json!({ "diverged_at": at }),
                    None => serde_json::Value::Null,
                },
            })
        })
        .collect();
    json!({
        "example": EXAMPLE,
        "seed": args.seed,
        "depth": args.depth,
        "width": args.width,
        "init": args.init,
        "biases": if args.init == "default" { "pytorch_default" } else { "zeros" },
        "dataset": "digits (embedded 8x8 UCI digits, 80/20 stratified split)",
        "inspected_batch": batch,
        "layer_index": "0 is the hidden layer nearest the input",
        "training": (args.epochs > 0).then(|| json!({
            "epochs": args.epochs, "optimizer": "sgd", "lr": args.lr, "momentum": 0.9, "batch_size": 64,
            "clip_grad_norm": args.clip,
        })),
        "activations": activations,
    })
}
