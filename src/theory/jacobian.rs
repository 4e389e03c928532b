//! The input–output Jacobian `∂h_L/∂h_0` of a model at one input, built from backward passes,
//! and the spectra of the whole network's and of each hidden layer's Jacobian.
//!
//! # How it is built
//! The input row is copied into a batch of `k` identical rows and run forward in
//! [`Mode::Eval`] (so that every row is an independent copy of the same example: BatchNorm uses
//! its running statistics), then backward with `grad_output` = rows `r..r+k` of the identity:
//! row `i` of the input gradient is then `∂y_{r+i}/∂x`, row `r+i` of the Jacobian. Blocks of
//! [`JACOBIAN_BLOCK`] output rows bound the memory to that many copies of every activation.
//! No hook sees these passes; the parameters' accumulated gradients are put back as they were.

use std::ops::Range;

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::Spectrum;
use super::groups::group;
use crate::hooks::Context;
use crate::layer::{Layer, Mode};
use crate::{Error, Float, Network, Result, Sequential};

/// The widest Jacobian built: an `n × n` Jacobian costs `n` copies of the example through the
/// network (in blocks of [`JACOBIAN_BLOCK`]) and an `O(n³)` SVD, about 2 s at `n = 1024` in a
/// dev build.
pub const MAX_JACOBIAN_WIDTH: usize = 2048;

/// Output rows of the Jacobian computed per forward and backward pass.
pub const JACOBIAN_BLOCK: usize = 256;

/// Layers applied one after another, reachable one at a time.
trait Chain<F: Float> {
    fn at(&mut self, index: usize) -> &mut dyn Layer<F>;
}

impl<F: Float> Chain<F> for Sequential<F> {
    fn at(&mut self, index: usize) -> &mut dyn Layer<F> {
        self.get_mut(index).expect("index within the model")
    }
}

struct Single<'a, F: Float>(&'a mut dyn Layer<F>);

impl<F: Float> Chain<F> for Single<'_, F> {
    fn at(&mut self, _index: usize) -> &mut dyn Layer<F> {
        &mut *self.0
    }
}

/// Every parameter gradient of `layer`, to be put back after the Jacobian's backward passes.
fn save_gradients<F: Float>(layer: &dyn Layer<F>) -> Vec<ndarray::ArrayD<F>> {
    let mut saved = Vec::new();
    layer.visit_parameters(&mut |p| saved.push(p.grad.to_owned()));
    saved
}

fn restore_gradients<F: Float>(layer: &mut dyn Layer<F>, saved: Vec<ndarray::ArrayD<F>>) {
    let mut saved = saved.into_iter();
    layer.visit_parameters_mut(&mut |mut p| {
        if let Some(g) = saved.next() {
            p.grad.assign(&g);
        }
    });
}

fn check_width(what: &str, width: usize) -> Result<()> {
    if width > MAX_JACOBIAN_WIDTH {
        return Err(Error::config(
            "theory::jacobian",
            "width",
            format!(
                "{what} has {width} features; Jacobians are built exactly up to {MAX_JACOBIAN_WIDTH} \
                 (one pass per {JACOBIAN_BLOCK} output rows and an O(n³) SVD)"
            ),
        ));
    }
    Ok(())
}

fn check_input<F: Float>(input: &ArrayView1<'_, F>) -> Result<()> {
    if input.is_empty() {
        return Err(Error::shape("theory::jacobian", "input", "(features) with at least one feature", &[0]));
    }
    if let Some((j, v)) = input.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            location: "theory::jacobian input".into(),
            detail: format!("feature {j} is {v}"),
        });
    }
    Ok(())
}

