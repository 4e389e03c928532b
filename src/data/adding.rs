//! The adding problem: a synthetic long-range dependency task for recurrent networks.

use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use rand::distr::StandardUniform;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Dataset, TargetData};
use crate::{Error, Float, Result};

/// The mean squared error of always predicting 1, the expected target, on the adding problem:
/// the target is the sum of two independent U[0, 1] values, whose variance is 2 · 1/12 = 1/6.
/// A model that has not learned to find the marked values cannot do better.
pub const ADDING_PROBLEM_BASELINE_MSE: f64 = 1.0 / 6.0;

/// The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the variant of Le,
/// Jaitly & Hinton (2015, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
/// Units", section 4.1): `sequences` sequences of `length` steps with two features each,
///
/// - a value drawn from U[0, 1),
/// - a marker, 1 at exactly two steps — one drawn uniformly from the first half
///   `0..length/2` and one from the second half `length/2..length` — and 0 elsewhere;
///
/// and the target, to be read at the last step, is the sum of the two marked values. Always
/// predicting 1 gives a mean squared error of 1/6 ([`ADDING_PROBLEM_BASELINE_MSE`]); beating it
/// needs a memory that spans at least `length/2` steps.
///
/// # Layout
/// Inputs are `(sequences, length · 2)` in the row layout of
/// [`crate::recurrent::SequenceModel`] (see [`crate::recurrent::sequence_to_rows`]): row `b` is
/// `[value_0, marker_0, value_1, marker_1, …]`. Targets are values `(sequences, 1)`.
///
/// The same seed gives the same data set.
///
/// ```
/// use gradflow::data::{adding_problem, TargetData};
///
/// let data = adding_problem::<f32>(4, 10, 0)?;
/// assert_eq!(data.inputs.dim(), (4, 20));
/// let row = data.inputs.row(0);
/// // Markers are the odd columns; the target is the sum of the marked values.
/// let marked: f32 = (0..10).filter(|&t| row[2 * t + 1] == 1.0).map(|t| row[2 * t]).sum();
/// let TargetData::Values(targets) = &data.targets else { unreachable!() };
/// assert_eq!(targets[[0, 0]], marked);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] naming `sequences` when zero, or `length` when below 2 (there must
/// be a first and a second half).
pub fn adding_problem<F: Float>(sequences: usize, length: usize, seed: u64) -> Result<Dataset<F>> {
    const COMPONENT: &str = "adding_problem";
    if sequences == 0 {
        return Err(Error::config(COMPONENT, "sequences", "must be at least 1, got 0"));
    }
    if length < 2 {
        return Err(Error::config(
            COMPONENT,
            "length",
            format!("must be at least 2 (one marker in each half of the sequence), got {length}"),
        ));
    }
    // Refused before anything is drawn: 2·length overflowing, or more entries than the limit.
    crate::alloc::check_len(COMPONENT, "sequences", &[sequences, 2, length])?;
    let drawn = crate::alloc::try_zeros(COMPONENT, "sequences", (sequences, 2 * length))?;
    let (drawn, marks) = draw(drawn, length, seed);
    let inputs: Array2<F> = crate::init::try_from_f64(&drawn, COMPONENT, "sequences")?;
    // Sum in F, as a model reading the F inputs would.
    let targets = Array2::from_shape_fn((sequences, 1), |(i, _)| {
        let (first, second) = marks[i];
        inputs[[i, 2 * first]] + inputs[[i, 2 * second]]
    });
    Dataset::new(inputs, TargetData::Values(targets))
}

/// The inputs `(sequences, 2·length)` in `f64` (values in the even columns, 1 at the two marked
/// steps in the odd ones) and each sequence's two marked steps, drawn sequence by sequence: the
/// values, then the step marked in the first half, then the one in the second. Not generic, so
/// compiled inside gradflow (see [`crate::kernels`]).
#[inline(never)]
fn draw(mut inputs: Array2<f64>, length: usize, seed: u64) -> (Array2<f64>, Vec<(usize, usize)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let half = length / 2;
    let mut marks = Vec::with_capacity(inputs.nrows());
    for mut row in inputs.rows_mut() {
        let values: Array1<f64> = Array1::random_using(length, StandardUniform, &mut rng);
        for (t, &value) in values.iter().enumerate() {
            row[2 * t] = value;
        }
        let first = rng.random_range(0..half);
        let second = rng.random_range(half..length);
        row[2 * first + 1] = 1.0;
        row[2 * second + 1] = 1.0;
        marks.push((first, second));
    }
    (inputs, marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_sizes_are_named() {
        let err = adding_problem::<f64>(0, 10, 0).unwrap_err().to_string();
        assert!(err.contains("adding_problem") && err.contains("sequences"), "{err}");
        let err = adding_problem::<f64>(3, 1, 0).unwrap_err().to_string();
        assert!(err.contains("length") && err.contains("got 1"), "{err}");
    }

    #[test]
    fn shortest_sequence_marks_both_steps() {
        // length 2: the halves are {0} and {1}, so both steps are marked.
        let data = adding_problem::<f64>(5, 2, 3).unwrap();
        let TargetData::Values(targets) = &data.targets else { panic!("value targets expected") };
        for (row, target) in data.inputs.rows().into_iter().zip(targets.column(0)) {
            assert_eq!((row[1], row[3]), (1.0, 1.0));
            assert_eq!(*target, row[0] + row[2]);
        }
    }
}
