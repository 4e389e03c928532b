//! Gradient hooks from user code: watch, record, change and remove what flows backward through a
//! deep network.
//!
//! A tutorial in numbered sections, on a 30-layer tanh network (PyTorch's default
//! initialization) trained on the 8×8 digits:
//!
//! 1. a closure hook that prints ‖dL/dh‖ of every 5th layer during the first backward pass;
//! 2. a `Recorder` (all statistics) and a `NonFiniteDetector` kept on the network for a few
//!    training steps, read while training (`Network::hook`) and taken back (`detach_hook`);
//! 3. a hook that scales the gradient sent below one layer — the layers below get a gradient
//!    `--scale` times larger, the layers above are untouched — removed again with its handle;
//! 4. the diagnosis of the recording, printed as a table;
//! 5. the report (the recording as JSON) and two plots;
//! 6. the detector catching a NaN planted in one weight of a copy of the network;
//! 7. a closure that borrows a local table, lent with `Network::with_hook` for a whole
//!    `Trainer::fit_with` run, collecting per-layer gradient norms and printed every 10 steps.
//!
//! ```text
//! cargo run --example gradient_hooks
//! cargo run --example gradient_hooks -- --activation relu --depth 20 --out /tmp/hooks
//! ```
//!
//! Writes `report.json`, `grad_norm_by_layer.svg` and `grad_norm_heatmap.svg` into
//! `target/gradflow/gradient_hooks/` (or `--out DIR`).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gradflow::data::digits_split;
use gradflow::diagnose::{Thresholds, diagnose, diagnose_step};
use gradflow::hooks::{Event, NonFiniteDetector, Recorder, RecorderConfig, Recording};
use gradflow::init::LinearDefault;
use gradflow::io::{LoadOptions, load_safetensors_bytes, safetensors_bytes};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::optim::{Sgd, SgdConfig};
use gradflow::report::plot::{ChartSpec, HeatmapSpec, Scale, Series, heatmap, line_chart};
use gradflow::report::{json, table};
use gradflow::train::{Progress, TrainConfig, Trainer};
use gradflow::{Error, Mode, Network, Result, Sequential};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Gradient hooks from user code: a closure hook, a recorder, the non-finite detector, a hook
/// that scales the gradient, and removal with a handle, on a deep network trained on the digits.
#[derive(Parser, Debug)]
#[command(name = "gradient_hooks")]
struct Args {
    /// Number of hidden layers (each one Linear + activation); at least 3.
    #[arg(long, default_value_t = 30)]
    depth: usize,
    /// Width of every hidden layer.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Activation of the hidden layers: tanh, sigmoid, relu, gelu, … (gradflow::activation::by_name).
    #[arg(long, default_value = "tanh")]
    activation: String,
    /// Training steps (mini-batches) recorded.
    #[arg(long, default_value_t = 40)]
    steps: u64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Factor by which the scaling hook multiplies the gradient sent below the middle layer.
    #[arg(long, default_value_t = 10.0)]
    scale: f32,
    /// Seed of the initialization, the data split and the batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (default: target/gradflow/gradient_hooks/).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Args {
    /// Refuses settings the example cannot run with, naming the flag.
    fn check(&self) -> Result<()> {
        let refuse = |flag: &'static str, reason: String| Err(Error::config("gradient_hooks", flag, reason));
        if self.depth < 3 {
            return refuse(
                "--depth",
                format!("must be at least 3 (section 6 breaks layer 3), got {}", self.depth),
            );
        }
        if self.width == 0 || self.batch == 0 || self.steps == 0 {
            return refuse("--width/--batch/--steps", "must be at least 1".into());
        }
        if !self.scale.is_finite() || self.scale == 0.0 {
            return refuse("--scale", format!("must be finite and non-zero, got {}", self.scale));
        }
        gradflow::activation::by_name::<f32>(&self.activation).map(drop)
    }
}

/// `depth` × (Linear(width) + activation), then Linear(10): PyTorch's default U(±1/√fan_in).
fn build_model(args: &Args) -> Result<Sequential<f32>> {
    let activation = gradflow::activation::by_name::<f32>(&args.activation)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    Sequential::builder(64)
        .init(LinearDefault)
        .repeat(args.depth, args.width, activation)
        .linear(10)
        .build(&mut rng)
}

