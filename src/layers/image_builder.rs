//! The image steps of [`SequentialBuilder`]: convolutions, pooling, batch normalization,
//! dropout, flattening, and the basic blocks of residual networks.

use rand::RngCore;

use super::builder::Shape;
use crate::activation::{Activation, Relu};
use crate::layer::Layer;
use crate::layers::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2dConfig, Dropout, Dropout2d, Flatten, MaxPool2d,
    ResidualBlock, SequentialBuilder, ZeroPadShortcut,
};
use crate::{Float, Result};

/// The shortcut of a residual block whose stage changes the image shape (fewer positions, more
/// channels), after He et al. (2016, "Deep Residual Learning for Image Recognition", §3.3).
/// Blocks that keep the shape always use the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShortcutKind {
    /// Option A: the identity, subsampled and padded with zero channels
    /// ([`ZeroPadShortcut`]); no parameters. What He et al. use for CIFAR-10.
    #[default]
    ZeroPad,
    /// Option B: a projection, a 1×1 [`crate::layers::Conv2d`] with the block's stride and no
    /// bias, followed by a [`BatchNorm2d`] (as torchvision's ResNets): the child
    /// `"shortcut"` is a `Sequential` whose parameters are `shortcut.0.weight`,
    /// `shortcut.1.weight`, `shortcut.1.bias`.
    Projection,
}

/// Image layers. Each is made at build time for the image shape reached at that point (start
/// with [`crate::Sequential::image_builder`]), with the initializers in force when it was added;
/// a step that needs images where the rows are plain features is an error naming it.
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Relu;
/// use gradflow::layers::{ImageShape, ShortcutKind};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // A small VGG-style network on 1×28×28 images.
/// let cnn = Sequential::<f32>::image_builder(ImageShape::new(1, 28, 28))
///     .conv2d_with(8, 3, |c| c.padding(1)).batch_norm2d().activation(Relu).max_pool2d(2, 2)
///     .conv2d_with(16, 3, |c| c.padding(1)).batch_norm2d().activation(Relu).max_pool2d(2, 2)
///     .flatten().dropout(0.25).linear(10)
///     .build(&mut rng)?;
/// assert_eq!(cnn.check(28 * 28)?, 10);
/// assert_eq!(cnn.layer_at("4").unwrap().describe(), "Conv2d(8→16, 3×3, padding=1; 8×14×14→16×14×14)");
///
/// // Residual basic blocks: same shape (identity shortcut), then a stage with stride 2.
/// let resnet = Sequential::<f32>::image_builder(ImageShape::new(3, 8, 8))
///     .conv2d_with(4, 3, |c| c.padding(1).bias(false)).batch_norm2d().activation(Relu)
///     .basic_block(4, 1, ShortcutKind::ZeroPad)
///     .basic_block(8, 2, ShortcutKind::Projection)
///     .global_avg_pool2d().flatten().linear(10)
///     .build(&mut rng)?;
/// assert_eq!(resnet.layer_at("5.shortcut.0").unwrap().describe(), "Conv2d(4→8, 1×1, stride=2, bias=false; 4×8×8→8×4×4)");
/// # Ok::<(), gradflow::Error>(())
/// ```
impl<F: Float> SequentialBuilder<F> {
    /// Adds `Conv2d(C → out_channels, kernel_size × kernel_size)` with PyTorch's defaults
    /// (stride 1, no padding), the builder's initializers and bias setting, and the gain of the
    /// activation that follows it (when one does).
    pub fn conv2d(self, out_channels: usize, kernel_size: usize) -> Self {
        self.conv2d_with(out_channels, kernel_size, |c| c)
    }

    /// [`SequentialBuilder::conv2d`], with the configuration adjusted by `configure` (stride,
    /// padding, dilation, groups, bias, initializers): e.g. `|c| c.stride(2).padding(1)`.
    pub fn conv2d_with(
        mut self,
        out_channels: usize,
        kernel_size: usize,
        configure: impl FnOnce(Conv2dConfig) -> Conv2dConfig + Send + 'static,
    ) -> Self {
        self.specs.push(super::builder::Spec::Conv {
            out: out_channels,
            kernel: kernel_size,
            configure: Box::new(configure),
            init: self.init.clone(),
            bias_init: self.bias_init.clone(),
            bias: self.bias,
        });
        self
    }

    /// Adds a [`BatchNorm2d`] over the channels of the current images, with PyTorch's defaults.
    pub fn batch_norm2d(self) -> Self {
        self.companion(|shape, _| Ok(Box::new(BatchNorm2d::<F>::new(shape.image("BatchNorm2d")?)?)))
    }

    /// Adds `MaxPool2d(kernel_size, stride)`.
    pub fn max_pool2d(self, kernel_size: usize, stride: usize) -> Self {
        self.companion(move |shape, _| {
            Ok(Box::new(MaxPool2d::<F>::new(shape.image("MaxPool2d")?, kernel_size, stride)?))
        })
    }

