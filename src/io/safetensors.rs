//! A model's state (parameters and buffers) as a safetensors file with PyTorch's names, so that
//! `safetensors.torch.save_file(model.state_dict(), path)` in PyTorch and
//! [`load_safetensors`] here (and the reverse) move the same numbers between the two.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use ndarray::{ArrayD, IxDyn};

use crate::io::{KeyMap, Mismatch};
use crate::layer::Layer;
use crate::network::{named_buffers, named_parameters};
use crate::param::{BufferView, BufferViewMut};
use crate::{Error, Float, Result};

/// How strictly [`load_safetensors_with`] matches a file to a model.
///
/// The defaults follow PyTorch's `load_state_dict(strict=True)` for names, and refuse any
/// conversion that could change a value: an `F32` tensor loads exactly into an `f64` model,
/// an `F64` tensor into an `f32` model only when [`LoadOptions::narrow_f64_to_f32`] is set
/// (each value is then rounded to the nearest `f32`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Refuse a file that lacks a parameter or buffer of the model or has a tensor the model
    /// does not (default `true`, as PyTorch's `strict=True`). When `false`, those names are
    /// listed in the [`LoadReport`] and the model keeps its current values for the missing
    /// ones; wrong shapes and dtypes are refused either way (as in PyTorch).
    pub strict: bool,
    /// Accept `F32` tensors into an `f64` model (default `true`: every `f32` is exactly an `f64`).
    pub widen_f32_to_f64: bool,
    /// Accept `F64` tensors into an `f32` model, rounding each value (default `false`).
    pub narrow_f64_to_f32: bool,
    /// How the file's names become the model's, applied to every name in the file before
    /// matching (default: unchanged). Two names of the file that become one are refused,
    /// naming both; errors name each tensor both ways.
    pub remap: KeyMap,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { strict: true, widen_f32_to_f64: true, narrow_f64_to_f32: false, remap: KeyMap::new() }
    }
}

impl LoadOptions {
    /// Sets [`LoadOptions::strict`].
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets [`LoadOptions::widen_f32_to_f64`].
    pub fn widen_f32_to_f64(mut self, allow: bool) -> Self {
        self.widen_f32_to_f64 = allow;
        self
    }

    /// Sets [`LoadOptions::narrow_f64_to_f32`].
    pub fn narrow_f64_to_f32(mut self, allow: bool) -> Self {
        self.narrow_f64_to_f32 = allow;
        self
    }

    /// Sets [`LoadOptions::remap`]: how the file's names become the model's.
    ///
    /// ```
    /// use gradflow::Sequential;
    /// use gradflow::io::{KeyMap, LoadOptions, load_safetensors_bytes, safetensors_bytes_with};
    /// use gradflow::rand::{SeedableRng, rngs::StdRng};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let model = Sequential::<f32>::builder(3).linear(2).named("fc").build(&mut rng)?;
    /// // A file whose names carry a prefix, as a PyTorch module's submodule would.
    /// let bytes = safetensors_bytes_with(&model, &KeyMap::new().rule("**", "encoder.{1}")?)?;
    ///
    /// let mut copy = Sequential::<f32>::builder(3).linear(2).named("fc").build(&mut rng)?;
    /// let options = LoadOptions::default().remap(KeyMap::new().rule("encoder.**", "{1}")?);
    /// let report = load_safetensors_bytes(&mut copy, &bytes, "encoder", &options)?;
    /// assert_eq!(report.loaded, ["fc.weight", "fc.bias"]);
    /// assert_eq!(report.renamed[0], ("encoder.fc.weight".to_string(), "fc.weight".to_string()));
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    pub fn remap(mut self, remap: KeyMap) -> Self {
        self.remap = remap;
        self
    }
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// The file (or the name given for a byte buffer).
    pub source: String,
    /// The names loaded, in the model's visiting order (parameters, then buffers).
    pub loaded: Vec<String>,
    /// `(name in the file, name in the model)` for every loaded tensor that
    /// [`LoadOptions::remap`] renamed, in the model's visiting order.
    pub renamed: Vec<(String, String)>,
    /// The loaded names whose dtype was converted (`F32` → `f64`, or `F64` → `f32` when allowed).
    pub converted: Vec<String>,
    /// Names of the model absent from the file, left unchanged (only when not strict).
    pub missing: Vec<String>,
    /// Names in the file that the model does not have, ignored (only when not strict), sorted.
    pub unexpected: Vec<String>,
    /// The file's free-form `__metadata__` (e.g. `{"format": "pt"}`).
    pub metadata: BTreeMap<String, String>,
}

