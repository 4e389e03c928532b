//! Gradient clipping inside the training loop (PyTorch's `clip_grad_norm_` / `clip_grad_value_`).

use super::Clip;
use crate::layer::Layer;
use crate::optim::{clip_grad_norm, clip_grad_value, global_grad_norm};
use crate::{Error, Float, Result};

/// Clips the gradients of `model` in place and returns their global L2 norm *before* clipping,
/// using [`crate::optim::clip_grad_norm`] / [`crate::optim::clip_grad_value`].
///
/// # Errors
/// [`Error::NonFinite`] when that norm is NaN or infinite (as PyTorch with
/// `error_if_nonfinite=True`); the gradients are then left unchanged.
pub(crate) fn clip_gradients<F: Float>(model: &mut dyn Layer<F>, clip: Clip) -> Result<f64> {
    match clip {
        Clip::Norm(max_norm) => clip_grad_norm(model, max_norm),
        Clip::Value(limit) => {
            let norm = global_grad_norm(model);
            if !norm.is_finite() {
                return Err(Error::NonFinite {
                    location: "gradient clipping".into(),
                    detail: format!("the global L2 norm of the gradients is {norm}; nothing was clipped"),
                });
            }
            clip_grad_value(model, limit)?;
            Ok(norm)
        }
    }
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
