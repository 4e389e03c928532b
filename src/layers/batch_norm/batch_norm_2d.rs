//! [`BatchNorm2d`]: batch normalization of each channel of images.

use ndarray::{Array2, ArrayView2};

use super::core::Core;
use super::{BatchNorm, BatchNormConfig};
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::layers::{ImageShape, check_image_features, check_image_input};
use crate::param::{BufferView, BufferViewMut, ParamView, ParamViewMut};
use crate::{Float, Result};

/// Batch normalization of each channel of a batch of images (Ioffe & Szegedy 2015), with
/// PyTorch's `nn.BatchNorm2d` definitions, names and defaults.
///
/// Exactly [`super::BatchNorm1d`]'s formulas with the statistics of channel `c` taken over all
/// `N·H·W` entries of that channel in the batch (PyTorch's "spatial" batch normalization):
/// in [`Mode::Train`] μ and σ² are their mean and biased variance, the running variance is
/// updated with the unbiased one (`· n/(n − 1)` with `n = N·H·W`), momentum 0.1 weights the new
/// statistic, and [`Mode::Eval`] uses the running statistics. Parameters `weight` (γ) and `bias`
/// (β), `(C)`; buffers `running_mean`, `running_var`, `num_batches_tracked`: the names of
/// PyTorch's `state_dict`.
///
/// The state and the passes are [`super::BatchNorm1d`]'s own, run over runs of `H·W` entries
/// instead of single ones.
///
/// # Shapes
/// input `(batch, C·H·W)` (see [`ImageShape`]) → output of the same shape. [`Mode::Train`] needs
/// more than one value per channel (`N·H·W ≥ 2`), as PyTorch does.
///
/// ```
/// use gradflow::layers::{BatchNorm2d, ImageShape};
/// use gradflow::{BatchNorm, Layer, Mode, hooks::Context};
/// use ndarray::array;
///
/// // One 2×1×2 image: channel 0 holds 1 and 3, channel 1 holds 5 and 5.
/// let mut bn = BatchNorm2d::<f64>::new(ImageShape::new(2, 1, 2))?;
/// let mut y = ndarray::Array2::zeros((0, 0));
/// bn.forward(array![[1.0, 3.0, 5.0, 5.0]].view(), &mut y, Mode::Train, &mut Context::new())?;
/// assert!((y[[0, 0]] + 1.0).abs() < 1e-4 && y[[0, 2]] == 0.0);
/// // Channel 0: mean 2, unbiased variance 2; the running statistics moved by 0.1.
/// assert!((bn.running_mean()[0] - 0.2).abs() < 1e-12 && (bn.running_var()[0] - 1.1).abs() < 1e-12);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm2d<F: Float> {
    pub(super) core: Core<F>,
    image: ImageShape,
}

impl<F: Float> BatchNorm2d<F> {
    /// `nn.BatchNorm2d(image.channels)` with PyTorch's defaults, for `image`s.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the image has an empty dimension.
    pub fn new(image: ImageShape) -> Result<Self> {
        BatchNormConfig::new(image.channels).build_2d((image.height, image.width))
    }

    pub(super) fn with_config(config: &BatchNormConfig, (height, width): (usize, usize)) -> Result<Self> {
        let image = ImageShape::new(config.num_features, height, width);
        image.check_not_empty(&describe_2d(config, image))?;
        let core = Core::new(config, "BatchNorm2d", "channel")?;
        Ok(BatchNorm2d { core, image })
    }

    /// The shape of the images (input and output).
    pub fn image(&self) -> ImageShape {
        self.image
    }
}

/// `"BatchNorm2d(C, …; C×H×W)"`.
fn describe_2d(config: &BatchNormConfig, image: ImageShape) -> String {
    format!("BatchNorm2d({}{}; {image})", config.num_features, config.describe_settings())
}

