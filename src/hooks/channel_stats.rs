//! [`ChannelStats`]: dead and saturated *channels* of an activation layer over images.

use serde::{Deserialize, Serialize};

use crate::Float;
use crate::activation::{Activation, ActivationFamily};
use crate::layers::ImageShape;

/// How an activation layer over images behaves channel by channel.
///
/// In a convolutional network a unit is a *channel* — one filter's feature map, the same
/// weights at every position — not a single entry of the `(batch, C·H·W)` rows. The per-entry
/// view of [`super::ActivationStats`] can mislead there: a ReLU channel that fires only in the
/// middle of the image leaves its border entries at 0 for every sample, so they count as dead
/// units although the filter is alive and learning; and a channel that is entirely off (a dead
/// filter, whose weights get no gradient at all) counts for only `1/C` of the entries. These
/// statistics look at each channel as a whole, over all its positions and samples.
///
/// ```
/// use gradflow::activation::Relu;
/// use gradflow::hooks::ChannelStats;
/// use gradflow::layers::ImageShape;
/// use ndarray::array;
///
/// // Two images of 2 channels × 2 positions. Channel 0 fires at its first position only, so
/// // its second entry is 0 for both samples (a dead *unit*); channel 1 never fires.
/// let x = array![[1.0f64, -1.0, -2.0, -3.0], [2.0, -1.0, -1.0, -0.5]];
/// let y = x.mapv(|v: f64| v.max(0.0));
/// let s = ChannelStats::of(x.view(), y.view(), &Relu, ImageShape::new(2, 1, 2), 0.05).unwrap();
/// assert_eq!(s.channels, 2);
/// assert_eq!(s.dead_fraction, Some(0.5)); // one channel of two is dead …
/// // … while three units of four are: the per-entry view counts channel 0's border.
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelStats {
    /// The number of channels `C`.
    pub channels: usize,
    /// For rectifiers: the share of channels whose derivative is 0 at every position of every
    /// sample of the batch — dead filters. `None` for other activations.
    pub dead_fraction: Option<f64>,
    /// For saturating activations: the share of channels in which more than half of the entries
    /// are saturated (derivative below the recorder's saturation level × the largest
    /// derivative). `None` for other activations.
    pub saturated_fraction: Option<f64>,
    /// For saturating activations: the largest share of saturated entries in any one channel.
    pub max_channel_saturation: Option<f64>,
}

impl ChannelStats {
    /// The channel statistics of an activation layer with `input` and `output` rows of
    /// `image`s, or `None` when the rows are not `image.features()` long (or empty) or the
    /// activation is neither saturating nor a rectifier.
    pub fn of<F: Float>(
        input: ndarray::ArrayView2<'_, F>,
        output: ndarray::ArrayView2<'_, F>,
        activation: &dyn Activation<F>,
        image: ImageShape,
        saturation_level: f64,
    ) -> Option<Self> {
        let family = activation.family();
        if family == ActivationFamily::Linear
            || input.dim() != output.dim()
            || output.ncols() != image.features()
            || output.is_empty()
        {
            return None;
        }
        let bound = F::lit(saturation_level * activation.max_derivative());
        let (x, y) = (input.as_standard_layout(), output.as_standard_layout());
        let (x, y) = (x.as_slice().expect("standard layout"), y.as_slice().expect("standard layout"));
        let (width, spatial) = (image.features(), image.spatial());
        const CHUNK: usize = 1024;
        let ones = [F::one(); CHUNK];
        let mut derivative = [F::zero(); CHUNK];
        let (mut dead, mut mostly_saturated, mut max_saturation) = (0usize, 0usize, 0.0f64);
        for c in 0..image.channels {
            let (mut alive, mut saturated) = (false, 0usize);
            for (x, y) in x.chunks_exact(width).zip(y.chunks_exact(width)) {
                let (x, y) = (&x[c * spatial..(c + 1) * spatial], &y[c * spatial..(c + 1) * spatial]);
                for (x, y) in x.chunks(CHUNK).zip(y.chunks(CHUNK)) {
                    let d = &mut derivative[..x.len()];
                    activation.backward_slice(x, y, &ones[..x.len()], d);
                    alive |= d.iter().any(|&v| v != F::zero());
                    saturated += d.iter().filter(|v| v.abs() < bound).count();
                }
            }
            dead += usize::from(!alive);
            let share = saturated as f64 / (output.nrows() * spatial) as f64;
            mostly_saturated += usize::from(share > 0.5);
            max_saturation = max_saturation.max(share);
        }
        let of_channels = |n: usize| n as f64 / image.channels as f64;
        let rectifier = family == ActivationFamily::Rectifier;
        Some(ChannelStats {
            channels: image.channels,
            dead_fraction: rectifier.then(|| of_channels(dead)),
            saturated_fraction: (!rectifier).then(|| of_channels(mostly_saturated)),
            max_channel_saturation: (!rectifier).then_some(max_saturation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{Identity, Relu, Tanh};
    use ndarray::Array2;

    #[test]
    fn saturated_channels_are_counted_as_a_whole() {
        // 3 channels of 2×2, 2 samples: channel 0 is far in tanh's tails everywhere, channel 1
        // in 3 entries of 8, channel 2 nowhere.
        let image = ImageShape::new(3, 2, 2);
        let x = Array2::from_shape_fn((2, 12), |(n, j)| match j / 4 {
            0 => 5.0,
            1 if (n * 4 + j % 4) < 3 => -4.0,
            _ => 0.1,
        });
        let y = x.mapv(f64::tanh);
        let s = ChannelStats::of(x.view(), y.view(), &Tanh, image, 0.05).unwrap();
        assert_eq!(s.saturated_fraction, Some(1.0 / 3.0));
        assert_eq!(s.max_channel_saturation, Some(1.0));
        assert_eq!(s.dead_fraction, None);
    }

    #[test]
    fn rows_that_are_not_the_images_or_linear_activations_give_none() {
        let x = Array2::<f32>::ones((2, 8));
        assert!(ChannelStats::of(x.view(), x.view(), &Relu, ImageShape::new(3, 2, 2), 0.05).is_none());
        assert!(ChannelStats::of(x.view(), x.view(), &Identity, ImageShape::new(2, 2, 2), 0.05).is_none());
        let s = ChannelStats::of(x.view(), x.view(), &Relu, ImageShape::new(2, 2, 2), 0.05).unwrap();
        assert_eq!(s.dead_fraction, Some(0.0));
    }
}