    /// Adds `MaxPool2d(kernel_size, stride, padding)` (e.g. torchvision ResNet's
    /// `MaxPool2d(3, 2, 1)` after its first convolution).
    pub fn max_pool2d_padded(self, kernel_size: usize, stride: usize, padding: usize) -> Self {
        self.companion(move |shape, _| {
            let image = shape.image("MaxPool2d")?;
            let (k, s, p) = ((kernel_size, kernel_size), (stride, stride), (padding, padding));
            Ok(Box::new(MaxPool2d::<F>::with_options(image, k, s, p, (1, 1))?))
        })
    }

    /// Adds `AvgPool2d(kernel_size, stride)`.
    pub fn avg_pool2d(self, kernel_size: usize, stride: usize) -> Self {
        self.companion(move |shape, _| {
            Ok(Box::new(AvgPool2d::<F>::new(shape.image("AvgPool2d")?, kernel_size, stride)?))
        })
    }

    /// Adds global average pooling, `AdaptiveAvgPool2d(1)`: each channel's mean.
    pub fn global_avg_pool2d(self) -> Self {
        self.companion(|shape, _| {
            Ok(Box::new(AdaptiveAvgPool2d::<F>::global(shape.image("AdaptiveAvgPool2d")?)?))
        })
    }

    /// Adds a [`Flatten`]: the layers after it see plain features.
    pub fn flatten(self) -> Self {
        self.companion(|shape, _| Ok(Box::new(Flatten::<F>::new(shape.image("Flatten")?))))
    }

    /// Adds a [`Dropout`] of probability `p`, whose seed is drawn from the generator passed to
    /// [`SequentialBuilder::build`] (so the model's seed decides its masks).
    pub fn dropout(self, p: f64) -> Self {
        self.companion(move |shape, rng| {
            let dropout = Dropout::<F>::new(p, rng.next_u64())?;
            Ok(Box::new(match shape.image {
                Some(image) => dropout.with_image(image),
                None => dropout,
            }))
        })
    }

    /// Adds a [`Dropout2d`] (whole channels) of probability `p`, seeded like
    /// [`SequentialBuilder::dropout`].
    pub fn dropout2d(self, p: f64) -> Self {
        self.companion(move |shape, rng| {
            Ok(Box::new(Dropout2d::<F>::new(p, shape.image("Dropout2d")?, rng.next_u64())?))
        })
    }

    /// Adds He et al.'s basic residual block (2016, Fig. 2 and §4.2) and the ReLU after it:
    /// `relu(shortcut(x) + BN(conv3×3(relu(BN(conv3×3(x))))))`, the first convolution with
    /// `stride` and both with `out_channels`, padding 1 and no bias (batch normalization follows
    /// them). The shortcut is the identity when the shape does not change, `shortcut` otherwise.
    /// Each convolution's initializer sees ReLU's gain (√2).
    ///
    /// The block is a [`ResidualBlock`] with children `"branch"` (a `Sequential` of conv, BN,
    /// ReLU, conv, BN: parameters `branch.0.weight`, `branch.1.weight`, `branch.1.bias`,
    /// `branch.3.weight`, …) and, for option B, `"shortcut"`; the ReLU is the next layer.
    pub fn basic_block(self, out_channels: usize, stride: usize, shortcut: ShortcutKind) -> Self {
        let relu_gain = Activation::<F>::gain(&Relu);
        let mut branch = self
            .sub_builder()
            .conv2d_with(out_channels, 3, move |c| {
                c.stride(stride).padding(1).bias(false).activation_gain(relu_gain)
            })
            .batch_norm2d()
            .activation(Relu)
            .conv2d_with(out_channels, 3, move |c| c.padding(1).bias(false).activation_gain(relu_gain))
            .batch_norm2d();
        let projection = self
            .sub_builder()
            .conv2d_with(out_channels, 1, move |c| c.stride(stride).bias(false))
            .batch_norm2d();
        self.deferred(move |shape: Shape, rng: &mut dyn RngCore| -> Result<Box<dyn Layer<F>>> {
            let image = shape.image("basic block")?;
            branch.input = shape;
            let branch = branch.build(rng).map_err(|e| e.at(&"branch"))?;
            if stride == 1 && out_channels == image.channels {
                return Ok(Box::new(ResidualBlock::identity(branch, shape.features)?));
            }
            let shortcut: Box<dyn Layer<F>> = match shortcut {
                ShortcutKind::ZeroPad => Box::new(
                    ZeroPadShortcut::new(image, out_channels, stride).map_err(|e| e.at(&"shortcut"))?,
                ),
                ShortcutKind::Projection => {
                    let mut projection = projection;
                    projection.input = shape;
                    Box::new(projection.build(rng).map_err(|e| e.at(&"shortcut"))?)
                }
            };
            Ok(Box::new(ResidualBlock::with_shortcut_boxed(Box::new(branch), shortcut, shape.features)?))
        })
        .activation(Relu)
    }

