//! One throwaway cluster shared by the tests of this binary, a fresh
//! database for each test, and the skip-or-fail rule when PostgreSQL is
//! not installed.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use socred_store_postgres::cluster::Cluster;
use socred_store_postgres::{PostgresOptions, PostgresStore};

/// Set to `1` to make a missing PostgreSQL a failure instead of a skip.
pub const REQUIRE_ENV: &str = "SOCRED_REQUIRE_POSTGRES";

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// Skips loudly (straight to stderr, past the test harness's capture), or
/// fails when PostgreSQL is required.
pub fn missing(why: &str) {
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{REQUIRE_ENV}=1 but PostgreSQL cannot run here: {why}");
    }
    let banner = "!".repeat(78);
    let _ = writeln!(
        std::io::stderr(),
        "\n{banner}\n!! PostgreSQL store tests SKIPPED: {why}\n\
         !! Install the server with scripts/ensure-postgres; set {REQUIRE_ENV}=1 to fail instead.\n\
         {banner}\n"
    );
}

/// The shared cluster, started on first use; None (after the loud
/// message) when it cannot start.
pub fn cluster() -> Option<&'static Cluster> {
    CLUSTER
        .get_or_init(|| match Cluster::start() {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                missing(&why);
                None
            }
        })
        .as_ref()
}

/// A store on a new, empty database of the shared cluster, and its
/// connection string.
pub async fn fresh_store() -> Option<(PostgresStore, String)> {
    let cluster = cluster()?;
    let name = format!(
        "socred_test_{}",
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let url = match cluster.create_database(&name).await {
        Ok(url) => url,
        Err(error) => panic!("{error}"),
    };
    match PostgresStore::connect_with(&url, PostgresOptions::default()).await {
        Ok(store) => Some((store, url)),
        Err(error) => panic!("cannot connect to {url}: {error}"),
    }
}

/// Runs one statement with a bigint parameter on `database` of the shared
/// cluster, from a plain thread (callers may be inside a runtime).
pub fn execute<P>(database: &str, sql: &'static str, param: P) -> u64
where
    P: tokio_postgres::types::ToSql + Sync + Send + 'static,
{
    let Some(cluster) = cluster() else {
        panic!("no cluster to run `{sql}` on");
    };
    let url = cluster.url(database);
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            client.execute(sql, &[&param]).await.expect("execute")
        })
    });
    match worker.join() {
        Ok(changed) => changed,
        Err(_) => panic!("`{sql}` failed"),
    }
}

/// A plain connection to `store`'s database, for edits behind the store's
/// back. The connection's task runs on the caller's runtime.
pub async fn raw(store: &PostgresStore) -> tokio_postgres::Client {
    let Some(cluster) = cluster() else {
        panic!("no cluster");
    };
    let url = cluster.url(&store.target().database);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    tokio::spawn(connection);
    client
}
