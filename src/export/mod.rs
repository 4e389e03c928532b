//! Exporting metrics for other tools: JSON lines for pandas and plotting, and TensorBoard
//! event files (scalars and histograms).
//!
//! Both writers take a whole [`crate::hooks::Recording`]
//! ([`MetricsWriter::write_recording`], [`TensorBoardWriter::add_recording`]: the loss of every
//! step, and every layer's statistics at every recorded step, numbered as the diagnosis numbers
//! layers), or plain numbers (a step, a tag, a value or a set of values), so they work with any
//! hook: feed them the per-layer gradient norms it collected, the loss of a training loop, or a
//! layer's gradient as a histogram.
//!
//! - [`MetricsWriter`]: one JSON object per line, `pd.read_json(path, lines=True)`.
//! - [`TensorBoardWriter`]: `events.out.tfevents.*` files for `tensorboard --logdir`.
//! - [`read_tfrecords`]: reads the records of an event file back, checking their CRCs.
//! - [`write_recording_jsonl`] / [`read_recording_jsonl`]: a whole recording as JSON lines
//!   (schema `gradflow.recording.jsonl`), the format the Python recorder `gradflow_torch` writes
//!   for PyTorch runs, read back with every line checked.
//!
//! The TensorBoard writer and reader need the `tensorboard` feature (on by default).

#[cfg(feature = "tensorboard")]
mod event;
mod histogram;
mod jsonl;
mod layer_rows;
mod recording_jsonl;
#[cfg(feature = "tensorboard")]
mod tensorboard;
#[cfg(feature = "tensorboard")]
mod tfrecord;

pub use histogram::Histogram;
pub use jsonl::MetricsWriter;
pub use recording_jsonl::{
    RECORDING_JSONL_SCHEMA, RECORDING_JSONL_VERSION, parse_recording_jsonl, read_recording_jsonl,
    recording_to_jsonl, write_recording_jsonl,
};
#[cfg(feature = "tensorboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "tensorboard")))]
pub use tensorboard::TensorBoardWriter;
#[cfg(feature = "tensorboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "tensorboard")))]
pub use tfrecord::{masked_crc32c, parse_tfrecords, read_tfrecords};