impl<F: Float> Layer<F> for BatchNorm2d<F> {
    fn kind(&self) -> &'static str {
        "BatchNorm2d"
    }

    fn describe(&self) -> String {
        describe_2d(&self.core.config, self.image)
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        check_image_features(&|| self.describe(), self.image, input_features)?;
        Ok(input_features)
    }

    fn image_shape(&self) -> Option<ImageShape> {
        Some(self.image)
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let (config, image) = (self.core.config, self.image);
        let name = || describe_2d(&config, image);
        check_image_input(&name, "input", &input, image, None)?;
        self.core.forward(&name, input, output, mode, image.spatial())
    }

    fn backward(
        &mut self,
        input: ArrayView2<'_, F>,
        _output: ArrayView2<'_, F>,
        grad_output: ArrayView2<'_, F>,
        grad_input: Option<&mut Array2<F>>,
        _ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let (config, image) = (self.core.config, self.image);
        let name = || describe_2d(&config, image);
        check_image_input(&name, "input", &input, image, None)?;
        self.core.backward(&name, input, grad_output, grad_input, image.spatial())
    }

    fn visit_parameters<'a>(&'a self, visitor: &mut dyn FnMut(ParamView<'a, F>)) {
        self.core.visit_parameters(visitor);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(ParamViewMut<'a, F>)) {
        self.core.visit_parameters_mut(visitor);
    }

    /// Buffers in the order `running_mean`, `running_var`, `num_batches_tracked` (PyTorch's).
    fn visit_buffers<'a>(&'a self, visitor: &mut dyn FnMut(BufferView<'a, F>)) {
        self.core.visit_buffers(visitor);
    }

    fn visit_buffers_mut<'a>(&'a mut self, visitor: &mut dyn FnMut(BufferViewMut<'a, F>)) {
        self.core.visit_buffers_mut(visitor);
    }
}

