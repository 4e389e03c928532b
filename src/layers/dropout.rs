//! [`Dropout`] and [`Dropout2d`]: random zeroing in training, with PyTorch's inverted scaling,
//! drawn from an explicit seed and the network's step counter.

use ndarray::{Array2, ArrayView2};

use crate::hooks::Context;
use crate::layer::{Layer, Mode, check_shape, ensure_shape};
use crate::layers::{ImageShape, check_image_features, check_image_input, copy_into};
use crate::vectorize::vectorized;
use crate::{Error, Float, Result};

/// The probability and seed of a dropout layer, and the counter-based generator its masks are
/// drawn from (see [`Dropout::new`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mask {
    p: f64,
    seed: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Mask {
    fn new(component: &str, p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(
                component,
                "p",
                format!("the probability of dropping an entry must be in [0, 1), got {p}"),
            ));
        }
        Ok(Mask { p, seed })
    }

    /// The key of the pass at `step`.
    fn key(&self, step: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(step))
    }

    /// Entries at or above this are kept.
    fn threshold(&self) -> u64 {
        // p < 1, so p·2⁶⁴ < 2⁶⁴ (the cast saturates at the top in any case).
        (self.p * 18_446_744_073_709_551_616.0) as u64
    }

    /// `out[i] = x[i]·scale` where draw `i` keeps entry `i`, 0 elsewhere; `scale` is
    /// `1/(1 − p)` (inverted dropout: the expected output is the input).
    fn apply<F: Float>(&self, step: u64, x: &[F], out: &mut [F]) {
        F::dropout_entries(self.key(step), self.threshold(), F::lit(1.0 / (1.0 - self.p)), x, out);
    }

    /// The same with one draw per run of `spatial` entries (a channel).
    fn apply_channels<F: Float>(&self, step: u64, spatial: usize, x: &[F], out: &mut [F]) {
        F::dropout_channels(self.key(step), self.threshold(), F::lit(1.0 / (1.0 - self.p)), spatial, x, out);
    }
}

/// `out[i] = x[i]·scale` where draw `i` of the pass with `key` reaches `threshold`, 0 elsewhere.
pub(crate) fn dropout_entries<F: Float>(key: u64, threshold: u64, scale: F, x: &[F], out: &mut [F]) {
    vectorized(
        #[inline(always)]
        || {
            for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
                let draw = splitmix64(key.wrapping_add((i as u64).wrapping_mul(GOLDEN)));
                *o = if draw >= threshold { v * scale } else { F::zero() };
            }
        },
    )
}

/// [`dropout_entries`] with one draw per run of `spatial` entries.
pub(crate) fn dropout_channels<F: Float>(
    key: u64,
    threshold: u64,
    scale: F,
    spatial: usize,
    x: &[F],
    out: &mut [F],
) {
    vectorized(
        #[inline(always)]
        || {
            for (i, (o, x)) in out.chunks_exact_mut(spatial).zip(x.chunks_exact(spatial)).enumerate() {
                let draw = splitmix64(key.wrapping_add((i as u64).wrapping_mul(GOLDEN)));
                if draw >= threshold {
                    o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * scale);
                } else {
                    o.fill(F::zero());
                }
            }
        },
    )
}

