//! Recordings in JSON lines (`gradflow.recording.jsonl`): PyTorch runs recorded with the Python
//! module `gradflow_torch` are diagnosed as gradflow diagnoses its own runs; gradflow's own
//! recordings round-trip; bad files are refused with an error naming the file, line and field;
//! the `gradflow` binary prints what the API says.
//!
//! The fixtures `tests/fixtures/torch_run_{plain,residual}.jsonl` come from
//! `python python/examples/record_fixture.py` (PyTorch 2.15 CPU): the 20-layer width-64 tanh
//! MLP of `examples/resnet_vs_plain.rs` and its residual twin (blocks x + W_b·tanh(W_a·x)),
//! PyTorch's default init, SGD lr 0.05, batch 32, 150 steps on the 8×8 digits, every 50th step
//! recorded (enough steps for the loss trend, smoothed over ten stretches, to rise above
//! minibatch noise: over 40 steps gradflow's own residual run was sometimes judged unstable).

use std::path::{Path, PathBuf};
use std::process::Command;

use gradflow::activation::{Relu, Tanh};
use gradflow::data::digits_split;
use gradflow::diagnose::{Diagnosis, Verdict, diagnose};
use gradflow::export::{
    parse_recording_jsonl, read_recording_jsonl, recording_to_jsonl, write_recording_jsonl,
};
use gradflow::hooks::{Recorder, RecorderConfig, Recording};
use gradflow::layers::ImageShape;
use gradflow::loss::{CrossEntropy, Loss, Reduction, Targets};
use gradflow::optim::SgdConfig;
use gradflow::report::table;
use gradflow::{Error, Mode, Network, Sequential};
use ndarray::s;
use rand::SeedableRng;

/// The settings of the fixtures (see python/examples/record_fixture.py).
const DEPTH: usize = 20;
const STEPS: usize = 150;
const EVERY: u64 = 50;
const BATCH: usize = 32;
const LR: f64 = 0.05;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("torch_run_{name}.jsonl"))
}

/// gradflow's own run of the fixture's network and training: same depth, width, activation,
/// init scheme, data, optimizer, batch size, steps and recording interval (not the same random
/// draws).
fn gradflow_run(residual: bool) -> Recording {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let builder = Sequential::<f32>::builder(64);
    let builder =
        if residual { builder.repeat_residual(DEPTH, 64, Tanh) } else { builder.repeat(DEPTH, 64, Tanh) };
    let mut net = Network::new(builder.linear(10).build(&mut rng).unwrap());
    let recorder = net.attach_hook(Recorder::new(RecorderConfig::all().every_n_steps(EVERY)).unwrap());
    let (train, _) = digits_split::<f32>(0.25, 0).unwrap();
    let classes = train.targets.classes().unwrap();
    let mut sgd = SgdConfig::new(LR).build::<f32>().unwrap();
    let loss = CrossEntropy::new(Reduction::Mean);
    for step in 0..STEPS {
        let start = (step * BATCH) % (classes.len() - BATCH);
        let rows = start..start + BATCH;
        net.zero_grad();
        let output = net.forward(train.inputs.slice(s![rows.clone(), ..]), Mode::Train).unwrap();
        let (value, grad) = loss.value_and_grad(output, Targets::Classes(&classes[rows])).unwrap();
        net.report_loss(value.into());
        net.backward(grad.view()).unwrap();
        net.step(&mut sgd).unwrap();
    }
    net.detach_hook(recorder).unwrap().into_recording()
}

fn diagnosis(recording: &Recording) -> Diagnosis {
    diagnose(recording, &Default::default()).unwrap()
}

