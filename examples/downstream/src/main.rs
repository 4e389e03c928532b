//! A first hour with gradflow, from a user's own crate: a deep sigmoid network that does not
//! learn, the gradient collected layer by layer into a local table, the diagnosis, the fix, a
//! learning rate that is too high and the diagnosis naming it, the fix of that, then saving,
//! loading and exporting; and a PyTorch residual MLP's weights loaded under its own module names,
//! its gradient flow shown by those names.
//!
//! ```text
//! cargo run                 # from examples/downstream/: its debug build
//! cargo run --release
//! ```
//! Writes into `target/gradflow-downstream/`. Exits with an error if any step does not turn out
//! as the README says it does.

use std::path::Path;
use std::time::Instant;

use gradflow::activation::{Gelu, Relu, Sigmoid, Tanh};
use gradflow::data::{Dataset, digits_split};
use gradflow::diagnose::{Diagnosis, Remedy, Thresholds, Verdict, diagnose};
use gradflow::export::{MetricsWriter, TensorBoardWriter};
use gradflow::hooks::{Event, Recorder};
use gradflow::init::{KaimingNormal, LinearDefault};
use gradflow::io::{load_safetensors, save_safetensors};
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::ndarray::{Array2, s};
use gradflow::optim::SgdConfig;
use gradflow::rand::SeedableRng;
use gradflow::rand::rngs::StdRng;
use gradflow::report::table;
use gradflow::train::{History, Progress, TrainConfig, Trainer};
use gradflow::{Error, Layer, Linear, Mode, Network, Result, Sequential, SequentialBuilder};

const DEPTH: usize = 12;
const WIDTH: usize = 64;

