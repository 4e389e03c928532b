//! Progress output during training: a bar on a terminal, one plain line per epoch otherwise.

use std::io::{IsTerminal, Write};

#[cfg(feature = "progress")]
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EpochStats, Progress};

/// The plain line printed after an epoch, e.g.
/// `epoch 3/20  train loss 0.4123  acc 88.1%  test loss 0.5012  acc 85.3%`. Accuracy and test
/// columns appear only when measured.
///
/// ```
/// use gradflow::train::{EpochStats, epoch_line};
///
/// let stats = EpochStats {
///     epoch: 3, train_loss: 0.41234, train_accuracy: Some(0.881), test_loss: None,
///     test_accuracy: None, learning_rate: 0.1,
/// };
/// assert_eq!(epoch_line(&stats, 20), "epoch 3/20  train loss 0.4123  acc 88.1%");
/// ```
pub fn epoch_line(stats: &EpochStats, total_epochs: usize) -> String {
    let mut line = format!("epoch {}/{total_epochs}  train loss {:.4}", stats.epoch, stats.train_loss);
    if let Some(acc) = stats.train_accuracy {
        line += &format!("  acc {:.1}%", 100.0 * acc);
    }
    if let Some(loss) = stats.test_loss {
        line += &format!("  test loss {loss:.4}");
    }
    if let Some(acc) = stats.test_accuracy {
        line += &format!("  acc {:.1}%", 100.0 * acc);
    }
    line
}

/// Where the trainer reports progress to.
pub(crate) enum Reporter<'w> {
    Silent,
    Lines {
        out: Box<dyn Write + 'w>,
        total_epochs: usize,
    },
    #[cfg(feature = "progress")]
    Bar {
        bar: ProgressBar,
        total_epochs: usize,
    },
}

impl Reporter<'static> {
    /// The reporter for `progress`, resolving [`Progress::Auto`] by whether standard error is a
    /// terminal.
    pub(crate) fn new(progress: Progress, total_epochs: usize, total_steps: u64) -> Self {
        #[cfg(not(feature = "progress"))]
        let _ = total_steps; // only the bar counts steps
        let progress = match progress {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            other => other,
        };
        match progress {
            Progress::Silent => Reporter::Silent,
            Progress::Lines | Progress::Auto => Reporter::lines(Box::new(std::io::stderr()), total_epochs),
            #[cfg(not(feature = "progress"))]
            Progress::Bar => Reporter::lines(Box::new(std::io::stderr()), total_epochs),
            #[cfg(feature = "progress")]
            Progress::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stderr());
                let style =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps ({eta} left)")
                        .map(|s| s.progress_chars("=> "))
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(format!("epoch 1/{total_epochs}"));
                Reporter::Bar { bar, total_epochs }
            }
        }
    }
}

impl<'w> Reporter<'w> {
    /// One line per epoch written to `out`.
    pub(crate) fn lines(out: Box<dyn Write + 'w>, total_epochs: usize) -> Self {
        Reporter::Lines { out, total_epochs }
    }

    /// A minibatch step is done.
    pub(crate) fn step(&mut self) {
        #[cfg(feature = "progress")]
        if let Reporter::Bar { bar, .. } = self {
            bar.inc(1);
        }
    }

    /// An epoch is done.
    pub(crate) fn epoch(&mut self, stats: &EpochStats) {
        match self {
            Reporter::Silent => {}
            Reporter::Lines { out, total_epochs } => {
                // Progress output is best effort: a closed stderr must not stop training.
                let _ = writeln!(out, "{}", epoch_line(stats, *total_epochs));
                let _ = out.flush();
            }
            #[cfg(feature = "progress")]
            Reporter::Bar { bar, total_epochs } => {
                // The line stays above the bar.
                bar.println(epoch_line(stats, *total_epochs));
                if stats.epoch < *total_epochs {
                    bar.set_prefix(format!("epoch {}/{total_epochs}", stats.epoch + 1));
                }
            }
        }
    }

    /// Training ended (normally or with an error).
    pub(crate) fn finish(&mut self) {
        #[cfg(feature = "progress")]
        if let Reporter::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: Some(0.5),
            test_loss: Some(2.0),
            test_accuracy: Some(0.25),
            learning_rate: 0.1,
        }
    }

    #[test]
    fn line_has_every_measured_column() {
        assert_eq!(
            epoch_line(&stats(4), 20),
            "epoch 4/20  train loss 0.2500  acc 50.0%  test loss 2.0000  acc 25.0%"
        );
        let values_only = EpochStats { train_accuracy: None, test_accuracy: None, ..stats(1) };
        assert_eq!(epoch_line(&values_only, 2), "epoch 1/2  train loss 1.0000  test loss 2.0000");
    }

    #[test]
    fn lines_reporter_writes_one_line_per_epoch() {
        let mut buffer = Vec::new();
        {
            let mut reporter = Reporter::lines(Box::new(&mut buffer), 3);
            for epoch in 1..=3 {
                for _ in 0..5 {
                    reporter.step();
                }
                reporter.epoch(&stats(epoch));
            }
            reporter.finish();
        }
        let text = String::from_utf8(buffer).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("epoch 1/3  train loss 1.0000"), "{text}");
        assert!(lines[2].starts_with("epoch 3/3  train loss 0.3333"), "{text}");
        assert!(text.ends_with('\n'));
    }
}