#[test]
fn pytorch_fixtures_get_the_verdicts_of_gradflows_own_runs() {
    for (name, residual) in [("plain", false), ("residual", true)] {
        let torch = read_recording_jsonl(fixture(name)).unwrap();
        let own = gradflow_run(residual);
        let (t, g) = (diagnosis(&torch), diagnosis(&own));
        let context = format!("{name}: torch {:?} / gradflow {:?}", t.evidence, g.evidence);
        assert_eq!(t.flow_verdict, g.flow_verdict, "{context}");
        assert_eq!(t.verdict, g.verdict, "{context}");
        assert_eq!(t.remedies, g.remedies, "{context}");
        assert_eq!(
            t.training.as_ref().map(|d| d.verdict),
            g.training.as_ref().map(|d| d.verdict),
            "{context}"
        );
        // The same layers: 20 hidden layers and the output layer, numbered alike.
        assert_eq!(t.layers.len(), g.layers.len(), "{name}");
        assert_eq!(t.layers.len(), DEPTH + 1, "{name}");
        assert_eq!(torch.steps(), own.steps(), "{name}");
        assert_eq!(torch.losses.len(), own.losses.len(), "{name}");
        let ratio = t.gradient_ratio.unwrap();
        if residual {
            // The claim of examples/resnet_vs_plain.rs (and tests/resnet_vs_plain.rs).
            assert_eq!(t.flow_verdict, Verdict::Healthy, "{context}");
            assert!((0.1..=10.0).contains(&ratio), "residual first/last ‖dL/dh‖ = {ratio:e}");
            // A residual block is one hidden layer, its Linear+tanh+Linear nested inside.
            assert!(t.layers[0].layer.paths == ["0"], "{:?}", t.layers[0].layer.paths);
        } else {
            assert_eq!(t.flow_verdict, Verdict::Vanishing, "{context}");
            assert!(ratio <= 1e-2, "plain first/last ‖dL/dh‖ = {ratio:e}");
            let labels = |d: &Diagnosis| d.layers.iter().map(|l| l.layer.label.clone()).collect::<Vec<_>>();
            assert_eq!(labels(&t), labels(&g));
            // The activations are seen as tanh units that pass the gradient on (mean |f'| near 1
            // at initialization), as in gradflow's run.
            let derivative = t.layers[0].layer.mean_derivative.unwrap();
            assert!(derivative > 0.5, "mean tanh' {derivative}");
        }
        // Training moved the weights: update ratios were recorded for every step but the last.
        let first = t.layers[0].layer.update_to_weight_ratio;
        assert!(first.is_some_and(|r| r > 0.0), "{name}: update ratio {first:?}");
    }
}

#[test]
fn gradflow_recordings_round_trip_through_json_lines() {
    let recording = gradflow_run(true);
    let text = recording_to_jsonl(&recording).unwrap();
    assert_eq!(parse_recording_jsonl(&text, "memory").unwrap(), recording);
    let dir = std::env::temp_dir().join(format!("gradflow-jsonl-{}", std::process::id()));
    let path = dir.join("nested/run.jsonl");
    write_recording_jsonl(&recording, &path).unwrap();
    assert_eq!(read_recording_jsonl(&path).unwrap(), recording);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A conv net's recording carries per-channel activation statistics (`ChannelStats`): they
/// round-trip too.
#[test]
fn conv_recordings_round_trip_with_their_channel_statistics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let model = Sequential::<f32>::image_builder(ImageShape::new(1, 8, 8))
        .conv2d_with(4, 3, |c| c.padding(1))
        .activation(Relu)
        .conv2d_with(4, 3, |c| c.padding(1))
        .activation(Tanh)
        .flatten()
        .linear(10)
        .build(&mut rng)
        .unwrap();
    let mut net = Network::new(model);
    let recorder = net.attach_hook(Recorder::new(RecorderConfig::all()).unwrap());
    let (train, _) = digits_split::<f32>(0.25, 0).unwrap();
    let classes = train.targets.classes().unwrap();
    let output = net.forward(train.inputs.slice(s![..16, ..]), Mode::Train).unwrap();
    let (_, grad) =
        CrossEntropy::new(Reduction::Mean).value_and_grad(output, Targets::Classes(&classes[..16])).unwrap();
    net.backward(grad.view()).unwrap();
    let recording = net.detach_hook(recorder).unwrap().into_recording();
    let with_channels = recording
        .layers
        .iter()
        .filter(|l| l.steps.iter().any(|s| s.activation.as_ref().is_some_and(|a| a.channels.is_some())))
        .count();
    assert_eq!(with_channels, 2, "both activations over images have channel statistics");
    let text = recording_to_jsonl(&recording).unwrap();
    assert!(text.contains("\"channels\""));
    assert_eq!(parse_recording_jsonl(&text, "memory").unwrap(), recording);
}

/// The fixture's text with `edit` applied to line `line` (from 1).
fn edited(text: &str, line: usize, edit: impl Fn(&str) -> String) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[line - 1] = edit(&lines[line - 1]);
    lines.join("\n") + "\n"
}

