//! TLS to PostgreSQL: a cluster of its own with a certificate for
//! `localhost` from a test authority, and the store connecting to it in
//! each `sslmode`. Whether a connection is encrypted is read from the
//! server (`pg_stat_ssl`), not taken from the client's word.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use socred_store::{Store, StoreError};
use socred_store_postgres::cluster::Cluster;
use socred_store_postgres::{PostgresOptions, PostgresStore};

use crate::harness::missing;

/// A certificate authority of its own, in PEM.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA")
}

/// How the server counts the store's connections to `database`:
/// (encrypted, in all).
async fn encrypted(cluster: &Cluster, database: &str) -> (u64, u64) {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.application_name = 'socred' AND a.datname = '{database}'"
    );
    let row = cluster
        .admin(&sql)
        .await
        .expect("pg_stat_ssl")
        .expect("a row");
    let (on, all) = row.split_once(' ').expect("two counts");
    (on.parse().expect("a count"), all.parse().expect("a count"))
}

/// A new database on `cluster`, named in order.
async fn database(cluster: &Cluster) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "tls_{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    cluster
        .admin(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a database");
    name
}

async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::connect_with(url, PostgresOptions::default()).await
}

/// The reason a store cannot connect with `url`: its certificate check.
async fn refused(url: &str) -> String {
    match connect(url).await {
        Ok(_) => panic!("{url}: connected"),
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains("invalid peer certificate"),
                "{url}: {message}"
            );
            message
        }
    }
}

/// Connects a store with `url` to `database` and reads through it; returns
/// how many of its connections the server sees (encrypted, in all).
async fn connected(cluster: &Cluster, url: &str, database: &str) -> (u64, u64) {
    let store = connect(url)
        .await
        .unwrap_or_else(|error| panic!("{url}: {error}"));
    store.counts().await.expect("a read");
    let seen = encrypted(cluster, database).await;
    assert!(seen.1 > 0, "no connection of the store's to {database}");
    seen
}

#[tokio::test]
async fn the_store_connects_in_each_sslmode_and_checks_what_it_says() {
    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(why) => return missing(&why),
    };
    let ours = authority("socred test authority");
    let other = authority("another authority");
    let server_key = KeyPair::generate().expect("a key");
    let server = CertificateParams::new(vec!["localhost".to_string()])
        .expect("parameters")
        .signed_by(&server_key, &ours)
        .expect("a server certificate");
    cluster
        .enable_tls(&server.pem(), &server_key.serialize_pem())
        .await
        .expect("TLS on");
    let dir = tempfile::tempdir().expect("a directory");
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write a root");
        path
    };
    let our_root = write("ours.pem", ours.pem());
    let other_root = write("other.pem", other.pem());
    let port = cluster.port();
    let url = |host: &str, db: &str, params: &str| {
        format!("postgres://postgres@{host}:{port}/{db}?{params}")
    };
    let root = |path: &Path| format!("sslrootcert={}", path.display());

    // verify-full with the authority that signed the server's
    // certificate, by the name in it: encrypted, and the store works.
    let db = database(&cluster).await;
    let full = format!("sslmode=verify-full&{}", root(&our_root));
    let (on, all) = connected(&cluster, &url("localhost", &db, &full), &db).await;
    assert_eq!(on, all, "{on} of {all} connections encrypted");

    // Another authority: refused, and the message says where and why.
    let message = refused(&url(
        "localhost",
        &db,
        &format!("sslmode=verify-full&{}", root(&other_root)),
    ))
    .await;
    assert!(message.contains(&format!("localhost:{port}")), "{message}");

    // By address, where the certificate names `localhost`: verify-full
    // refuses, verify-ca (the chain only) connects.
    refused(&url("127.0.0.1", &db, &full)).await;
    let db = database(&cluster).await;
    let ca = format!("sslmode=verify-ca&{}", root(&our_root));
    let (on, all) = connected(&cluster, &url("127.0.0.1", &db, &ca), &db).await;
    assert_eq!(on, all, "{on} of {all} connections encrypted");

    // require without a root: encrypted, the server not authenticated;
    // require with the other authority's root checks the chain, as libpq.
    let db = database(&cluster).await;
    let (on, all) = connected(&cluster, &url("127.0.0.1", &db, "sslmode=require"), &db).await;
    assert_eq!(on, all, "{on} of {all} connections encrypted");
    refused(&url(
        "127.0.0.1",
        &db,
        &format!("sslmode=require&{}", root(&other_root)),
    ))
    .await;

    // No sslmode (prefer, as libpq): encrypted when the server offers it.
    let db = database(&cluster).await;
    let plain = format!("postgres://postgres@127.0.0.1:{port}/{db}");
    let (on, all) = connected(&cluster, &plain, &db).await;
    assert_eq!(on, all, "{on} of {all} connections encrypted");

    // disable: plain TCP, even though the server offers TLS.
    let db = database(&cluster).await;
    let (on, all) = connected(&cluster, &url("127.0.0.1", &db, "sslmode=disable"), &db).await;
    assert_eq!(on, 0, "{on} of {all} connections encrypted");
}
