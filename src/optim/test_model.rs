//! A three-parameter model with hand-set gradients, shared by the optimizer tests.

use ndarray::array;

use crate::layer::Layer;
use crate::{Float, Linear};

/// `Linear` 2 → 1 with weight `[[1, −2]]` and bias `[0.5]`: three scalars `[w₀, w₁, b]`.
pub(crate) fn model<F: Float>() -> Linear<F> {
    Linear::from_weights(array![[F::lit(1.0), F::lit(-2.0)]], Some(array![F::lit(0.5)]))
        .expect("valid shapes")
}

/// Sets the gradients to `[dw₀, dw₁, db]`.
pub(crate) fn set_grads<F: Float>(model: &mut Linear<F>, grads: [f64; 3]) {
    let mut next = grads.into_iter();
    model.visit_parameters_mut(&mut |p| {
        for g in p.grad {
            *g = F::lit(next.next().expect("three scalars"));
        }
    });
}

/// The parameters as `[w₀, w₁, b]`, in f64.
pub(crate) fn params<F: Float>(model: &Linear<F>) -> [f64; 3] {
    let mut out = [0.0; 3];
    let mut i = 0;
    model.visit_parameters(&mut |p| {
        for v in p.value {
            out[i] = v.as_f64();
            i += 1;
        }
    });
    out
}