    /// The plain counterpart of [`SequentialBuilder::basic_block`]: the same layers without
    /// the shortcut, `relu(BN(conv3×3(relu(BN(conv3×3(x))))))`, added as six layers.
    pub fn plain_block(self, out_channels: usize, stride: usize) -> Self {
        let relu_gain = Activation::<F>::gain(&Relu);
        self.conv2d_with(out_channels, 3, move |c| {
            c.stride(stride).padding(1).bias(false).activation_gain(relu_gain)
        })
        .batch_norm2d()
        .activation(Relu)
        .conv2d_with(out_channels, 3, move |c| c.padding(1).bias(false).activation_gain(relu_gain))
        .batch_norm2d()
        .activation(Relu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};
    use crate::layers::ImageShape;
    use crate::{Mode, Network, Sequential};
    use ndarray::Array2;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    #[test]
    fn the_builder_tracks_the_image_shape() {
        let model = Sequential::<f64>::image_builder(ImageShape::new(3, 9, 9))
            .conv2d_with(4, 3, |c| c.stride(2).padding(1))
            .activation(Relu)
            .max_pool2d(2, 1)
            .avg_pool2d(2, 2)
            .dropout2d(0.1)
            .global_avg_pool2d()
            .flatten()
            .dropout(0.5)
            .linear(2)
            .build(&mut rng(0))
            .unwrap();
        let images: Vec<Option<ImageShape>> = model.layers().map(|l| l.image_shape()).collect();
        let s = |c, h, w| Some(ImageShape::new(c, h, w));
        assert_eq!(
            images,
            [s(4, 5, 5), s(4, 5, 5), s(4, 4, 4), s(4, 2, 2), s(4, 2, 2), s(4, 1, 1), None, None, None]
        );
        assert_eq!(model.check(243).unwrap(), 2);
    }

    #[test]
    fn image_steps_on_plain_features_name_the_step() {
        let err = Sequential::<f32>::builder(16).linear(8).batch_norm2d().build(&mut rng(0)).unwrap_err();
        assert!(err.to_string().starts_with("1: BatchNorm2d") && err.to_string().contains("images"), "{err}");
        let err = Sequential::<f32>::image_builder(ImageShape::new(1, 4, 4))
            .flatten()
            .conv2d(2, 3)
            .build(&mut rng(0))
            .unwrap_err();
        assert!(err.to_string().starts_with("1: Conv2d"), "{err}");
        let err = Sequential::<f32>::image_builder(ImageShape::new(1, 4, 4))
            .conv2d(2, 5)
            .build(&mut rng(0))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("0: Conv2d(1→2, 5×5)") && err.to_string().contains("1×4×4"),
            "{err}"
        );
    }

    #[test]
    fn basic_blocks_with_every_shortcut_pass_gradient_check() {
        for shortcut in [ShortcutKind::ZeroPad, ShortcutKind::Projection] {
            let mut model = Sequential::<f64>::image_builder(ImageShape::new(2, 4, 4))
                .basic_block(2, 1, shortcut)
                .basic_block(4, 2, shortcut)
                .build(&mut rng(1))
                .unwrap();
            let names: Vec<String> = crate::named_parameters(&model).into_iter().map(|(n, _)| n).collect();
            let mut expected = vec![
                "0.branch.0.weight",
                "0.branch.1.weight",
                "0.branch.1.bias",
                "0.branch.3.weight",
                "0.branch.4.weight",
                "0.branch.4.bias",
                "2.branch.0.weight",
                "2.branch.1.weight",
                "2.branch.1.bias",
                "2.branch.3.weight",
                "2.branch.4.weight",
                "2.branch.4.bias",
            ];
            if shortcut == ShortcutKind::Projection {
                expected.extend(["2.shortcut.0.weight", "2.shortcut.1.weight", "2.shortcut.1.bias"]);
            }
            assert_eq!(names, expected);
            assert_eq!(model.layer_at("2").unwrap().image_shape(), Some(ImageShape::new(4, 2, 2)));
            let x = Array2::from_shape_fn((3, 32), |(i, j)| ((i * 11 + j * 7) % 13) as f64 / 6.0 - 1.0);
            let report = check_layer(&mut model, &x, GradCheckConfig::default()).unwrap();
            report.within(1e-5).unwrap_or_else(|e| panic!("{shortcut:?}: {e}"));
        }
    }

    #[test]
    fn a_plain_block_is_a_basic_block_without_the_shortcut() {
        let plain = Sequential::<f32>::image_builder(ImageShape::new(2, 4, 4))
            .plain_block(4, 2)
            .build(&mut rng(2))
            .unwrap();
        let kinds: Vec<&str> = plain.layers().map(|l| l.kind()).collect();
        assert_eq!(kinds, ["Conv2d", "BatchNorm2d", "relu", "Conv2d", "BatchNorm2d", "relu"]);
        let mut net = Network::new(plain);
        let y = net.forward(Array2::ones((2, 32)).view(), Mode::Train).unwrap();
        assert_eq!(y.dim(), (2, 16));
    }
}