/// Writes the parameters and buffers of `layer` to `path` as safetensors, under their dotted
/// PyTorch names (`"0.weight"`, `"1.running_mean"`, …) and shapes; `f32` models write `F32`
/// tensors, `f64` models `F64`, and counters such as `num_batches_tracked` an `I64` scalar
/// (shape `[]`) as PyTorch does. The header's metadata is `{"format": "pt"}`. The file is
/// written to a temporary sibling and renamed, so an existing file is never left half-written,
/// and gets the mode of any new file (usually 0644).
///
/// ```
/// use gradflow::{Sequential, activation::Tanh};
/// use gradflow::io::{load_safetensors, save_safetensors};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let model = Sequential::<f32>::builder(4).dense(5, Tanh).linear(3).build(&mut rng)?;
/// let path = std::env::temp_dir().join(format!("gradflow-doc-{}.safetensors", std::process::id()));
/// save_safetensors(&model, &path)?;
///
/// let mut copy = Sequential::<f32>::builder(4).dense(5, Tanh).linear(3).build(&mut rng)?;
/// let report = load_safetensors(&mut copy, &path)?;
/// assert_eq!(report.loaded, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), gradflow::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidConfig`] when two tensors of the model have the same name or a counter does
/// not fit an `i64`; [`Error::Io`] naming the file when it cannot be written.
pub fn save_safetensors<F: Float>(layer: &dyn Layer<F>, path: impl AsRef<Path>) -> Result<()> {
    save_safetensors_with(layer, path, &KeyMap::new())
}

/// [`save_safetensors`] with the model's names renamed by `names` (e.g. to the names of a
/// PyTorch module laid out differently).
///
/// # Errors
/// As [`save_safetensors`], and [`Error::InvalidConfig`] naming both tensors when `names` gives
/// two of them one name, or naming the tensor when `names` renames it to an empty name or to
/// `__metadata__` (the header's own key: the file could not be read back).
pub fn save_safetensors_with<F: Float>(
    layer: &dyn Layer<F>,
    path: impl AsRef<Path>,
    names: &KeyMap,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = safetensors_bytes_with(layer, names).map_err(|e| match e {
        Error::Data { reason, .. } => Error::Data { source_name: path.display().to_string(), reason },
        other => other,
    })?;
    super::write_atomically(path, &bytes)
}

/// The bytes [`save_safetensors`] would write.
///
/// # Errors
/// As [`save_safetensors`], without the I/O.
pub fn safetensors_bytes<F: Float>(layer: &dyn Layer<F>) -> Result<Vec<u8>> {
    safetensors_bytes_with(layer, &KeyMap::new())
}

/// The bytes [`save_safetensors_with`] would write.
///
/// # Errors
/// As [`save_safetensors_with`], without the I/O.
pub fn safetensors_bytes_with<F: Float>(layer: &dyn Layer<F>, names: &KeyMap) -> Result<Vec<u8>> {
    let mut tensors = encode_state(layer)?;
    if !names.is_identity() {
        let mut taken: HashMap<String, String> = HashMap::new();
        for t in &mut tensors {
            let renamed = names.try_apply(&t.name)?;
            if renamed.is_empty() || renamed == "__metadata__" {
                let what =
                    if renamed.is_empty() { "an empty name" } else { "`__metadata__`, the header's own key" };
                return Err(Error::config(
                    layer.describe(),
                    "names",
                    format!("the key map renames `{}` to {what}: the file could not be read back", t.name),
                ));
            }
            if let Some(other) = taken.insert(renamed.clone(), t.name.clone()) {
                return Err(Error::config(
                    layer.describe(),
                    "names",
                    format!("the key map renames both `{other}` and `{}` to `{renamed}`", t.name),
                ));
            }
            t.name = renamed;
        }
    }
    let views = tensor_views(&tensors)?;
    ::safetensors::serialize(views, Some(pt_metadata()))
        .map_err(|e| Error::Data { source_name: "safetensors serializer".into(), reason: e.to_string() })
}

