//! Work split across threads gives the results of the single-threaded computation.
//!
//! Each computation runs inside local rayon pools of 1, 2 and 3 threads (gradflow uses the
//! pool it is called from), large enough to be split: recurrent steps with B·H·G·H ≥ 2²⁰
//! multiply-adds, matrix products with ≥ 2²⁵.

use approx::{abs_diff_eq, relative_eq};
use gradflow::activation::Tanh;
use gradflow::recurrent::{GruConfig, LstmConfig, Recurrent, RnnConfig};
use gradflow::{Layer, Mode, Sequential, hooks::Context};
use ndarray::{Array2, Array3, ArrayD};
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// max |a|: the scale f32 round-off is measured against.
fn largest_magnitude(a: &ArrayD<f32>) -> f32 {
    a.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn normal3(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
    Array3::random_using(shape, StandardNormal, &mut rand::rngs::StdRng::seed_from_u64(seed))
}

/// Outputs, input gradient and parameter gradients of one forward/backward pass.
fn recurrent_pass(kind: &str, threads: usize) -> Vec<ArrayD<f32>> {
    in_pool(threads, || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // Batch 64, hidden 128: 64·128·(G·128) ≥ 2²⁰ multiply-adds per step for every cell.
        let mut layer: Box<dyn Recurrent<f32>> = match kind {
            "rnn" => Box::new(RnnConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
            "lstm" => Box::new(LstmConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
            _ => Box::new(GruConfig::new(8, 128).num_layers(2).build(&mut rng).unwrap()),
        };
        let x = normal3((5, 64, 8), 2);
        layer.forward_sequence(x.view(), None, Mode::Train).unwrap();
        layer.backward_sequence(normal3((5, 64, 128), 3).view(), None, None).unwrap();
        let mut out = vec![
            layer.outputs().unwrap().into_dyn().to_owned(),
            layer.grad_input().unwrap().into_dyn().to_owned(),
        ];
        layer.visit_parameters(&mut |p| out.push(p.grad.to_owned()));
        out
    })
}

#[test]
fn recurrent_steps_split_across_threads_give_identical_results() {
    for kind in ["rnn", "lstm", "gru"] {
        let one = recurrent_pass(kind, 1);
        for threads in [2, 3] {
            assert!(one == recurrent_pass(kind, threads), "{kind}: {threads} threads differ from 1");
        }
    }
}

/// Output, input gradient and parameter gradients of a Linear-tanh-Linear stack.
fn linear_pass(threads: usize) -> Vec<ArrayD<f32>> {
    in_pool(threads, || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        // 256 × 512 × 384 ≥ 2²⁵ multiply-adds: split, along columns, rows or both.
        let mut model = Sequential::<f32>::builder(512).dense(384, Tanh).linear(300).build(&mut rng).unwrap();
        let x = Array2::from_shape_fn((256, 512), |(i, j)| ((i * 13 + j * 7) % 17) as f32 / 8.5 - 1.0);
        let mut y = Array2::zeros((0, 0));
        let mut ctx = Context::new();
        model.forward(x.view(), &mut y, Mode::Train, &mut ctx).unwrap();
        let grad_y = y.mapv(|v| v * 0.5 + 0.1);
        let mut dx = Array2::zeros((0, 0));
        model.backward(x.view(), y.view(), grad_y.view(), Some(&mut dx), &mut ctx).unwrap();
        let mut out = vec![y.into_dyn(), dx.into_dyn()];
        model.visit_parameters(&mut |p| out.push(p.grad.to_owned()));
        out
    })
}

#[test]
fn matrix_products_split_across_threads_agree_with_one_thread() {
    let one = linear_pass(1);
    for threads in [2, 3] {
        let many = linear_pass(threads);
        for (i, (a, b)) in one.iter().zip(&many).enumerate() {
            // Blocks may be summed in a different order inside the kernels: f32 round-off only.
            let epsilon = 1e-5 * largest_magnitude(a);
            assert!(abs_diff_eq!(a, b, epsilon = epsilon), "array {i}, {threads} threads: {a} vs {b}");
        }
    }
}

/// Five SGD steps of a residual MLP whose products (128 × 256 × 256) are split, so that the
/// network runs its passes as parallel regions from the second pass on; a hook that uses rayon
/// itself runs inside them. Returns the losses and the final weights.
fn training_run(threads: usize) -> (Vec<f32>, Vec<ArrayD<f32>>) {
    use gradflow::Network;
    use gradflow::activation::Relu;
    use gradflow::hooks::Event;
    use gradflow::loss::{CrossEntropy, Loss, Targets};
    use gradflow::optim::{Optimizer, SgdConfig};
    use rayon::prelude::*;
    in_pool(threads, || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let model = Sequential::<f32>::builder(64)
            .linear(256)
            .residual(|b| b.linear(256).batch_norm().activation(Relu).linear(256))
            .residual(|b| b.linear(256).batch_norm().activation(Relu).linear(256))
            .linear(10)
            .build(&mut rng)
            .unwrap();
        let mut net = Network::new(model);
        let handle = net.attach_hook(move |event: &mut Event<'_, f32>| {
            if let Event::Backward(e) = event {
                // rayon work inside a hook, inside a parallel region.
                let sum = e.grad_output.as_slice().unwrap().par_iter().map(|&v| v as f64).sum::<f64>();
                assert!(sum.is_finite());
            }
        });
        let x = Array2::from_shape_fn((128, 64), |(i, j)| ((i * 7 + j * 5) % 13) as f32 / 6.5 - 1.0);
        let classes: Vec<usize> = (0..128).map(|i| i % 10).collect();
        let mut sgd = SgdConfig::new(0.05).build::<f32>().unwrap();
        let mut grad = Array2::zeros((0, 0));
        let mut losses = Vec::new();
        for _ in 0..5 {
            net.zero_grad();
            let out = net.forward(x.view(), Mode::Train).unwrap();
            losses.push(CrossEntropy::default().compute(out, Targets::Classes(&classes), &mut grad).unwrap());
            net.backward(grad.view()).unwrap();
            sgd.step(net.model_mut()).unwrap();
        }
        net.detach_hook(handle);
        let mut weights = Vec::new();
        net.visit_parameters(&mut |p| weights.push(p.value.to_owned()));
        (losses, weights)
    })
}

#[test]
fn training_in_parallel_regions_matches_one_thread_and_hooks_may_use_rayon() {
    let (losses, weights) = training_run(1);
    assert!(losses[4] < losses[0], "{losses:?}");
    for threads in [2, 3] {
        let (many_losses, many_weights) = training_run(threads);
        assert!(
            relative_eq!(losses[..], many_losses[..], epsilon = 0.0, max_relative = 1e-4),
            "{threads} threads: losses {losses:?} vs {many_losses:?}"
        );
        for (a, b) in weights.iter().zip(&many_weights) {
            let epsilon = 1e-4 * largest_magnitude(a);
            assert!(abs_diff_eq!(a, b, epsilon = epsilon), "{threads} threads: weights {a} vs {b}");
        }
    }
}
