//! Data sets held in memory: the [`Dataset`] type, the embedded [`digits`] data set, and
//! splitting into training and test sets.
//!
//! ```
//! use gradflow::data::digits_split;
//!
//! // The 1797 8x8 digits, 20% held out for testing, stratified by class.
//! let (train, test) = digits_split::<f32>(0.2, 42)?;
//! assert_eq!(train.len() + test.len(), 1797);
//! assert_eq!(train.num_features(), 64);
//! # Ok::<(), gradflow::Error>(())
//! ```

mod adding;
mod digits;
mod split;
mod synthetic;

pub use adding::{ADDING_PROBLEM_BASELINE_MSE, adding_problem};
pub use digits::{DIGITS_SOURCE_NAME, digits, digits_split, parse_digits_csv};
pub use synthetic::spirals;

use ndarray::{Array2, Axis};

use crate::loss::Targets;
use crate::{Error, Float, Result};

mod mnist;

pub use mnist::{
    IdxImages, MNIST_DIR_ENV, mnist, mnist_dir_from_env, mnist_split, read_idx_images, read_idx_labels,
};

/// Targets owned by a [`Dataset`].
#[derive(Debug, Clone, PartialEq)]
pub enum TargetData<F: Float> {
    /// One class index per sample.
    Classes(Vec<usize>),
    /// One target row per sample.
    Values(Array2<F>),
}

impl<F: Float> TargetData<F> {
    /// Number of targets (samples).
    pub fn len(&self) -> usize {
        match self {
            TargetData::Classes(c) => c.len(),
            TargetData::Values(v) => v.nrows(),
        }
    }

    /// True when there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class labels, when the targets are classes.
    pub fn classes(&self) -> Option<&[usize]> {
        match self {
            TargetData::Classes(c) => Some(c),
            TargetData::Values(_) => None,
        }
    }

    /// The targets of the samples at `indices`, in that order (indices already checked).
    fn select(&self, indices: &[usize]) -> Self {
        match self {
            TargetData::Classes(c) => TargetData::Classes(indices.iter().map(|&i| c[i]).collect()),
            TargetData::Values(v) => TargetData::Values(select_rows(v, indices)),
        }
    }
}

/// Inputs `(samples, features)` with their targets.
///
/// Build one with [`Dataset::new`], which checks that there is one target per input row and
/// that every value is finite. (The fields are public for reading and for cheap in-place edits;
/// [`Dataset::check`] re-validates a dataset built or edited by hand, and the trainer calls it.)
///
/// ```
/// use gradflow::data::{Dataset, TargetData};
/// use ndarray::array;
///
/// let data = Dataset::new(array![[0.0f32, 1.0], [1.0, 0.0], [1.0, 1.0]], TargetData::Classes(vec![1, 1, 0]))?;
/// assert_eq!((data.len(), data.num_features()), (3, 2));
/// assert_eq!(data.class_counts(), Some(vec![1, 2]));
///
/// // Two targets for three rows is refused.
/// assert!(Dataset::new(array![[0.0f32], [1.0], [2.0]], TargetData::Classes(vec![0, 1])).is_err());
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset<F: Float> {
    /// The inputs, one row per sample.
    pub inputs: Array2<F>,
    /// The targets, one per sample.
    pub targets: TargetData<F>,
}

impl<F: Float> Dataset<F> {
    /// Pairs `inputs` (one row per sample) with their `targets`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming both lengths when the number of targets differs from the
    /// number of input rows; [`Error::NonFinite`] naming the row and column of the first NaN or
    /// infinite input or target value; [`Error::InvalidTarget`] naming the sample when a class
    /// label is [`crate::limits::MAX_CLASSES`] or more (a label of `usize::MAX` read from a
    /// corrupt file would otherwise ask for a table of that many classes).
    pub fn new(inputs: Array2<F>, targets: TargetData<F>) -> Result<Self> {
        let data = Dataset { inputs, targets };
        data.check()?;
        Ok(data)
    }

    /// Checks what [`Dataset::new`] checks: one target per input row, all values finite, class
    /// labels below [`crate::limits::MAX_CLASSES`].
    ///
    /// # Errors
    /// As [`Dataset::new`].
    pub fn check(&self) -> Result<()> {
        let rows = self.inputs.nrows();
        if self.targets.len() != rows {
            let actual = match &self.targets {
                TargetData::Classes(c) => format!("{} class labels", c.len()),
                TargetData::Values(v) => format!("{} target rows", v.nrows()),
            };
            return Err(Error::ShapeMismatch {
                layer: "Dataset".into(),
                what: "targets",
                expected: format!("{rows} (one per input row)"),
                actual,
            });
        }
        match &self.targets {
            TargetData::Values(v) => check_finite(v, "Dataset targets")?,
            TargetData::Classes(c) => check_labels(c, "Dataset")?,
        }
        check_finite(&self.inputs, "Dataset inputs")
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.inputs.nrows() == 0
    }