/// Loads every parameter and buffer of `layer` from the safetensors file at `path`, with the
/// default [`LoadOptions`] (strict names, exact dtypes or exact widening).
///
/// The whole file is checked first; if anything does not fit, *nothing* is written and the
/// error lists every [`Mismatch`] at once.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Data`] naming the file when it is not
/// a valid safetensors file (truncated, corrupt header, bad offsets) or when it does not fit
/// the model (every missing or unexpected name, wrong shape, refused dtype, non-finite value,
/// one per line); [`Error::InvalidConfig`] when the model itself has two tensors of one name.
pub fn load_safetensors<F: Float>(layer: &mut dyn Layer<F>, path: impl AsRef<Path>) -> Result<LoadReport> {
    load_safetensors_with(layer, path, &LoadOptions::default())
}

/// [`load_safetensors`] with explicit [`LoadOptions`].
///
/// # Errors
/// As [`load_safetensors`].
pub fn load_safetensors_with<F: Float>(
    layer: &mut dyn Layer<F>,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    load_safetensors_bytes(layer, &bytes, &path.display().to_string(), options)
}

/// [`load_safetensors_with`] from bytes in memory; `source_name` names them in errors.
///
/// # Errors
/// As [`load_safetensors`], without the I/O.
pub fn load_safetensors_bytes<F: Float>(
    layer: &mut dyn Layer<F>,
    bytes: &[u8],
    source_name: &str,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let file = parse(bytes, source_name)?;
    let plan = plan_load::<F>(layer, &file, source_name, options)?;
    if !plan.mismatches.is_empty() {
        return Err(Error::Data {
            source_name: source_name.to_string(),
            reason: describe_mismatches(&layer.describe(), &plan.mismatches, &plan.renames),
        });
    }
    // Everything has been decoded and checked: from here on nothing can fail.
    let mut params = plan.params.into_iter();
    layer.visit_parameters_mut(&mut |mut p| {
        if let Some(Some(values)) = params.next() {
            write_logical(&mut p.value, &values);
        }
    });
    let mut buffers = plan.buffers.into_iter();
    layer.visit_buffers_mut(&mut |b| match (b, buffers.next()) {
        (BufferViewMut::Tensor { mut value, .. }, Some(Some(Decoded::Floats(values)))) => {
            write_logical(&mut value, &values);
        }
        (BufferViewMut::Count { value, .. }, Some(Some(Decoded::Count(count)))) => *value = count,
        _ => {}
    });
    Ok(plan.report)
}

/// Compares the safetensors file at `path` with `layer` without loading anything: the list of
/// everything [`load_safetensors_with`] would refuse (empty when the file fits).
///
/// # Errors
/// [`Error::Io`] or [`Error::Data`] when the file cannot be read or is not valid safetensors.
pub fn check_safetensors<F: Float>(
    layer: &dyn Layer<F>,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<Vec<Mismatch>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let source_name = path.display().to_string();
    let file = parse(&bytes, &source_name)?;
    Ok(plan_load::<F>(layer, &file, &source_name, options)?.mismatches)
}

/// Reads every tensor of a safetensors file as an `F` array, by name: for files that are not a
/// model's state, such as inputs and expected outputs, and for any file gradflow writes.
///
/// Float tensors follow the default [`LoadOptions`] rule: `F16`, `BF16` and `F32` widen exactly,
/// `F64` goes into `f64` but is refused for `f32` (rather than rounded). Integer and boolean
/// tensors (such as BatchNorm's `num_batches_tracked`, an `I64`) are converted when every value
/// is exactly an `F`; [`crate::io::read_any_tensors`] returns them as integers, with their dtype.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Data`] naming the file and, for each
/// tensor it cannot return, the tensor and its dtype: not valid safetensors, a dtype gradflow
/// does not read, `F64` into `f32`, an integer not exactly representable, or a non-finite value.
pub fn read_tensors<F: Float>(path: impl AsRef<Path>) -> Result<BTreeMap<String, ArrayD<F>>> {
    let path = path.as_ref();
    let source_name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let file = parse(&bytes, &source_name)?;
    let options = LoadOptions::default();
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, view) in file.tensors.iter() {
        let decoded = if matches!(view.dtype(), Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64) {
            decode_floats::<F>(name, &view, &options).map(|(values, _)| values)
        } else {
            decode_ints_exactly::<F>(name, &view)
        };
        match decoded {
            Ok(values) => {
                let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
                    .expect("safetensors validated the length against the shape");
                out.insert(name.to_string(), array);
            }
            Err(m) => problems.push(m),
        }
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.name().cmp(b.name()));
        return Err(Error::Data { source_name, reason: describe_problems("cannot read", &problems) });
    }
    Ok(out)
}

