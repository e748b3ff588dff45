//! Connection limits: a client that sends its headers a byte at a time is cut off
//! (`IDP_HEADER_READ_TIMEOUT_SECS`) while others are served, and open connections are
//! bounded (`IDP_MAX_CONNECTIONS`).

use std::net::SocketAddr;
use std::time::Duration;

use service_kit::testing::{fresh_database, slow_headers_client};

use crate::helpers::{TestApp, spawn_app_with};

fn socket_addr(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test]
async fn clients_that_send_headers_slowly_are_cut_off_while_others_are_served() {
    let app = spawn_app_with(fresh_database("idp").await, |s| {
        s.header_read_timeout_secs = 1;
    })
    .await;
    let addr = socket_addr(&app);
    let slow: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(slow_headers_client(
                addr,
                Duration::from_millis(200),
                Duration::from_secs(15),
            ))
        })
        .collect();
    for _ in 0..5 {
        let response = app.client.get(app.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for client in slow {
        let closed_after = client
            .await
            .unwrap()
            .expect("a slow client was never cut off");
        assert!(
            closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(8),
            "cut off after {closed_after:?}"
        );
    }
}

#[tokio::test]
async fn open_connections_are_bounded() {
    let app = spawn_app_with(fresh_database("idp").await, |s| {
        s.max_connections = 2;
        s.header_read_timeout_secs = 30;
    })
    .await;
    let addr = socket_addr(&app);
    let fresh_client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_millis(700))
            .build()
            .unwrap()
    };
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Both slots are held by connections that send nothing: a third waits unaccepted.
    assert!(fresh_client().get(app.url("/health")).send().await.is_err());
    drop(first);
    let response = fresh_client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    drop(second);
}
