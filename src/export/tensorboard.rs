//! [`TensorBoardWriter`]: scalars and histograms in a TensorBoard event file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::export::Histogram;
use crate::export::event::{SummaryValue, file_version_event, summary_event};
use crate::export::tfrecord::write_record;
use crate::{Error, Result};

/// Default number of histogram buckets.
const DEFAULT_BINS: usize = 30;

/// Distinguishes writers created by one process in the same second.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a TensorBoard event file (`events.out.tfevents.…`) in a log directory: scalars such
/// as the loss or per-layer gradient norms, and histograms such as a layer's gradient values.
/// Point TensorBoard at the directory (`tensorboard --logdir DIR`) to see them.
///
/// Suggested tags: `loss`, `grad_norm/<layer path>` for scalars, `grad/<parameter name>` for
/// histograms; TensorBoard groups tags by the part before the first `/`.
///
/// ```
/// use gradflow::export::{TensorBoardWriter, read_tfrecords};
///
/// let dir = std::env::temp_dir().join(format!("gradflow-tb-doc-{}", std::process::id()));
/// let mut tb = TensorBoardWriter::create(&dir)?;
/// for step in 0..3 {
///     tb.add_scalar("loss", step, 1.0 / (step + 1) as f64)?;
///     tb.add_histogram("grad/0.weight", step, [0.1, -0.2, 0.05, 0.0])?;
/// }
/// tb.flush()?;
/// // One file-version record, then one record per call.
/// assert_eq!(read_tfrecords(tb.path())?.len(), 7);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug)]
pub struct TensorBoardWriter {
    out: BufWriter<File>,
    path: PathBuf,
    bins: usize,
}