impl<F: Float> BatchNorm2d<F> {
    /// The number of channels (the [`BatchNorm`] trait's `num_features`).
    pub fn channels(&self) -> usize {
        BatchNorm::num_features(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use ndarray::Array1;

    fn image() -> ImageShape {
        ImageShape::new(3, 2, 3)
    }

    fn input(batch: usize) -> Array2<f64> {
        Array2::from_shape_fn((batch, image().features()), |(i, j)| {
            ((i * 7 + j * 5) % 11) as f64 / 4.0 - 1.0 + (j / 6) as f64
        })
    }

    /// Per-channel mean and biased variance over batch and positions, by definition.
    fn channel_moments(x: &Array2<f64>, c: usize) -> (f64, f64) {
        let s = image().spatial();
        let values: Vec<f64> = x
            .rows()
            .into_iter()
            .flat_map(|r| r.iter().skip(c * s).take(s).copied().collect::<Vec<_>>())
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        (mean, values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn train_normalizes_each_channel_over_batch_and_positions() {
        let mut bn = BatchNorm2d::<f64>::new(image()).unwrap();
        bn.weight_mut().unwrap().assign(&Array1::from(vec![2.0, 0.5, -1.0]));
        bn.bias_mut().unwrap().assign(&Array1::from(vec![1.0, 0.0, 0.25]));
        let x = input(4);
        let mut y = Array2::zeros((0, 0));
        bn.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let s = image().spatial();
        for c in 0..3 {
            let (mean, var) = channel_moments(&x, c);
            let (w, b) = (bn.weight().unwrap()[c], bn.bias().unwrap()[c]);
            for n in 0..4 {
                for p in 0..s {
                    let expected = w * (x[[n, c * s + p]] - mean) / (var + 1e-5).sqrt() + b;
                    assert!((y[[n, c * s + p]] - expected).abs() < 1e-12);
                }
            }
            // Unbiased variance over n = 4·6 = 24 entries.
            assert!((bn.running_mean()[c] - 0.1 * mean).abs() < 1e-12);
            assert!((bn.running_var()[c] - (0.9 + 0.1 * var * 24.0 / 23.0)).abs() < 1e-12);
        }
        assert_eq!(bn.num_batches_tracked(), 1);
    }

    #[test]
    fn gradients_pass_finite_difference_check_in_train_and_eval_mode() {
        for affine in [true, false] {
            let mut bn = BatchNormConfig::new(3).affine(affine).build_2d::<f64>((2, 3)).unwrap();
            if affine {
                bn.weight_mut().unwrap().assign(&Array1::from(vec![1.5, -0.7, 0.3]));
                bn.bias_mut().unwrap().assign(&Array1::from(vec![0.2, 0.0, -1.0]));
            }
            let report = check_layer(&mut bn, &input(3), GradCheckConfig::default()).unwrap();
            assert_eq!(report.tensors.len(), if affine { 3 } else { 1 });
            report.within(1e-6).unwrap();
        }
        let mut bn = BatchNorm2d::<f64>::new(image()).unwrap();
        let mut y = Array2::zeros((0, 0));
        bn.forward(input(3).view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
        let config = GradCheckConfig { mode: Mode::Eval, ..GradCheckConfig::default() };
        check_layer(&mut bn, &input(2), config).unwrap().within(1e-6).unwrap();
    }

    #[test]
    fn a_single_image_trains_but_a_single_value_per_channel_does_not() {
        // PyTorch accepts a batch of one image when it has more than one position.
        let mut bn = BatchNorm2d::<f64>::new(image()).unwrap();
        let mut y = Array2::zeros((0, 0));
        assert!(bn.forward(input(1).view(), &mut y, Mode::Train, &mut Context::new()).is_ok());
        let mut one_pixel = BatchNorm2d::<f64>::new(ImageShape::new(2, 1, 1)).unwrap();
        let err = one_pixel
            .forward(Array2::ones((1, 2)).view(), &mut y, Mode::Train, &mut Context::new())
            .unwrap_err();
        assert!(err.to_string().contains("more than 1 value per channel"), "{err}");
        assert_eq!(one_pixel.num_batches_tracked(), 0);
    }

    #[test]
    fn names_sizes_and_errors() {
        let bn = BatchNorm2d::<f32>::new(image()).unwrap();
        assert_eq!(bn.describe(), "BatchNorm2d(3; 3×2×3)");
        let mut names = Vec::new();
        bn.visit_parameters(&mut |p| names.push(p.name));
        bn.visit_buffers(&mut |b| names.push(b.name()));
        assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
        assert_eq!((bn.channels(), bn.image_shape()), (3, Some(image())));
        let err = bn.output_features(17).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }) && err.to_string().contains("3×2×3"), "{err}");
        let err = BatchNormConfig::new(3).build_2d::<f32>((0, 3)).unwrap_err();
        assert!(err.to_string().contains("height"), "{err}");
        let err = BatchNormConfig::new(3).momentum(Some(2.0)).build_2d::<f32>((2, 3)).unwrap_err();
        assert!(err.to_string().contains("BatchNorm2d") && err.to_string().contains("momentum"), "{err}");
    }

    #[test]
    fn passes_split_between_threads_give_the_same_bits() {
        // 16 images of 16×32×32: 2¹⁸ entries, cut between threads by channels (statistics) and
        // by rows (normalization, input gradient); each channel is still summed in row order.
        let image = ImageShape::new(16, 32, 32);
        let x = Array2::from_shape_fn((16, image.features()), |(i, j)| ((i * 31 + j * 7) % 97) as f32 / 13.0);
        let dy = x.mapv(|v| (v * 3.0).sin());
        let run = || {
            let mut bn = BatchNorm2d::<f32>::new(image).unwrap();
            let (mut y, mut dx) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
            bn.forward(x.view(), &mut y, Mode::Train, &mut Context::new()).unwrap();
            bn.backward(x.view(), y.view(), dy.view(), Some(&mut dx), &mut Context::new()).unwrap();
            (y, dx, bn.weight_grad().unwrap().clone(), bn.running_var().to_owned())
        };
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        assert_eq!(pool(1).install(run), pool(2).install(run));
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut b64 = BatchNorm2d::<f64>::new(image()).unwrap();
        let mut b32 = BatchNorm2d::<f32>::new(image()).unwrap();
        let x = input(5);
        let (mut y64, mut y32) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
        b64.forward(x.view(), &mut y64, Mode::Train, &mut Context::new()).unwrap();
        b32.forward(x.mapv(|v| v as f32).view(), &mut y32, Mode::Train, &mut Context::new()).unwrap();
        assert!(y64.iter().zip(&y32).all(|(a, b)| (a - *b as f64).abs() < 1e-5));
    }
}
