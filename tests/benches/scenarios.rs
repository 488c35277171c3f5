//! The soak: randomized scenarios (see `sf_e2e::scenario`) for as many
//! seeds as asked, on the release binaries.
//!
//! ```text
//! cargo bench -p sf-e2e --bench scenarios -- --seeds 50 [--first 1000] [--ops 60] [--agents 3]
//! cargo bench -p sf-e2e --bench scenarios -- --seed 1234     # replay one seed
//! ```
//!
//! Prints one line per seed and, at the end, the totals: seeds passed and
//! failed, operations, faults by kind, sampled reads, contents that had to
//! survive; every failure with its replay command. Exits 1 when a seed
//! failed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sf_e2e::scenario::{self, Shape, replay_command};

struct Args {
    first: u64,
    seeds: u64,
    shape: Shape,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        first: 1000,
        seeds: 20,
        shape: Shape::default(),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            raw.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} takes a number"))
        };
        match flag.as_str() {
            "--seeds" => args.seeds = value("--seeds")?,
            "--first" => args.first = value("--first")?,
            "--seed" => {
                args.first = value("--seed")?;
                args.seeds = 1;
            }
            "--ops" => args.shape.ops = value("--ops")? as usize,
            "--agents" => args.shape.agents = value("--agents")?.max(1) as usize,
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("{err}\nusage: --seeds N [--first S] [--ops N] [--agents N] | --seed S");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let (mut passed, mut failures) = (0, Vec::new());
    let (mut ops, mut reads, mut required, mut skipped) = (0, 0, 0, 0);
    let mut faults: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut settle = Vec::new();
    for seed in args.first..args.first + args.seeds {
        match runtime.block_on(scenario::run(
            seed,
            Shape {
                postgres: seed % 2 == 0,
                ..args.shape
            },
        )) {
            Ok(summary) => {
                passed += 1;
                ops += summary.ops;
                reads += summary.sampled_reads;
                required += summary.required_contents;
                skipped += summary.faults_skipped;
                for (kind, n) in &summary.faults {
                    *faults.entry(kind).or_default() += n;
                }
                settle.push(summary.settle);
                println!(
                    "seed {seed}: ok in {:.1} s (settled in {:.1} s), {} ops, faults {:?}",
                    summary.elapsed.as_secs_f64(),
                    summary.settle.as_secs_f64(),
                    summary.ops,
                    summary.faults
                );
            }
            Err(failure) => {
                println!("seed {seed}: FAILED\n{failure}");
                failures.push(seed);
            }
        }
    }
    settle.sort();
    let median = settle
        .get(settle.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    println!(
        "\n{} seeds in {:.0} s: {passed} passed, {} failed; {ops} operations; faults {faults:?} \
         ({skipped} skipped: target already down); {reads} sampled reads; {required} contents \
         that had to survive; median settle {:.1} s (max {:.1} s)",
        args.seeds,
        started.elapsed().as_secs_f64(),
        failures.len(),
        median.as_secs_f64(),
        settle.last().copied().unwrap_or_default().as_secs_f64()
    );
    if !failures.is_empty() {
        for seed in &failures {
            println!(
                "replay seed {seed}: cargo bench -p sf-e2e --bench scenarios -- --seed {seed}\n  \
                 or, on debug builds: {}",
                replay_command(*seed)
            );
        }
        std::process::exit(1);
    }
}
