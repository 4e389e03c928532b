//! [`Scale`]: multiplies its input by one scalar, fixed or learnable (ReZero / SkipInit).

use ndarray::{Array1, Array2, ArrayView2, Ix1, Zip};

use crate::elementwise::matching_slices;
use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_shape, ensure_shape};
use crate::param::{Param, ParamView, ParamViewMut};
use crate::{Error, Float, Result};

/// `y = α · x` with one scalar α, either fixed or learnable.
///
/// Used as the `"scale"` child of a [`crate::ResidualBlock`] to scale the residual branch:
/// a learnable α initialized to 0 is ReZero (Bachlechner et al. 2020, "ReZero is all you
/// need"), a small fixed or learnable α is SkipInit (De & Smith 2020). A learnable α is the
/// parameter `"weight"`, of shape `(1)` as in the papers' PyTorch code.
///
/// # Gradients
/// `dα += Σ dy ⊙ x` (when learnable), `dx = α · dy`.
///
/// ```
/// use gradflow::{Layer, Scale};
///
/// let rezero = Scale::<f32>::learnable(0.0).unwrap();
/// assert_eq!(rezero.num_parameters(), 1);
/// assert_eq!(Scale::<f32>::fixed(0.1).unwrap().num_parameters(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Scale<F: Float> {
    weight: Param<F, Ix1>,
    learnable: bool,
    seen_forward: bool,
}

impl<F: Float> Scale<F> {
    /// A constant factor α (no parameters).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when α is not finite.
    pub fn fixed(alpha: f64) -> Result<Self> {
        Self::build(alpha, false)
    }

    /// A learnable factor, the parameter `"weight"`, starting at `init` (ReZero: 0).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `init` is not finite.
    pub fn learnable(init: f64) -> Result<Self> {
        Self::build(init, true)
    }

    fn build(alpha: f64, learnable: bool) -> Result<Self> {
        if !alpha.is_finite() {
            return Err(Error::config("Scale", "alpha", format!("must be finite, got {alpha}")));
        }
        let alpha = crate::checks::setting::<F>("Scale", "alpha", alpha, crate::checks::Needs::Finite)?;
        Ok(Scale { weight: Param::new(Array1::from_elem(1, alpha)), learnable, seen_forward: false })
    }

    /// The current factor α.
    pub fn alpha(&self) -> F {
        self.weight.value[0]
    }

    /// Sets α (for a fixed scale too).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `alpha` when it is not finite; α is then unchanged.
    pub fn set_alpha(&mut self, alpha: F) -> Result<()> {
        if !alpha.is_finite() {
            return Err(Error::config("Scale", "alpha", format!("must be finite, got {alpha}")));
        }
        self.weight.value[0] = alpha;
        Ok(())
    }

    /// Whether α is a trained parameter.
    pub fn is_learnable(&self) -> bool {
        self.learnable
    }
}

impl<F: Float> Layer<F> for Scale<F> {
    fn kind(&self) -> &'static str {
        "Scale"
    }

    fn describe(&self) -> String {
        let how = if self.learnable { "learnable" } else { "fixed" };
        format!("Scale({how}, α={})", self.alpha())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        ensure_shape(output, input.dim());
        let alpha = self.alpha();
        match input.as_slice() {
            Some(x) => F::scale_into(alpha, x, output.as_slice_mut().expect("buffers are standard layout")),
            None => Zip::from(output).and(&input).for_each(|y, &x| *y = alpha * x),
        }
        self.seen_forward = true;
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        if !self.seen_forward {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        let (rows, cols) = input.dim();
        check_shape(&|| self.describe(), "grad_output", &grad_output, Some(rows), Some(cols))?;
        if self.learnable {
            // Σ dy·x, in the order ndarray's `Zip` visits the entries.
            let sum = match matching_slices(&grad_output, &input) {
                Some((g, x)) => F::dot(g, x),
                None => {
                    let mut sum = F::zero();
                    Zip::from(&grad_output).and(&input).for_each(|&g, &x| sum += g * x);
                    sum
                }
            };
            self.weight.grad[0] += sum;
        }
        if let Some(grad_input) = grad_input {
            ensure_shape(grad_input, (rows, cols));
            let alpha = self.alpha();
            match grad_output.as_slice() {
                Some(g) => {
                    F::scale_into(alpha, g, grad_input.as_slice_mut().expect("buffers are standard layout"))
                }
                None => Zip::from(grad_input).and(&grad_output).for_each(|dx, &g| *dx = alpha * g),
            }
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        if self.learnable {
            visitor(self.weight.view("weight"));
        }
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        if self.learnable {
            visitor(self.weight.view_mut("weight"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::array;

    #[test]
    fn forward_and_backward_by_hand() {
        let mut s = Scale::<f64>::learnable(0.5).unwrap();
        let x = array![[1.0, -2.0], [3.0, 4.0]];
        let mut y = Array2::zeros((0, 0));
        s.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        assert_eq!(y, array![[0.5, -1.0], [1.5, 2.0]]);
        let dy = array![[1.0, 1.0], [0.0, 2.0]];
        let mut dx = Array2::zeros((0, 0));
        s.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
        assert_eq!(dx, array![[0.5, 0.5], [0.0, 1.0]]);
        // dα = 1·1 + 1·(−2) + 0·3 + 2·4 = 7.
        let mut grads = Vec::new();
        s.visit_parameters(&mut |p| grads.push(p.grad[[0]]));
        assert_eq!(grads, [7.0]);
    }

    #[test]
    fn gradients_pass_finite_difference_check() {
        let mut s = Scale::<f64>::learnable(-0.3).unwrap();
        let x = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 - 0.5 * j as f64);
        check_layer(&mut s, &x, GradCheckConfig::default()).unwrap().within(1e-6).unwrap();
    }

    #[test]
    fn a_non_finite_factor_is_refused() {
        assert!(Scale::<f32>::fixed(f64::NAN).is_err());
        assert!(Scale::<f32>::learnable(f64::INFINITY).unwrap_err().to_string().contains("alpha"));
    }
}