/// Dropout (Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks from
/// overfitting"), as PyTorch's `nn.Dropout(p)`: in [`Mode::Train`] each entry is zeroed with
/// probability `p` and the others are multiplied by `1/(1 − p)`, so that the expected output is
/// the input and [`Mode::Eval`] is the identity. The backward pass applies the same mask and
/// scale to the gradient.
///
/// The mask is drawn from the layer's seed and the step of the pass: see [`Dropout::new`] for
/// why, and what that gives.
///
/// # Shapes
/// input `(batch, features)` → output of the same shape (any width).
///
/// ```
/// use gradflow::layers::Dropout;
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::Array2;
///
/// let mut dropout = Dropout::<f64>::new(0.25, 7)?;
/// let x = Array2::<f64>::ones((100, 100));
/// let mut y = Array2::zeros((0, 0));
/// dropout.forward(x.view(), &mut y, Mode::Train, &mut Context::new())?;
/// let kept = y.iter().filter(|&&v| v != 0.0).count();
/// assert!((7_200..7_800).contains(&kept)); // about 75% kept …
/// assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75)); // … and scaled by 1/(1 − p)
/// dropout.forward(x.view(), &mut y, Mode::Eval, &mut Context::new())?;
/// assert_eq!(y, x);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout<F: Float> {
    mask: Mask,
    image: Option<ImageShape>,
    /// The step and mode of the last forward pass.
    last: Option<(u64, Mode)>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> Dropout<F> {
    /// `nn.Dropout(p)`, drawing its masks from `seed` (see the type's documentation).
    ///
    /// # Where the randomness comes from
    /// Nothing hidden: the layer holds a `seed`, given when it is made (the builder draws it from
    /// the generator passed to `build`), and the mask of a training pass is a pure function of
    /// that seed, the **step counter** of the pass ([`Context::step`]: a [`crate::Network`]'s
    /// step, which advances with every backward pass) and the entry's position — the pattern of
    /// JAX/Flax training loops, which fold the step into an explicit key
    /// (`jax.random.fold_in(key, step)`). So the same seed gives the same masks at the same
    /// steps (a run is reproducible); running a step's forward pass again (as a gradient check
    /// does) draws the same mask, and the backward pass recomputes it instead of storing it. A
    /// layer driven by hand with [`Context::new`] is always at step 0 and so draws the same mask
    /// every time: pass a [`Context`] with a step, as [`crate::Network`] does, to vary it.
    ///
    /// The generator is counter-based: entry `i` is kept when
    /// `splitmix64(key + i·0x9E3779B97F4A7C15) ≥ p·2⁶⁴`, with
    /// `key = splitmix64(seed ⊕ splitmix64(step))` (SplitMix64: Steele, Lea & Flood 2014,
    /// "Fast splittable pseudorandom number generators"). Masks are not PyTorch's, whose global
    /// generator differs; in [`Mode::Eval`] both are the identity.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `p` when it is outside `[0, 1)`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        let mask = Mask::new("Dropout", p, seed)?;
        Ok(Dropout { mask, image: None, last: None, _float: std::marker::PhantomData })
    }

    /// Declares that the rows are `image`s (for [`Layer::image_shape`]: per-channel statistics
    /// in recorders); the layer then also refuses rows of another length. The builder does this
    /// for a dropout placed after image layers.
    pub fn with_image(mut self, image: ImageShape) -> Self {
        self.image = Some(image);
        self
    }

    /// The probability of zeroing an entry.
    pub fn p(&self) -> f64 {
        self.mask.p
    }

    /// The seed the masks are drawn from.
    pub fn seed(&self) -> u64 {
        self.mask.seed
    }
}

impl<F: Float> Layer<F> for Dropout<F> {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.mask.p)
    }

    fn output_features(&self, input_features: usize) -> Result<usize> {
        if let Some(image) = self.image {
            check_image_features(&|| self.describe(), image, input_features)?;
        }
        Ok(input_features)
    }

    fn image_shape(&self) -> Option<ImageShape> {
        self.image
    }

    fn forward(
        &mut self,
        input: ArrayView2<'_, F>,
        output: &mut Array2<F>,
        mode: Mode,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.last = None;
        if let Some(image) = self.image {
            check_image_input(&|| self.describe(), "input", &input, image, None)?;
        }
        ensure_shape(output, input.dim());
        if mode == Mode::Eval || self.mask.p == 0.0 {
            copy_into(input, output);
        } else {
            let x = input.as_standard_layout();
            let x = x.as_slice().expect("standard layout");
            let out = output.as_slice_mut().expect("buffers are standard layout");
            self.mask.apply(ctx.step(), x, out);
        }
        self.last = Some((ctx.step(), mode));
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
        let Some((step, mode)) = self.last else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        check_shape(
            &|| self.describe(),
            "grad_output",
            &grad_output,
            Some(input.nrows()),
            Some(input.ncols()),
        )?;
        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, grad_output.dim());
        if mode == Mode::Eval || self.mask.p == 0.0 {
            copy_into(grad_output, grad_input);
        } else {
            let dy = grad_output.as_standard_layout();
            let dy = dy.as_slice().expect("standard layout");
            self.mask.apply(step, dy, grad_input.as_slice_mut().expect("buffers are standard layout"));
        }
        Ok(())
    }
}

