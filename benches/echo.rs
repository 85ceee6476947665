//! `cargo bench --bench echo`: the `versile bench` measurements with default
//! options on a multi-thread runtime with the default number of workers
//! (as the CLI runs them). Prints the table, then the JSON object.

fn main() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(versile::bench::run(versile::bench::BenchOptions::default()))?;
    println!("{report}");
    println!("{}", report.to_json());
    Ok(())
}
