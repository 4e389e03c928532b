//! [`TrainingDiagnosis`]: how training went over a whole recording — whether the loss falls,
//! how far each update moves the weights, and how the gradient flow changed on the way.
//!
//! A network whose gradient flows well at initialization can still fail to train: with a
//! learning rate that is too large the loss falls, then climbs back and oscillates; with one
//! that is too small it hardly moves; ReLU units can die half-way. The step-0 diagnosis cannot
//! see any of this, so [`super::diagnose`] also reads the recording's later steps:
//!
//! - **the loss**, reported at every step ([`crate::Network::report_loss`]; the
//!   [`crate::train::Trainer`] does it), smoothed over ten equal stretches of the run. It is
//!   *unstable* when, after falling, it rises again by more than [`Thresholds::loss_rise`] of
//!   what it had gained (or ends above where it started), and *stalled* when it falls by less
//!   than [`Thresholds::loss_progress`] of its start; changes below [`Thresholds::loss_noise`]
//!   of the start are minibatch noise.
//! - **the update-to-weight ratio** ‖ΔW‖/‖W‖ of each layer at each step (recorded when the
//!   optimizer is stepped through [`crate::Network::step`]): the size of the steps, which points
//!   at the learning rate — near 1e-3 in healthy training by a common rule of thumb, above
//!   [`Thresholds::update_ratio_high`] large, below [`Thresholds::update_ratio_low`] small; a
//!   layer whose ratio falls below the latter has stopped learning.
//! - **the gradient flow** at each recorded step (at most 200 of them, evenly spread), judged as
//!   at step 0: a network whose gradient starts to vanish or explode, or whose units die or
//!   saturate during training, is named with the step where it began.

use serde::{Deserialize, Serialize};

use super::diagnosis::flow_at;
use super::{Remedy, Thresholds, Verdict};
use crate::hooks::Recording;

/// The loss over a run, smoothed over ten equal stretches of the reported steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossTrend {
    /// The mean loss of each stretch, in order.
    pub stretches: Vec<f64>,
    /// The last step of each stretch.
    pub stretch_ends: Vec<u64>,
    /// The mean loss of the first stretch.
    pub start: f64,
    /// The lowest stretch mean.
    pub best: f64,
    /// The mean loss of the last stretch.
    pub end: f64,
    /// The largest rise of a stretch mean above the lowest mean before it (0 when the loss never
    /// rose).
    pub largest_rise: f64,
    /// The last step of the stretch where that rise peaked.
    pub rise_step: Option<u64>,
}

/// A step at which the gradient-flow verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowChange {
    /// The first recorded step with the new verdict.
    pub step: u64,
    /// The gradient-flow verdict from that step on (as [`super::diagnose_step`] gives it).
    pub verdict: Verdict,
}

/// How training went, judged over every recorded step (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingDiagnosis {
    /// The first recorded step with a backward pass.
    pub first_step: u64,
    /// The last recorded step with a backward pass.
    pub last_step: u64,
    /// [`Verdict::Healthy`] when the loss falls and the gradient keeps flowing;
    /// [`Verdict::Unstable`] or [`Verdict::Stalled`] from the loss; otherwise the problem of
    /// the gradient flow that appeared during training and lasted to the end.
    pub verdict: Verdict,
    /// The loss trend, when at least ten steps' losses were reported.
    pub loss: Option<LossTrend>,
    /// The median ‖ΔW‖/‖W‖ per step of each layer (index: layer number − 1; the output layer
    /// last), over the recorded steps; `None` where no update was recorded.
    pub update_ratios: Vec<Option<f64>>,
    /// The median of `update_ratios` over the hidden layers.
    pub median_update_ratio: Option<f64>,
    /// The gradient-flow verdict at the first recorded step, then every change of it.
    pub flow: Vec<FlowChange>,
    /// The numbers behind the verdict.
    pub evidence: Vec<String>,
    /// What to do, most direct first (empty when healthy).
    pub remedies: Vec<Remedy>,
}

/// At most this many steps are judged, evenly spread over the run.
const MAX_JUDGED_STEPS: usize = 200;

/// Ten stretches: the smoothing of the loss.
const STRETCHES: usize = 10;