/// The Jacobian of `chain.at(range)` at `input` (one row), `(out, in)` in f64.
fn chain_jacobian<F: Float>(
    chain: &mut dyn Chain<F>,
    range: Range<usize>,
    input: ArrayView1<'_, F>,
    out_features: usize,
) -> Result<Array2<f64>> {
    let n_in = input.len();
    let mut jacobian = Array2::<f64>::zeros((out_features, n_in));
    let count = range.len();
    let mut activations: Vec<Array2<F>> = (0..count).map(|_| Array2::zeros((0, 0))).collect();
    let mut gradients: Vec<Array2<F>> = (0..count).map(|_| Array2::zeros((0, 0))).collect();
    let mut ctx = Context::new();
    for start in (0..out_features).step_by(JACOBIAN_BLOCK) {
        let rows = JACOBIAN_BLOCK.min(out_features - start);
        let batch = input.insert_axis(Axis(0)).broadcast((rows, n_in)).expect("a row broadcasts").to_owned();
        for (k, index) in range.clone().enumerate() {
            let (before, after) = activations.split_at_mut(k);
            let x = if k == 0 { batch.view() } else { before[k - 1].view() };
            chain.at(index).forward(x, &mut after[0], Mode::Eval, &mut ctx).map_err(|e| e.at(&index))?;
        }
        let mut seed = Array2::<F>::zeros((rows, out_features));
        for i in 0..rows {
            seed[[i, start + i]] = F::one();
        }
        for (k, index) in range.clone().enumerate().rev() {
            let x = if k == 0 { batch.view() } else { activations[k - 1].view() };
            let y = activations[k].view();
            // gradients[k] is ∂/∂(input of child k) = ∂/∂(output of child k − 1).
            let (upto, above) = gradients.split_at_mut(k + 1);
            let grad_output: ArrayView2<'_, F> = if k == count - 1 { seed.view() } else { above[0].view() };
            let grad_input = &mut upto[k];
            chain
                .at(index)
                .backward(x, y, grad_output, Some(grad_input), &mut ctx)
                .map_err(|e| e.at(&index))?;
        }
        let rows_of_jacobian = &gradients[0];
        for i in 0..rows {
            for j in 0..n_in {
                jacobian[[start + i, j]] = rows_of_jacobian[[i, j]].as_f64();
            }
        }
    }
    Ok(jacobian)
}

/// The Jacobian `∂y/∂x` of any layer (a whole model, a block, a single layer) at the input row
/// `x`: an `(output features, input features)` matrix in `f64`, row `i` holding `∂y_i/∂x`.
///
/// The passes run in [`Mode::Eval`] with no hooks; the parameters' accumulated gradients are
/// left as they were. The layer's forward cache is overwritten: run a forward pass again before
/// the next backward pass (for a [`Network`], [`network_jacobian`] takes care of that).
///
/// ```
/// use gradflow::{Linear, Layer};
/// use gradflow::theory::jacobian;
/// use ndarray::array;
///
/// let w = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let mut layer = Linear::from_weights(w.clone(), Some(array![0.5, 0.5, 0.5]))?;
/// assert_eq!(jacobian(&mut layer, array![0.3, -1.0].view())?, w); // a linear layer's is W
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// A shape mismatch naming the layer when it does not take `x.len()` features;
/// [`Error::NonFinite`] for a non-finite input; [`Error::InvalidConfig`] (field `width`) when
/// the input or output is wider than [`MAX_JACOBIAN_WIDTH`]; the layer's own errors.
pub fn jacobian<F: Float>(layer: &mut dyn Layer<F>, x: ArrayView1<'_, F>) -> Result<Array2<f64>> {
    check_input(&x)?;
    let out = layer.output_features(x.len())?;
    check_width("the input", x.len())?;
    check_width("the output", out)?;
    let saved = save_gradients(layer);
    let result = chain_jacobian(&mut Single(&mut *layer), 0..1, x, out);
    restore_gradients(layer, saved);
    result
}

/// The spectrum of one hidden layer's Jacobian `∂h_l/∂h_{l−1}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpectrum {
    /// Position from the input (0 = nearest the input).
    pub index: usize,
    /// The kinds of the layer's children joined by `+`, e.g. `"Linear+tanh"`.
    pub label: String,
    /// The paths of the model's children in this hidden layer, e.g. `["0", "1"]`.
    pub paths: Vec<String>,
    /// The singular values and their summaries.
    pub spectrum: Spectrum,
}

/// The spectra of a model's input–output Jacobian and of each hidden layer's Jacobian, at one
/// input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JacobianSpectra {
    /// The whole model's Jacobian `∂h_L/∂h_0`.
    pub network: Spectrum,
    /// Each hidden layer's (grouped by [`crate::hooks::layer_numbers`], as in the diagnosis: "Linear + tanh" is
    /// one), from the input.
    pub layers: Vec<LayerSpectrum>,
}

