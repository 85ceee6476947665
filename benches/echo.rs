//! `cargo bench --bench echo`: the `versile bench` measurements on a
//! multi-thread runtime with the default number of workers (as the CLI runs
//! them). Prints the table, then the JSON object.
//!
//! Options as `name=value` arguments (`cargo bench --bench echo --
//! iterations=5000 payload=1024`): payload, iterations, warmup, in_flight,
//! duration_ms. Other arguments (cargo passes `--bench`) are ignored.

fn main() -> std::io::Result<()> {
    let mut options = versile::bench::BenchOptions::default();
    for arg in std::env::args().skip(1) {
        let Some((name, value)) = arg.split_once('=') else {
            continue;
        };
        let value: u64 = value
            .parse()
            .map_err(|_| std::io::Error::other(format!("bad number in {arg}")))?;
        match name {
            "payload" => options.payload = value as usize,
            "iterations" => options.iterations = value as usize,
            "warmup" => options.warmup = value as usize,
            "in_flight" => options.in_flight = value as usize,
            "duration_ms" => options.duration = std::time::Duration::from_millis(value),
            _ => return Err(std::io::Error::other(format!("unknown option {name}"))),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(versile::bench::run(options))?;
    println!("{report}");
    println!("{}", report.to_json());
    Ok(())
}
