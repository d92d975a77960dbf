//! The project's own client against the real server: typed calls, pipelines, RESP3, errors.

use shardcache_client::{Client, ClientConfig, Error, Frame};
use shardcache_tests::Server;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn typed_round_trips() {
    let s = Server::start(&[]);
    rt().block_on(async {
        let mut c = Client::connect(format!("127.0.0.1:{}", s.port()))
            .await
            .unwrap();
        c.ping().await.unwrap();
        c.set("k", "v").await.unwrap();
        assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(c.get("missing").await.unwrap(), None);
        assert_eq!(c.exists(&["k", "k", "missing"]).await.unwrap(), 2);
        assert_eq!(c.del(&["k", "missing"]).await.unwrap(), 1);
        assert_eq!(c.dbsize().await.unwrap(), 0);
        let info = c.info(Some("server")).await.unwrap();
        assert!(info.contains("shardcache_version:"), "{info}");
    });
}

#[test]
fn pipeline_keeps_order_and_isolates_errors() {
    let s = Server::start(&[]);
    rt().block_on(async {
        let mut c = Client::connect(format!("127.0.0.1:{}", s.port()))
            .await
            .unwrap();
        let mut p = c.pipeline();
        for i in 0..1000 {
            p.add(&["SET", &format!("k{i}"), &i.to_string()]);
        }
        p.add(&["GET"]);
        p.add(&["GET", "k999"]);
        let replies = p.execute().await.unwrap();
        assert_eq!(replies.len(), 1002);
        assert!(replies[..1000]
            .iter()
            .all(|r| *r == Frame::Simple("OK".into())));
        assert_eq!(
            replies[1000],
            Frame::Error("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(replies[1001], Frame::Bulk("999".into()));
        match c.cmd(&["NOSUCH"]).await {
            Err(Error::Server(msg)) => assert!(msg.starts_with("ERR unknown command 'NOSUCH'")),
            other => panic!("expected a server error, got {other:?}"),
        }
    });
}

#[test]
fn resp3_and_database_selection() {
    let s = Server::start(&[]);
    rt().block_on(async {
        let mut cfg = ClientConfig::new(format!("127.0.0.1:{}", s.port()));
        cfg.resp3 = true;
        cfg.db = 3;
        let mut c = Client::connect_with(cfg).await.unwrap();
        c.set("in-db3", "x").await.unwrap();
        assert_eq!(c.get("nope").await.unwrap(), None);
        let mut other = Client::connect(format!("127.0.0.1:{}", s.port()))
            .await
            .unwrap();
        assert_eq!(other.get("in-db3").await.unwrap(), None);
        assert_eq!(c.dbsize().await.unwrap(), 1);
    });
}
