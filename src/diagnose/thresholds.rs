//! [`Thresholds`]: when the diagnosis calls a gradient vanishing, exploding, saturated or dead.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The limits the diagnosis applies, with documented defaults. The gradient ratios compare
/// ‖dL/dh‖ at the first hidden layer (nearest the input) with the last hidden layer (see
/// [`super::HiddenLayer`]).
///
/// ```
/// use gradflow::diagnose::Thresholds;
///
/// // Call a 10× drop already vanishing.
/// let strict = Thresholds { vanishing_ratio: 0.1, ..Thresholds::default() };
/// strict.validate()?;
/// assert!(Thresholds { dead_fraction: 1.5, ..strict }.validate().is_err());
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Vanishing when ‖dL/dh‖ at the first hidden layer is below this share of the last hidden
    /// layer's (default 1e-2: a 100× drop). A layer is vanishing when its own ‖dL/dh‖ is. In (0, 1).
    pub vanishing_ratio: f64,
    /// In a model whose gradient vanishes (or explodes), a layer is labelled vanishing
    /// (exploding) already when its ‖dL/dh‖ is below this share (above its inverse) of the
    /// last hidden layer's (default 0.1: it learns at a tenth of the top layer's pace), so that
    /// no layer of a vanishing chain is labelled healthy. In [`Thresholds::vanishing_ratio`], 1).
    pub layer_ratio: f64,
    /// Exploding when that ratio is above this (default 1e2: a 100× growth). Above 1.
    pub exploding_ratio: f64,
    /// A layer is saturated when more than this share of its units is saturated (default 0.5).
    /// In (0, 1).
    pub saturated_fraction: f64,
    /// A layer is dead when more than this share of its units is dead (default 0.5), and the
    /// model when its hidden layers' shares average more than this (or one layer is beyond
    /// [`Thresholds::dead_fraction_severe`]). In (0, 1).
    ///
    /// Deep ReLU stacks show dead units even at a good initialization, because the
    /// representations of different samples grow alike with depth: at 30 layers of width 128
    /// with He init, 30–45% of a layer's units are zero for a whole batch of 64 (measured with
    /// this crate's tests). Larger batches lower the share.
    pub dead_fraction: f64,
    /// The model is dead when a single hidden layer has more than this share of its units dead
    /// (default 0.65). Below it, one layer beyond [`Thresholds::dead_fraction`] can be chance:
    /// for 12- and 30-layer He-initialized ReLU stacks of width 64 and batches of 32–64, the most
    /// dead layer of each of 20 seeds had 25–55% of its units dead (measured with this crate).
    /// At least `dead_fraction`, below 1.
    pub dead_fraction_severe: f64,
    /// The forward signal counts as shrinking when the activation std of the last hidden layer
    /// is below this share of the first's (default 0.1), and as growing when above its inverse.
    /// It decides which remedy comes first (initialization), not the verdict. In (0, 1).
    pub forward_shrink_ratio: f64,
    /// Training is *unstable* when, after falling, the loss rises again by more than this share
    /// of what it had gained (default 0.25) — or ends above where it started. The loss is
    /// smoothed over ten equal stretches of the run first. In (0, 1).
    pub loss_rise: f64,
    /// A rise of the loss (and a fall, for [`Thresholds::loss_progress`]) counts only when it
    /// is larger than this share of the starting loss (default 0.05): smaller changes are
    /// minibatch noise. In (0, 1).
    pub loss_noise: f64,
    /// Training is *stalled* when the loss falls by less than this share of its starting value
    /// over the whole run, or by less than this share of its level over the second half of the
    /// run while still above [`Thresholds::loss_plateau`] of its start (default 0.1). In (0, 1).
    pub loss_progress: f64,
    /// A loss that stops falling counts as stalled only above this share of its starting value
    /// (default 0.25); below, it has converged. In (0, 1).
    pub loss_plateau: f64,
    /// Updates are large when the median ‖ΔW‖/‖W‖ per step of the hidden layers is above this
    /// (default 1e-2). A rule of thumb puts healthy training near 1e-3 (Karpathy, CS231n
    /// "Neural Networks Part 3": "the ratio of the update magnitudes to the value magnitudes …
    /// should be somewhere around 1e-3"); gradflow's own well-tuned runs on the digits measure
    /// 1e-3–5e-3. In (0, 1).
    pub update_ratio_high: f64,
    /// Updates are small when that median is below this (default 1e-4: ten times below the rule
    /// of thumb); a layer whose updates fall below it has stopped learning. Below
    /// [`Thresholds::update_ratio_high`].
    pub update_ratio_low: f64,
    /// The measured per-layer gradient factor agrees with the mean-field prediction
    /// ([`super::Diagnosis::with_theory`]) when measured/predicted is within
    /// `[1/theory_tolerance, theory_tolerance]` (default 1.1). On the plain networks of the
    /// `resnet_vs_plain` and `initializers` examples (widths 64 and 128, 256 examples, 20–30
    /// layers) the two were within 3% on every seed tried; narrower layers, smaller batches and
    /// fewer layers scatter more around the prediction. A finite number above 1.
    pub theory_tolerance: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            vanishing_ratio: 1e-2,
            exploding_ratio: 1e2,
            saturated_fraction: 0.5,
            dead_fraction: 0.5,
            dead_fraction_severe: 0.65,
            forward_shrink_ratio: 0.1,
            layer_ratio: 0.1,
            loss_rise: 0.25,
            loss_noise: 0.05,
            loss_progress: 0.1,
            loss_plateau: 0.25,
            update_ratio_high: 1e-2,
            update_ratio_low: 1e-4,
            theory_tolerance: 1.1,
        }
    }
}