fn main() -> Result<()> {
    let started = Instant::now();
    let out = Path::new("target/gradflow-downstream");
    let (train, test) = digits_split::<f32>(0.25, 0)?;

    // 1. Twelve sigmoid layers with PyTorch's default initialization.
    let mut rng = StdRng::seed_from_u64(0);
    let sigmoid = Sequential::builder(64)
        .init(LinearDefault)
        .repeat(DEPTH, WIDTH, Sigmoid)
        .linear(10)
        .build(&mut rng)?;
    let mut net = Network::new(sigmoid);
    println!(
        "1. {DEPTH} sigmoid layers: ‖dL/dh‖ at each layer, first batch (collected by a closure into a local table)"
    );
    let norms = gradient_by_layer(&mut net, &train)?;
    for (layer, norm) in &norms {
        println!("   layer {layer:>2}  {norm:.2e}");
    }

    // 2. Train it with a recorder, and ask for a diagnosis.
    println!("\n2. train it: SGD lr 0.05, momentum 0.9, 10 epochs");
    let (diagnosis, history) = train_and_diagnose(&mut net, 0.05, &train, &test)?;
    println!("   test accuracy {:.1}%", 100.0 * accuracy(&history));
    print!("{}", table::render(&diagnosis));
    expect(diagnosis.verdict == Verdict::Vanishing, "the sigmoid network is diagnosed as vanishing")?;

    // 3. The fix the diagnosis names first: ReLU with He initialization — at the same learning rate.
    let mut rng = StdRng::seed_from_u64(0);
    let relu = Sequential::builder(64)
        .init(KaimingNormal::fan_in())
        .repeat(DEPTH, WIDTH, Relu)
        .linear(10)
        .build(&mut rng)?;
    let mut net = Network::new(relu);
    println!("\n3. the first remedy: ReLU with He initialization, same SGD");
    let (diagnosis, history) = train_and_diagnose(&mut net, 0.05, &train, &test)?;
    println!("   test accuracy {:.1}%", 100.0 * accuracy(&history));
    print!("{}", table::render(&diagnosis));
    expect(diagnosis.flow_verdict == Verdict::Healthy, "the gradient reaches every layer at step 0")?;
    expect(
        diagnosis.remedies.first() == Some(&Remedy::LowerLearningRate),
        "the diagnosis names the learning rate",
    )?;

    // 4. Follow that advice.
    let mut rng = StdRng::seed_from_u64(0);
    let relu = Sequential::builder(64)
        .init(KaimingNormal::fan_in())
        .repeat(DEPTH, WIDTH, Relu)
        .linear(10)
        .build(&mut rng)?;
    let mut net = Network::new(relu);
    println!("\n4. the learning rate lowered to 0.01");
    let (diagnosis, history) = train_and_diagnose(&mut net, 0.01, &train, &test)?;
    println!("   test accuracy {:.1}%, model: {}", 100.0 * accuracy(&history), diagnosis.verdict);
    expect(diagnosis.verdict == Verdict::Healthy && accuracy(&history) > 0.9, "the network trains")?;

    // 5. Save, load into a fresh network, and check that it predicts the same.
    let weights = out.join("relu.safetensors");
    save_safetensors(net.model(), &weights)?;
    let mut rng = StdRng::seed_from_u64(1);
    let fresh = Sequential::builder(64)
        .init(KaimingNormal::fan_in())
        .repeat(DEPTH, WIDTH, Relu)
        .linear(10)
        .build(&mut rng)?;
    let mut loaded = Network::new(fresh);
    load_safetensors(loaded.model_mut(), &weights)?;
    let x = test.inputs.slice(s![..16, ..]);
    expect(net.predict(x)? == loaded.predict(x)?, "the loaded network predicts what the saved one did")?;
    println!(
        "\n5. saved and loaded {} ({} parameters): same predictions",
        weights.display(),
        net.num_parameters()
    );

    // 6. A PyTorch model's weights under its own module names, and its gradient flow by name.
    pytorch_residual_mlp()?;

    println!("\ndone in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The residual MLP PyTorch saved in the repository's fixtures (`stem`, `blocks = ModuleList`
/// of blocks holding `norm`, `fc1`, `fc2` and a `proj` shortcut, `head`), described with the
/// module's own names, loaded with no key map, and one pass recorded: the hidden layers are the
/// PyTorch modules, numbered through the nested `blocks`.
fn pytorch_residual_mlp() -> Result<()> {
    let weights = Path::new("../../tests/fixtures/torch_res_mlp.safetensors");
    let block = |width| {
        move |b: SequentialBuilder<f64>| {
            b.layer_norm()
                .named("norm")
                .linear(width)
                .named("fc1")
                .activation(Gelu::default())
                .linear(width)
                .named("fc2")
        }
    };
    let model = Sequential::<f64>::builder(4)
        .linear(6)
        .named("stem")
        .activation(Tanh)
        .sequential(|b| {
            b.residual(block(6))
                .flatten_branch()
                .residual_projection(block(8))
                .flatten_branch()
                .rename_child("shortcut", "proj")
        })
        .named("blocks")
        .linear(3)
        .named("head")
        .build_uninit()?;
    let mut net = Network::new(model);
    let report = load_safetensors(net.model_mut(), weights)?;
    println!("\n6. {}: {} tensors loaded under PyTorch's names", weights.display(), report.loaded.len());
    let proj: &Linear<f64> = net.layer("blocks.1.proj")?;
    println!("   blocks.1.proj is {}", proj.describe());

    let x = Array2::from_shape_fn((16, 4), |(i, j)| ((i * 4 + j) % 7) as f64 / 3.0 - 1.0);
    let (result, recorder) = net.with_hook(Recorder::default(), |net| {
        let output = net.forward(x.view(), Mode::Train)?.to_owned();
        net.backward(output.view())
    });
    result?;
    let recording = recorder.recording();
    for layer in recording.hidden_layers(recording.steps()[0]) {
        let norm = layer.grad_norm.unwrap_or(f64::NAN);
        println!(
            "   layer {}  {:<28} {:<10} ‖dL/dh‖ {norm:.3e}",
            layer.index + 1,
            layer.paths.join(","),
            layer.label
        );
    }
    let labels: Vec<String> =
        recording.hidden_layers(recording.steps()[0]).into_iter().map(|l| l.label).collect();
    expect(labels == ["Linear+tanh", "Residual", "Residual", "Linear"], "each PyTorch block is a layer")
}

/// ‖dL/dh‖ at the output of each hidden layer (and the output layer) for one batch, collected by
/// a closure that borrows a local vector: `Network::with_hook` lends it to the network for the
/// pass only, so it needs no `'static`, `Arc` or `Mutex`.
fn gradient_by_layer(net: &mut Network<f32>, train: &Dataset<f32>) -> Result<Vec<(usize, f32)>> {
    let x = train.inputs.slice(s![..64, ..]).to_owned();
    let classes = train.targets.classes().expect("digits have classes")[..64].to_vec();
    let mut norms: Vec<(usize, f32)> = Vec::new();
    let (result, _) = net.with_hook(
        |event: &mut Event<'_, f32>| {
            // The last child of each layer (its activation, or the output Linear) carries the
            // gradient with respect to the layer's output h.
            if let Event::Backward(b) = event
                && let Some(layer) = b.layer_number
                && norms.last().is_none_or(|&(seen, _)| seen != layer)
            {
                norms.push((layer, b.grad_output.iter().map(|g| g * g).sum::<f32>().sqrt()));
            }
        },
        |net| {
            let output = net.forward(x.view(), Mode::Train)?;
            let mut grad = Array2::zeros((0, 0));
            CrossEntropy::new(Reduction::Mean).compute(output, Targets::Classes(&classes), &mut grad)?;
            net.backward(grad.view())
        },
    );
    result?;
    norms.reverse(); // backward runs from the output down
    Ok(norms)
}

/// Trains for 10 epochs (SGD, momentum 0.9, batches of 32) with a recorder attached, prints every
/// 100 steps the gradient reaching the first and the last hidden layer, exports the recording,
/// and diagnoses it.
fn train_and_diagnose(
    net: &mut Network<f32>,
    lr: f64,
    train: &Dataset<f32>,
    test: &Dataset<f32>,
) -> Result<(Diagnosis, History)> {
    let recorder = net.attach_hook(Recorder::default());
    let mut sgd = SgdConfig::new(lr).momentum(0.9).build()?;
    let trainer = Trainer::new(TrainConfig::new(10, 32).progress(Progress::Silent))?;
    let loss = CrossEntropy::new(Reduction::Mean);
    let history = trainer.fit_with(net, &mut sgd, &loss, train, Some(test), |net, step| {
        if step.step % 100 == 0 {
            let recording = net.hook(recorder).expect("attached above").recording();
            let layers = recording.hidden_layers(step.step);
            let first = layers.first().and_then(|l| l.grad_norm).unwrap_or(f64::NAN);
            let last =
                layers.iter().rev().find(|l| !l.is_output).and_then(|l| l.grad_norm).unwrap_or(f64::NAN);
            println!(
                "   step {:>3}  loss {:.3}  ‖dL/dh‖ layer 1 {first:.1e}, layer {DEPTH} {last:.1e}",
                step.step, step.loss
            );
        }
        Ok(())
    })?;
    let recording = net.detach_hook(recorder).expect("attached above").into_recording();
    let name = format!("lr{lr}");
    let mut jsonl =
        MetricsWriter::create(Path::new("target/gradflow-downstream").join(format!("{name}.jsonl")))?;
    jsonl.write_recording(&recording)?;
    jsonl.flush()?;
    let mut tensorboard =
        TensorBoardWriter::create(Path::new("target/gradflow-downstream/tensorboard").join(name))?;
    tensorboard.add_recording(&recording)?;
    tensorboard.flush()?;
    Ok((diagnose(&recording, &Thresholds::default())?, history))
}

fn accuracy(history: &History) -> f64 {
    history.last().and_then(|e| e.test_accuracy).unwrap_or(0.0)
}

/// Fails the program, saying what did not turn out as expected.
fn expect(condition: bool, what: &str) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(Error::config("gradflow-downstream", "expectation", format!("expected: {what}")))
    }
}
