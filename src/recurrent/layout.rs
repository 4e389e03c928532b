//! Converting between sequences `(time, batch, features)` and rows `(batch, time · features)`,
//! the layout in which [`super::SequenceLayer`] and [`super::SequenceModel`] take sequences.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

use crate::{Error, Float, Result};

/// How a sequence is laid out in a 3-D array: PyTorch's `batch_first` flag.
///
/// Rows `(B, T·F)`, the layout in which sequences go through layers, are the batch-first layout
/// `(B, T, F)` reshaped (for free); time-major sequences are copied into rows (see
/// [`crate::Network::forward_sequence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum SequenceLayout {
    /// `(T, B, F)`: time first, PyTorch's default (`batch_first=False`).
    #[default]
    TimeMajor,
    /// `(B, T, F)`: batch first (`batch_first=True`).
    BatchFirst,
}

impl SequenceLayout {
    /// The layout PyTorch's `batch_first` means: [`SequenceLayout::BatchFirst`] for `true`,
    /// [`SequenceLayout::TimeMajor`] for `false`.
    pub fn from_batch_first(batch_first: bool) -> Self {
        if batch_first { SequenceLayout::BatchFirst } else { SequenceLayout::TimeMajor }
    }

    /// `sequence` in this layout seen as `(T, B, F)`, without copying.
    pub fn time_major<'a, F>(self, sequence: ArrayView3<'a, F>) -> ArrayView3<'a, F> {
        match self {
            SequenceLayout::TimeMajor => sequence,
            SequenceLayout::BatchFirst => sequence.permuted_axes([1, 0, 2]),
        }
    }
}

/// Rows `(B, T·F)` seen as a sequence in `layout`, without copying: `(T, B, F)` (a transposed
/// view) or `(B, T, F)`.
///
/// ```
/// use gradflow::recurrent::{SequenceLayout, rows_as_sequence};
/// use ndarray::array;
/// let rows = array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]; // B = 1, T = 3, F = 2
/// let seq = rows_as_sequence(rows.view(), 2, SequenceLayout::TimeMajor).unwrap();
/// assert_eq!(seq, array![[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]]);
/// let seq = rows_as_sequence(rows.view(), 2, SequenceLayout::BatchFirst).unwrap();
/// assert_eq!(seq, array![[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]);
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] when the row width is not a positive multiple of `features`, or the
/// rows are not in standard (row-major) layout.
pub fn rows_as_sequence<F: Float>(
    rows: ArrayView2<'_, F>,
    features: usize,
    layout: SequenceLayout,
) -> Result<ArrayView3<'_, F>> {
    let t_len = steps_in(|| "rows_as_sequence".into(), &rows, features)?;
    let batch = rows.nrows();
    let shape = rows.shape().to_vec();
    let batch_first = rows.into_shape_with_order((batch, t_len, features)).map_err(|_| {
        Error::shape("rows_as_sequence", "rows", "rows in standard (row-major) layout", &shape)
    })?;
    Ok(match layout {
        SequenceLayout::BatchFirst => batch_first,
        SequenceLayout::TimeMajor => batch_first.permuted_axes([1, 0, 2]),
    })
}

/// Flattens a sequence `(T, B, F)` into rows `(B, T·F)`: row b is `[x_0[b], x_1[b], …]`, the
/// sample's steps one after another (so a data set of sequences is an ordinary
/// `(samples, features)` matrix).
///
/// ```
/// use gradflow::recurrent::{rows_to_sequence, sequence_to_rows};
/// use ndarray::array;
/// let seq = array![[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]]; // T = 3, B = 1, F = 2
/// let rows = sequence_to_rows(seq.view());
/// assert_eq!(rows, array![[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]);
/// assert_eq!(rows_to_sequence(rows.view(), 2).unwrap(), seq);
/// ```
pub fn sequence_to_rows<F: Float>(sequence: ArrayView3<'_, F>) -> Array2<F> {
    let (t_len, batch, features) = sequence.dim();
    let mut rows = Array2::zeros((batch, t_len * features));
    write_rows(sequence, &mut rows);
    rows
}

