//! [`MetricsWriter`]: per-step metrics as JSON lines, one JSON object per line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

/// Writes metrics as [JSON lines](https://jsonlines.org/): one JSON object per line, which
/// pandas reads in one call and every plotting tool can consume.
///
/// Two shapes of line are written, and both can go to the same file:
/// - [`MetricsWriter::write`] — one line per scalar, in long ("tidy") form:
///   `{"step":12,"tag":"loss","value":0.31}`;
/// - [`MetricsWriter::write_layer`] — one line per layer with named statistics:
///   `{"step":12,"layer":"3","grad_norm":0.0021,"grad_rms":0.0004}`;
/// - [`MetricsWriter::write_record`] — any serializable struct or map, as it serializes.
///
/// A NaN or infinite value is written as `null` (JSON has no NaN), which pandas reads as NaN.
///
/// Reading it back in Python:
/// ```python
/// import pandas as pd
/// # dtype: keep layer paths such as "0" and "2" as text (pandas would make them numbers)
/// df = pd.read_json("metrics.jsonl", lines=True, dtype={"layer": str})
/// df[df.tag == "loss"].plot(x="step", y="value")                     # scalars
/// df.pivot_table(index="step", columns="layer", values="grad_norm")  # one column per layer
/// ```
///
/// ```
/// use gradflow::export::MetricsWriter;
///
/// let mut out = MetricsWriter::new(Vec::new(), "memory");
/// out.write(0, &[("loss", 2.5), ("lr", 0.1)])?;
/// out.write_layer(0, "0", &[("grad_norm", 0.125)])?;
/// let text = String::from_utf8(out.into_inner()?).unwrap();
/// assert_eq!(
///     text,
///     "{\"step\":0,\"tag\":\"loss\",\"value\":2.5}\n\
///      {\"step\":0,\"tag\":\"lr\",\"value\":0.1}\n\
///      {\"step\":0,\"layer\":\"0\",\"grad_norm\":0.125}\n"
/// );
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug)]
pub struct MetricsWriter<W: Write = BufWriter<File>> {
    out: W,
    name: String,
    lines: u64,
}

