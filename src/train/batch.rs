//! Minibatches gathered from an in-memory [`Dataset`] in a (shuffled) sample order, into buffers
//! that are allocated once and reused for every batch.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::Float;
use crate::data::{Dataset, TargetData};
use crate::loss::Targets;

pub(crate) struct Batcher<F: Float> {
    batch_size: usize,
    /// The sample order of the current epoch.
    order: Vec<usize>,
    inputs: Array2<F>,
    classes: Vec<usize>,
    values: Array2<F>,
}

impl<F: Float> Batcher<F> {
    /// Buffers for batches of `batch_size` rows of `data`, in the original sample order.
    pub(crate) fn new(data: &Dataset<F>, batch_size: usize) -> Self {
        let rows = batch_size.min(data.len());
        let (classes, values) = match &data.targets {
            TargetData::Classes(_) => (vec![0; rows], Array2::zeros((0, 0))),
            TargetData::Values(v) => (Vec::new(), Array2::zeros((rows, v.ncols()))),
        };
        Batcher {
            batch_size,
            order: (0..data.len()).collect(),
            inputs: Array2::zeros((rows, data.num_features())),
            classes,
            values,
        }
    }

    /// Number of batches per epoch (with `drop_last`, only full ones).
    pub(crate) fn num_batches(&self, drop_last: bool) -> usize {
        if drop_last {
            self.order.len() / self.batch_size
        } else {
            self.order.len().div_ceil(self.batch_size)
        }
    }

    /// Shuffles the sample order (Fisher–Yates).
    pub(crate) fn shuffle(&mut self, rng: &mut impl Rng) {
        self.order.shuffle(rng);
    }

    /// Draws the sample order with replacement: each entry uniformly from all samples.
    pub(crate) fn resample(&mut self, rng: &mut impl Rng) {
        let n = self.order.len();
        for slot in &mut self.order {
            *slot = rng.random_range(0..n);
        }
    }

    /// Gathers batch `index` of `data` (the same dataset as given to [`Batcher::new`]) and returns
    /// its inputs and targets; the last batch may be smaller.
    pub(crate) fn batch(&mut self, data: &Dataset<F>, index: usize) -> (ArrayView2<'_, F>, Targets<'_, F>) {
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let indices = &self.order[start..end];
        let rows = indices.len();
        F::gather_rows(data.inputs.view(), indices, self.inputs.view_mut());
        let targets = match &data.targets {
            TargetData::Classes(labels) => {
                for (row, &sample) in indices.iter().enumerate() {
                    self.classes[row] = labels[sample];
                }
                Targets::Classes(&self.classes[..rows])
            }
            TargetData::Values(values) => {
                F::gather_rows(values.view(), indices, self.values.view_mut());
                Targets::Values(self.values.slice(s![..rows, ..]))
            }
        };
        (self.inputs.slice(s![..rows, ..]), targets)
    }
}

/// `dest[i] = source[indices[i]]`, row by row (for as many rows as both have). A kernel
/// ([`crate::kernels`]).
pub(crate) fn gather_rows<F: Float>(
    source: ArrayView2<'_, F>,
    indices: &[usize],
    mut dest: ArrayViewMut2<'_, F>,
) {
    for (mut row, &sample) in dest.rows_mut().into_iter().zip(indices) {
        crate::elementwise::assign_array(&mut row, &source.row(sample));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    fn data() -> Dataset<f64> {
        Dataset::new(
            array![[0.0, 0.5], [1.0, 1.5], [2.0, 2.5], [3.0, 3.5], [4.0, 4.5]],
            TargetData::Classes(vec![10, 11, 12, 13, 14]),
        )
        .unwrap()
    }

    #[test]
    fn batches_cover_the_data_in_order_with_a_short_last_batch() {
        let data = data();
        let mut batcher = Batcher::new(&data, 2);
        assert_eq!(batcher.num_batches(false), 3);
        assert_eq!(batcher.num_batches(true), 2);
        let (x, t) = batcher.batch(&data, 1);
        assert_eq!(x, array![[2.0, 2.5], [3.0, 3.5]]);
        assert!(matches!(t, Targets::Classes(&[12, 13])));
        let (x, t) = batcher.batch(&data, 2);
        assert_eq!(x, array![[4.0, 4.5]]);
        assert!(matches!(t, Targets::Classes(&[14])));
    }

    #[test]
    fn shuffled_batches_keep_inputs_and_targets_together() {
        let data = data();
        let mut batcher = Batcher::new(&data, 3);
        batcher.shuffle(&mut rand::rngs::StdRng::seed_from_u64(3));
        let mut seen = Vec::new();
        for b in 0..batcher.num_batches(false) {
            let (x, t) = batcher.batch(&data, b);
            let Targets::Classes(labels) = t else { panic!("class targets expected") };
            for (row, &label) in x.rows().into_iter().zip(labels) {
                assert_eq!(row[0] as usize + 10, label);
                seen.push(label);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![10, 11, 12, 13, 14]);
    }

    #[test]
    fn value_targets_are_gathered_too() {
        let data =
            Dataset::new(array![[0.0f32], [1.0], [2.0]], TargetData::Values(array![[5.0], [6.0], [7.0]]))
                .unwrap();
        let mut batcher = Batcher::new(&data, 2);
        let (_, t) = batcher.batch(&data, 1);
        let Targets::Values(v) = t else { panic!("value targets expected") };
        assert_eq!(v, array![[7.0f32]]);
    }
}
