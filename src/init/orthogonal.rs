//! [`Orthogonal`]: a (semi-)orthogonal weight matrix, `torch.nn.init.orthogonal_`.
//!
//! Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear dynamics of learning in
//! deep linear neural networks", ICLR: with orthogonal weights every singular value of every
//! layer is 1, so a deep linear network preserves the norm of every input vector and of every
//! gradient, not only on average ("dynamical isometry"); learning time then does not grow with
//! depth.

use ndarray::Array2;
use rand::RngCore;

use super::qr::{ThinQr, householder_qr};
use super::{Fans, Initializer, check, draw, short};
use crate::Result;

/// A (semi-)orthogonal matrix times `gain` (`torch.nn.init.orthogonal_`): all singular values
/// equal `gain`. For `rows ≥ cols` the columns are orthonormal (`WᵀW = gain²·I`), for
/// `rows < cols` the rows are (`WWᵀ = gain²·I`). The fans are not used.
///
/// The algorithm is PyTorch's: draw a `(rows, cols)` standard normal matrix (transposed if
/// `rows < cols`), take its QR decomposition (Householder, in f64), multiply `Q` by the signs of
/// `R`'s diagonal — which makes the result the unique `Q` with a positive diagonal in `R`, so
/// that it is uniformly (Haar) distributed (Mezzadri 2007, "How to generate random matrices from
/// the classical compact groups") — transpose back, and scale by `gain`. (PyTorch's
/// `sign(0) = 0` would zero a column whose `R[k][k]` is exactly 0; that has probability zero,
/// and gradflow uses +1 there.)
///
/// The gain defaults to 1, as in PyTorch; it is not taken from the following activation.
///
/// ```
/// use gradflow::init::{Fans, Initializer, Orthogonal};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let w = Orthogonal::new(2.0)?.sample((5, 3), Fans::new(3, 5, 1.0), &mut rng)?;
/// let gram = w.t().dot(&w); // 4·I
/// for i in 0..3 {
///     for j in 0..3 {
///         let expected = if i == j { 4.0 } else { 0.0 };
///         assert!((gram[[i, j]] - expected).abs() < 1e-12);
///     }
/// }
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Orthogonal {
    gain: f64,
}

impl Orthogonal {
    /// Orthogonal initialization scaled by `gain`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming `gain` when it is not positive and finite.
    pub fn new(gain: f64) -> Result<Self> {
        Ok(Orthogonal { gain: check::gain("Orthogonal", "gain", gain)? })
    }

    /// The gain, the common value of all singular values.
    pub fn gain(&self) -> f64 {
        self.gain
    }
}

impl Default for Orthogonal {
    /// Gain 1, PyTorch's default.
    fn default() -> Self {
        Orthogonal { gain: 1.0 }
    }
}

impl Initializer for Orthogonal {
    fn name(&self) -> String {
        format!("orthogonal(gain={})", short(self.gain))
    }

    fn sample(&self, shape: (usize, usize), _fans: Fans, rng: &mut dyn RngCore) -> Result<Array2<f64>> {
        let (rows, cols) = shape;
        if rows == 0 || cols == 0 {
            // PyTorch returns an empty tensor unchanged.
            return Ok(Array2::zeros(shape));
        }
        let flattened = draw::normal("Orthogonal", shape, 0.0, 1.0, rng)?;
        let wide = rows < cols;
        let tall = if wide { flattened.t().to_owned() } else { flattened };
        let ThinQr { q, r } = householder_qr(&tall);
        let signs: Vec<f64> = (0..r.ncols()).map(|k| if r[[k, k]] < 0.0 { -1.0 } else { 1.0 }).collect();
        Ok(Array2::from_shape_fn(shape, |(i, j)| {
            let (a, b) = if wide { (j, i) } else { (i, j) };
            self.gain * signs[b] * q[[a, b]]
        }))
    }
}

#[cfg(test)]
mod tests {
    use approx::abs_diff_eq;

    use super::*;
    use crate::init::testing::{FAN_IN, FAN_OUT, assert_moments, rng};

    const SHAPES: [(usize, usize); 3] = [(64, 64), (100, 40), (40, 100)];