impl MetricsWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`, and its parent directory if it is missing.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or file.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = File::create(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Ok(MetricsWriter::new(BufWriter::new(file), &path.display().to_string()))
    }

    /// Opens the file at `path` for appending (creating it if needed), e.g. to continue a run.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn append(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Ok(MetricsWriter::new(BufWriter::new(file), &path.display().to_string()))
    }
}

impl<W: Write> MetricsWriter<W> {
    /// Writes to any writer; `name` identifies it in errors.
    pub fn new(out: W, name: &str) -> Self {
        MetricsWriter { out, name: name.to_string(), lines: 0 }
    }

    /// Writes one line `{"step":…,"tag":…,"value":…}` per scalar.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn write(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        #[derive(Serialize)]
        struct Line<'a> {
            step: u64,
            tag: &'a str,
            value: f64,
        }
        for &(tag, value) in scalars {
            self.line(&Line { step, tag, value })?;
        }
        Ok(())
    }

    /// Writes one line `{"step":…,"layer":…,"<stat>":…,…}` with the statistics of one layer.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a statistic is called `step` or `layer` or appears twice;
    /// [`Error::Io`] when writing fails.
    pub fn write_layer(&mut self, step: u64, layer: &str, stats: &[(&str, f64)]) -> Result<()> {
        for (i, &(name, _)) in stats.iter().enumerate() {
            if name == "step" || name == "layer" || stats[..i].iter().any(|&(earlier, _)| earlier == name) {
                return Err(Error::config(
                    "MetricsWriter",
                    "stats",
                    format!("the statistic `{name}` clashes with `step`, `layer` or an earlier statistic"),
                ));
            }
        }
        self.line(&LayerLine { step, layer, stats })
    }

    /// Writes `record` (a struct or map) as one line, its fields in their serialization order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when it does not serialize to a JSON object; [`Error::Io`] when
    /// writing fails.
    pub fn write_record<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::config("MetricsWriter", "record", format!("cannot be serialized: {e}")))?;
        if bytes.first() != Some(&b'{') {
            return Err(Error::config(
                "MetricsWriter",
                "record",
                format!(
                    "must serialize to a JSON object (one per line), got {}",
                    String::from_utf8_lossy(&bytes)
                ),
            ));
        }
        self.out.write_all(&bytes).map_err(|e| self.io_error(e))?;
        self.out.write_all(b"\n").map_err(|e| self.io_error(e))?;
        self.lines += 1;
        Ok(())
    }

    /// Writes a whole recording: one `{"step":…,"tag":"loss","value":…}` line per reported loss,
    /// then, for every recorded step, one line per layer (numbered from 1 at the input, as in the
    /// diagnosis tables) with the statistics that were recorded:
    /// `{"step":12,"layer":3,"label":"Linear+tanh","paths":"4,5","grad_norm":…,"weight_grad_norm":…,
    /// "grad_to_weight_ratio":…,"update_to_weight_ratio":…,"activation_std":…,"saturated_fraction":…,
    /// "dead_fraction":…,"mean_derivative":…}`. In pandas,
    /// `df[df.layer.notna()].pivot_table(index="step", columns="layer", values="grad_norm")` gives
    /// one column per layer.
    ///
    /// ```
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::export::MetricsWriter;
    /// use gradflow::hooks::Recorder;
    /// use gradflow::ndarray::Array2;
    /// use gradflow::rand::SeedableRng;
    ///
    /// let mut rng = gradflow::rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::new(Sequential::<f32>::builder(4).repeat(2, 8, Tanh).linear(1).build(&mut rng)?);
    /// let recorder = net.attach_hook(Recorder::default());
    /// net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
    /// net.report_loss(0.5);
    /// net.backward(Array2::ones((3, 1)).view())?;
    ///
    /// let mut out = MetricsWriter::new(Vec::new(), "memory");
    /// out.write_recording(net.hook(recorder).unwrap().recording())?;
    /// let text = String::from_utf8(out.into_inner()?).unwrap();
    /// let lines: Vec<&str> = text.lines().collect();
    /// assert_eq!(lines.len(), 1 + 3); // the loss, then layers 1, 2 and the output layer
    /// assert_eq!(lines[0], r#"{"step":0,"tag":"loss","value":0.5}"#);
    /// assert!(lines[1].starts_with(r#"{"step":0,"layer":1,"label":"Linear+tanh","paths":"0,1","grad_norm":"#));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn write_recording(&mut self, recording: &crate::hooks::Recording) -> Result<()> {
        for l in &recording.losses {
            self.write(l.step, &[("loss", l.loss)])?;
        }
        for (step, layers) in super::layer_rows::steps_and_layers(recording) {
            for layer in &layers {
                let paths = layer.paths.join(",");
                let stats = super::layer_rows::layer_stats(layer);
                self.line(&RecordingLine {
                    step,
                    layer: layer.index + 1,
                    label: &layer.label,
                    paths: &paths,
                    stats: &stats,
                })?;
            }
        }
        Ok(())
    }

    /// Number of lines written so far.
    pub fn lines_written(&self) -> u64 {
        self.lines
    }

    /// Flushes buffered lines to the file.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.io_error(e))
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    fn line<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        // serde_json writes NaN and infinities as `null`.
        serde_json::to_writer(&mut self.out, value).map_err(|e| self.io_error(e.into()))?;
        self.out.write_all(b"\n").map_err(|e| self.io_error(e))?;
        self.lines += 1;
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.name.clone().into(), source }
    }
}

/// `{"step":…,"layer":<number>,"label":…,"paths":…,"<stat>":…,…}`, in that order.
struct RecordingLine<'a> {
    step: u64,
    layer: usize,
    label: &'a str,
    paths: &'a str,
    stats: &'a [(&'a str, f64)],
}

impl Serialize for RecordingLine<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4 + self.stats.len()))?;
        map.serialize_entry("step", &self.step)?;
        map.serialize_entry("layer", &self.layer)?;
        map.serialize_entry("label", self.label)?;
        map.serialize_entry("paths", self.paths)?;
        for (name, value) in self.stats {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `{"step":…,"layer":…,"<stat>":…,…}`, in that order.
struct LayerLine<'a> {
    step: u64,
    layer: &'a str,
    stats: &'a [(&'a str, f64)],
}

impl Serialize for LayerLine<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2 + self.stats.len()))?;
        map.serialize_entry("step", &self.step)?;
        map.serialize_entry("layer", self.layer)?;
        for (name, value) in self.stats {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
