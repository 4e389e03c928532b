//! [`ModelSpec`]: a model described as data (JSON or any serde format), so that an experiment
//! can be written in a file and rebuilt exactly.

use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::init::{Fans, Initializer};
use crate::layers::{Sequential, SequentialBuilder};
use crate::{Error, Float, Result};

/// A [`Sequential`] model as data: the input width, the default initializers and bias, and the
/// layers in order. Activations and initializers are given by the names of
/// [`crate::activation::by_name`] and [`crate::init::by_name`]. Building goes through
/// [`Sequential::builder`], so the model is the one the same builder calls give (and each
/// `Linear` gets the gain of the activation that follows it, for He/Kaiming initializers).
///
/// In JSON (unknown fields are refused, so a typo is an error, not a silent default):
/// ```
/// use gradflow::io::ModelSpec;
/// use rand::SeedableRng;
///
/// let spec = ModelSpec::from_json(r#"{
///     "input": 64,
///     "init": "glorot_uniform",
///     "layers": [
///         {"repeat": {"count": 20, "width": 64, "activation": "tanh"}},
///         {"linear": {"out": 10, "init": "default"}}
///     ]
/// }"#, "experiment.json")?;
/// let model = spec.build::<f32>(&mut rand::rngs::StdRng::seed_from_u64(0))?;
/// assert_eq!(model.len(), 41);
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Number of input features.
    pub input: usize,
    /// Weight initializer of every `Linear` without its own (default `"default"`: PyTorch's
    /// U(±1/√in)).
    #[serde(default = "default_init")]
    pub init: String,
    /// Bias initializer of every `Linear` without its own (default `"default"`).
    #[serde(default = "default_init")]
    pub bias_init: String,
    /// Whether `Linear` layers have a bias unless they say otherwise (default `true`).
    #[serde(default = "default_true")]
    pub bias: bool,
    /// The layers, in order.
    pub layers: Vec<LayerSpec>,
}

/// One entry of [`ModelSpec::layers`]. More kinds of layer (normalization, residual blocks,
/// recurrent layers) are added as they arrive, hence `#[non_exhaustive]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LayerSpec {
    /// `Linear(width → out)`; `{"linear": {"out": 10}}`.
    Linear {
        /// Output features.
        out: usize,
        /// Whether it has a bias (default: the model's `bias`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias: Option<bool>,
        /// Weight initializer (default: the model's `init`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<String>,
        /// Bias initializer (default: the model's `bias_init`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_init: Option<String>,
    },
    /// An activation layer by name; `{"activation": "relu"}`.
    Activation(String),
    /// `Linear(width → out)` then an activation; `{"dense": {"out": 64, "activation": "tanh"}}`.
    Dense {
        /// Output features.
        out: usize,
        /// The activation's name.
        activation: String,
    },
    /// `count` × (`Linear(→ width)` + activation);
    /// `{"repeat": {"count": 20, "width": 64, "activation": "tanh"}}`.
    Repeat {
        /// How many times.
        count: usize,
        /// Width of each `Linear`.
        width: usize,
        /// The activation's name.
        activation: String,
    },
}

fn default_init() -> String {
    "default".to_string()
}

fn default_true() -> bool {
    true
}

impl ModelSpec {
    /// Parses a spec from JSON text; `source_name` (e.g. the file name) is used in errors.
    ///
    /// # Errors
    /// [`Error::Data`] naming the source, with serde's message (line and column, the unknown or
    /// missing field).
    pub fn from_json(text: &str, source_name: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Data {
            source_name: source_name.to_string(),
            reason: format!("model spec: {e}"),
        })
    }

    /// Reads a spec from a JSON file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, else as [`ModelSpec::from_json`].
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The spec as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a ModelSpec always serializes")
    }

    /// Builds the model, drawing its weights from `rng` in layer order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the entry (`layers[3]`) for an unknown activation or
    /// initializer name, and the builder's errors (a zero width names the layer index of the
    /// built model).
    pub fn build<F: Float>(&self, rng: &mut dyn RngCore) -> Result<Sequential<F>> {
        self.builder()?.build(rng)
    }

    /// Builds the model without a random generator, every parameter zero, for loading its
    /// weights next (see [`SequentialBuilder::build_uninit`]).
    ///
    /// # Errors
    /// As [`ModelSpec::build`].
    pub fn build_uninit<F: Float>(&self) -> Result<Sequential<F>> {
        self.builder()?.build_uninit()
    }

    /// The builder that [`ModelSpec::build`] builds from.
    fn builder<F: Float>(&self) -> Result<SequentialBuilder<F>> {
        let named_init = |name: &str, entry: &str, field: &'static str| -> Result<SharedInit> {
            crate::init::by_name(name)
                .map(SharedInit)
                .map_err(|e| Error::config(format!("model spec {entry}"), field, e.to_string()))
        };
        let activation = |name: &str, entry: &str| {
            crate::activation::by_name::<F>(name)
                .map_err(|e| Error::config(format!("model spec {entry}"), "activation", e.to_string()))
        };
        let default_init = named_init(&self.init, "", "init")?;
        let default_bias_init = named_init(&self.bias_init, "", "bias_init")?;
        let reset = |b: SequentialBuilder<F>| {
            b.init(default_init.clone()).bias_init(default_bias_init.clone()).bias(self.bias)
        };
        let mut builder = reset(Sequential::builder(self.input));
        for (i, layer) in self.layers.iter().enumerate() {
            let entry = format!("layers[{i}]");
            builder = match layer {
                LayerSpec::Linear { out, bias, init, bias_init } => {
                    let mut b = builder;
                    if let Some(name) = init {
                        b = b.init(named_init(name, &entry, "init")?);
                    }
                    if let Some(name) = bias_init {
                        b = b.bias_init(named_init(name, &entry, "bias_init")?);
                    }
                    if let Some(bias) = bias {
                        b = b.bias(*bias);
                    }
                    reset(b.linear(*out))
                }
                LayerSpec::Activation(name) => builder.activation(activation(name, &entry)?),
                LayerSpec::Dense { out, activation: name } => builder.dense(*out, activation(name, &entry)?),
                LayerSpec::Repeat { count, width, activation: name } => {
                    builder.repeat(*count, *width, activation(name, &entry)?)
                }
            };
        }
        Ok(builder)
    }
}

/// An initializer chosen by name, shared between layers.
#[derive(Debug, Clone)]
struct SharedInit(Arc<dyn Initializer>);

impl Initializer for SharedInit {
    fn name(&self) -> String {
        self.0.name()
    }

    fn sample(
        &self,
        shape: (usize, usize),
        fans: Fans,
        rng: &mut dyn RngCore,
    ) -> Result<ndarray::Array2<f64>> {
        self.0.sample(shape, fans, rng)
    }
}
