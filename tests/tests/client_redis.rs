//! The client library (`shardcache-client`) against a real redis-server.

use std::time::Duration;

use bytes::Bytes;
use shardcache_client::{Client, ClientConfig, Error, Frame, Pool, PoolConfig, SetOptions, Ttl};
use shardcache_tests::{free_port, require, RedisServer};

#[tokio::test]
async fn typed_round_trips() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let mut c = Client::connect(redis.addr()).await.unwrap();
    c.ping().await.unwrap();
    c.flushdb().await.unwrap();
    assert_eq!(c.get("missing").await.unwrap(), None);
    c.set("k", "v").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
    // Binary-safe values.
    c.set(b"bin\0key", [0u8, 255, 13, 10]).await.unwrap();
    assert_eq!(
        c.get(b"bin\0key").await.unwrap().as_deref(),
        Some(&[0u8, 255, 13, 10][..])
    );

    assert!(!c
        .set_with("k", "other", SetOptions::new().nx())
        .await
        .unwrap());
    assert!(c.set_with("k", "xx", SetOptions::new().xx()).await.unwrap());
    assert!(!c
        .set_with("nope", "xx", SetOptions::new().xx())
        .await
        .unwrap());
    assert!(c
        .set_with(
            "ttl",
            "1",
            SetOptions::new().expire(Duration::from_secs(100))
        )
        .await
        .unwrap());
    match c.ttl("ttl").await.unwrap() {
        Ttl::Expires(d) => assert!(d <= Duration::from_secs(100) && d >= Duration::from_secs(98)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent);
    assert_eq!(c.ttl("missing").await.unwrap(), Ttl::Missing);
    assert!(c.expire("k", Duration::from_secs(50)).await.unwrap());
    assert!(!c.expire("missing", Duration::from_secs(50)).await.unwrap());

    assert_eq!(c.incr("n").await.unwrap(), 1);
    assert_eq!(c.incr_by("n", 41).await.unwrap(), 42);
    assert_eq!(c.incr_by("n", -2).await.unwrap(), 40);

    c.mset(&[("a", "1"), ("b", "2")]).await.unwrap();
    assert_eq!(
        c.mget(&["a", "missing", "b"]).await.unwrap(),
        vec![
            Some(Bytes::from_static(b"1")),
            None,
            Some(Bytes::from_static(b"2"))
        ]
    );
    assert_eq!(c.exists(&["a", "b", "missing"]).await.unwrap(), 2);
    assert_eq!(c.dbsize().await.unwrap(), 6);
    assert_eq!(c.del(&["a", "b", "missing"]).await.unwrap(), 2);
    let info = c.info(Some("server")).await.unwrap();
    assert!(info.contains("redis_version:"), "{info}");
    c.flushdb().await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 0);
    match c.cmd(&["ECHO", "hi"]).await.unwrap() {
        Frame::Bulk(b) => assert_eq!(&b[..], b"hi"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn resp3_hello_auth_and_select() {
    require!("redis-server");
    let redis = RedisServer::start_on(free_port(), &["--requirepass", "s3cret"]);
    // No password: the server refuses commands with a server error.
    let mut anon = Client::connect(redis.addr()).await.unwrap();
    assert!(matches!(anon.get("x").await, Err(Error::Server(m)) if m.starts_with("NOAUTH")));

    let mut cfg = ClientConfig::new(redis.addr());
    cfg.password = Some("wrong".into());
    assert!(matches!(
        Client::connect_with(cfg.clone()).await,
        Err(Error::Server(_))
    ));

    cfg.password = Some("s3cret".into());
    cfg.resp3 = true;
    cfg.db = 3;
    let mut c = Client::connect_with(cfg.clone()).await.unwrap();
    c.set("in-db-3", "yes").await.unwrap();
    // RESP3 replies: HELLO is a map.
    assert!(matches!(c.hello(3).await.unwrap(), Frame::Map(_)));
    cfg.resp3 = false;
    cfg.db = 0;
    let mut db0 = Client::connect_with(cfg).await.unwrap();
    assert_eq!(db0.get("in-db-3").await.unwrap(), None);
    // RESP3 nil from GET still maps to None.
    assert_eq!(c.get("absent").await.unwrap(), None);
    assert_eq!(
        c.get("in-db-3").await.unwrap().as_deref(),
        Some(&b"yes"[..])
    );
}

#[tokio::test]
async fn pipeline_of_1000_in_order() {
    require!("redis-server");
    let redis = RedisServer::start(&[]);
    let mut c = Client::connect(redis.addr()).await.unwrap();
    let mut p = c.pipeline();
    for i in 0..1000 {
        p.add(&["INCR".to_string(), "counter".to_string()]);
        if i == 500 {
            // A failing command in the middle keeps its slot.
            p.add(&["NOSUCHCOMMAND"]);
        }
    }
    assert_eq!(p.len(), 1001);
    let replies = p.execute().await.unwrap();
    assert_eq!(replies.len(), 1001);
    let mut expect = 1;
    for (i, r) in replies.iter().enumerate() {
        if i == 501 {
            assert!(matches!(r, Frame::Error(_)), "{r:?}");
            continue;
        }
        assert_eq!(r, &Frame::Integer(expect));
        expect += 1;
    }
    // Raw fast path.
    let mut buf = bytes::BytesMut::new();
    for _ in 0..100 {
        shardcache_protocol::write_request(&mut buf, &["GET", "counter"]);
    }
    c.send_raw(&buf).await.unwrap();
    let frames = c.read_frames(100).await.unwrap();
    assert!(frames
        .iter()
        .all(|f| f == &Frame::Bulk(Bytes::from_static(b"1000"))));
    assert!(c.pipeline().execute().await.unwrap().is_empty());
}

#[tokio::test]
async fn server_errors_are_not_io_errors() {
    require!("redis-server");
    let mut redis = RedisServer::start(&[]);
    let mut c = Client::connect(redis.addr()).await.unwrap();
    c.set("s", "not a number").await.unwrap();
    let err = c.incr("s").await.unwrap_err();
    assert!(
        matches!(&err, Error::Server(m) if m.starts_with("ERR")),
        "{err:?}"
    );
    assert!(!err.is_connection_error());
    assert!(!c.is_broken());
    c.ping().await.unwrap(); // still usable

    // Server goes away: the next call fails at the connection level.
    redis.stop();
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, Error::Io(_) | Error::Closed), "{err:?}");
    assert!(c.is_broken());
    assert!(matches!(c.ping().await, Err(Error::Closed)));

    // Nothing listening: connect is an I/O error.
    let port = free_port();
    let err = Client::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}

