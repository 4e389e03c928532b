//! [`CifarResNet`]: the 6n+2-layer residual networks of He et al. for CIFAR-10, and their plain
//! counterparts.

use std::sync::Arc;

use rand::RngCore;

use crate::activation::{Activation, Relu};
use crate::init::{FanMode, Initializer, KaimingNormal, LinearDefault};
use crate::layers::{ImageShape, Sequential, SequentialBuilder, ShortcutKind};
use crate::{Error, Float, Result};

/// The CIFAR-10 networks of He et al. (2016, "Deep Residual Learning for Image Recognition",
/// §4.2): a 3×3 convolution with batch normalization and ReLU, then `stages` stages of `n`
/// [basic blocks](SequentialBuilder::basic_block) each — `widths[i]` channels in stage `i`, the
/// first block of every stage after the first halving the image with stride 2 — then global
/// average pooling and a fully connected layer. Each block holds two convolutions, so the
/// network has `2·stages·n + 2` weighted layers: with the paper's three stages of widths
/// 16/32/64, `6n + 2` = 20, 32, 44, 56, 110 for n = 3, 5, 7, 9, 18.
///
/// The *plain* counterpart ([`CifarResNet::plain`]) has exactly the same layers without the
/// shortcuts: the networks whose training error gets *worse* with depth (the paper's Fig. 1 and
/// Fig. 6, "degradation"), while the residual ones get better.
///
/// Defaults: option A shortcuts ([`ShortcutKind::ZeroPad`], the paper's choice for CIFAR),
/// convolutions without bias, initialized as torchvision's ResNets
/// (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`: N(0, 2/(out·kH·kW))), and
/// PyTorch's default initialization for the classifier.
///
/// ```
/// use gradflow::Layer;
/// use gradflow::layers::{CifarResNet, ImageShape};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let resnet20 = CifarResNet::new(20, &[16, 32, 64], 10).build::<f32>(ImageShape::new(3, 32, 32), &mut rng)?;
/// // stem (conv, BN, ReLU), 9 × (block, ReLU), pooling, flatten, classifier.
/// assert_eq!(resnet20.len(), 3 + 18 + 3);
/// // 0.27M parameters, as the paper's Table 6 gives for ResNet-20.
/// assert_eq!(resnet20.num_parameters(), 269_722);
/// let plain20 = CifarResNet::new(20, &[16, 32, 64], 10).plain().build::<f32>(ImageShape::new(3, 32, 32), &mut rng)?;
/// assert_eq!(plain20.len(), 3 + 9 * 6 + 3);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CifarResNet {
    /// Weighted layers, `2·stages·n + 2`.
    pub depth: usize,
    /// Channels of each stage (the paper: 16, 32, 64).
    pub widths: Vec<usize>,
    /// Output classes.
    pub classes: usize,
    /// Whether the blocks have shortcuts (`false`: the plain network).
    pub residual: bool,
    /// The shortcut of the blocks that change the shape.
    pub shortcut: ShortcutKind,
    /// Initializer of every convolution (default: Kaiming normal, fan-out, gain √2).
    pub conv_init: Arc<dyn Initializer>,
}

impl CifarResNet {
    /// The residual network of `depth` layers with stages of `widths` channels and `classes`
    /// outputs, option A shortcuts.
    pub fn new(depth: usize, widths: &[usize], classes: usize) -> Self {
        let relu_gain = Activation::<f64>::gain(&Relu);
        CifarResNet {
            depth,
            widths: widths.to_vec(),
            classes,
            residual: true,
            shortcut: ShortcutKind::ZeroPad,
            conv_init: Arc::new(
                KaimingNormal::new(FanMode::FanOut, Some(relu_gain)).expect("√2 is a valid gain"),
            ),
        }
    }

    /// The same network without shortcuts.
    pub fn plain(mut self) -> Self {
        self.residual = false;
        self
    }

    /// Sets the shortcut of the blocks that change the shape.
    pub fn shortcut(mut self, shortcut: ShortcutKind) -> Self {
        self.shortcut = shortcut;
        self
    }

    /// Sets the initializer of the convolutions.
    pub fn conv_init(mut self, init: impl Initializer + 'static) -> Self {
        self.conv_init = Arc::new(init);
        self
    }

