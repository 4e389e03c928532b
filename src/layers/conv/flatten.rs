//! [`Flatten`]: images to plain feature rows.

use ndarray::{Array2, ArrayView2};

use super::image::{ImageShape, check_image_features, check_image_input, copy_into};
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Result};

/// PyTorch's `nn.Flatten()` between the image layers and the fully connected ones.
///
/// In gradflow images already travel as `(batch, C·H·W)` rows in the order `flatten(1)` gives
/// (see [`ImageShape`]), so the values pass through unchanged: what changes is that the layers
/// after it see plain features ([`Layer::image_shape`] is `None`). It is a layer of its own so
/// that a network numbers its children as the PyTorch `nn.Sequential` it mirrors does
/// (`"9.weight"` for the `Linear` after a flatten at index 8), and parameters keep PyTorch's names.
#[derive(Debug, Clone)]
pub struct Flatten<F: Float> {
    input: ImageShape,
    forward_batch: Option<usize>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> Flatten<F> {
    /// Flattens `input` images.
    pub fn new(input: ImageShape) -> Self {
        Flatten { input, forward_batch: None, _float: std::marker::PhantomData }
    }
}

impl<F: Float> Layer<F> for Flatten<F> {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    /// E.g. `"Flatten(64×1×1→64)"`.
    fn describe(&self) -> String {
        format!("Flatten({}→{})", self.input, self.input.features())
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_image_features(&|| self.describe(), self.input, input_features)?;
        Ok(input_features)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        _mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.forward_batch = None;
        check_image_input(&|| self.describe(), "input", &input, self.input, None)?;
        copy_into(input, output);
        self.forward_batch = Some(input.nrows());
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
        let Some(batch) = self.forward_batch else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let name = || self.describe();
        check_image_input(&name, "input", &input, self.input, Some(batch))?;
        check_image_input(&name, "grad_output", &grad_output, self.input, Some(batch))?;
        if let Some(grad_input) = grad_input {
            copy_into(grad_output, grad_input);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};

    #[test]
    fn values_and_gradients_pass_through() {
        let mut flatten = Flatten::<f64>::new(ImageShape::new(2, 2, 3));
        assert_eq!(flatten.image_shape(), None);
        let x = Array2::from_shape_fn((3, 12), |(i, j)| (i * 12 + j) as f64);
        let report = check_layer(&mut flatten, &x, GradCheckConfig::default()).unwrap();
        report.within(1e-6).unwrap();
        let err = flatten.output_features(11).unwrap_err();
        assert!(err.to_string().contains("2×2×3"), "{err}");
    }
}
