//! Sweeps: an ensemble member trains as the model alone would, shards partition the grid, and
//! merging shards gives the unsharded sweep.

use crate::common;

use common::CpuAutodiff;
use grokking::{
    run::{analyze_saved, AnalyzeOptions, SavedModel},
    sweep::{self, Grid, Shard, SweepFile, SweepMode, SweepOptions},
    train::{Engine, Ensemble, Trainer, TrainingConfig},
    MlpConfig,
};

fn small() -> TrainingConfig {
    TrainingConfig::new()
        .with_model(MlpConfig::new().with_p(23).with_d_hidden(48))
        .with_batch_size(32)
        .with_epochs(4)
        .with_engine(Engine::Generic)
}

#[test]
fn every_ensemble_member_trains_as_it_would_alone() {
    for engine in [Engine::Generic, Engine::Fused] {
        every_member_trains_as_it_would_alone(engine);
    }
}

fn every_member_trains_as_it_would_alone(engine: Engine) {
    let device = Default::default();
    // Different seeds, learning rates, weight decays and epsilons in one ensemble (an epsilon
    // of 1e-3 changes the run: a member given another's would drift).
    let configs: Vec<_> = [
        small().with_seed(1),
        small().with_seed(2).with_lr(1e-2),
        small()
            .with_seed(3)
            .with_weight_decay(0.1)
            .with_adam_epsilon(1e-3),
    ]
    .into_iter()
    .map(|c| c.with_engine(engine))
    .collect();
    let mut ensemble = Ensemble::<CpuAutodiff>::new(&configs, &device).unwrap();
    ensemble.run(|metrics| assert_eq!(metrics.len(), 3));
    for (k, config) in configs.iter().enumerate() {
        let mut alone = Trainer::<CpuAutodiff>::new(config, &device).unwrap();
        assert_eq!(
            ensemble.histories()[k].epochs.len(),
            config.epochs,
            "member {k}"
        );
        for _ in 0..config.epochs {
            alone.run_epoch();
        }
        for (e, (x, y)) in common::without_time(&ensemble.histories()[k])
            .iter()
            .zip(common::without_time(alone.history()))
            .enumerate()
        {
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() < 2e-5, "member {k} epoch {e}: {x:?} vs {y:?}");
            }
        }
        let (w, v) = (&ensemble.weights()[k], alone.model().weights());
        for (a, b) in w
            .fc1()
            .iter()
            .zip(v.fc1())
            .chain(w.fc2().iter().zip(v.fc2()))
        {
            assert!((a - b).abs() < 1e-5, "member {k} weights: {a} vs {b}");
        }
    }
}

#[test]
fn an_ensemble_of_one_is_the_ordinary_model_and_shapes_must_agree() {
    let device = Default::default();
    let mut one = Ensemble::<CpuAutodiff>::new(&[small()], &device).unwrap();
    let mut alone = Trainer::<CpuAutodiff>::new(&small(), &device).unwrap();
    assert_eq!(one.weights()[0], alone.model().weights());
    let (a, b) = (one.run_epoch()[0], alone.run_epoch());
    assert!((a.val_acc - b.val_acc).abs() < 1e-9 && (a.train_loss - b.train_loss).abs() < 1e-5);
    let mixed = [
        small(),
        small().with_model(MlpConfig::new().with_p(23).with_d_hidden(40)),
    ];
    assert!(Ensemble::<CpuAutodiff>::new(&mixed, &device).is_err());
    assert!(Ensemble::<CpuAutodiff>::new(&[], &device).is_err());
}

/// Results without their timings, which differ from run to run.
fn untimed(results: &[sweep::ModelResult]) -> Vec<sweep::ModelResult> {
    results
        .iter()
        .map(|r| sweep::ModelResult {
            steady_epoch_seconds: None,
            ..r.clone()
        })
        .collect()
}

fn grid() -> Grid {
    Grid {
        seeds: vec![1, 2, 3],
        weight_decays: vec![0.1, 1.0],
        hiddens: vec![32, 48],
        ..Grid::new(small().with_epochs(3))
    }
}

#[test]
fn shards_partition_the_grid_exactly() {
    let points = grid().points().unwrap();
    assert_eq!(points.len(), 12);
    for n in 1..=13 {
        let mut seen: Vec<usize> = (0..n)
            .flat_map(|i| Shard { index: i, count: n }.select(&points))
            .map(|p| p.index)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..12).collect::<Vec<_>>(), "{n} shards");
    }
    assert!("3/3".parse::<Shard>().is_err());
    assert!("x/3".parse::<Shard>().is_err());
    assert!("1/0".parse::<Shard>().is_err());
    assert_eq!(
        "2/5".parse::<Shard>().unwrap(),
        Shard { index: 2, count: 5 }
    );
    // Widths go to different batches.
    let batches = sweep::batches(&points, 4);
    assert!(batches.iter().all(|b| b.len() <= 4));
    assert!(batches.iter().all(|b| b
        .iter()
        .all(|p| p.config.model.d_hidden == b[0].config.model.d_hidden)));
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 12);
}