/// Channel dropout, as PyTorch's `nn.Dropout2d(p)`: in [`Mode::Train`] each channel of each
/// image is zeroed as a whole with probability `p` (the others scaled by `1/(1 − p)`), because
/// neighbouring entries of a feature map are strongly correlated and dropping them one by one
/// hardly regularizes (Tompson et al. 2015, "Efficient object localization using convolutional
/// networks"). [`Mode::Eval`] is the identity. The masks come from a seed and the step counter,
/// as for [`Dropout`] (draw `n·C + c` decides channel `c` of image `n`).
///
/// # Shapes
/// input `(batch, C·H·W)` (see [`ImageShape`]) → output of the same shape.
///
/// ```
/// use gradflow::layers::{Dropout2d, ImageShape};
/// use gradflow::{Layer, Mode, hooks::Context};
/// use ndarray::Array2;
///
/// let image = ImageShape::new(8, 4, 4);
/// let mut dropout = Dropout2d::<f32>::new(0.5, image, 1)?;
/// let mut y = Array2::zeros((0, 0));
/// dropout.forward(Array2::ones((10, 128)).view(), &mut y, Mode::Train, &mut Context::new())?;
/// // Every channel (16 entries) is all 0 or all 2.
/// for channel in y.as_slice().unwrap().chunks(16) {
///     assert!(channel.iter().all(|&v| v == channel[0]) && (channel[0] == 0.0 || channel[0] == 2.0));
/// }
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout2d<F: Float> {
    mask: Mask,
    image: ImageShape,
    last: Option<(u64, Mode)>,
    _float: std::marker::PhantomData<F>,
}

impl<F: Float> Dropout2d<F> {
    /// `nn.Dropout2d(p)` for `image`s, drawing its masks from `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `p` when it is outside `[0, 1)`, or the image when it has
    /// an empty dimension.
    pub fn new(p: f64, image: ImageShape, seed: u64) -> Result<Self> {
        let mask = Mask::new("Dropout2d", p, seed)?;
        image.check_not_empty("Dropout2d")?;
        Ok(Dropout2d { mask, image, last: None, _float: std::marker::PhantomData })
    }

    /// The probability of zeroing a channel.
    pub fn p(&self) -> f64 {
        self.mask.p
    }
}