/// An integer or boolean tensor as `F`s, when every value is exactly an `F`.
fn decode_ints_exactly<F: Float>(name: &str, view: &TensorView<'_>) -> std::result::Result<Vec<F>, Mismatch> {
    let stored = super::stored::decode_any(name, view)?;
    let ints = stored.ints().expect("an integer dtype decodes to integers");
    // Integers up to 2^24 (f32) or 2^53 (f64) in magnitude are exact.
    let limit: i64 = if std::mem::size_of::<F>() == 4 { 1 << 24 } else { 1 << 53 };
    if let Some(index) = ints.iter().position(|v| v.unsigned_abs() > limit.unsigned_abs()) {
        return Err(Mismatch::WrongDtype {
            name: name.to_string(),
            expected: format!("integers of magnitude at most {limit} (exact as {})", dtype_of::<F>()),
            found: stored.dtype.to_string(),
            note: format!(
                "the value at flat index {index} is {}; read it with io::read_any_tensors",
                ints.iter().nth(index).copied().unwrap_or_default()
            ),
        });
    }
    let wide: Vec<f64> = ints.iter().map(|&v| v as f64).collect();
    let mut out = vec![F::zero(); wide.len()];
    F::convert_from_f64(&wide, &mut out);
    Ok(out)
}

/// The tensors of a parsed file and its metadata.
pub(super) struct ParsedFile<'a> {
    pub(super) tensors: SafeTensors<'a>,
    metadata: BTreeMap<String, String>,
}

/// Parses a safetensors file, after [`super::header::check_header`]'s strict checks.
pub(super) fn parse<'a>(bytes: &'a [u8], source_name: &str) -> Result<ParsedFile<'a>> {
    let invalid = |e: &dyn std::fmt::Display| Error::Data {
        source_name: source_name.to_string(),
        reason: format!("not a valid safetensors file ({} bytes): {e}", bytes.len()),
    };
    super::header::check_header(bytes).map_err(|reason| invalid(&reason))?;
    let invalid = |e: SafeTensorError| invalid(&e);
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let metadata = metadata.metadata().clone().unwrap_or_default().into_iter().collect();
    let tensors = SafeTensors::deserialize(bytes).map_err(invalid)?;
    Ok(ParsedFile { tensors, metadata })
}

/// A parameter or buffer of the model, as the file must hold it.
struct Slot {
    name: String,
    shape: Vec<usize>,
    count: bool,
}

/// A checked and decoded value, ready to be written into the model.
enum Decoded<F> {
    Floats(Vec<F>),
    Count(u64),
}

/// The outcome of comparing a file with a model: the values to write (one entry per
/// parameter / buffer in visiting order, `None` for names left alone) or the mismatches.
struct LoadPlan<F> {
    /// `(name in the file, name it was mapped to)` for every name the key map changed.
    renames: Vec<(String, String)>,
    params: Vec<Option<Vec<F>>>,
    buffers: Vec<Option<Decoded<F>>>,
    mismatches: Vec<Mismatch>,
    report: LoadReport,
}