#[test]
fn bad_files_are_refused_naming_file_line_and_field() {
    let text = std::fs::read_to_string(fixture("plain")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let step_line = lines.iter().position(|l| l.contains("\"type\":\"step\"")).unwrap() + 1;
    let layer_line = lines.iter().position(|l| l.contains("\"type\":\"layer\"")).unwrap() + 1;
    let cases: Vec<(String, String, &str)> = vec![
        (
            edited(&text, 1, |l| l.replace("\"schema_version\":1", "\"schema_version\":2")),
            "line 1".into(),
            "field `schema_version`: is 2",
        ),
        (
            edited(&text, 1, |l| l.replace("gradflow.recording.jsonl", "something.else")),
            "line 1".into(),
            "field `schema`",
        ),
        (lines[1..].join("\n"), "line 1".into(), "field `schema`: missing"),
        (
            edited(&text, step_line, |l| l[..l.len() / 2].to_string()),
            format!("line {step_line}"),
            "truncated",
        ),
        (
            edited(&text, step_line, |l| l.replacen("\"l2_norm\":", "\"l2_normx\":", 1)),
            format!("line {step_line}"),
            "field `grad_output.l2_norm`: missing",
        ),
        (
            edited(&text, step_line, |l| {
                let at = l.find("\"l2_norm\":").unwrap() + "\"l2_norm\":".len();
                let end = at + l[at..].find(',').unwrap();
                format!("{}NaN{}", &l[..at], &l[end..])
            }),
            format!("line {step_line}"),
            "NaN and Infinity are not JSON numbers",
        ),
        (
            edited(&text, step_line, |l| l.replacen("\"count\":", "\"count\":-", 1)),
            format!("line {step_line}"),
            "field `grad_output.count`: expected a whole number",
        ),
        (
            edited(&text, step_line, |l| l.replacen("\"mean_derivative\":", "\"mean_derivativ\":", 1)),
            format!("line {step_line}"),
            "field `activation.mean_derivative`: missing",
        ),
        (
            edited(&text, step_line, |l| l.replacen("\"path\":\"", "\"path\":\"nowhere", 1)),
            format!("line {step_line}"),
            "field `path`: no `layer` line",
        ),
        (
            edited(&text, layer_line, |l| l.replacen("\"depth\":0", "\"depth\":1", 1)),
            format!("line {layer_line}"),
            "field `depth`",
        ),
        (
            edited(&text, layer_line, |l| l.replacen("\"layer\"", "\"lair\"", 1)),
            format!("line {layer_line}"),
            "unknown line type `lair`",
        ),
        (format!("{text}{}\n", lines[step_line - 1]), format!("line {}", lines.len() + 1), "appears twice"),
        (format!("{text}[1, 2]\n"), format!("line {}", lines.len() + 1), "expected a JSON object"),
        (String::new(), String::new(), "empty"),
    ];
    for (bad, line, field) in cases {
        let err = parse_recording_jsonl(&bad, "run.jsonl").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Data { .. }), "{message}");
        assert!(message.starts_with("run.jsonl: "), "{message}");
        assert!(
            message.contains(&line) && message.contains(field),
            "expected {line:?} and {field:?} in: {message}"
        );
    }
    let missing = read_recording_jsonl("no/such/run.jsonl").unwrap_err();
    assert!(
        matches!(&missing, Error::Io { .. }) && missing.to_string().contains("no/such/run.jsonl"),
        "{missing}"
    );
}

#[test]
fn a_file_cut_anywhere_is_read_or_refused_never_half_loaded() {
    let text = std::fs::read_to_string(fixture("residual")).unwrap();
    let full = parse_recording_jsonl(&text, "full").unwrap();
    for cut in (0..text.len()).step_by(997).filter(|&c| text.is_char_boundary(c)) {
        match parse_recording_jsonl(&text[..cut], "cut") {
            // A cut at the end of a line leaves a shorter, valid recording: a prefix of the run.
            Ok(recording) => {
                assert!(text[..cut].is_empty() || text[..cut].ends_with('\n'), "cut at {cut} was accepted");
                assert!(recording.layers.len() <= full.layers.len());
            }
            Err(e) => assert!(e.to_string().starts_with("cut: "), "{e}"),
        }
    }
}

fn gradflow_binary(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gradflow")).args(args).output().unwrap()
}