    /// Number of input features (columns of [`Dataset::inputs`]).
    pub fn num_features(&self) -> usize {
        self.inputs.ncols()
    }

    /// The targets as a loss sees them.
    pub fn targets(&self) -> Targets<'_, F> {
        match &self.targets {
            TargetData::Classes(c) => Targets::Classes(c),
            TargetData::Values(v) => Targets::Values(v.view()),
        }
    }

    /// For class targets, the number of samples of each class `0..=max label`; `None` for
    /// value targets, and for labels that [`Dataset::check`] refuses (edited in by hand after
    /// [`Dataset::new`]).
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let classes = self.targets.classes()?;
        check_labels(classes, "Dataset").ok()?;
        let mut counts = vec![0; classes.iter().max().map_or(0, |&m| m + 1)];
        for &c in classes {
            counts[c] += 1;
        }
        Some(counts)
    }

    /// A new dataset with the samples at `indices`, in that order (an index may repeat).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first index that is out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::config(
                "Dataset::subset",
                "indices",
                format!("index {bad} is out of range for a dataset of {} samples", self.len()),
            ));
        }
        Ok(Dataset { inputs: select_rows(&self.inputs, indices), targets: self.targets.select(indices) })
    }
}

/// The rows of `values` at `indices` (already checked), in that order.
fn select_rows<F: Float>(values: &Array2<F>, indices: &[usize]) -> Array2<F> {
    if !values.is_standard_layout() {
        return values.select(Axis(0), indices);
    }
    let mut rows = Array2::zeros((indices.len(), values.ncols()));
    F::gather_rows(values.view(), indices, rows.view_mut());
    rows
}

/// Refuses a class label of [`crate::limits::MAX_CLASSES`] or more, naming the sample.
pub(crate) fn check_labels(labels: &[usize], component: &str) -> Result<()> {
    use crate::limits::MAX_CLASSES;
    match labels.iter().position(|&c| c >= MAX_CLASSES) {
        None => Ok(()),
        Some(i) => Err(Error::InvalidTarget {
            component: component.into(),
            reason: format!(
                "the label of sample {i} is {}, over the limit of {} classes (gradflow::limits::MAX_CLASSES)",
                labels[i], MAX_CLASSES
            ),
        }),
    }
}

fn check_finite<F: Float>(values: &Array2<F>, location: &str) -> Result<()> {
    if crate::float::all_finite_array(&values.view()) {
        return Ok(());
    }
    match values.indexed_iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some(((row, col), v)) => Err(Error::NonFinite {
            location: location.to_string(),
            detail: format!("row {row}, column {col} is {v}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn length_mismatch_names_both_lengths() {
        let err = Dataset::new(array![[1.0f64], [2.0], [3.0]], TargetData::Classes(vec![0, 1])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Dataset") && msg.contains('3') && msg.contains("2 class labels"), "{msg}");

        let err = Dataset::new(array![[1.0f64], [2.0]], TargetData::Values(array![[0.5f64]])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("2 (one per input row)") && msg.contains("1 target rows"), "{msg}");
    }

    #[test]
    fn non_finite_values_are_refused_with_their_position() {
        let err = Dataset::new(array![[1.0f32, 2.0], [3.0, f32::NAN]], TargetData::Classes(vec![0, 1]))
            .unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }));
        assert!(err.to_string().contains("row 1, column 1"), "{err}");

        let err = Dataset::new(array![[1.0f32], [3.0]], TargetData::Values(array![[0.0], [f32::INFINITY]]))
            .unwrap_err();
        assert!(err.to_string().contains("Dataset targets") && err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn subset_takes_rows_in_the_given_order() {
        let data =
            Dataset::new(array![[0.0f64, 0.5], [1.0, 1.5], [2.0, 2.5]], TargetData::Classes(vec![7, 8, 9]))
                .unwrap();
        let sub = data.subset(&[2, 0, 2]).unwrap();
        assert_eq!(sub.inputs, array![[2.0, 2.5], [0.0, 0.5], [2.0, 2.5]]);
        assert_eq!(sub.targets, TargetData::Classes(vec![9, 7, 9]));

        let values =
            Dataset::new(array![[0.0f64], [1.0]], TargetData::Values(array![[10.0], [11.0]])).unwrap();
        assert_eq!(values.subset(&[1]).unwrap().targets, TargetData::Values(array![[11.0]]));

        let err = data.subset(&[0, 3]).unwrap_err();
        assert!(err.to_string().contains("index 3") && err.to_string().contains("3 samples"), "{err}");
    }

    #[test]
    fn class_counts_count_each_label() {
        let data =
            Dataset::new(Array2::<f32>::zeros((5, 1)), TargetData::Classes(vec![2, 0, 2, 2, 0])).unwrap();
        assert_eq!(data.class_counts(), Some(vec![2, 0, 3]));
        let values =
            Dataset::new(Array2::<f32>::zeros((1, 1)), TargetData::Values(Array2::zeros((1, 1)))).unwrap();
        assert_eq!(values.class_counts(), None);
    }
}