fn plan_load<F: Float>(
    layer: &dyn Layer<F>,
    file: &ParsedFile<'_>,
    source_name: &str,
    options: &LoadOptions,
) -> Result<LoadPlan<F>> {
    let (param_slots, buffer_slots) = model_slots(layer)?;
    let mut mismatches = Vec::new();
    let mut report = LoadReport {
        source: source_name.to_string(),
        metadata: file.metadata.clone(),
        ..LoadReport::default()
    };
    // The file's names as the model's: model name → file name.
    let mut by_model_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut renames = Vec::new();
    let mut file_names: Vec<&str> = file.tensors.names();
    file_names.sort_unstable();
    let mut model_name_of: HashMap<&str, String> = HashMap::with_capacity(file_names.len());
    for key in file_names {
        let mapped = options.remap.try_apply(key)?;
        model_name_of.insert(key, mapped.clone());
        if mapped != key {
            renames.push((key.to_string(), mapped.clone()));
        }
        by_model_name.entry(mapped).or_default().push(key.to_string());
    }
    for (name, keys) in &by_model_name {
        if keys.len() > 1 {
            mismatches.push(Mismatch::SameName { name: name.clone(), keys: keys.clone() });
        }
    }
    let mut decode = |slot: &Slot| -> Option<Decoded<F>> {
        let key = by_model_name.get(&slot.name).filter(|keys| keys.len() == 1).map(|keys| keys[0].as_str());
        if key.is_none() && by_model_name.contains_key(&slot.name) {
            return None; // several names of the file map here: reported above
        }
        let Some(view) = key.and_then(|key| file.tensors.tensor(key).ok()) else {
            if options.strict {
                mismatches.push(Mismatch::Missing { name: slot.name.clone(), shape: slot.shape.clone() });
            } else {
                report.missing.push(slot.name.clone());
            }
            return None;
        };
        if view.shape() != slot.shape.as_slice() {
            mismatches.push(Mismatch::WrongShape {
                name: slot.name.clone(),
                expected: slot.shape.clone(),
                found: view.shape().to_vec(),
            });
            // Still check the dtype, so that both problems are reported.
        }
        let decoded = if slot.count {
            decode_count(&slot.name, &view).map(Decoded::Count)
        } else {
            decode_floats::<F>(&slot.name, &view, options).map(|(values, converted)| {
                if converted {
                    report.converted.push(slot.name.clone());
                }
                Decoded::Floats(values)
            })
        };
        match decoded {
            Ok(d) if view.shape() == slot.shape.as_slice() => {
                report.loaded.push(slot.name.clone());
                if let Some(key) = key.filter(|&key| key != slot.name) {
                    report.renamed.push((key.to_string(), slot.name.clone()));
                }
                Some(d)
            }
            Ok(_) => None,
            Err(m) => {
                mismatches.push(m);
                None
            }
        }
    };
    // Parameters are never counters, so they always decode to floats.
    let params = param_slots
        .iter()
        .map(|s| match decode(s) {
            Some(Decoded::Floats(v)) => Some(v),
            _ => None,
        })
        .collect();
    let buffers = buffer_slots.iter().map(&mut decode).collect();

    let known: HashSet<&str> = param_slots.iter().chain(&buffer_slots).map(|s| s.name.as_str()).collect();
    let mut unexpected: Vec<(&str, TensorView<'_>)> = file
        .tensors
        .iter()
        .filter(|(name, _)| !model_name_of.get(name).is_some_and(|m| known.contains(m.as_str())))
        .collect();
    unexpected.sort_by(|a, b| a.0.cmp(b.0));
    for (name, view) in unexpected {
        if options.strict {
            mismatches.push(Mismatch::Unexpected {
                name: name.to_string(),
                shape: view.shape().to_vec(),
                dtype: view.dtype().to_string(),
            });
        } else {
            report.unexpected.push(name.to_string());
        }
    }
    report.converted.retain(|n| report.loaded.contains(n));
    Ok(LoadPlan { renames, params, buffers, mismatches, report })
}

/// The model's parameters and buffers with their dotted names, checked for duplicates and for
/// agreement between the named walk and the visiting order that loading writes in.
fn model_slots<F: Float>(layer: &dyn Layer<F>) -> Result<(Vec<Slot>, Vec<Slot>)> {
    let params: Vec<Slot> = named_parameters(layer)
        .into_iter()
        .map(|(name, p)| Slot { name, shape: p.value.shape().to_vec(), count: false })
        .collect();
    let buffers: Vec<Slot> = named_buffers(layer)
        .into_iter()
        .map(|(name, b)| match b {
            BufferView::Tensor { value, .. } => Slot { name, shape: value.shape().to_vec(), count: false },
            BufferView::Count { .. } => Slot { name, shape: vec![], count: true },
        })
        .collect();

    let mut seen = HashSet::new();
    for slot in params.iter().chain(&buffers) {
        if !seen.insert(slot.name.as_str()) {
            return Err(Error::config(
                layer.describe(),
                "state",
                format!("two parameters or buffers are both named `{}`", slot.name),
            ));
        }
    }

    // Loading writes through `visit_parameters_mut` / `visit_buffers_mut`, which visit in the
    // order of `visit_parameters` / `visit_buffers`; check that this is the named order.
    let mut visited = Vec::new();
    layer.visit_parameters(&mut |p| visited.push((p.name, p.value.shape().to_vec())));
    layer.visit_buffers(&mut |b| {
        let shape = match &b {
            BufferView::Tensor { value, .. } => value.shape().to_vec(),
            BufferView::Count { .. } => vec![],
        };
        visited.push((b.name(), shape));
    });
    let named = params.iter().chain(&buffers);
    let agrees = visited.len() == params.len() + buffers.len()
        && named.zip(&visited).all(|(slot, (local, shape))| {
            (slot.name == *local || slot.name.ends_with(&format!(".{local}"))) && slot.shape == *shape
        });
    if !agrees {
        return Err(Error::config(
            layer.describe(),
            "visit_parameters",
            "the layer visits its parameters or buffers in another order than its children \
             (a bug in a custom container): refusing to load by position",
        ));
    }
    Ok((params, buffers))
}

/// The safetensors dtype that `F` is stored as.
fn dtype_of<F: Float>() -> Dtype {
    if std::mem::size_of::<F>() == 4 { Dtype::F32 } else { Dtype::F64 }
}

/// Decodes a float tensor into `F`s; the flag says whether the dtype was converted.
fn decode_floats<F: Float>(
    name: &str,
    view: &TensorView<'_>,
    options: &LoadOptions,
) -> std::result::Result<(Vec<F>, bool), Mismatch> {
    let model = dtype_of::<F>();
    let found = view.dtype();
    let wrong = |expected: &str, note: &str| Mismatch::WrongDtype {
        name: name.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
        note: note.to_string(),
    };
    let bytes = view.data();
    let values: Vec<F> = match (model, found) {
        (Dtype::F32, Dtype::F32) => F::decode_le(bytes, true),
        (Dtype::F64, Dtype::F64) => F::decode_le(bytes, false),
        (Dtype::F64, Dtype::F32) if options.widen_f32_to_f64 => F::decode_le(bytes, true),
        (Dtype::F32, Dtype::F64) if options.narrow_f64_to_f32 => F::decode_le(bytes, false),
        (_, Dtype::F16) => half_to(super::stored::Dtype::F16, bytes),
        (_, Dtype::BF16) => half_to(super::stored::Dtype::BF16, bytes),
        (Dtype::F64, Dtype::F32) => {
            return Err(wrong("F64", "widening F32 was turned off with LoadOptions::widen_f32_to_f64"));
        }
        (Dtype::F32, Dtype::F64) => {
            return Err(wrong(
                "F32",
                "the model is f32 and narrowing would round; load it into an f64 model or \
                 allow it with LoadOptions::narrow_f64_to_f32",
            ));
        }
        (Dtype::F32, _) => return Err(wrong("F32", "")),
        _ => return Err(wrong("F64", "")),
    };
    let bad = F::count_non_finite(&values);
    if bad > 0 {
        let first_index = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Mismatch::NonFinite { name: name.to_string(), count: bad, first_index });
    }
    Ok((values, model != found))
}