fn sci(x: f64) -> String {
    format!("{x:.1e}")
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { 0.5 * (values[mid - 1] + values[mid]) })
}

/// The loss trend of `recording`, when at least [`STRETCHES`] losses were reported.
fn loss_trend(recording: &Recording) -> Option<LossTrend> {
    let losses = &recording.losses;
    if losses.len() < STRETCHES {
        return None;
    }
    let len = losses.len() / STRETCHES;
    let (mut stretches, mut stretch_ends) = (Vec::new(), Vec::new());
    for k in 0..STRETCHES {
        let end = if k + 1 == STRETCHES { losses.len() } else { (k + 1) * len };
        let part = &losses[k * len..end];
        stretches.push(part.iter().map(|l| l.loss).sum::<f64>() / part.len() as f64);
        stretch_ends.push(part.last().map_or(0, |l| l.step));
    }
    let (mut best_so_far, mut largest_rise, mut rise_step) = (stretches[0], 0.0, None);
    for (k, &mean) in stretches.iter().enumerate() {
        if mean - best_so_far > largest_rise {
            largest_rise = mean - best_so_far;
            rise_step = Some(stretch_ends[k]);
        }
        best_so_far = best_so_far.min(mean);
    }
    Some(LossTrend {
        start: stretches[0],
        best: stretches.iter().copied().fold(f64::INFINITY, f64::min),
        end: stretches[STRETCHES - 1],
        stretches,
        stretch_ends,
        largest_rise,
        rise_step,
    })
}

/// Whether `trend` is unstable, and why.
fn unstable(trend: &LossTrend, t: &Thresholds) -> Option<String> {
    let noise = t.loss_noise * trend.start.abs();
    if trend.end > trend.start + noise {
        return Some(format!(
            "the loss ends above where it started ({:.3} → {:.3}, smoothed over ten stretches of the run)",
            trend.start, trend.end
        ));
    }
    let gained = trend.start - trend.best;
    let at = trend.rise_step.map_or(String::new(), |s| format!(" by step {s}"));
    (trend.largest_rise > noise && trend.largest_rise > t.loss_rise * gained).then(|| {
        format!(
            "the loss falls from {:.3} to {:.3}, then climbs back by {:.3}{at} ({:.0}% of what it had gained; \
             smoothed over ten stretches of the run) and ends at {:.3}",
            trend.start,
            trend.best,
            trend.largest_rise,
            100.0 * trend.largest_rise / gained.max(f64::MIN_POSITIVE),
            trend.end
        )
    })
}

/// Whether `trend` is stalled — hardly falls over the run, or stops falling in its second half
/// while well above its minimum — and why.
fn stalled(trend: &LossTrend, t: &Thresholds) -> Option<String> {
    let progress = trend.start - trend.end;
    if progress < t.loss_progress * trend.start.abs() {
        return Some(format!(
            "the loss hardly falls: {:.3} → {:.3} over the run ({:.1}% of its start)",
            trend.start,
            trend.end,
            100.0 * progress / trend.start.abs().max(f64::MIN_POSITIVE)
        ));
    }
    let half = &trend.stretches[STRETCHES / 2..];
    let (early, late) = ((half[0] + half[1]) / 2.0, (half[half.len() - 2] + half[half.len() - 1]) / 2.0);
    let decline = (early - late) / early.abs().max(f64::MIN_POSITIVE);
    (decline < t.loss_progress && late > t.loss_plateau * trend.start).then(|| {
        format!(
            "the loss stops falling in the second half of the run: {early:.3} → {late:.3} ({:.0}%), still {:.0}% of \
             its start ({:.3})",
            -100.0 * decline,
            100.0 * late / trend.start,
            trend.start
        )
    })
}

/// Whether the loss is still far from converged (above [`Thresholds::loss_plateau`] of its
/// start at the end).
fn unconverged(trend: &LossTrend, t: &Thresholds) -> bool {
    trend.end > t.loss_plateau * trend.start
}

