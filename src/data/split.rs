//! Deterministic train/test splits of a [`Dataset`], plain and stratified by class.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Dataset;
use crate::{Error, Float, Result};

impl<F: Float> Dataset<F> {
    /// Splits into `(train, test)` with `round(test_fraction × len)` test samples drawn at
    /// random (a Fisher–Yates shuffle on `StdRng::seed_from_u64(seed)`). The same seed gives the
    /// same split (for a given version of `rand`). Both parts keep the original sample order.
    ///
    /// ```
    /// use gradflow::data::{Dataset, TargetData};
    /// use ndarray::Array2;
    ///
    /// let data = Dataset::new(Array2::<f32>::zeros((10, 3)), TargetData::Classes(vec![0; 10]))?;
    /// let (train, test) = data.split(0.3, 7)?;
    /// assert_eq!((train.len(), test.len()), (7, 3));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `test_fraction` when it is not strictly between 0 and 1
    /// or leaves either part empty.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        let n_test = test_count("Dataset::split", test_fraction, self.len())?;
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (test, train) = order.split_at_mut(n_test);
        self.parts(train, test)
    }

    /// Splits into `(train, test)` so that each class keeps its share of the samples in both
    /// parts, as scikit-learn's `train_test_split(..., stratify=y)`.
    ///
    /// The test set has `round(test_fraction × len)` samples. Class `c` with `n_c` samples gets
    /// `⌊n_c × n_test / len⌋` of them, and the samples left over go one each to the classes with
    /// the largest remainders (ties to the lower class), so the total is exact. Within each class
    /// (in class order) the test samples are drawn by a Fisher–Yates shuffle on
    /// `StdRng::seed_from_u64(seed)`: the same seed gives the same split. Both parts keep the
    /// original sample order.
    ///
    /// ```
    /// use gradflow::data::{Dataset, TargetData};
    /// use ndarray::Array2;
    ///
    /// // 8 samples of class 0 and 4 of class 1: a quarter of each goes to the test set.
    /// let labels = vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
    /// let data = Dataset::new(Array2::<f32>::zeros((12, 2)), TargetData::Classes(labels))?;
    /// let (train, test) = data.split_stratified(0.25, 1)?;
    /// assert_eq!(test.class_counts(), Some(vec![2, 1]));
    /// assert_eq!(train.class_counts(), Some(vec![6, 3]));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidTarget`] when the targets are not classes; [`Error::InvalidConfig`]
    /// naming `test_fraction` when it is not strictly between 0 and 1 or leaves either part
    /// empty.
    pub fn split_stratified(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        const COMPONENT: &str = "Dataset::split_stratified";
        let Some(labels) = self.targets.classes() else {
            return Err(Error::InvalidTarget {
                component: COMPONENT.into(),
                reason: "stratifying needs class targets, these are value rows".into(),
            });
        };
        super::check_labels(labels, COMPONENT)?;
        let n = self.len();
        let n_test = test_count(COMPONENT, test_fraction, n)?;

        let num_classes = labels.iter().max().map_or(0, |&m| m + 1);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
        for (i, &c) in labels.iter().enumerate() {
            members[c].push(i);
        }
        let quotas = largest_remainder_quotas(&members.iter().map(Vec::len).collect::<Vec<_>>(), n_test);

        let mut rng = StdRng::seed_from_u64(seed);
        let mut train = Vec::with_capacity(n - n_test);
        let mut test = Vec::with_capacity(n_test);
        for (class_members, quota) in members.iter_mut().zip(quotas) {
            class_members.shuffle(&mut rng);
            test.extend_from_slice(&class_members[..quota]);
            train.extend_from_slice(&class_members[quota..]);
        }
        self.parts(&mut train, &mut test)
    }

    fn parts(&self, train: &mut [usize], test: &mut [usize]) -> Result<(Self, Self)> {
        train.sort_unstable();
        test.sort_unstable();
        Ok((self.subset(train)?, self.subset(test)?))
    }
}

/// The number of test samples for `test_fraction` of `n`, checked to leave both parts non-empty.
fn test_count(component: &str, test_fraction: f64, n: usize) -> Result<usize> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::config(
            component,
            "test_fraction",
            format!("must be strictly between 0 and 1, got {test_fraction}"),
        ));
    }
    let n_test = (test_fraction * n as f64).round() as usize;
    if n_test == 0 || n_test == n {
        return Err(Error::config(
            component,
            "test_fraction",
            format!(
                "{test_fraction} of {n} samples gives {n_test} test and {} training samples; both must be at least 1",
                n - n_test
            ),
        ));
    }
    Ok(n_test)
}