/// `F16` or `BF16` values, exactly as `F`s (every half-precision value is an `f32`).
fn half_to<F: Float>(dtype: super::stored::Dtype, bytes: &[u8]) -> Vec<F> {
    let wide = super::stored::decode_floats_f64(dtype, bytes);
    let mut out = vec![F::zero(); wide.len()];
    F::convert_from_f64(&wide, &mut out);
    out
}

/// Decodes a counter: an `I64` scalar, as PyTorch stores `num_batches_tracked`.
fn decode_count(name: &str, view: &TensorView<'_>) -> std::result::Result<u64, Mismatch> {
    if view.dtype() != Dtype::I64 {
        return Err(Mismatch::WrongDtype {
            name: name.to_string(),
            expected: "I64".into(),
            found: view.dtype().to_string(),
            note: "a counter, stored as PyTorch stores num_batches_tracked".into(),
        });
    }
    // A shape other than [] is reported by the caller; read the first value when there is one.
    let Some(first) = view.data().get(..8) else { return Ok(0) };
    let value = i64::from_le_bytes(first.try_into().expect("8 bytes"));
    u64::try_from(value).map_err(|_| Mismatch::NegativeCount { name: name.to_string(), value })
}

/// `dst`'s entries, in logical order, set to `values` (a copy of memory when `dst` is in
/// standard layout).
fn write_logical<F: Float>(dst: &mut ndarray::ArrayViewMutD<'_, F>, values: &[F]) {
    match dst.as_slice_mut() {
        Some(d) if d.len() == values.len() => d.copy_from_slice(values),
        _ => dst.iter_mut().zip(values).for_each(|(d, &v)| *d = v),
    }
}