/// The spectra of `model`'s input–output Jacobian and of each hidden layer's Jacobian at the
/// input row `x` (see [`jacobian`] for how they are built and what is left unchanged).
/// Afterwards the model expects a forward pass before its next backward pass.
///
/// Mean-field theory predicts the *mean* of the squared singular values (`χ₁` per layer); the
/// spectrum shows whether the network is well conditioned in every direction (Pennington,
/// Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical
/// isometry").
///
/// ```
/// use gradflow::Sequential;
/// use gradflow::activation::Tanh;
/// use gradflow::init::Orthogonal;
/// use gradflow::theory::jacobian_spectra;
/// use ndarray::Array1;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut model = Sequential::<f64>::builder(32).init(Orthogonal::default()).bias(false)
///     .repeat(4, 32, Tanh).build(&mut rng)?;
/// let spectra = jacobian_spectra(&mut model, Array1::from_elem(32, 0.01).view())?;
/// assert_eq!(spectra.layers.len(), 4);
/// assert_eq!(spectra.layers[0].label, "Linear+tanh");
/// // Orthogonal weights, no bias and tanh near 0 (a tiny input, whose norm 0.057 every layer
/// // keeps, so tanh′ ≥ 1 − 0.057² in every unit): all singular values are within 2% of 1.
/// assert!(spectra.network.min > 0.98 && spectra.network.max <= 1.0 + 1e-12);
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// As [`jacobian`]; an error in a child names its index.
pub fn jacobian_spectra<F: Float>(
    model: &mut Sequential<F>,
    x: ArrayView1<'_, F>,
) -> Result<JacobianSpectra> {
    check_input(&x)?;
    let out = model.check(x.len())?;
    let widths: Vec<usize> = {
        let mut w = vec![x.len()];
        for layer in model.layers() {
            w.push(layer.output_features(*w.last().expect("non-empty"))?);
        }
        w
    };
    for (i, &w) in widths.iter().enumerate() {
        check_width(&if i == 0 { "the input".to_string() } else { format!("layer {}", i - 1) }, w)?;
    }
    let saved = save_gradients(model);
    let result = spectra_of(model, x, out, &widths);
    restore_gradients(model, saved);
    model.invalidate_forward();
    result
}

fn spectra_of<F: Float>(
    model: &mut Sequential<F>,
    x: ArrayView1<'_, F>,
    out: usize,
    widths: &[usize],
) -> Result<JacobianSpectra> {
    if model.is_empty() {
        let identity = Array2::<f64>::eye(x.len());
        return Ok(JacobianSpectra { network: Spectrum::of(identity.view())?, layers: Vec::new() });
    }
    let n = model.len();
    let network = Spectrum::of(chain_jacobian(model, 0..n, x, out)?.view())?;
    // The input of every child, from one forward pass of the example alone.
    let mut inputs: Vec<Array2<F>> = vec![x.insert_axis(Axis(0)).to_owned()];
    let mut ctx = Context::new();
    for i in 0..n {
        let mut y = Array2::zeros((0, 0));
        model.at(i).forward(inputs[i].view(), &mut y, Mode::Eval, &mut ctx).map_err(|e| e.at(&i))?;
        inputs.push(y);
    }
    let kinds: Vec<(&str, bool)> = model.layers().map(|l| (l.kind(), l.as_activation().is_some())).collect();
    let mut layers = Vec::new();
    for (index, range) in group(&kinds).into_iter().enumerate() {
        let label =
            range.clone().map(|i| model.get(i).expect("in range").kind()).collect::<Vec<_>>().join("+");
        let paths = range.clone().map(|i| i.to_string()).collect();
        let row = inputs[range.start].row(0).to_owned();
        let j = chain_jacobian(model, range.clone(), row.view(), widths[range.end])?;
        layers.push(LayerSpectrum { index, label, paths, spectrum: Spectrum::of(j.view())? });
    }
    Ok(JacobianSpectra { network, layers })
}

/// [`jacobian_spectra`] of a [`Network`]'s model, without its hooks and without advancing its
/// step counter; the network expects a forward pass before its next backward pass.
///
/// # Errors
/// As [`jacobian_spectra`].
pub fn network_jacobian_spectra<F: Float>(
    net: &mut Network<F>,
    x: ArrayView1<'_, F>,
) -> Result<JacobianSpectra> {
    net.invalidate_forward();
    jacobian_spectra(net.model_mut(), x)
}

/// [`jacobian`] of a [`Network`]'s model, without its hooks and without advancing its step
/// counter; the network expects a forward pass before its next backward pass.
///
/// # Errors
/// As [`jacobian`].
pub fn network_jacobian<F: Float>(net: &mut Network<F>, x: ArrayView1<'_, F>) -> Result<Array2<f64>> {
    net.invalidate_forward();
    let model = net.model_mut();
    let result = jacobian(model, x);
    model.invalidate_forward();
    result
}
