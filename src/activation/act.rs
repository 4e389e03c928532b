//! [`Act`]: an activation as a layer.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::Activation;
use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_shape, ensure_shape};
use crate::layers::ImageShape;
use crate::vectorize::chunks_at;
use crate::{Error, Float, Result};

/// Applies an [`Activation`] elementwise. Has no parameters.
///
/// ```
/// use gradflow::{Act, Layer, Mode, hooks::Context};
/// use gradflow::activation::Tanh;
/// use ndarray::{array, Array2};
///
/// let mut layer = Act::<f64>::new(Tanh);
/// let mut y = Array2::zeros((0, 0));
/// layer.forward(array![[0.0, 1.0]].view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
/// assert!((y[[0, 1]] - 1f64.tanh()).abs() < 1e-15);
/// ```
#[derive(Debug)]
pub struct Act<F: Float> {
    activation: Arc<dyn Activation<F>>,
    /// The image shape of the rows, when declared (for per-channel statistics).
    image: Option<ImageShape>,
    seen_forward: bool,
}

impl<F: Float> Act<F> {
    /// Wraps `activation` as a layer.
    pub fn new(activation: impl Activation<F> + 'static) -> Self {
        Self::from_shared(Arc::new(activation))
    }

    /// Wraps a shared activation (e.g. one chosen by name with [`super::by_name`]).
    pub fn from_shared(activation: Arc<dyn Activation<F>>) -> Self {
        Act { activation, image: None, seen_forward: false }
    }

    /// Declares that the rows this layer sees are `image`s ([`Layer::image_shape`]), so that
    /// recorders report per-channel statistics (dead or saturated channels) for it. The
    /// builder does this for an activation placed after image layers; the values computed do
    /// not change.
    pub fn with_image(mut self, image: ImageShape) -> Self {
        self.image = Some(image);
        self
    }

    /// The wrapped activation.
    pub fn activation(&self) -> &dyn Activation<F> {
        self.activation.as_ref()
    }
}

impl<F: Float> Layer<F> for Act<F> {
    fn kind(&self) -> &'static str {
        self.activation.name()
    }

    /// The activation's [`Activation::describe`], e.g. `"elu(alpha=0.5)"`.
    fn describe(&self) -> String {
        self.activation.describe()
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
        let out = output.as_slice_mut().expect("buffers are standard layout");
        let x = input.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let activation = self.activation.as_ref();
        // Shared between threads when large (a batch of 256 × 1024 units and more).
        chunks_at(out, |out, at| activation.forward_slice(&x[at..at + out.len()], out));
        self.seen_forward = true;
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        if !self.seen_forward {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        }
        let name = || self.describe();
        let (rows, cols) = input.dim();
        check_shape(&name, "output", &output, Some(rows), Some(cols))?;
        check_shape(&name, "grad_output", &grad_output, Some(rows), Some(cols))?;
        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, (rows, cols));
        let x = input.as_standard_layout();
        let y = output.as_standard_layout();
        let gy = grad_output.as_standard_layout();
        let (x, y, gy) = (
            x.as_slice().expect("standard layout"),
            y.as_slice().expect("standard layout"),
            gy.as_slice().expect("standard layout"),
        );
        let activation = self.activation.as_ref();
        chunks_at(grad_input.as_slice_mut().expect("buffers are standard layout"), |gx, at| {
            let part = at..at + gx.len();
            activation.backward_slice(&x[part.clone()], &y[part.clone()], &gy[part], gx)
        });
        Ok(())
    }

    fn image_shape(&self) -> Option<ImageShape> {
        self.image
    }

    fn as_activation(&self) -> Option<&dyn Activation<F>> {
        Some(self.activation.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;
    use crate::activation::{Elu, Sigmoid};
    use ndarray::array;

    #[test]
    fn forward_and_backward_apply_value_and_derivative_elementwise() {
        let mut layer = Act::<f64>::new(Sigmoid);
        let x = array![[0.0, 3f64.ln()], [-(3f64.ln()), 0.0]];
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        // σ(0) = ½, σ(ln 3) = ¾, σ(−ln 3) = ¼
        let expected = array![[0.5, 0.75], [0.25, 0.5]];
        assert_abs_diff_eq!(y, expected, epsilon = 1e-15);
        let gy = array![[1.0, 2.0], [4.0, -1.0]];
        let mut gx = Array2::zeros((0, 0));
        layer.backward(x.view(), y.view(), gy.view(), Some(&mut gx), &mut Context::new()).unwrap();
        // σ' = ¼, 3/16, 3/16, ¼
        let expected = array![[0.25, 2.0 * 3.0 / 16.0], [4.0 * 3.0 / 16.0, -0.25]];
        assert_abs_diff_eq!(gx, expected, epsilon = 1e-15);
    }

    #[test]
    fn large_batches_shared_between_threads_give_every_entry_its_own_value_and_derivative() {
        // 601 × 500 entries: more than `PARALLEL_MIN_LEN`, cut into three uneven chunks.
        let (rows, cols) = (601, 500);
        assert!(rows * cols >= crate::vectorize::PARALLEL_MIN_LEN);
        let x = Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 13 + j * 7) % 41) as f64 / 8.0 - 2.5);
        let gy = Array2::from_shape_fn((rows, cols), |(i, j)| ((i + 3 * j) % 5) as f64 - 2.0);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let (y, gx) = pool.install(|| {
            let mut layer = Act::<f64>::new(Elu::new(0.5).unwrap());
            let (mut y, mut gx) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
            layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
            layer.backward(x.view(), y.view(), gy.view(), Some(&mut gx), &mut Context::new()).unwrap();
            (y, gx)
        });
        let elu = Elu::new(0.5).unwrap();
        for ((&xi, &yi), (&gyi, &gxi)) in x.iter().zip(&y).zip(gy.iter().zip(&gx)) {
            assert_eq!(yi, Activation::<f64>::value(&elu, xi));
            assert_eq!(gxi, gyi * Activation::<f64>::derivative(&elu, xi, yi));
        }
    }

    #[test]
    fn describe_shows_the_configuration_and_errors_name_it() {
        let mut layer = Act::<f32>::new(Elu::new(0.5).unwrap());
        assert_eq!(layer.describe(), "elu(alpha=0.5)");
        let x = Array2::zeros((2, 3));
        let err = layer.backward(x.view(), x.view(), x.view(), None, &mut Context::new()).unwrap_err();
        assert!(matches!(&err, Error::BackwardBeforeForward { layer } if layer == "elu(alpha=0.5)"), "{err}");
    }

    #[test]
    fn backward_with_a_wrong_gradient_shape_is_an_error() {
        let mut layer = Act::<f64>::new(Sigmoid);
        let x = Array2::zeros((2, 3));
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let gy = Array2::zeros((2, 4));
        let err = layer.backward(x.view(), y.view(), gy.view(), None, &mut Context::new()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sigmoid") && msg.contains("grad_output") && msg.contains("(2, 4)"), "{msg}");
    }
}