    /// The Gram matrix over the smaller dimension: WᵀW for square and tall, WWᵀ for wide.
    fn gram(w: &Array2<f64>) -> Array2<f64> {
        if w.nrows() >= w.ncols() { w.t().dot(w) } else { w.dot(&w.t()) }
    }

    #[test]
    fn columns_or_rows_are_orthonormal() {
        for (seed, shape) in SHAPES.into_iter().enumerate() {
            let w = Orthogonal::default().sample(shape, Fans::new(1, 1, 1.0), &mut rng(seed as u64)).unwrap();
            assert_eq!(w.dim(), shape);
            let k = shape.0.min(shape.1);
            assert!(abs_diff_eq!(gram(&w), Array2::eye(k), epsilon = 1e-10), "{shape:?}");
        }
    }

    #[test]
    fn singular_values_all_equal_the_gain() {
        let gain = 5.0 / 3.0;
        let init = Orthogonal::new(gain).unwrap();
        for (seed, shape) in SHAPES.into_iter().enumerate() {
            let w = init.sample(shape, Fans::new(1, 1, 1.0), &mut rng(40 + seed as u64)).unwrap();
            // Gram = gain²·I means every singular value (√ of the Gram's eigenvalues) is gain.
            let k = shape.0.min(shape.1);
            assert!(abs_diff_eq!(gram(&w), Array2::eye(k) * gain * gain, epsilon = 1e-10), "{shape:?}");
            // Equivalently, W (or Wᵀ for wide) scales the norm of every vector by exactly gain.
            let (w, n) = if shape.0 >= shape.1 { (w.clone(), shape.1) } else { (w.t().to_owned(), shape.0) };
            let x = draw::normal("T", (n, 1), 0.0, 1.0, &mut rng(50)).unwrap();
            let norm = |m: &Array2<f64>| m.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm(&w.dot(&x)) / norm(&x) - gain).abs() < 1e-10, "{shape:?}");
        }
    }

    #[test]
    fn result_is_the_q_with_positive_r_diagonal_of_the_normal_draw() {
        // PyTorch's sign correction: W = Q·sign(diag R), so Wᵀ·A = |R|-diagonal upper triangular
        // for the very normal matrix A drawn (the draw is reproduced from the same seed).
        for shape in [(30, 12), (12, 30)] {
            let w = Orthogonal::default().sample(shape, Fans::new(1, 1, 1.0), &mut rng(60)).unwrap();
            let a = draw::normal("T", shape, 0.0, 1.0, &mut rng(60)).unwrap();
            let r = if shape.0 >= shape.1 { w.t().dot(&a) } else { w.dot(&a.t()) };
            let k = shape.0.min(shape.1);
            assert_eq!(r.dim(), (k, k));
            for i in 0..k {
                assert!(r[[i, i]] > 0.0, "{shape:?}: R[{i}][{i}] = {}", r[[i, i]]);
                for j in 0..i {
                    assert!(r[[i, j]].abs() < 1e-10, "{shape:?}: R[{i}][{j}] = {}", r[[i, j]]);
                }
            }
        }
    }

    #[test]
    fn statistics_of_a_512_square_draw() {
        // Σ w² = 512·gain² exactly, so the entries have mean ≈ 0 and std = gain/√512.
        let gain = std::f64::consts::SQRT_2;
        let fans = Fans::new(FAN_IN, FAN_OUT, 1.0);
        let w = Orthogonal::new(gain).unwrap().sample((512, 512), fans, &mut rng(61)).unwrap();
        assert_moments(&w, 0.0, gain / 512f64.sqrt(), "Orthogonal");
    }

    #[test]
    fn empty_shape_gives_an_empty_matrix() {
        let w = Orthogonal::default().sample((0, 5), Fans::new(5, 0, 1.0), &mut rng(0)).unwrap();
        assert_eq!(w.dim(), (0, 5));
    }

    #[test]
    fn invalid_gain_is_refused() {
        for bad in [0.0, -1.0, f64::NAN] {
            let msg = Orthogonal::new(bad).unwrap_err().to_string();
            assert!(msg.contains("Orthogonal") && msg.contains("`gain`"), "{msg}");
        }
        assert_eq!(Orthogonal::new(0.5).unwrap().name(), "orthogonal(gain=0.5)");
    }
}
