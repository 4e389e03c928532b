//! One LSTM training step — zero_grad, forward, MSE, full backpropagation through time, SGD —
//! on the peer benchmarks' workload W4 (`/work/shared/perf/README.md`; PyTorch's version is
//! `nn.LSTM(32, 128, batch_first=True)` + `nn.Linear(128, 1)` on the last step): input 32,
//! hidden 128, sequence 64, batch 32, standard-normal inputs and targets.
//!
//! `cargo bench --bench lstm`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gradflow::loss::{Loss, Mse, Targets};
use gradflow::optim::{Optimizer, SgdConfig};
use gradflow::recurrent::{LstmConfig, Readout, SequenceModel};
use gradflow::{Linear, Mode, Network, Sequential};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_distr::StandardNormal;

const INPUT: usize = 32;
const HIDDEN: usize = 128;
const STEPS: usize = 64;
const BATCH: usize = 32;

fn lstm_training_step(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let lstm = LstmConfig::new(INPUT, HIDDEN).build::<f32>(&mut rng).unwrap();
    let head = Linear::new(HIDDEN, 1, &mut rng).unwrap();
    let mut model = Sequential::new();
    model.push(SequenceModel::new(lstm, Readout::LastStep, head).unwrap());
    let mut net = Network::new(model);
    // Sequences as rows (batch, T · input), the layout SequenceModel takes.
    let x = Array2::<f32>::random_using((BATCH, STEPS * INPUT), StandardNormal, &mut rng);
    let y = Array2::<f32>::random_using((BATCH, 1), StandardNormal, &mut rng);
    let loss = Mse::default();
    let mut sgd = SgdConfig::new(1e-3).build::<f32>().unwrap();
    let mut grad = Array2::zeros((0, 0));

    let mut step = || {
        net.zero_grad();
        let prediction = net.forward(x.view(), Mode::Train).unwrap();
        let value = loss.compute(prediction, Targets::Values(y.view()), &mut grad).unwrap();
        net.backward(grad.view()).unwrap();
        sgd.step(net.model_mut()).unwrap();
        value
    };

    let mut group = c.benchmark_group("lstm");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    group.bench_function("W4_train_step_in32_h128_t64_b32", |b| b.iter(&mut step));
    group.finish();
}

criterion_group!(benches, lstm_training_step);
criterion_main!(benches);
