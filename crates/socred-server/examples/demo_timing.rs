//! Temporary: times the demo load into a fresh SQLite store.
fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/socred-demo-timing".into());
    let _ = std::fs::remove_dir_all(&dir);
    let config = socred_server::ServeConfig {
        data_dir: dir.into(),
        listen: "127.0.0.1:0".into(),
        demo: true,
        store: None,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let started = std::time::Instant::now();
        let state = socred_server::open_state(&config).await?;
        let report = socred_server::Demo::clone(&socred_server::demo_config(state.today()));
        let out = socred_server::demo(&state, &report).await?;
        println!(
            "loaded {} in {:.1}s",
            out.items_loaded,
            started.elapsed().as_secs_f64()
        );
        print!("{}", out.instructions("127.0.0.1:8080".parse().unwrap()));
        anyhow::Ok(())
    })
}
