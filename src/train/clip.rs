//! Gradient clipping inside the training loop (PyTorch's `clip_grad_norm_` / `clip_grad_value_`).

use super::Clip;
use crate::layer::Layer;
use crate::{Error, Float, Result};

/// `eps` added to the norm before dividing, as in PyTorch's `clip_grad_norm_`
/// (`clip_coef = max_norm / (total_norm + 1e-6)`, torch/nn/utils/clip_grad.py).
const NORM_EPS: f64 = 1e-6;

/// The global L2 norm of all parameter gradients of `model`, accumulated in `f64`.
pub(crate) fn global_grad_norm<F: Float>(model: &dyn Layer<F>) -> f64 {
    let mut sum_sq = 0.0f64;
    model.visit_parameters(&mut |p| {
        for g in p.grad.iter() {
            let g = g.as_f64();
            sum_sq += g * g;
        }
    });
    sum_sq.sqrt()
}

/// Clips the gradients of `model` in place and returns their global L2 norm *before* clipping.
///
/// # Errors
/// [`Error::NonFinite`] when that norm is NaN or infinite (as PyTorch with
/// `error_if_nonfinite=True`); the gradients are then left unchanged.
pub(crate) fn clip_gradients<F: Float>(model: &mut dyn Layer<F>, clip: Clip) -> Result<f64> {
    let norm = global_grad_norm(model);
    if !norm.is_finite() {
        return Err(Error::NonFinite {
            location: "gradient clipping".into(),
            detail: format!("the global L2 norm of the gradients is {norm}; nothing was clipped"),
        });
    }
    match clip {
        Clip::Norm(max_norm) => {
            let coef = max_norm / (norm + NORM_EPS);
            if coef < 1.0 {
                let coef = F::lit(coef);
                model.visit_parameters_mut(&mut |mut p| p.grad.mapv_inplace(|g| g * coef));
            }
        }
        Clip::Value(limit) => {
            let (lo, hi) = (F::lit(-limit), F::lit(limit));
            model.visit_parameters_mut(&mut |mut p| p.grad.mapv_inplace(|g| g.max(lo).min(hi)));
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Linear;
    use ndarray::array;

    /// A Linear(2→1) whose weight gradient is `[3, 0]` and bias gradient `[4]`: global norm 5.
    fn layer_with_grads() -> Linear<f64> {
        let mut layer = Linear::from_weights(array![[1.0, 1.0]], Some(array![0.0])).unwrap();
        let grads = [vec![3.0, 0.0], vec![4.0]];
        let mut i = 0;
        layer.visit_parameters_mut(&mut |mut p| {
            for (g, v) in p.grad.iter_mut().zip(&grads[i]) {
                *g = *v;
            }
            i += 1;
        });
        layer
    }

    fn grads(layer: &Linear<f64>) -> Vec<f64> {
        let mut out = Vec::new();
        layer.visit_parameters(&mut |p| out.extend(p.grad.iter().copied()));
        out
    }

    #[test]
    fn norm_clipping_scales_by_max_over_norm_plus_eps() {
        let mut layer = layer_with_grads();
        let norm = clip_gradients(&mut layer, Clip::Norm(1.0)).unwrap();
        assert_eq!(norm, 5.0);
        let coef = 1.0 / (5.0 + 1e-6);
        assert_eq!(grads(&layer), vec![3.0 * coef, 0.0, 4.0 * coef]);
    }

    #[test]
    fn norm_below_the_limit_is_untouched() {
        let mut layer = layer_with_grads();
        assert_eq!(clip_gradients(&mut layer, Clip::Norm(5.0)).unwrap(), 5.0);
        // 5 / (5 + 1e-6) < 1: PyTorch scales even here, by a factor within 2e-7 of 1.
        let after = grads(&layer);
        assert!(after[0] < 3.0 && after[0] > 3.0 * (1.0 - 2.5e-7), "{after:?}");
        let mut layer = layer_with_grads();
        clip_gradients(&mut layer, Clip::Norm(10.0)).unwrap();
        assert_eq!(grads(&layer), vec![3.0, 0.0, 4.0]);
    }

    #[test]
    fn value_clipping_clamps_each_entry() {
        let mut layer = layer_with_grads();
        assert_eq!(clip_gradients(&mut layer, Clip::Value(3.5)).unwrap(), 5.0);
        assert_eq!(grads(&layer), vec![3.0, 0.0, 3.5]);
    }

    #[test]
    fn non_finite_norm_is_an_error_and_changes_nothing() {
        let mut layer = layer_with_grads();
        layer.visit_parameters_mut(&mut |mut p| {
            if p.name == "bias" {
                p.grad[[0]] = f64::NAN;
            }
        });
        let err = clip_gradients(&mut layer, Clip::Norm(1.0)).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert_eq!(grads(&layer)[..2], [3.0, 0.0]);
    }
}