/// The inverse of [`sequence_to_rows`]: rows `(B, T·F)` into a sequence `(T, B, F)`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when the row width is not a positive multiple of `features`.
pub fn rows_to_sequence<F: Float>(rows: ArrayView2<'_, F>, features: usize) -> Result<Array3<F>> {
    let t_len = steps_in(|| "rows_to_sequence".into(), &rows, features)?;
    let mut sequence = Array3::zeros((t_len, rows.nrows(), features));
    write_sequence(rows, &mut sequence);
    Ok(sequence)
}

/// The number of time steps in rows of width T·`features`, or an error naming `component()`.
pub(crate) fn steps_in<F>(
    component: impl FnOnce() -> String,
    rows: &ArrayView2<'_, F>,
    features: usize,
) -> Result<usize> {
    let width = rows.ncols();
    if features == 0 || width == 0 || !width.is_multiple_of(features) {
        return Err(Error::shape(
            component(),
            "input",
            format!("(batch, time · {features}) with time ≥ 1"),
            rows.shape(),
        ));
    }
    Ok(width / features)
}

/// `rows[b, t·F + f] = sequence[t, b, f]`; `rows` must already be `(B, T·F)`.
pub(crate) fn write_rows<F: Float>(sequence: ArrayView3<'_, F>, rows: &mut Array2<F>) {
    let (_, batch, features) = sequence.dim();
    if let (Some(seq), Some(out)) = (sequence.as_slice(), rows.as_slice_mut())
        && seq.len() == out.len()
    {
        return F::sequence_to_rows(seq, batch, features, out);
    }
    // Strided arrays (a rare path): step by step.
    for (t, step) in sequence.outer_iter().enumerate() {
        rows.slice_mut(ndarray::s![.., t * features..(t + 1) * features]).assign(&step);
    }
}

/// `sequence[t, b, f] = rows[b, t·F + f]`; `sequence` must already be `(T, B, F)`.
pub(crate) fn write_sequence<F: Float>(rows: ArrayView2<'_, F>, sequence: &mut Array3<F>) {
    let (_, batch, features) = sequence.dim();
    if let (Some(src), Some(seq)) = (rows.as_slice(), sequence.as_slice_mut())
        && src.len() == seq.len()
    {
        return F::rows_to_sequence(src, batch, features, seq);
    }
    // Strided arrays (a rare path): step by step.
    for (t, mut step) in sequence.outer_iter_mut().enumerate() {
        step.assign(&rows.slice(ndarray::s![.., t * features..(t + 1) * features]));
    }
}

/// [`write_rows`] on contiguous buffers: `sequence` `(T, B, F)` into `rows` `(B, T·F)`, both
/// row-major. A kernel ([`crate::kernels`]).
pub(crate) fn sequence_to_rows_kernel<F: Float>(
    sequence: &[F],
    batch: usize,
    features: usize,
    rows: &mut [F],
) {
    let step_len = batch * features;
    if step_len == 0 || sequence.is_empty() {
        return;
    }
    let row_len = sequence.len() / batch;
    for (t, step) in sequence.chunks_exact(step_len).enumerate() {
        for (row, sample) in rows.chunks_exact_mut(row_len).zip(step.chunks_exact(features)) {
            row[t * features..(t + 1) * features].copy_from_slice(sample);
        }
    }
}

/// [`write_sequence`] on contiguous buffers: `rows` `(B, T·F)` into `sequence` `(T, B, F)`. A
/// kernel ([`crate::kernels`]).
pub(crate) fn rows_to_sequence_kernel<F: Float>(
    rows: &[F],
    batch: usize,
    features: usize,
    sequence: &mut [F],
) {
    let step_len = batch * features;
    if step_len == 0 || rows.is_empty() {
        return;
    }
    let row_len = rows.len() / batch;
    for (t, step) in sequence.chunks_exact_mut(step_len).enumerate() {
        for (row, sample) in rows.chunks_exact(row_len).zip(step.chunks_exact_mut(features)) {
            sample.copy_from_slice(&row[t * features..(t + 1) * features]);
        }
    }
}