/// The steps to judge: every recorded step with a backward pass, thinned evenly to at most
/// [`MAX_JUDGED_STEPS`] (keeping the first and the last).
fn judged_steps(recording: &Recording) -> Vec<u64> {
    let with_backward: Vec<u64> = recording
        .steps()
        .into_iter()
        .filter(|&s| recording.layers.iter().any(|l| l.at_step(s).is_some_and(|r| r.grad_output.is_some())))
        .collect();
    if with_backward.len() <= MAX_JUDGED_STEPS {
        return with_backward;
    }
    let last = with_backward.len() - 1;
    let mut picked: Vec<u64> =
        (0..MAX_JUDGED_STEPS).map(|k| with_backward[k * last / (MAX_JUDGED_STEPS - 1)]).collect();
    picked.dedup();
    picked
}

/// Diagnoses training over the whole recording, or `None` when fewer than two steps with a
/// backward pass were recorded.
pub(crate) fn diagnose_training(recording: &Recording, t: &Thresholds) -> Option<TrainingDiagnosis> {
    let steps = judged_steps(recording);
    if steps.len() < 2 {
        return None;
    }
    let mut flow: Vec<FlowChange> = Vec::new();
    // ratios[layer][k]: the layer's ‖ΔW‖/‖W‖ at the k-th judged step that recorded one.
    let mut ratios: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut hidden = 0;
    let mut last_flow = None;
    let mut verdicts = Vec::new();
    for &step in &steps {
        let Some(at) = flow_at(recording, step, t) else { continue };
        verdicts.push((step, at.verdict));
        if flow.last().is_none_or(|f| f.verdict != at.verdict) {
            flow.push(FlowChange { step, verdict: at.verdict });
        }
        hidden = at.layers.iter().filter(|l| !l.layer.is_output).count();
        if ratios.len() < at.layers.len() {
            ratios.resize(at.layers.len(), Vec::new());
        }
        for (i, l) in at.layers.iter().enumerate() {
            if let Some(r) = l.layer.update_to_weight_ratio.filter(|r| r.is_finite()) {
                ratios[i].push((step, r));
            }
        }
        last_flow = Some(at);
    }
    let last_flow = last_flow?;
    let update_ratios: Vec<Option<f64>> =
        ratios.iter().map(|r| median(&mut r.iter().map(|&(_, v)| v).collect::<Vec<_>>())).collect();
    let median_update_ratio = median(
        &mut update_ratios[..hidden.min(update_ratios.len())].iter().flatten().copied().collect::<Vec<_>>(),
    );
    let loss = loss_trend(recording);

    let mut evidence = Vec::new();
    let mut remedies = Vec::new();
    let first_step = steps[0];
    let last_step = *steps.last().expect("at least two steps");
    match &loss {
        Some(_) => {}
        None => evidence.push(format!(
            "{} losses were reported, fewer than {STRETCHES}: the loss trend is not judged (the Trainer reports \
             every step's loss; a hand-written loop calls Network::report_loss)",
            recording.losses.len()
        )),
    }
    let loss_unstable = loss.as_ref().and_then(|l| unstable(l, t));
    let loss_stalled = loss.as_ref().and_then(|l| stalled(l, t));

    // The gradient flow: a problem it ends with that it did not start with — held by at least
    // two thirds of the last tenth of the judged steps (at least three), so that one minibatch
    // near a threshold does not decide.
    let initial = flow.first().map(|f| f.verdict);
    let tail = (verdicts.len() / 10).max(3).min(verdicts.len());
    let ending = &verdicts[verdicts.len() - tail..];
    let held = |v: Verdict| 3 * ending.iter().filter(|&&(_, e)| e == v).count() >= 2 * tail;
    let appeared = (last_flow.verdict != Verdict::Healthy
        && Some(last_flow.verdict) != initial
        && held(last_flow.verdict))
    .then(|| flow.iter().rev().find(|f| f.verdict == last_flow.verdict).copied())
    .flatten();
    if let Some(change) = appeared {
        let first_seen = flow.iter().find(|f| f.verdict == change.verdict).map_or(change.step, |f| f.step);
        let since = if first_seen == change.step {
            format!("from step {} to the end (step {last_step})", change.step)
        } else {
            format!(
                "at the end (step {last_step}), first at step {first_seen}, for good from step {}",
                change.step
            )
        };
        evidence.push(format!(
            "the gradient flow, {} at step {first_step}, is {} {since}",
            initial.map_or("unknown", Verdict::name),
            change.verdict,
        ));
        let about = |e: &&String| match change.verdict {
            Verdict::Dead => e.contains("dead"),
            Verdict::Saturated => e.contains("saturated"),
            Verdict::NonFinite => e.contains("NaN"),
            _ => e.starts_with("gradient norm"),
        };
        evidence.extend(last_flow.evidence.iter().filter(about).map(|e| format!("at step {last_step}: {e}")));
    }
    // Small updates point at the learning rate only when the gradient reaches every layer.
    let flowing = initial == Some(Verdict::Healthy);

    // How large the updates are.
    let update_text = |r: f64| {
        format!(
            "the updates move the hidden layers' weights by a median {} of their norm per step (‖ΔW‖/‖W‖; healthy \
             training is near 1e-3)",
            sci(r)
        )
    };
    let large_updates = median_update_ratio.filter(|&r| r > t.update_ratio_high);
    let small_updates = median_update_ratio.filter(|&r| r < t.update_ratio_low);

    let verdict = if let Some(why) = loss_unstable {
        evidence.insert(0, why);
        match (large_updates, median_update_ratio) {
            (Some(r), _) => evidence.insert(1, format!("{}: too large", update_text(r))),
            (None, Some(r)) => evidence.insert(1, update_text(r)),
            _ => {}
        }
        remedies.extend([Remedy::LowerLearningRate, Remedy::ClipGradients]);
        Verdict::Unstable
    } else if let Some(change) = appeared {
        remedies.extend(flow_remedies(&last_flow.remedies));
        change.verdict
    } else if let Some(why) = loss_stalled.or_else(|| {
        let slow = flowing && small_updates.is_some() && loss.as_ref().is_some_and(|l| unconverged(l, t));
        slow.then(|| {
            let l = loss.as_ref().expect("checked");
            format!("the loss falls slowly: {:.3} → {:.3} over the run", l.start, l.end)
        })
    }) {
        evidence.insert(0, why);
        let typical = (t.update_ratio_low * t.update_ratio_high).sqrt();
        match (small_updates, median_update_ratio) {
            (Some(r), _) if flowing => {
                evidence.insert(1, format!("{}: too small", update_text(r)));
                remedies.push(Remedy::RaiseLearningRate);
            }
            (None, Some(r)) if flowing && r >= typical => {
                evidence.insert(
                    1,
                    format!(
                        "{}: the steps are too large for the loss to settle lower (or the model cannot fit the \
                         data better)",
                        update_text(r)
                    ),
                );
                remedies.push(Remedy::LowerLearningRate);
            }
            (Some(r), _) => evidence.insert(
                1,
                format!(
                    "{}: small because the gradient does not reach the layers (see the gradient flow), not \
                     because of the learning rate",
                    update_text(r)
                ),
            ),
            (None, Some(r)) => {
                evidence.insert(1, format!("{}, so the learning rate is not the cause", update_text(r)))
            }
            _ => {}
        }
        Verdict::Stalled
    } else {
        if let Some(r) = large_updates {
            evidence.push(format!("{}: large, although the loss falls steadily", update_text(r)));
        }
        Verdict::Healthy
    };
    if verdict == Verdict::Unstable && appeared.is_some() {
        remedies.extend(flow_remedies(&last_flow.remedies));
    }
    stopped_layers(&ratios, hidden, t, &mut evidence);
    let mut unique = Vec::new();
    for r in remedies {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    Some(TrainingDiagnosis {
        first_step,
        last_step,
        verdict,
        loss,
        update_ratios,
        median_update_ratio,
        flow,
        evidence,
        remedies: unique,
    })
}

/// The remedies for a gradient-flow problem that appeared during training: a lower learning
/// rate first (a network that started healthy was changed by its updates), then those of the
/// problem as the last step shows it.
fn flow_remedies(at_last_step: &[Remedy]) -> Vec<Remedy> {
    std::iter::once(Remedy::LowerLearningRate).chain(at_last_step.iter().copied()).collect()
}

/// Evidence for hidden layers whose updates fell below [`Thresholds::update_ratio_low`] in the
/// last quarter of the run after being above it in the first.
fn stopped_layers(ratios: &[Vec<(u64, f64)>], hidden: usize, t: &Thresholds, evidence: &mut Vec<String>) {
    for (i, layer) in ratios.iter().enumerate().take(hidden) {
        if layer.len() < 8 {
            continue;
        }
        let quarter = layer.len() / 4;
        let early = median(&mut layer[..quarter].iter().map(|&(_, r)| r).collect::<Vec<_>>());
        let late = median(&mut layer[layer.len() - quarter..].iter().map(|&(_, r)| r).collect::<Vec<_>>());
        if let (Some(early), Some(late)) = (early, late)
            && early >= t.update_ratio_low
            && late < t.update_ratio_low
        {
            let since = layer.iter().find(|&&(_, r)| r < t.update_ratio_low).map_or(0, |&(s, _)| s);
            evidence.push(format!(
                "layer {} stopped learning: its updates fell from {} to {} of its weights per step (below {} \
                 from step {since})",
                i + 1,
                sci(early),
                sci(late),
                sci(t.update_ratio_low)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::StepLoss;

    fn recording_with_losses(losses: &[f64]) -> Recording {
        let losses = losses.iter().enumerate().map(|(i, &loss)| StepLoss { step: i as u64, loss }).collect();
        Recording { losses, ..Recording::default() }
    }

    #[test]
    fn the_loss_is_smoothed_over_ten_stretches() {
        // 25 steps: stretches of 2, the last of 7.
        let losses: Vec<f64> = (0..25).map(|i| 25.0 - i as f64).collect();
        let trend = loss_trend(&recording_with_losses(&losses)).unwrap();
        assert_eq!(trend.stretches.len(), 10);
        assert_eq!(trend.stretches[0], 24.5);
        assert_eq!(trend.end, 4.0); // the last stretch holds 7, 6, …, 1
        assert_eq!(trend.stretch_ends[0], 1);
        assert_eq!(trend.largest_rise, 0.0);
        assert!(loss_trend(&recording_with_losses(&losses[..9])).is_none());
    }

    #[test]
    fn a_loss_that_climbs_back_is_unstable_and_one_that_hardly_moves_is_stalled() {
        let t = Thresholds::default();
        // Falls from 2 to 1, climbs back to 1.5: half of the gain lost.
        let climbs = [2.0, 1.8, 1.5, 1.2, 1.0, 1.2, 1.5, 1.4, 1.5, 1.5];
        let trend = loss_trend(&recording_with_losses(&climbs)).unwrap();
        assert_eq!((trend.best, trend.largest_rise, trend.rise_step), (1.0, 0.5, Some(6)));
        assert!(unstable(&trend, &t).is_some());
        // (It also stops falling in its second half; instability is what the verdict names.)
        // Falls steadily with noise: healthy.
        let falls = [2.0, 1.5, 1.2, 1.0, 1.05, 0.8, 0.7, 0.72, 0.6, 0.5];
        let trend = loss_trend(&recording_with_losses(&falls)).unwrap();
        assert!(unstable(&trend, &t).is_none() && stalled(&trend, &t).is_none());
        // 2.30 → 2.25: stalled (hardly falls); its wiggles are noise, not instability.
        let flat = [2.30, 2.29, 2.31, 2.28, 2.30, 2.27, 2.29, 2.26, 2.27, 2.25];
        let trend = loss_trend(&recording_with_losses(&flat)).unwrap();
        assert!(unstable(&trend, &t).is_none());
        assert!(stalled(&trend, &t).is_some());
        // Falls, then stays at half its start for the second half: stalled (a plateau).
        let plateau = [2.0, 1.6, 1.3, 1.2, 1.15, 1.12, 1.13, 1.11, 1.12, 1.11];
        let trend = loss_trend(&recording_with_losses(&plateau)).unwrap();
        assert!(unstable(&trend, &t).is_none());
        assert!(stalled(&trend, &t).unwrap().contains("stops falling"));
        // The same shape near zero has converged.
        let converged = plateau.map(|l| l - 1.0);
        assert!(stalled(&loss_trend(&recording_with_losses(&converged)).unwrap(), &t).is_none());
        // Ends above its start: unstable.
        let up = [1.0, 0.9, 1.0, 1.2, 1.4, 1.3, 1.5, 1.6, 1.8, 2.0];
        assert!(unstable(&loss_trend(&recording_with_losses(&up)).unwrap(), &t).is_some());
    }
}