/// The mini-batches of one pass over the training set, in a seeded order (the last, partial
/// batch is dropped).
struct Batches {
    inputs: Array2<f32>,
    classes: Vec<usize>,
    order: Vec<usize>,
    size: usize,
}

impl Batches {
    fn get(&self, step: u64) -> (Array2<f32>, Vec<usize>) {
        let count = (self.order.len() / self.size).max(1);
        let start = (step as usize % count) * self.size;
        let rows = &self.order[start..(start + self.size).min(self.order.len())];
        (self.inputs.select(Axis(0), rows), rows.iter().map(|&i| self.classes[i]).collect())
    }
}

/// One training step: zero the gradients, forward, cross-entropy, backward, SGD.
fn train_step(net: &mut Network<f32>, sgd: &mut Sgd<f32>, x: &Array2<f32>, classes: &[usize]) -> Result<f32> {
    let loss = forward_backward(net, x, classes)?;
    net.step(sgd)?;
    Ok(loss)
}

/// Zeroes the gradients, then one forward and backward pass of cross-entropy (no update).
fn forward_backward(net: &mut Network<f32>, x: &Array2<f32>, classes: &[usize]) -> Result<f32> {
    net.zero_grad();
    let output = net.forward(x.view(), Mode::Train)?;
    let (loss, grad) =
        CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(classes))?;
    net.backward(grad.view())?;
    Ok(loss)
}

/// ‖dL/dW‖ of each Linear layer's weight, from the input (hidden layer 1) to the output layer.
fn weight_grad_norms(net: &Network<f32>) -> Vec<f64> {
    net.named_parameters()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".weight"))
        .map(|(_, p)| p.grad.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>().sqrt())
        .collect()
}

/// Sets the first weight of the Linear layer at path "4" (hidden layer 3) to NaN.
fn plant_nan(net: &mut Network<f32>) {
    // `layer_at_mut` gives a `&mut dyn Layer`; its parameters are reached with a visitor.
    let layer = net.model_mut().layer_at_mut("4").expect("--depth is at least 3");
    layer.visit_parameters_mut(&mut |mut p| {
        if p.name == "weight" {
            p.value[[0, 0].as_slice()] = f32::NAN;
        }
    });
}