#[test]
fn merging_shards_equals_the_unsharded_sweep() {
    let device = Default::default();
    let grid = grid();
    let points = grid.points().unwrap();
    let file = |shard: Shard| {
        let mine = shard.select(&points);
        let sweep::TrainedPoints {
            results, seconds, ..
        } = sweep::train_points::<CpuAutodiff>(
            &mine,
            SweepMode::Batched,
            8,
            false,
            &device,
            |_| {},
        )
        .unwrap();
        SweepFile {
            grid: grid.clone(),
            shards: vec![shard],
            backend: "flex".into(),
            mode: SweepMode::Batched,
            models: results.len(),
            train_seconds: seconds,
            results,
        }
    };
    let whole = file(Shard::ALL);
    let parts: Vec<SweepFile> = (0..3).map(|i| file(Shard { index: i, count: 3 })).collect();
    // Through the files, as a cluster's shards would be joined.
    let dir = tempfile::tempdir().unwrap();
    let read: Vec<SweepFile> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let folder = dir.path().join(format!("part{i}"));
            sweep::write_sweep(&folder, part).unwrap();
            sweep::read_sweep(&folder.join("sweep.json")).unwrap()
        })
        .collect();
    let merged = sweep::merge_sweeps(&read).unwrap();
    assert_eq!(untimed(&merged.results), untimed(&whole.results));
    assert_eq!(merged.models, 12);
    assert_eq!(merged.shards.len(), 3);
    assert!(sweep::merge_sweeps(&[parts[0].clone(), parts[0].clone()]).is_err());
    // The files of the merged sweep: one CSV row per model, and the phase diagram.
    let out = dir.path().join("all");
    sweep::write_sweep(&out, &merged).unwrap();
    // A sweep.json from before operations existed reads as addition.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    old["grid"]["base"]
        .as_object_mut()
        .unwrap()
        .remove("operation");
    // ... and before methods and label noise: the notebook's step, clean labels.
    for axis in ["operations", "methods", "label_noises"] {
        old["grid"].as_object_mut().unwrap().remove(axis);
    }
    for result in old["results"].as_array_mut().unwrap() {
        for column in ["operation", "method", "label_noise"] {
            result.as_object_mut().unwrap().remove(column);
        }
    }
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let read = sweep::read_sweep(&old_path).unwrap();
    assert_eq!(read.grid.base.operation, grokking::Operation::Add);
    assert_eq!(untimed(&read.results), untimed(&merged.results));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    assert_eq!(
        csv.lines().next(),
        Some(
            "index,seed,operation,p,hidden,train_fraction,weight_decay,lr,label_noise,method,\
             epochs,grok_epoch,train_loss,val_loss,train_acc,val_acc,steady_epoch_seconds"
        )
    );
    let svg = std::fs::read_to_string(out.join("phase_diagram.svg")).unwrap();
    assert!(
        svg.contains("weight decay") && svg.contains("hidden"),
        "axes named"
    );
}