/// Little-endian `f32` (`stored_f32`) or `f64` values, converted to `F`. A kernel
/// ([`crate::kernels`]).
pub(crate) fn decode_le<F: Float>(bytes: &[u8], stored_f32: bool) -> Vec<F> {
    if stored_f32 {
        bytes.chunks_exact(4).map(|c| F::lit(f64::from(f32::from_le_bytes(c.try_into().unwrap())))).collect()
    } else {
        bytes.chunks_exact(8).map(|c| F::lit(f64::from_le_bytes(c.try_into().unwrap()))).collect()
    }
}

/// Appends `values` (in logical order) to `bytes` as little-endian `f32` (`as_f32`) or `f64`. A
/// kernel ([`crate::kernels`]).
pub(crate) fn encode_le<F: Float>(values: ndarray::ArrayViewD<'_, F>, as_f32: bool, bytes: &mut Vec<u8>) {
    for v in values.iter() {
        if as_f32 {
            bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&v.as_f64().to_le_bytes());
        }
    }
}

/// A tensor to be written: name, dtype, shape and little-endian bytes.
struct Encoded {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn encode_state<F: Float>(layer: &dyn Layer<F>) -> Result<Vec<Encoded>> {
    model_slots(layer)?; // refuses duplicate names
    let dtype = dtype_of::<F>();
    let encode_floats = |values: ndarray::ArrayViewD<'_, F>| -> Vec<u8> {
        let mut bytes = Vec::new();
        F::encode_le(values, dtype == Dtype::F32, &mut bytes);
        bytes
    };
    let mut out = Vec::new();
    for (name, p) in named_parameters(layer) {
        let bytes = encode_floats(p.value.view());
        out.push(Encoded { name, dtype, shape: p.value.shape().to_vec(), bytes });
    }
    for (name, b) in named_buffers(layer) {
        match b {
            BufferView::Tensor { value, .. } => {
                let bytes = encode_floats(value.view());
                out.push(Encoded { name, dtype, shape: value.shape().to_vec(), bytes });
            }
            BufferView::Count { value, .. } => {
                let value = i64::try_from(value).map_err(|_| {
                    Error::config(
                        layer.describe(),
                        "state",
                        format!("counter `{name}` = {value} exceeds i64"),
                    )
                })?;
                out.push(Encoded {
                    name,
                    dtype: Dtype::I64,
                    shape: vec![],
                    bytes: value.to_le_bytes().to_vec(),
                });
            }
        }
    }
    Ok(out)
}

fn tensor_views(tensors: &[Encoded]) -> Result<Vec<(&str, TensorView<'_>)>> {
    tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes).map(|v| (t.name.as_str(), v)).map_err(|e| {
                Error::Data { source_name: t.name.clone(), reason: format!("cannot encode tensor: {e}") }
            })
        })
        .collect()
}

fn pt_metadata() -> HashMap<String, String> {
    // `{"format": "pt"}` is what Hugging Face writes for PyTorch-layout tensors.
    HashMap::from([("format".to_string(), "pt".to_string())])
}

/// The mismatches, one per line; a tensor the key map renamed is named both ways.
fn describe_mismatches(target: &str, mismatches: &[Mismatch], renames: &[(String, String)]) -> String {
    let mut reason = format!(
        "does not fit {target}: {} problem{}, nothing was loaded:",
        mismatches.len(),
        if mismatches.len() == 1 { "" } else { "s" }
    );
    for m in mismatches {
        reason.push_str("\n  - ");
        reason.push_str(&m.to_string());
        let note = match m {
            Mismatch::Unexpected { name, .. } => renames
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, model)| format!(" (the key map renamed it `{model}`)")),
            Mismatch::SameName { .. } | Mismatch::Missing { .. } => None,
            other => renames
                .iter()
                .find(|(_, model)| model == other.name())
                .map(|(key, _)| format!(" (`{key}` in the file)")),
        };
        reason.push_str(&note.unwrap_or_default());
    }
    reason
}

/// `what: N problems:` and one line per problem.
pub(super) fn describe_problems(what: &str, mismatches: &[Mismatch]) -> String {
    describe_list(what, "", mismatches)
}

fn describe_list(what: &str, after_count: &str, mismatches: &[Mismatch]) -> String {
    let mut reason = format!(
        "{what}: {} problem{}{after_count}:",
        mismatches.len(),
        if mismatches.len() == 1 { "" } else { "s" }
    );
    for m in mismatches {
        reason.push_str("\n  - ");
        reason.push_str(&m.to_string());
    }
    reason
}
