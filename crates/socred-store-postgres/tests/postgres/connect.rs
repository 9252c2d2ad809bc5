//! A wrong connection string fails when the store connects, with a
//! message that names where it tried and never the password.

use socred_store::{Store, StoreError};
use socred_store_postgres::{PostgresOptions, PostgresStore};

const PASSWORD: &str = "hunter2-do-not-print";

async fn refused(url: &str) -> String {
    match PostgresStore::connect_with(url, PostgresOptions::default()).await {
        Ok(store) => panic!("connected to {url}: {store:?}"),
        Err(StoreError::Unavailable(message)) => {
            assert!(
                !message.contains(PASSWORD),
                "the password leaked: {message}"
            );
            message
        }
        Err(other) => panic!("{url}: expected unavailability, got {other:?}"),
    }
}

/// A port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn a_refused_connection_names_host_port_database_and_user() {
    let port = closed_port();
    let message = refused(&format!(
        "postgres://registry:{PASSWORD}@127.0.0.1:{port}/socred_city"
    ))
    .await;
    for part in [
        format!("127.0.0.1:{port}"),
        "`socred_city`".into(),
        "`registry`".into(),
        "cannot connect".into(),
    ] {
        assert!(message.contains(&part), "`{part}` missing from: {message}");
    }
}

#[tokio::test]
async fn a_malformed_connection_string_is_refused_before_connecting() {
    let message = refused(&format!(
        "postgres://registry:{PASSWORD}@127.0.0.1:notaport/socred"
    ))
    .await;
    assert!(message.contains("not valid"), "{message}");
    let message = refused("postgres://127.0.0.1:5432/socred").await;
    assert!(message.contains("names no user"), "{message}");
    let message = refused("postgres://u@127.0.0.1/socred?socred_citus=perhaps").await;
    assert!(message.contains("socred_citus=perhaps"), "{message}");
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_named() {
    let Some(cluster) = crate::harness::cluster() else {
        return;
    };
    let url = cluster
        .url("no_such_registry")
        .replace("postgres@", &format!("postgres:{PASSWORD}@"));
    let message = refused(&url).await;
    assert!(message.contains("no_such_registry"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

/// Asking for Citus where the extension is not installed leaves the
/// tables local and the store working.
#[tokio::test]
async fn distribution_without_the_citus_extension_keeps_tables_local() {
    let Some(cluster) = crate::harness::cluster() else {
        return;
    };
    let url = cluster
        .create_database("socred_no_citus")
        .await
        .expect("a database");
    let store = PostgresStore::connect(&format!("{url}?socred_citus=1"))
        .await
        .expect("connect");
    assert!(!store.distributed());
    assert_eq!(store.counts().await.expect("counts").records, 0);
}
