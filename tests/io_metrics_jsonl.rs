//! JSON lines metrics: one object per line, readable line by line as JSON.

use gradflow::Error;
use gradflow::export::MetricsWriter;
use serde_json::{Value, json};

fn lines(bytes: Vec<u8>) -> Vec<Value> {
    String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn scalars_layers_and_records_are_one_object_per_line() {
    #[derive(serde::Serialize)]
    struct Epoch {
        step: u64,
        epoch: u32,
        accuracy: f64,
    }
    let mut out = MetricsWriter::new(Vec::new(), "memory");
    out.write(3, &[("loss", 0.5), ("lr", 1e-3)]).unwrap();
    out.write_layer(3, "2.branch.0", &[("grad_norm", 0.25), ("grad_rms", 0.0625)]).unwrap();
    out.write_record(&Epoch { step: 3, epoch: 1, accuracy: 0.875 }).unwrap();
    assert_eq!(out.lines_written(), 4);
    assert_eq!(
        lines(out.into_inner().unwrap()),
        [
            json!({"step": 3, "tag": "loss", "value": 0.5}),
            json!({"step": 3, "tag": "lr", "value": 0.001}),
            json!({"step": 3, "layer": "2.branch.0", "grad_norm": 0.25, "grad_rms": 0.0625}),
            json!({"step": 3, "epoch": 1, "accuracy": 0.875}),
        ]
    );
}

#[test]
fn non_finite_values_become_null() {
    let mut out = MetricsWriter::new(Vec::new(), "memory");
    out.write(0, &[("loss", f64::NAN)]).unwrap();
    out.write_layer(0, "0", &[("grad_norm", f64::INFINITY)]).unwrap();
    let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
    assert_eq!(
        text,
        "{\"step\":0,\"tag\":\"loss\",\"value\":null}\n{\"step\":0,\"layer\":\"0\",\"grad_norm\":null}\n"
    );
}

#[test]
fn a_file_can_be_created_and_appended_to() {
    let path = std::env::temp_dir().join(format!("gradflow-metrics-{}.jsonl", std::process::id()));
    let mut out = MetricsWriter::create(&path).unwrap();
    out.write(0, &[("loss", 1.0)]).unwrap();
    out.flush().unwrap();
    drop(out);
    let mut out = MetricsWriter::append(&path).unwrap();
    out.write(1, &[("loss", 0.5)]).unwrap();
    drop(out.into_inner().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        lines(text.into_bytes()),
        [json!({"step":0,"tag":"loss","value":1.0}), json!({"step":1,"tag":"loss","value":0.5})]
    );

    // A missing directory is created; one that cannot be (its parent is a file) is named.
    let blocker = std::env::temp_dir().join(format!("gradflow-metrics-blocker-{}", std::process::id()));
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let below_a_file = blocker.join("m.jsonl");
    assert!(matches!(MetricsWriter::create(&below_a_file), Err(Error::Io { path, .. }) if path == blocker));
    std::fs::remove_file(&blocker).unwrap();
    let new_dir = std::env::temp_dir().join(format!("gradflow-metrics-dir-{}", std::process::id()));
    MetricsWriter::create(new_dir.join("m.jsonl")).unwrap().flush().unwrap();
    assert!(new_dir.join("m.jsonl").is_file());
    std::fs::remove_dir_all(&new_dir).unwrap();
}

#[test]
fn records_that_are_not_objects_and_clashing_names_are_refused() {
    let mut out = MetricsWriter::new(Vec::new(), "memory");
    assert!(matches!(out.write_record(&[1, 2, 3]), Err(Error::InvalidConfig { field: "record", .. })));
    assert!(matches!(out.write_record(&1.5), Err(Error::InvalidConfig { field: "record", .. })));
    let err = out.write_layer(0, "1", &[("step", 2.0)]).unwrap_err().to_string();
    assert!(err.contains("`step`"), "{err}");
    let err = out.write_layer(0, "1", &[("a", 2.0), ("a", 3.0)]).unwrap_err().to_string();
    assert!(err.contains("`a`"), "{err}");
    assert_eq!(out.lines_written(), 0);
    assert!(out.into_inner().unwrap().is_empty());
}