impl TensorBoardWriter {
    /// Creates the directory `log_dir` if needed and a new event file in it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory or file.
    pub fn create(log_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = log_dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let counter = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        // TensorBoard finds event files by the `tfevents` in their name; the rest is for people.
        let path =
            dir.join(format!("events.out.tfevents.{seconds:010}.gradflow.{}.{counter}", std::process::id()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        let mut writer = TensorBoardWriter { out: BufWriter::new(file), path, bins: DEFAULT_BINS };
        writer.record(&file_version_event(wall_time()))?;
        Ok(writer)
    }

    /// Sets the number of histogram buckets (default 30).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `bins` is 0.
    pub fn histogram_bins(mut self, bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::config("TensorBoardWriter", "bins", "must be at least 1, got 0"));
        }
        self.bins = bins;
        Ok(self)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `value` under `tag` at `step` (stored as a 32-bit float, as TensorBoard does;
    /// NaN and infinities are kept, and TensorBoard shows them).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty tag or a step beyond `i64::MAX`; [`Error::Io`].
    pub fn add_scalar(&mut self, tag: &str, step: u64, value: f64) -> Result<()> {
        self.add_scalars(step, &[(tag, value)])
    }

    /// Records several scalars at `step` in one event.
    ///
    /// # Errors
    /// As [`TensorBoardWriter::add_scalar`].
    pub fn add_scalars(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        let step = check_step(step)?;
        let values = scalars
            .iter()
            .map(|&(tag, value)| {
                check_tag(tag)?;
                Ok(SummaryValue::Scalar { tag, value: value as f32 })
            })
            .collect::<Result<Vec<_>>>()?;
        self.record(&summary_event(wall_time(), step, &values))
    }

    /// Records the histogram of `values` under `tag` at `step`
    /// (see [`Histogram::from_values`] for the buckets).
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite value, [`Error::InvalidConfig`] for no
    /// values, an empty tag or a step beyond `i64::MAX`; [`Error::Io`].
    pub fn add_histogram(
        &mut self,
        tag: &str,
        step: u64,
        values: impl IntoIterator<Item = f64>,
    ) -> Result<()> {
        let histogram = Histogram::from_values(values, self.bins).map_err(|e| match e {
            Error::NonFinite { detail, .. } => {
                Error::NonFinite { location: format!("histogram `{tag}` at step {step}"), detail }
            }
            other => other,
        })?;
        self.add_histogram_summary(tag, step, &histogram)
    }

    /// Records a histogram computed elsewhere.
    ///
    /// # Errors
    /// As [`TensorBoardWriter::add_scalar`].
    pub fn add_histogram_summary(&mut self, tag: &str, step: u64, histogram: &Histogram) -> Result<()> {
        let step = check_step(step)?;
        check_tag(tag)?;
        let values = [SummaryValue::Histogram { tag, histogram }];
        self.record(&summary_event(wall_time(), step, &values))
    }

    /// Writes a whole recording: the scalar `loss` at every reported step, and for every recorded
    /// step one scalar per layer and statistic, tagged `<statistic>/layer NN` with the layer
    /// number of the diagnosis tables (zero-padded, so that TensorBoard sorts the layers):
    /// `grad_norm/layer 03`, `update_to_weight_ratio/layer 03`, `dead_fraction/layer 03`, … —
    /// one chart per statistic, one line per layer.
    ///
    /// ```
    /// use gradflow::{Network, Sequential, Mode};
    /// use gradflow::activation::Tanh;
    /// use gradflow::export::{TensorBoardWriter, read_tfrecords};
    /// use gradflow::hooks::Recorder;
    /// use gradflow::ndarray::Array2;
    /// use gradflow::rand::SeedableRng;
    ///
    /// let mut rng = gradflow::rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::new(Sequential::<f32>::builder(4).repeat(2, 8, Tanh).linear(1).build(&mut rng)?);
    /// let recorder = net.attach_hook(Recorder::default());
    /// for _ in 0..3 {
    ///     net.forward(Array2::ones((3, 4)).view(), Mode::Train)?;
    ///     net.report_loss(0.5);
    ///     net.backward(Array2::ones((3, 1)).view())?;
    /// }
    /// let dir = std::env::temp_dir().join(format!("gradflow-tb-recording-{}", std::process::id()));
    /// let mut tb = TensorBoardWriter::create(&dir)?;
    /// tb.add_recording(net.hook(recorder).unwrap().recording())?;
    /// tb.flush()?;
    /// // The file version, 3 losses, and one event per step and layer.
    /// assert_eq!(read_tfrecords(tb.path())?.len(), 1 + 3 + 3 * 3);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`TensorBoardWriter::add_scalar`].
    pub fn add_recording(&mut self, recording: &crate::hooks::Recording) -> Result<()> {
        for l in &recording.losses {
            self.add_scalar("loss", l.step, l.loss)?;
        }
        for (step, layers) in super::layer_rows::steps_and_layers(recording) {
            let width = layers.len().to_string().len().max(2);
            for layer in &layers {
                let number = layer.index + 1;
                let stats = super::layer_rows::layer_stats(layer);
                let tags: Vec<String> =
                    stats.iter().map(|(name, _)| format!("{name}/layer {number:0width$}")).collect();
                let scalars: Vec<(&str, f64)> =
                    tags.iter().zip(&stats).map(|(tag, &(_, value))| (tag.as_str(), value)).collect();
                if !scalars.is_empty() {
                    self.add_scalars(step, &scalars)?;
                }
            }
        }
        Ok(())
    }

    /// Writes buffered events to the file (TensorBoard reads what has been flushed).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io { path: self.path.clone(), source })
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        write_record(&mut self.out, data).map_err(|source| Error::Io { path: self.path.clone(), source })
    }
}

impl Drop for TensorBoardWriter {
    fn drop(&mut self) {
        // Best effort; call `flush` to see errors.
        let _ = self.out.flush();
    }
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn check_step(step: u64) -> Result<i64> {
    i64::try_from(step)
        .map_err(|_| Error::config("TensorBoardWriter", "step", format!("{step} exceeds i64::MAX")))
}

fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() {
        return Err(Error::config("TensorBoardWriter", "tag", "must not be empty"));
    }
    Ok(())
}
