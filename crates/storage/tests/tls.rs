//! TLS to PostgreSQL, against the PostgreSQL of GALLEY_TEST_POSTGRES_URL (which must have
//! `ssl = on`, as Debian's default cluster has).
//!
//! - `sslmode=require` encrypts, and the server sees it (`pg_stat_ssl`).
//! - `sslmode=verify-full` with a root certificate that did not sign the server's refuses to
//!   connect, with an error that names the certificate.
//! - `sslmode=verify-full` succeeds against a server whose certificate the root did sign: a
//!   CA and a certificate for `localhost` made here with rcgen, presented by a loopback proxy
//!   that answers PostgreSQL's SSLRequest, terminates TLS and relays to the real server.

use std::sync::Arc;

use galley_storage::testing::Backend;
use galley_storage::{Store, StoreOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sqlx::Row as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A fresh PostgreSQL database (dropped with the `Backend`, even when the test fails) and its
/// URL with `params` appended to the query.
async fn url_with(params: &str) -> Option<(String, Backend)> {
    let database = Backend::postgres().await?;
    let url = database.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((format!("{url}{sep}{params}"), database))
}

async fn connect(url: &str) -> Result<Store, galley_storage::StoreError> {
    Store::connect(&StoreOptions {
        url: url.to_owned(),
        max_connections: 3,
        ..StoreOptions::default()
    })
    .await
}

#[tokio::test]
async fn sslmode_require_encrypts_the_connection() {
    let Some((url, backend)) = url_with("sslmode=require").await else {
        return;
    };
    let plain = backend.url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("sslmode=require connects (PostgreSQL has ssl = on)");
    let row = sqlx::query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        row.get::<bool, _>("ssl"),
        "the server sees a TLS connection"
    );
    assert!(row
        .get::<Option<String>, _>("version")
        .is_some_and(|v| v.starts_with("TLS")));
    sqlx::Connection::close(conn).await.unwrap();

    // The store itself (pool, migrations, LISTEN) runs over it too.
    let store = connect(&url)
        .await
        .expect("the store connects with sslmode=require");
    store.ready().await.expect("ready over TLS");
    store.close().await;

    // And sslmode=disable is plaintext, so the check above is not vacuous.
    let sep = if plain.contains('?') { '&' } else { '?' };
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{plain}{sep}sslmode=disable"))
            .await
            .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!ssl, "sslmode=disable does not encrypt");
    sqlx::Connection::close(conn).await.unwrap();
    backend.cleanup().await;
}

/// A CA and a certificate for `localhost` (only) that it signed: (CA PEM, server
/// certificate DER, server key DER).
fn make_ca_and_server_cert() -> (String, Vec<u8>, Vec<u8>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Galley test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    (
        ca.pem(),
        server_cert.der().to_vec(),
        server_key.serialize_der(),
    )
}

#[tokio::test]
async fn sslmode_verify_full_refuses_a_root_that_did_not_sign_the_server() {
    let Some((_, backend)) = url_with("").await else {
        return;
    };
    let plain = backend.url();
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, _, _) = make_ca_and_server_cert();
    let root = dir.path().join("root.crt");
    std::fs::write(&root, ca_pem).unwrap();
    let sep = if plain.contains('?') { '&' } else { '?' };
    let url = format!(
        "{plain}{sep}sslmode=verify-full&sslrootcert={}",
        root.display()
    );
    let error = connect(&url)
        .await
        .expect_err("a server certificate the root did not sign is refused");
    let message = error.to_string().to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("tls"),
        "the error says why: {message}"
    );
    backend.cleanup().await;
}

/// Relays PostgreSQL connections to `upstream`, terminating TLS with `config` itself: it
/// answers the client's SSLRequest with `S`, does the handshake, then opens a plaintext
/// connection upstream and copies both ways.
async fn tls_proxy(upstream: String, config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_err() {
                    return;
                }
                // Length 8, code 80877103: the SSLRequest.
                if request != [0, 0, 0, 8, 4, 210, 22, 47] {
                    return;
                }
                if client.write_all(b"S").await.is_err() {
                    return;
                }
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn sslmode_verify_full_accepts_a_server_certificate_the_root_signed() {
    let Some((_, backend)) = url_with("").await else {
        return;
    };
    let plain = backend.url();
    let parsed: sqlx::postgres::PgConnectOptions = plain.parse().unwrap();
    let upstream = format!("{}:{}", parsed.get_host(), parsed.get_port());
    let (ca_pem, cert_der, key_der) = make_ca_and_server_cert();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert_der)],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
    )
    .unwrap();
    let port = tls_proxy(upstream, Arc::new(config)).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.crt");
    std::fs::write(&root, ca_pem).unwrap();

    // The proxy's URL: same user and database, host `localhost` (the name the certificate
    // carries) on the proxy's port.
    let database = parsed.get_database().unwrap().to_owned();
    let user = parsed.get_username().to_owned();
    let url = format!(
        "postgres://{user}@localhost:{port}/{database}?sslmode=verify-full&sslrootcert={}",
        root.display()
    );
    let store = connect(&url)
        .await
        .expect("verify-full connects to a server whose certificate the root signed");
    store.ready().await.expect("ready through the TLS proxy");
    store.close().await;

    // The same root with a host name the certificate does not carry: verify-full refuses.
    let other_name = format!(
        "postgres://{user}@127.0.0.1:{port}/{database}?sslmode=verify-full&sslrootcert={}",
        root.display()
    );
    let error = connect(&other_name)
        .await
        .expect_err("verify-full checks the host name");
    assert!(error.to_string().contains("not valid for name"), "{error}");
    // verify-ca checks the chain: a certificate the root signed is accepted. (With sqlx 0.8.6
    // and rustls 0.23.46 it checks the host name as well, stricter than libpq: sqlx's
    // no-host-name verifier does not recognise rustls' newer NotValidForNameContext error.
    // README, "Operating Galley".)
    let store = connect(&url.replace("verify-full", "verify-ca"))
        .await
        .expect("verify-ca accepts a certificate the root signed");
    store.close().await;
    backend.cleanup().await;
}