#[tokio::test]
async fn request_timeout_breaks_the_connection() {
    require!("redis-server");
    let redis = RedisServer::start_on(free_port(), &["--enable-debug-command", "yes"]);
    let mut cfg = ClientConfig::new(redis.addr());
    cfg.request_timeout = Some(Duration::from_millis(100));
    let mut c = Client::connect_with(cfg).await.unwrap();
    c.ping().await.unwrap();
    // The server sleeps 2 s, twenty times the request timeout: the client gives up before
    // any reply can come (that is the assertion; how fast it gives up is not timed here).
    let err = c.cmd(&["DEBUG", "SLEEP", "2"]).await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(err.is_connection_error());
    // The late reply must never be mistaken for the next command's.
    assert!(c.is_broken());
    assert!(matches!(c.ping().await, Err(Error::Closed)));
    // Once the server is awake again (a fresh connection's PING is answered within the
    // timeout), a reconnected client works.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if c.reconnect().await.is_ok() && c.ping().await.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn timeout_against_a_silent_server() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut cfg = ClientConfig::new(addr);
    cfg.request_timeout = Some(Duration::from_millis(50));
    let mut c = Client::connect_with(cfg.clone()).await.unwrap();
    assert!(matches!(c.get("k").await, Err(Error::Timeout)));
    // A handshake that gets no answer hits the connect timeout.
    cfg.resp3 = true;
    cfg.connect_timeout = Duration::from_millis(100);
    assert!(matches!(
        Client::connect_with(cfg).await,
        Err(Error::Timeout)
    ));
    hold.abort();
}

#[tokio::test]
async fn pool_reconnects_after_server_restart() {
    require!("redis-server");
    let mut redis = RedisServer::start(&[]);
    let port = redis.port();
    let pool = Pool::new(PoolConfig::new(ClientConfig::new(redis.addr()), 2));
    pool.get().await.unwrap().set("k", "v").await.unwrap();
    {
        // Two concurrent checkouts use both connections.
        let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        a.ping().await.unwrap();
        b.ping().await.unwrap();
    }

    redis.stop();
    // Restart on the same port a little later; the pool's backoff bridges the gap.
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        RedisServer::start_on(port, &[])
    });
    // Idle connections are dead: the first use fails at the connection level...
    let first = pool.cmd(&["PING"]).await;
    if let Err(e) = &first {
        assert!(e.is_connection_error(), "{e:?}");
    }
    // ...and the broken connection is replaced on a later checkout, once the server is back.
    let _redis = restart.join().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pool.cmd(&["PING"]).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "pool never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.get()
        .await
        .unwrap()
        .set("after", "restart")
        .await
        .unwrap();
}
