//! Reports: the terminal table, JSON with its schema, and CSV.

mod diagnose_support;

use approx::assert_relative_eq;
use diagnose_support::*;
use gradflow::Error;
use gradflow::diagnose::{Thresholds, diagnose};
use gradflow::hooks::{RecorderConfig, Recording};
use gradflow::report::table::{TableOptions, render, render_with};
use gradflow::report::{csv, json};
use serde_json::Value;

fn sigmoid_recording() -> Recording {
    record_one_step(sigmoid_glorot(6, 16, 1), RecorderConfig::all(), 3)
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gradflow-reports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_table_has_one_row_per_layer_a_log_bar_and_the_remedies() {
    let recording = record_one_step(sigmoid_glorot(12, 16, 1), RecorderConfig::all(), 3);
    let d = diagnose(&recording, &Thresholds::default()).unwrap();
    let text = render_with(&d, &TableOptions { bar_width: 20, ascii: true });
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("gradient flow at step 0 (13 layers"), "{text}");
    assert!(lines[1].contains("‖dL/dh‖") && lines[1].contains("sat%") && lines[1].contains("verdict"));
    let rows = &lines[2..15];
    for (i, row) in rows.iter().enumerate() {
        assert!(row.trim_start().starts_with(&format!("{} ", i + 1)), "{row}");
    }
    assert!(rows[12].contains("Linear ") && rows[12].ends_with("(output)"), "{}", rows[12]);
    // ‖dL/dh‖ grows from layer 1 to layer 12, and so do the bars (log scale, 20 wide).
    let bar = |row: &str| row.matches('#').count();
    let bars: Vec<usize> = rows[..12].iter().map(|r| bar(r)).collect();
    assert!(bars.windows(2).all(|w| w[0] <= w[1]), "{bars:?}");
    assert!(bars[0] >= 1 && bars[11] <= 20 && bars[0] < bars[11], "{bars:?}");
    assert!(rows[0].contains("vanishing"), "{}", rows[0]);
    assert!(text.contains("\nmodel: VANISHING\n"));
    assert!(text.contains("remedies:\n  1. switch to ReLU-family activations"), "{text}");
    // The default draws blocks.
    assert!(render(&d).contains('█'));
}

#[test]
fn json_round_trips_through_a_file_with_its_schema() {
    let recording = sigmoid_recording();
    let text = json::to_string(&recording).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema"], json::SCHEMA_VERSION);
    assert_eq!(value["float"], "f32");
    assert_eq!(value["layers"][1]["activation"]["name"], "sigmoid");
    assert_eq!(value["layers"][0]["steps"][0]["params"][0]["name"], "weight");
    let path = temp_path("recording.json");
    json::write_file(&recording, &path).unwrap();
    let back = json::read_file(&path).unwrap();
    assert_eq!(back.layers.len(), recording.layers.len());
    // serde_json's default float parser may differ from the written value in the last bit.
    assert_relative_eq!(back, recording, epsilon = 0.0, max_relative = 1e-15);
    // The diagnosis of the recording read back is the same.
    let t = Thresholds::default();
    assert_eq!(diagnose(&back, &t).unwrap().verdict, diagnose(&recording, &t).unwrap().verdict);
}

#[test]
fn json_errors_name_the_file_and_the_problem() {
    let missing = temp_path("no-such-file.json");
    let err = json::read_file(&missing).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if *path == missing), "{err}");

    let other = temp_path("other-schema.json");
    std::fs::write(&other, r#"{"schema": "gradflow.recording/2", "layers": []}"#).unwrap();
    let err = json::read_file(&other).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("other-schema.json") && text.contains("gradflow.recording/2"), "{text}");

    let err = json::from_str(r#"{"layers": []}"#).unwrap_err();
    assert!(err.to_string().contains("no \"schema\""), "{err}");
    let err = json::from_str(r#"{"schema": "gradflow.recording/1", "layers": 3}"#).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err}");
    // A missing directory is created; one that cannot be (its parent is a file) is named.
    let made = temp_path("new-dir/x.json");
    json::write_file(&Recording::default(), &made).unwrap();
    assert!(json::read_file(&made).unwrap().layers.is_empty());
    let blocker = temp_path("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let err = json::write_file(&Recording::default(), blocker.join("x.json")).unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn the_diagnosis_exports_as_json_with_its_own_schema() {
    let d = diagnose(&sigmoid_recording(), &Thresholds::default()).unwrap();
    let value: Value = serde_json::from_str(&json::diagnosis_to_string(&d).unwrap()).unwrap();
    assert_eq!(value["schema"], json::DIAGNOSIS_SCHEMA_VERSION);
    assert_eq!(value["verdict"], "Vanishing");
    assert_eq!(value["remedies"][0], "RectifierActivations");
    assert_eq!(value["layers"].as_array().unwrap().len(), 7);
}

#[test]
fn the_long_csv_has_one_row_per_step_layer_and_quantity() {
    let recording = sigmoid_recording();
    let text = csv::to_string(&recording);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(csv::HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 6));
    // Layer 0 (Linear), counted by hand: grad_output (5 statistics), activation
    // mean/std/rms/non_finite_count (4), weight and bias: grad (5) + value_norm +
    // grad_to_value_ratio = 7 each. No grad_input (not requested), no update yet.
    let layer0 = rows.iter().filter(|r| r[1] == "0").count();
    assert_eq!(layer0, 5 + 4 + 2 * 7);
    // The sigmoid layer adds its grad_input (5) and saturation share, and has no parameters.
    let layer1: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "1").collect();
    assert_eq!(layer1.len(), 5 + 5 + 4 + 1);
    assert!(layer1.iter().any(|r| r[4] == "activation.saturated_fraction"));
    let norm_row = rows.iter().find(|r| r[1] == "0" && r[4] == "grad_output.l2_norm").unwrap();
    assert_eq!(norm_row[..4], ["0", "0", "Linear", "0"]);
    let written: f64 = norm_row[5].parse().unwrap();
    let recorded = recording.layer("0").unwrap().at_step(0).unwrap().grad_output.unwrap().l2_norm;
    assert_eq!(written, recorded, "shortest round-trip form");
}

#[test]
fn the_hidden_layer_csv_is_a_wide_table_with_empty_fields_for_missing_values() {
    let recording = sigmoid_recording();
    let text = csv::hidden_layers_to_string(&recording);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], csv::HIDDEN_LAYERS_HEADER);
    assert_eq!(lines.len(), 1 + 7);
    let columns = csv::HIDDEN_LAYERS_HEADER.split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == columns));
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[..4], ["0", "0", "Linear+sigmoid", "false"]);
    let output: Vec<&str> = lines[7].split(',').collect();
    assert_eq!(output[2..4], ["Linear", "true"]);
    assert_eq!(output[9], "", "no saturation share for a Linear");
    let path = temp_path("hidden.csv");
    csv::write_hidden_layers_file(&recording, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}