#[test]
fn the_binary_prints_the_apis_diagnosis_and_writes_the_reports() {
    let path = fixture("plain");
    let out = gradflow_binary(&["diagnose", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = table::render(&diagnosis(&read_recording_jsonl(&path).unwrap()));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let dir = std::env::temp_dir().join(format!("gradflow-cli-report-{}", std::process::id()));
    let out = gradflow_binary(&["report", path.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("diagnosis.txt")).unwrap(), expected);
    for file in ["diagnosis.json", "recording.json", "recording.csv", "hidden_layers.csv"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    #[cfg(feature = "plots")]
    for file in ["grad_norm_by_layer.svg", "grad_norm_heatmap.svg", "loss_by_step.svg"] {
        assert!(std::fs::read_to_string(dir.join(file)).unwrap().starts_with("<svg"), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // A bad file: exit status 1, the file and line on stderr, nothing on stdout.
    let bad = std::env::temp_dir().join(format!("gradflow-cli-bad-{}.jsonl", std::process::id()));
    std::fs::write(&bad, "{\"schema\":\"gradflow.recording.jsonl\",\"schema_version\":7}\n").unwrap();
    let out = gradflow_binary(&["diagnose", bad.to_str().unwrap()]);
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(bad.to_str().unwrap()) && stderr.contains("line 1: field `schema_version`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // A command line it does not understand: exit status 2 and the usage.
    let out = gradflow_binary(&["diagnose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("Usage:"));
}

/// A recording of a PyTorch model with named modules, written by hand: the layers are grouped in
/// the order they ran (not alphabetically), a block's children count toward the block, and the
/// modules inside `layers` (an `nn.Sequential` the recorder does not record) are layers of their own.
#[test]
fn named_modules_are_grouped_in_the_order_they_ran() {
    let stats = |norm: f64| {
        format!(r#"{{"count":4,"l2_norm":{norm},"mean":0.0,"std":0.1,"max_abs":0.2,"non_finite_count":0}}"#)
    };
    let tanh = r#"{"name":"tanh","family":"Saturating","max_derivative":1.0}"#;
    let layers = [
        ("fc1", "Linear", "null"),
        ("act1", "tanh", tanh),
        ("layers.0", "Linear", "null"),
        ("layers.1", "tanh", tanh),
        ("block.fc", "Linear", "null"),
        ("block.act", "tanh", tanh),
        ("block", "Block", "null"),
        ("head", "Linear", "null"),
    ];
    let mut text = String::from(
        r#"{"schema":"gradflow.recording.jsonl","schema_version":1,"float":"f32","config":{"every_n_steps":1,"activations":false,"parameters":false,"updates":false,"saturation_level":0.05}}"#,
    );
    for (i, (path, kind, activation)) in layers.iter().enumerate() {
        let depth = path.matches('.').count();
        let container = *path == "block";
        text += &format!(
            "\n{{\"type\":\"layer\",\"path\":\"{path}\",\"kind\":\"{kind}\",\"description\":\"{kind}\",\"layer_number\":null,\
             \"depth\":{depth},\"is_container\":{container},\"activation\":{activation}}}"
        );
        text += &format!(
            "\n{{\"type\":\"step\",\"path\":\"{path}\",\"step\":0,\"grad_output\":{},\"grad_input\":null,\"activation\":null,\"params\":[]}}",
            stats(1.0 + i as f64)
        );
    }
    let recording = parse_recording_jsonl(&text, "named.jsonl").unwrap();
    let hidden = recording.hidden_layers(0);
    let labels: Vec<&str> = hidden.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["Linear+tanh", "Linear+tanh", "Block", "Linear"]);
    let paths: Vec<Vec<String>> = hidden.iter().map(|l| l.paths.clone()).collect();
    assert_eq!(paths, [vec!["fc1", "act1"], vec!["layers.0", "layers.1"], vec!["block"], vec!["head"]]);
    // ‖dL/dh‖ of a group is its last member's: act1 (the 2nd line), layers.1 (4th), block (7th).
    let norms: Vec<f64> = hidden.iter().map(|l| l.grad_norm.unwrap()).collect();
    assert_eq!(norms, [2.0, 4.0, 7.0, 8.0]);
    assert_eq!(hidden[2].activation.as_deref(), Some("tanh"));
}