impl<F: Float> Layer<F> for Dropout2d<F> {
    fn kind(&self) -> &'static str {
        "Dropout2d"
    }

    fn describe(&self) -> String {
        format!("Dropout2d(p={}; {})", self.mask.p, self.image)
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
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        self.last = None;
        check_image_input(&|| self.describe(), "input", &input, self.image, None)?;
        ensure_shape(output, input.dim());
        if mode == Mode::Eval || self.mask.p == 0.0 {
            copy_into(input, output);
        } else {
            let x = input.as_standard_layout();
            let out = output.as_slice_mut().expect("buffers are standard layout");
            self.mask.apply_channels(
                ctx.step(),
                self.image.spatial(),
                x.as_slice().expect("standard layout"),
                out,
            );
        }
        self.last = Some((ctx.step(), mode));
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
        let Some((step, mode)) = self.last else {
            return Err(Error::BackwardBeforeForward { layer: self.describe() });
        };
        let name = || self.describe();
        check_image_input(&name, "grad_output", &grad_output, self.image, Some(input.nrows()))?;
        let Some(grad_input) = grad_input else { return Ok(()) };
        ensure_shape(grad_input, grad_output.dim());
        if mode == Mode::Eval || self.mask.p == 0.0 {
            copy_into(grad_output, grad_input);
        } else {
            let dy = grad_output.as_standard_layout();
            let dx = grad_input.as_slice_mut().expect("buffers are standard layout");
            self.mask.apply_channels(step, self.image.spatial(), dy.as_slice().expect("standard layout"), dx);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheckConfig, check_layer};

    fn run<L: Layer<f64>>(layer: &mut L, x: &Array2<f64>, mode: Mode, step: u64) -> Array2<f64> {
        let mut hooks = crate::hooks::HookSet::new();
        let mut ctx = Context::with_hooks(&mut hooks, step);
        let mut y = Array2::zeros((0, 0));
        layer.forward(x.view(), &mut y, mode, &mut ctx).unwrap();
        y
    }

    #[test]
    fn about_p_is_dropped_the_rest_scaled_and_eval_is_the_identity() {
        let x = Array2::from_elem((200, 250), 2.0);
        for p in [0.1, 0.5, 0.9] {
            let mut dropout = Dropout::<f64>::new(p, 3).unwrap();
            let y = run(&mut dropout, &x, Mode::Train, 0);
            let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
            // 50 000 Bernoulli draws: the standard deviation of the share is below 0.0023.
            assert!((dropped - p).abs() < 0.012, "p {p}: dropped {dropped}");
            assert!(y.iter().all(|&v| v == 0.0 || (v - 2.0 / (1.0 - p)).abs() < 1e-12));
            assert_eq!(run(&mut dropout, &x, Mode::Eval, 0), x);
        }
        let mut none = Dropout::<f64>::new(0.0, 3).unwrap();
        assert_eq!(run(&mut none, &x, Mode::Train, 5), x);
    }

    #[test]
    fn masks_depend_on_seed_and_step_and_repeat_within_a_step() {
        let x = Array2::ones((4, 64));
        let mut a = Dropout::<f64>::new(0.5, 1).unwrap();
        let mut b = Dropout::<f64>::new(0.5, 2).unwrap();
        let a0 = run(&mut a, &x, Mode::Train, 0);
        assert_eq!(a0, run(&mut a, &x, Mode::Train, 0), "same seed and step, same mask");
        assert_ne!(a0, run(&mut a, &x, Mode::Train, 1), "another step, another mask");
        assert_ne!(a0, run(&mut b, &x, Mode::Train, 0), "another seed, another mask");
        let mut a_again = Dropout::<f64>::new(0.5, 1).unwrap();
        assert_eq!(a0, run(&mut a_again, &x, Mode::Train, 0), "reproducible from the seed");
    }

    #[test]
    fn backward_applies_the_forward_mask_and_passes_gradient_check() {
        let x = Array2::from_shape_fn((5, 12), |(i, j)| (i * 12 + j) as f64 / 10.0 - 2.0);
        let mut dropout = Dropout::<f64>::new(0.3, 9).unwrap();
        let report = check_layer(&mut dropout, &x, GradCheckConfig::default()).unwrap();
        report.within(1e-6).unwrap();
        let y = run(&mut dropout, &x, Mode::Train, 4);
        let mut dx = Array2::zeros((0, 0));
        dropout
            .backward(x.view(), y.view(), Array2::ones((5, 12)).view(), Some(&mut dx), &mut Context::new())
            .unwrap();
        for ((&d, &v), &xv) in dx.iter().zip(&y).zip(&x) {
            assert_eq!(d == 0.0, v == 0.0 && xv != 0.0, "the gradient is dropped where the output was");
        }
        let eval = GradCheckConfig { mode: Mode::Eval, ..GradCheckConfig::default() };
        check_layer(&mut dropout, &x, eval).unwrap().within(1e-6).unwrap();
    }

    #[test]
    fn dropout2d_drops_whole_channels_and_passes_gradient_check() {
        let image = ImageShape::new(6, 2, 3);
        let mut dropout = Dropout2d::<f64>::new(0.5, image, 4).unwrap();
        let x = Array2::from_shape_fn((40, image.features()), |(i, j)| 1.0 + ((i + j) % 5) as f64);
        let y = run(&mut dropout, &x, Mode::Train, 2);
        let mut zero_channels = 0;
        for (yc, xc) in y.as_slice().unwrap().chunks(6).zip(x.as_slice().unwrap().chunks(6)) {
            let zeros = yc.iter().filter(|&&v| v == 0.0).count();
            assert!(zeros == 0 || zeros == 6, "a channel is dropped as a whole");
            if zeros == 0 {
                assert!(yc.iter().zip(xc).all(|(a, b)| (a - 2.0 * b).abs() < 1e-12));
            }
            zero_channels += usize::from(zeros == 6);
        }
        // 240 channels, each dropped with probability 1/2.
        assert!((90..150).contains(&zero_channels), "{zero_channels}");
        check_layer(&mut dropout, &x.slice(ndarray::s![..3, ..]).to_owned(), GradCheckConfig::default())
            .unwrap()
            .within(1e-6)
            .unwrap();
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        for p in [-0.1, 1.0, 1.5, f64::NAN] {
            let err = Dropout::<f32>::new(p, 0).unwrap_err();
            assert!(err.to_string().contains("`p`") && err.to_string().contains("[0, 1)"), "{err}");
            assert!(Dropout2d::<f32>::new(p, ImageShape::new(1, 2, 2), 0).is_err());
        }
        let mut d = Dropout2d::<f32>::new(0.5, ImageShape::new(2, 2, 2), 0).unwrap();
        let mut y = Array2::zeros((0, 0));
        let err =
            d.forward(Array2::ones((3, 7)).view(), &mut y, Mode::Train, &mut Context::new()).unwrap_err();
        assert!(err.to_string().contains("2×2×2") && err.to_string().contains("(3, 7)"), "{err}");
    }
}