/// A sweep's folder: shards, their merge with the kept models, and the refusals, all before
/// any training.
#[test]
fn sweep_folders_shard_merge_and_keep_their_models() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid {
        seeds: vec![1, 2, 3],
        hiddens: vec![16, 24],
        ..Grid::new(
            TrainingConfig::new()
                .with_model(MlpConfig::new().with_p(13))
                .with_epochs(3)
                .with_batch_size(32),
        )
    };
    let run = |options: &SweepOptions, out: &std::path::Path| {
        sweep::run_sweep::<CpuAutodiff>(&grid, out, options, &device, |_, _| {})
    };
    let whole_dir = dir.path().join("whole");
    let whole = run(&SweepOptions::default(), &whole_dir).unwrap();
    assert_eq!((whole.models, whole.backend.as_str()), (6, "flex"));
    assert!(whole.train_seconds > 0.0);
    assert!(whole_dir.join("phase_diagram.svg").exists());
    let parts: Vec<_> = (0..2)
        .map(|index| {
            let out = dir.path().join(format!("part{index}"));
            let options = SweepOptions {
                shard: Shard { index, count: 2 },
                save_models: true,
                ..Default::default()
            };
            run(&options, &out).unwrap();
            out
        })
        .collect();
    let merged_dir = dir.path().join("merged");
    let merged = sweep::merge_folders(&parts, &merged_dir, false).unwrap();
    assert_eq!(untimed(&merged.results), untimed(&whole.results));
    // Everything but the last column, the shards' own timings.
    let csv = |d: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(d.join("sweep.csv")).unwrap();
        let untimed = |line: &str| line.rsplit_once(',').unwrap().0.to_owned();
        text.lines().map(untimed).collect()
    };
    assert_eq!(csv(&whole_dir).len(), 7);
    assert_eq!(csv(&merged_dir), csv(&whole_dir));
    assert_eq!(
        std::fs::read_dir(merged_dir.join("models"))
            .unwrap()
            .count(),
        6
    );
    // A kept model opens for analysis (model 4: hidden 24, seed 2).
    let model = SavedModel::Weights(sweep::model_file(&merged_dir, 4));
    let found = analyze_saved(&model, dir.path().join("cell"), &AnalyzeOptions::default()).unwrap();
    assert_eq!((found.summary.p, found.summary.hidden), (13, 24));

    // A merge into one of its own parts is refused (it would copy models onto themselves), and
    // so is a folder holding a sweep without force.
    let err = sweep::merge_folders(&parts, &parts[0], true).unwrap_err();
    assert!(
        err.to_string().contains("one of the merged folders"),
        "{err}"
    );
    let err = sweep::merge_folders(&parts, &merged_dir, false).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    // A sweep forced over one that kept models leaves none of the old models behind.
    let forced = SweepOptions {
        shard: Shard { index: 1, count: 2 },
        force: true,
        ..Default::default()
    };
    run(&forced, &parts[0]).unwrap();
    assert!(!parts[0].join("models").exists());
    assert!(!whole_dir.join("models").exists());

    // A shard without a model, and a folder that is a file, fail before training (64 models of
    // 2000 epochs would take minutes: the errors come at once) and write nothing.
    let empty = SweepOptions {
        shard: Shard { index: 7, count: 8 },
        ..Default::default()
    };
    let small = Grid {
        seeds: vec![1, 2],
        ..grid.clone()
    };
    let nowhere = dir.path().join("nowhere");
    let err =
        sweep::run_sweep::<CpuAutodiff>(&small, &nowhere, &empty, &device, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("holds no model"), "{err}");
    assert!(!nowhere.exists());
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let long = Grid {
        seeds: (1..=64).collect(),
        ..Grid::new(TrainingConfig::new().with_epochs(2000))
    };
    let mut trained = 0u64;
    let err = sweep::run_sweep::<CpuAutodiff>(
        &long,
        &file,
        &SweepOptions::default(),
        &device,
        |done, _| trained = done,
    )
    .unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
    assert_eq!(trained, 0, "it trained before it failed");
}

#[test]
fn sequential_and_batched_sweeps_agree() {
    let device = Default::default();
    let points = Shard { index: 0, count: 4 }.select(&grid().points().unwrap());
    let batched =
        sweep::train_points::<CpuAutodiff>(&points, SweepMode::Batched, 8, false, &device, |_| {})
            .unwrap()
            .results;
    let sequential = sweep::train_points::<CpuAutodiff>(
        &points,
        SweepMode::Sequential,
        8,
        false,
        &device,
        |_| {},
    )
    .unwrap()
    .results;
    assert_eq!(batched.len(), sequential.len());
    for (b, s) in batched.iter().zip(&sequential) {
        assert_eq!((b.index, b.seed, b.hidden), (s.index, s.seed, s.hidden));
        assert!((b.val_acc - s.val_acc).abs() < 1e-3, "{b:?} vs {s:?}");
        assert_eq!(b.grok_epoch, s.grok_epoch);
    }
}

#[test]
fn on_cpu_backends_a_batch_runs_fused_engines_in_parallel_with_the_same_results() {
    let device = Default::default();
    let base = small().with_engine(Engine::Auto);
    let points = Grid {
        seeds: vec![4, 5, 6],
        ..Grid::new(base)
    }
    .points()
    .unwrap();
    let mut epochs = 0;
    let batched =
        sweep::train_points::<CpuAutodiff>(&points, SweepMode::Batched, 8, true, &device, |n| {
            epochs += n
        })
        .unwrap();
    assert_eq!(epochs, 3 * 4, "progress counts every model-epoch");
    let sequential = sweep::train_points::<CpuAutodiff>(
        &points,
        SweepMode::Sequential,
        8,
        true,
        &device,
        |_| {},
    )
    .unwrap();
    // The host step is bit-reproducible, threads or not; the kept models are the models.
    assert_eq!(untimed(&batched.results), untimed(&sequential.results));
    assert_eq!(batched.models.len(), 3);
    assert_eq!(batched.models, sequential.models);
    let alone = Trainer::<CpuAutodiff>::new(&points[1].config, &device)
        .unwrap()
        .run(|_: &grokking::EpochMetrics| grokking::train::Control::Continue)
        .model
        .weights();
    assert_eq!(batched.models[1], alone);
}