/// ‖dL/dh‖ of each hidden layer (without the output layer) at `step`.
fn hidden_grad_norms(recording: &Recording, step: u64) -> Vec<f64> {
    recording
        .hidden_layers(step)
        .iter()
        .filter(|l| !l.is_output)
        .map(|l| l.grad_norm.unwrap_or(f64::NAN))
        .collect()
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradient_hooks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    args.check()?;
    let out = common::Output::new("gradient_hooks", args.out.clone())?;
    let started = std::time::Instant::now();

    println!("gradient_hooks — hooks from user code on a deep network");
    println!(
        "seed {} | {} × (Linear({}) + {}) + Linear(10), PyTorch default init | digits, batch {}, \
         SGD lr {}, {} steps",
        args.seed, args.depth, args.width, args.activation, args.batch, args.lr, args.steps
    );

    // The data and the network. Paths of the layers, as hooks see them: hidden layer n is the
    // Linear at path 2(n−1) and its activation at path 2n−1; the output Linear is last.
    let (train, _test) = digits_split::<f32>(0.2, args.seed)?;
    let classes = train.targets.classes().ok_or_else(|| Error::config("digits", "targets", "not classes"))?;
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(args.seed));
    let batches =
        Batches { inputs: train.inputs.clone(), classes: classes.to_vec(), order, size: args.batch };
    let mut net = Network::new(build_model(&args)?);
    let mut sgd = SgdConfig::new(args.lr).build::<f32>()?;

    // ── 1. A closure hook ─────────────────────────────────────────────────────────────────
    // Any `FnMut(&mut Event<f32>)` is a hook. It sees every layer in forward and in backward;
    // here it prints ‖dL/dh‖ — the gradient arriving at each activation's output — for every
    // 5th hidden layer. Backward runs from the output down, so the last layer prints first.
    println!("\n1. A closure hook prints ‖dL/dh‖ during the first backward pass:");
    let printer = net.attach_hook(|event: &mut Event<'_, f32>| {
        if let Event::Backward(b) = event
            && b.layer.as_activation().is_some()
        {
            let layer = b.path.parse::<usize>().map_or(0, |path| path / 2 + 1);
            if layer % 5 == 0 || layer == 1 {
                let norm = b.grad_output.iter().map(|g| g * g).sum::<f32>().sqrt();
                println!(
                    "   layer {layer:>3} (path {:>2}, {})  ‖dL/dh‖ = {norm:.2e}",
                    b.path,
                    b.layer.kind()
                );
            }
        }
    });

    // ── 2. A recorder and the non-finite detector, kept for the whole training run ───────────
    // Hooks run in the order they were attached. The handles are typed: `net.hook(recorder)`
    // is a `&Recorder`, `net.detach_hook(recorder)` gives the `Recorder` back.
    let recorder = net.attach_hook(Recorder::new(RecorderConfig::all())?);
    let detector = net.attach_hook(NonFiniteDetector::new());

    let report_every = (args.steps / 4).max(1);
    let mut last_loss = f32::NAN;
    for step in 0..args.steps {
        let (x, y) = batches.get(step);
        let loss = train_step(&mut net, &mut sgd, &x, &y)?;
        last_loss = loss;
        if step == 0 {
            // The printer has shown what it should: remove it with its handle.
            net.detach_hook(printer);
            println!("\n2. Training with a Recorder (all statistics) and a NonFiniteDetector attached:");
            println!("   {:>5}  {:>7}  {:>16}  {:>16}", "step", "loss", "‖dL/dh‖ layer 1", "‖dL/dh‖ last");
        }
        if step % report_every == 0 || step + 1 == args.steps {
            // Read what the recorder has collected so far, while it stays attached.
            let live = net.hook(recorder).map(|r| hidden_grad_norms(r.recording(), step)).unwrap_or_default();
            let (first, last) =
                (live.first().copied().unwrap_or(f64::NAN), live.last().copied().unwrap_or(f64::NAN));
            println!("   {step:>5}  {loss:>7.4}  {first:>16.2e}  {last:>16.2e}");
        }
    }
    let recording = net.detach_hook(recorder).expect("attached above").into_recording();
    if (last_loss - 10f32.ln()).abs() < 0.05 {
        println!("   the loss stays at ln 10 ≈ 2.303, chance level: the network is not learning (see 4.)");
    }
    match net.detach_hook(detector).and_then(|d| d.report().cloned()) {
        None => println!("   NonFiniteDetector: no NaN or infinity in {} steps", args.steps),
        Some(report) => println!("   NonFiniteDetector: {report}"),
    }

    // ── 3. A hook that changes the gradient, and its removal ────────────────────────────────
    // `grad_input_mut` is the gradient a layer sends to the layers below it. Scaling it at the
    // Linear of hidden layer k multiplies the gradient of every layer below k by `scale`
    // (backpropagation is linear in the gradient) and leaves layer k and those above unchanged.
    let k = args.depth / 2 + 1;
    let scaled_path = (2 * (k - 1)).to_string();
    let scale = args.scale;
    let (x, y) = batches.get(0);
    forward_backward(&mut net, &x, &y)?;
    let without = weight_grad_norms(&net);
    let scaler = net.attach_hook(move |event: &mut Event<'_, f32>| {
        if let Event::Backward(b) = event
            && b.path == scaled_path
            && let Some(mut grad) = b.grad_input_mut()
        {
            grad *= scale;
        }
    });
    // `with_hook` attaches a hook for a few passes and gives it back: a recorder of the
    // gradients, attached after the scaler, records the pass as the scaler left it.
    let (pass, scaled) =
        net.with_hook(Recorder::new(RecorderConfig::gradients())?, |net| forward_backward(net, &x, &y));
    pass?;
    let scaled = scaled.into_recording();
    let with = weight_grad_norms(&net);
    let removed = net.detach_hook(scaler).is_some();
    forward_backward(&mut net, &x, &y)?;
    let after = weight_grad_norms(&net);
    net.zero_grad();

    println!("\n3. A hook scales the gradient sent below hidden layer {k} by {scale}, then is removed:");
    println!(
        "   {:>5}  {:>15}  {:>13}  {:>7}  {:>13}",
        "layer", "‖dL/dW‖ no hook", "with hook", "ratio", "hook removed"
    );
    let mut shown = vec![1, k - 1, k, args.depth];
    shown.dedup();
    for layer in shown {
        let i = layer - 1;
        println!(
            "   {layer:>5}  {:>15.3e}  {:>13.3e}  {:>7.3}  {:>13.3e}",
            without[i],
            with[i],
            with[i] / without[i],
            after[i]
        );
    }
    println!(
        "   removed with its handle: {removed}; gradients afterwards equal those without the hook: {}",
        after == without
    );

    // ── 4. The diagnosis of the recording ────────────────────────────────────────────────────
    // `diagnose` looks at the first recorded step: the network at initialization.
    println!("\n4. Diagnosis of the recording (gradflow::diagnose + report::table::render):\n");
    let thresholds = Thresholds::default();
    let diagnosis = diagnose(&recording, &thresholds)?;
    for line in table::render(&diagnosis).lines() {
        println!("{}", if line.is_empty() { String::new() } else { format!("   {line}") });
    }
    let steps = recording.steps();
    let last_step = steps.last().copied().unwrap_or(0);
    let last = diagnose_step(&recording, last_step, &thresholds)?;
    println!(
        "   after training, at step {last_step}: {} (‖dL/dh‖ layer 1 / layer {} = {:.1e})",
        last.verdict,
        args.depth,
        last.gradient_ratio.unwrap_or(f64::NAN)
    );

    // ── 5. The report and the plots ──────────────────────────────────────────────────────────
    json::write_file(&recording, out.path("report.json"))?;
    let first_norms = hidden_grad_norms(&recording, steps[0]);
    let last_norms = hidden_grad_norms(&recording, last_step);
    let by_layer =
        |norms: &[f64]| norms.iter().enumerate().map(|(i, &g)| ((i + 1) as f64, g)).collect::<Vec<_>>();
    line_chart(
        out.path("grad_norm_by_layer.svg"),
        &ChartSpec::new(format!("‖dL/dh‖ by layer, {} × {}", args.depth, args.activation))
            .x_label("hidden layer (1 = nearest the input)")
            .y_label("‖dL/dh‖")
            .y_scale(Scale::Log10),
        &[
            Series::new(format!("step {}", steps[0]), by_layer(&first_norms)),
            Series::new(format!("step {last_step}"), by_layer(&last_norms)),
            Series::new(
                format!("hook ×{scale} below layer {k}"),
                by_layer(&hidden_grad_norms(&scaled, scaled.steps().first().copied().unwrap_or(0))),
            ),
        ],
    )?;
    let rows: Vec<String> = (1..=first_norms.len()).map(|n| format!("layer {n}")).collect();
    let per_step: Vec<Vec<f64>> = steps.iter().map(|&s| hidden_grad_norms(&recording, s)).collect();
    let grid = Array2::from_shape_fn((rows.len(), steps.len()), |(layer, column)| {
        per_step[column].get(layer).copied().unwrap_or(f64::NAN)
    });
    let columns: Vec<f64> = steps.iter().map(|&s| s as f64).collect();
    heatmap(
        out.path("grad_norm_heatmap.svg"),
        &HeatmapSpec::new(format!(
            "‖dL/dh‖ per layer and training step, {} × {}",
            args.depth, args.activation
        ))
        .x_label("training step")
        .y_label("hidden layer")
        .value_label("‖dL/dh‖")
        .color_scale(Scale::Log10),
        &rows,
        &columns,
        grid.view(),
    )?;

    println!(
        "\n5. Written to {}: report.json (the recording), grad_norm_by_layer.svg, grad_norm_heatmap.svg",
        out.dir().display()
    );

    // ── 6. The detector catches a NaN ────────────────────────────────────────────────────────
    // A copy of the trained network (same architecture, weights copied through safetensors
    // bytes) with one weight of the Linear at path "4" (hidden layer 3) set to NaN.
    println!("\n6. A NaN planted in one weight of the Linear at path \"4\" (hidden layer 3) of a copy:");
    let weights = safetensors_bytes(net.model())?;
    let copy_of_net = || -> Result<Network<f32>> {
        let mut copy = Network::new(build_model(&args)?);
        load_safetensors_bytes(copy.model_mut(), &weights, "trained network", &LoadOptions::default())?;
        Ok(copy)
    };
    // Without the detector, the NaN surfaces only where something checks it — the loss, or
    // the optimizer — and nothing says where it came from.
    let mut copy = copy_of_net()?;
    plant_nan(&mut copy);
    let mut copy_sgd = SgdConfig::new(args.lr).build::<f32>()?;
    let unseen =
        train_step(&mut copy, &mut copy_sgd, &x, &y).err().map_or("no error".into(), |e| e.to_string());
    println!("   without a detector: {unseen}");
    // With a fail-fast detector, the pass stops at the layer that produced the first NaN.
    let mut copy = copy_of_net()?;
    let mut copy_sgd = SgdConfig::new(args.lr).build::<f32>()?;
    let watch = copy.attach_hook(NonFiniteDetector::fail_fast());
    let mut stopped = None;
    for step in 0..args.steps.min(5) {
        if step == 3 {
            plant_nan(&mut copy); // the weight goes bad before the 4th step
        }
        let (x, y) = batches.get(step);
        if let Err(e) = train_step(&mut copy, &mut copy_sgd, &x, &y) {
            stopped = Some(e);
            break;
        }
    }
    if let Some(e) = stopped {
        println!("   with NonFiniteDetector::fail_fast(), training stops: {e}");
    }
    match copy.hook(watch).and_then(|d| d.report()) {
        Some(r) => println!(
            "   the detector's report: layer {} ({}), direction {}, step {}, {} of {} values of the {}",
            r.path, r.kind, r.direction, r.step, r.count, r.len, r.what
        ),
        None => println!("   the detector saw no NaN (unexpected)"),
    }

    // ── 7. A closure that collects into your own table over a whole training run ──────────────
    // `with_hook` lends a hook for a stretch of code, so the closure may borrow local state:
    // here a table of (step, ‖dL/dh‖ at hidden layer 1, at the last hidden layer), filled during
    // `Trainer::fit_with` and printed every few steps from its per-step callback — no `'static`,
    // `Arc` or `Mutex`. Layer numbers are the diagnosis's (a Linear and its activation are one
    // layer); the activation's output gradient is ‖dL/dh‖ of its layer.
    println!(
        "\n7. A closure collecting ‖dL/dh‖ of layers 1 and {} into a local table during Trainer::fit_with:",
        args.depth
    );
    let mut fresh = Network::new(build_model(&args)?);
    let mut fresh_sgd = SgdConfig::new(args.lr).build::<f32>()?;
    let mut table_rows: Vec<(u64, f64, f64)> = Vec::new();
    let depth = args.depth;
    let collect = |event: &mut Event<'_, f32>| {
        if let Event::Backward(b) = event
            && b.layer.as_activation().is_some()
            && let Some(layer) = b.layer_number
            && (layer == 1 || layer == depth)
        {
            let norm = b.grad_output.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt();
            match table_rows.last_mut() {
                Some(row) if row.0 == b.step => {
                    if layer == 1 {
                        row.1 = norm
                    } else {
                        row.2 = norm
                    }
                }
                _ if layer == 1 => table_rows.push((b.step, norm, f64::NAN)),
                _ => table_rows.push((b.step, f64::NAN, norm)),
            }
        }
    };
    let trainer = Trainer::new(TrainConfig::new(1, args.batch).seed(args.seed).progress(Progress::Silent))?;
    let print_every = 10;
    let (fitted, _hook) = fresh.with_hook(collect, |net| {
        trainer.fit_with(net, &mut fresh_sgd, &CrossEntropy::new(Reduction::Mean), &train, None, |_, step| {
            if step.step % print_every == 0 {
                println!("   step {:>3}  loss {:.4}", step.step, step.loss);
            }
            Ok(())
        })
    });
    fitted?;
    println!("   {:>5}  {:>16}  {:>16}", "step", "‖dL/dh‖ layer 1", format!("‖dL/dh‖ layer {depth}"));
    for (step, first, last) in table_rows.iter().filter(|row| row.0 % print_every == 0) {
        println!("   {step:>5}  {first:>16.2e}  {last:>16.2e}");
    }
    println!("   ({} steps collected; the table is an ordinary local Vec)", table_rows.len());

    println!(
        "\nWrote report.json, grad_norm_by_layer.svg, grad_norm_heatmap.svg to {} in {}",
        out.dir().display(),
        common::seconds(started.elapsed())
    );
    Ok(())
}