impl Thresholds {
    /// Checks every limit.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field that is out of range.
    pub fn validate(&self) -> Result<()> {
        let unit = [
            ("vanishing_ratio", self.vanishing_ratio),
            ("saturated_fraction", self.saturated_fraction),
            ("dead_fraction", self.dead_fraction),
            ("dead_fraction_severe", self.dead_fraction_severe),
            ("forward_shrink_ratio", self.forward_shrink_ratio),
            ("layer_ratio", self.layer_ratio),
            ("loss_rise", self.loss_rise),
            ("loss_noise", self.loss_noise),
            ("loss_progress", self.loss_progress),
            ("loss_plateau", self.loss_plateau),
            ("update_ratio_high", self.update_ratio_high),
            ("update_ratio_low", self.update_ratio_low),
        ];
        for (field, value) in unit {
            if !(value > 0.0 && value < 1.0) {
                return Err(Error::config("Thresholds", field, format!("must be in (0, 1), got {value}")));
            }
        }
        if self.dead_fraction_severe < self.dead_fraction {
            return Err(Error::config(
                "Thresholds",
                "dead_fraction_severe",
                format!(
                    "must be at least dead_fraction ({}), got {}",
                    self.dead_fraction, self.dead_fraction_severe
                ),
            ));
        }
        if self.layer_ratio < self.vanishing_ratio {
            return Err(Error::config(
                "Thresholds",
                "layer_ratio",
                format!(
                    "must be at least vanishing_ratio ({}), got {}",
                    self.vanishing_ratio, self.layer_ratio
                ),
            ));
        }
        if self.update_ratio_low >= self.update_ratio_high {
            return Err(Error::config(
                "Thresholds",
                "update_ratio_low",
                format!(
                    "must be below update_ratio_high ({}), got {}",
                    self.update_ratio_high, self.update_ratio_low
                ),
            ));
        }
        if !(self.exploding_ratio > 1.0 && self.exploding_ratio.is_finite()) {
            return Err(Error::config(
                "Thresholds",
                "exploding_ratio",
                format!("must be a finite number above 1, got {}", self.exploding_ratio),
            ));
        }
        if !(self.theory_tolerance > 1.0 && self.theory_tolerance.is_finite()) {
            return Err(Error::config(
                "Thresholds",
                "theory_tolerance",
                format!("must be a finite number above 1, got {}", self.theory_tolerance),
            ));
        }
        Ok(())
    }
}