/// Shares `total` among groups of the given sizes in proportion to their sizes: each gets the
/// floor of its exact share, and the rest go one each to the largest remainders (ties to the
/// lower index). Requires `total <= sum(sizes)`.
fn largest_remainder_quotas(sizes: &[usize], total: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    // Exact integer arithmetic (u128: size × total cannot overflow).
    let exact = |size: usize| {
        ((size as u128 * total as u128) / n as u128, (size as u128 * total as u128) % n as u128)
    };
    let mut quotas: Vec<usize> = sizes.iter().map(|&s| exact(s).0 as usize).collect();
    let assigned: usize = quotas.iter().sum();
    let mut by_remainder: Vec<usize> = (0..sizes.len()).collect();
    by_remainder.sort_by(|&a, &b| exact(sizes[b]).1.cmp(&exact(sizes[a]).1).then(a.cmp(&b)));
    for &group in by_remainder.iter().take(total - assigned) {
        quotas[group] += 1;
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TargetData;
    use ndarray::Array2;

    fn labelled(labels: Vec<usize>) -> Dataset<f64> {
        let n = labels.len();
        Dataset::new(Array2::from_shape_fn((n, 1), |(i, _)| i as f64), TargetData::Classes(labels)).unwrap()
    }

    #[test]
    fn quotas_follow_largest_remainders() {
        // 10 of 30 split over sizes 10, 10, 10 → 3.33 each: floors 3, 3, 3, one left → class 0.
        assert_eq!(largest_remainder_quotas(&[10, 10, 10], 10), vec![4, 3, 3]);
        // sizes 5, 3, 2 (n = 10), total 5 → exact 2.5, 1.5, 1.0 → floors 2, 1, 1; the one left
        // goes to the tie 0.5 / 0.5 at the lower index.
        assert_eq!(largest_remainder_quotas(&[5, 3, 2], 5), vec![3, 1, 1]);
        // sizes 1, 9, total 3 → exact 0.3, 2.7 → floors 0, 2, remainder to class 1.
        assert_eq!(largest_remainder_quotas(&[1, 9], 3), vec![0, 3]);
        assert_eq!(largest_remainder_quotas(&[0, 4], 2), vec![0, 2]);
    }

    #[test]
    fn split_is_disjoint_covering_and_ordered() {
        let data = labelled((0..20).map(|i| i % 3).collect());
        for (train, test) in [data.split(0.25, 3).unwrap(), data.split_stratified(0.25, 3).unwrap()] {
            assert_eq!(test.len(), 5);
            let mut all: Vec<f64> = train.inputs.iter().chain(test.inputs.iter()).copied().collect();
            for part in [&train, &test] {
                let ids: Vec<f64> = part.inputs.iter().copied().collect();
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in original order: {ids:?}");
            }
            all.sort_by(f64::total_cmp);
            assert_eq!(all, (0..20).map(|i| i as f64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn labels_follow_their_rows() {
        let data = labelled((0..12).map(|i| i % 4).collect());
        let (train, test) = data.split_stratified(0.5, 9).unwrap();
        for part in [train, test] {
            let labels = part.targets.classes().unwrap();
            for (row, &label) in part.inputs.column(0).iter().zip(labels) {
                assert_eq!(*row as usize % 4, label);
            }
        }
    }

    #[test]
    fn bad_fractions_name_the_field() {
        let data = labelled(vec![0, 1, 0, 1]);
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let err = data.split(bad, 0).unwrap_err();
            assert!(err.to_string().contains("test_fraction"), "{err}");
            let err = data.split_stratified(bad, 0).unwrap_err();
            assert!(err.to_string().contains("test_fraction"), "{err}");
        }
        // 0.1 of 4 samples rounds to no test sample at all.
        let err = data.split(0.1, 0).unwrap_err();
        assert!(err.to_string().contains("0 test"), "{err}");
    }

    #[test]
    fn stratifying_value_targets_is_an_error() {
        let data =
            Dataset::new(Array2::<f32>::zeros((4, 1)), TargetData::Values(Array2::zeros((4, 1)))).unwrap();
        assert!(matches!(data.split_stratified(0.5, 0), Err(Error::InvalidTarget { .. })));
        assert_eq!(data.split(0.5, 0).unwrap().1.len(), 2);
    }
}