    /// Blocks per stage, `n = (depth − 2) / (2·stages)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `depth` when it is not `2·stages·n + 2` for some n ≥ 1 or
    /// exceeds [`crate::limits::MAX_LAYERS`], and naming `widths` or `classes` when they are
    /// empty or zero.
    pub fn blocks_per_stage(&self) -> Result<usize> {
        let name = if self.residual { "CifarResNet" } else { "CifarResNet (plain)" };
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(Error::config(
                name,
                "widths",
                format!("need at least one stage, none of 0 channels: {:?}", self.widths),
            ));
        }
        if self.classes == 0 {
            return Err(Error::config(name, "classes", "must be at least 1, got 0"));
        }
        if self.depth > crate::limits::MAX_LAYERS {
            // Checked first: the builder adds every block before any size is checked.
            return Err(Error::config(
                name,
                "depth",
                format!(
                    "{} weighted layers are more than the limit of {} (gradflow::limits::MAX_LAYERS)",
                    self.depth,
                    crate::limits::MAX_LAYERS
                ),
            ));
        }
        let per_block = 2 * self.widths.len();
        if self.depth < 2 + per_block || !(self.depth - 2).is_multiple_of(per_block) {
            let examples: Vec<String> = (1..=4).map(|n| (per_block * n + 2).to_string()).collect();
            return Err(Error::config(
                name,
                "depth",
                format!(
                    "must be {per_block}n + 2 for {} stages ({}, …), got {}",
                    self.widths.len(),
                    examples.join(", "),
                    self.depth
                ),
            ));
        }
        Ok((self.depth - 2) / per_block)
    }

    /// The network as a builder for `input` images, to add to or build.
    ///
    /// # Errors
    /// As [`CifarResNet::blocks_per_stage`].
    pub fn builder<F: Float>(&self, input: ImageShape) -> Result<SequentialBuilder<F>> {
        let n = self.blocks_per_stage()?;
        let relu_gain = Activation::<F>::gain(&Relu);
        let mut builder = Sequential::image_builder(input)
            .init(self.conv_init.clone())
            .conv2d_with(self.widths[0], 3, move |c| c.padding(1).bias(false).activation_gain(relu_gain))
            .batch_norm2d()
            .activation(Relu);
        for (stage, &width) in self.widths.iter().enumerate() {
            for block in 0..n {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                builder = if self.residual {
                    builder.basic_block(width, stride, self.shortcut)
                } else {
                    builder.plain_block(width, stride)
                };
            }
        }
        Ok(builder.global_avg_pool2d().flatten().init(LinearDefault).linear(self.classes))
    }

    /// Builds the network for `input` images, drawing its weights from `rng`.
    ///
    /// # Errors
    /// As [`CifarResNet::blocks_per_stage`], and the shape errors of the layers (e.g. images too
    /// small for the stages' strides are fine: a 1×1 image stays 1×1).
    pub fn build<F: Float>(&self, input: ImageShape, rng: &mut dyn RngCore) -> Result<Sequential<F>> {
        self.builder(input)?.build(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layer;
    use rand::SeedableRng;

    #[test]
    fn depths_are_6n_plus_2_and_others_are_refused() {
        for (depth, n) in [(20, 3), (32, 5), (44, 7), (56, 9), (110, 18)] {
            assert_eq!(CifarResNet::new(depth, &[16, 32, 64], 10).blocks_per_stage().unwrap(), n);
        }
        let err = CifarResNet::new(21, &[16, 32, 64], 10).blocks_per_stage().unwrap_err();
        assert!(
            err.to_string().contains("`depth`")
                && err.to_string().contains("6n + 2")
                && err.to_string().contains("20, 26"),
            "{err}"
        );
        assert!(CifarResNet::new(8, &[4, 8, 16], 10).blocks_per_stage().is_ok());
        assert!(CifarResNet::new(20, &[], 10).blocks_per_stage().is_err());
        assert!(CifarResNet::new(20, &[4, 8, 16], 0).blocks_per_stage().is_err());
    }

    #[test]
    fn plain_and_residual_networks_have_the_same_weighted_layers() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let image = ImageShape::new(1, 8, 8);
        let resnet = CifarResNet::new(14, &[2, 4], 3).build::<f32>(image, &mut rng).unwrap();
        let plain = CifarResNet::new(14, &[2, 4], 3).plain().build::<f32>(image, &mut rng).unwrap();
        let weights = |m: &Sequential<f32>| {
            crate::named_parameters(m)
                .into_iter()
                .filter(|(n, p)| n.ends_with("weight") && p.value.ndim() != 1)
                .count()
        };
        // 14 weighted layers: 12 convolutions in blocks, the stem and the classifier.
        assert_eq!((weights(&resnet), weights(&plain)), (14, 14));
        assert_eq!(resnet.num_parameters(), plain.num_parameters(), "option A adds no parameters");
        assert_eq!(resnet.check(64).unwrap(), 3);
        assert_eq!(
            resnet.layer_at("9").unwrap().describe(),
            "Residual(128→64, shortcut ZeroPadShortcut(2×8×8→4×4×4))"
        );
        let projected = CifarResNet::new(14, &[2, 4], 3)
            .shortcut(ShortcutKind::Projection)
            .build::<f32>(image, &mut rng)
            .unwrap();
        assert_eq!(projected.num_parameters(), resnet.num_parameters() + 2 * 4 + 2 * 4);
    }
}
