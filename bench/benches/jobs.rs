//! Whole jobs end to end ([`bench::jobs`]): windowed WordCount (30 s window,
//! 1 s slide), Grep, the Yahoo Streaming Benchmark, NEXMark Q5 and Q7, each
//! on about [`FILE_BYTES`] of generated input read from the page cache, on 1
//! and 2 threads, in input records per second.
//!
//! One group per job (`jobs_wordcount`, `jobs_grep`, `jobs_ysb`,
//! `jobs_nexmark_q5`, `jobs_nexmark_q7`), each asking how fast the whole job
//! runs and how it scales to all cores. The inputs are generated once before
//! any timing (seeded generators of `datasets`) into the temporary directory
//! and removed at the end.
//!
//! Run with `cargo bench -p bench --bench jobs` (about three minutes on two
//! cores, 1 GB of temporary disk); one job with e.g.
//! `cargo bench -p bench --bench jobs -- jobs_ysb`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use bench::jobs::{self, JobInputs, Workload};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

/// Bytes of each generated input (whole records, at least this many).
const FILE_BYTES: usize = 192 << 20;

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("engine-bench-jobs-{}", std::process::id()));
    let inputs = JobInputs::create(&dir, FILE_BYTES).expect("generating the inputs");
    for workload in Workload::ALL {
        // One untimed run checks the job and gives the record count.
        let first = jobs::run(workload, &inputs, 1).expect("the job runs");
        let mut group = c.benchmark_group(format!("jobs_{}", workload.name()));
        group
            .throughput(Throughput::Elements(first.records))
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
        for threads in [1, 2] {
            group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &t| {
                b.iter(|| {
                    let outcome = jobs::run(workload, &inputs, t).expect("the job runs");
                    assert_eq!(outcome.checksum, first.checksum);
                    outcome.rows
                });
            });
        }
        group.finish();
    }
    inputs.remove();
}

// What `criterion_group!` and `criterion_main!` expand to, without the public
// function they generate (which would need a doc comment).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
