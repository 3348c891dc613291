//! The chat server driven through real TCP connections on 127.0.0.1.

use actor_core::{ActorSystem, SystemConfig};
use examples::chat::{ChatConfig, ChatServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod support;
use support::{Client, T};

async fn server(config: ChatConfig) -> (ActorSystem, ChatServer) {
    let system = ActorSystem::new(SystemConfig::default()).expect("rt");
    let server = ChatServer::start(&system, "127.0.0.1:0", config)
        .await
        .expect("bind");
    (system, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_join_a_room_and_hear_each_other() {
    let (_sys, server) = server(ChatConfig::default()).await;
    let mut ada = Client::connect(&server).await;
    let mut bob = Client::connect(&server).await;
    assert_eq!(ada.cmd("/nick ada").await, "* you are now ada");
    assert_eq!(bob.cmd("/nick bob").await, "* you are now bob");
    assert_eq!(ada.cmd("/join lobby").await, "* ada joined lobby");
    assert_eq!(bob.cmd("/join lobby").await, "* bob joined lobby");
    assert_eq!(ada.line().await, "* bob joined lobby");
    ada.send("hello bob").await;
    assert_eq!(
        ada.line().await,
        "ada: hello bob",
        "the sender hears itself"
    );
    assert_eq!(bob.line().await, "ada: hello bob");
    assert_eq!(bob.cmd("/who").await, "* in lobby: ada, bob");
    assert_eq!(bob.cmd("/rooms").await, "* rooms: lobby (2)");
    // The direct answer overtakes the room's broadcast of the change.
    assert_eq!(bob.cmd("/nick bobby").await, "* you are now bobby");
    assert_eq!(bob.line().await, "* bob is now known as bobby");
    assert_eq!(ada.line().await, "* bob is now known as bobby");
    // Leaving, errors, and unknown commands get clear `*` lines.
    assert_eq!(bob.cmd("/leave").await, "* you left lobby");
    assert_eq!(ada.line().await, "* bobby left lobby");
    assert_eq!(bob.cmd("anyone?").await, "* join a room first: /join NAME");
    assert_eq!(bob.cmd("/dance").await, "* unknown command /dance");
    assert_eq!(
        bob.cmd("/nick has space").await,
        "* a nickname is 1-32 characters without spaces"
    );
    assert_eq!(bob.cmd("/quit").await, "* bye");
    assert!(bob.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_is_removed_from_its_room() {
    let (_sys, server) = server(ChatConfig::default()).await;
    let mut ada = Client::connect(&server).await;
    let bob = Client::connect(&server).await;
    let mut bob = bob;
    ada.cmd("/nick ada").await;
    bob.cmd("/nick bob").await;
    ada.cmd("/join r").await;
    bob.cmd("/join r").await;
    assert_eq!(ada.line().await, "* bob joined r");
    drop(bob);
    assert_eq!(ada.line().await, "* bob left r");
    assert_eq!(ada.cmd("/who").await, "* in r: ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_room_restarts_and_its_members_stay_connected() {
    let (_sys, server) = server(ChatConfig {
        allow_crash: true,
        ..Default::default()
    })
    .await;
    let mut ada = Client::connect(&server).await;
    let mut bob = Client::connect(&server).await;
    ada.cmd("/nick ada").await;
    bob.cmd("/nick bob").await;
    ada.cmd("/join arena").await;
    bob.cmd("/join arena").await;
    ada.line().await;
    ada.send("/crash-room").await;
    // Said while the room restarts: handled by the new instance once it has rebuilt its
    // membership from the lobby, so both members hear it and keep talking.
    bob.send("still here?").await;
    assert_eq!(ada.line().await, "bob: still here?");
    assert_eq!(bob.line().await, "bob: still here?");
    assert_eq!(ada.cmd("/who").await, "* in arena: ada, bob");
    let room: actor_core::ActorRef<examples::chat::RoomMsg> =
        _sys.lookup("/user/chat-lobby/room-arena").expect("room");
    assert_eq!(room.stats().expect("local").restarts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_loses_lines_then_its_connection_without_slowing_the_room() {
    let config = ChatConfig {
        outbound_queue: 8,
        max_dropped: 200,
        max_line: 64 * 1024,
        ..Default::default()
    };
    let (_sys, server) = server(config).await;
    let mut talker = Client::connect(&server).await;
    let sleeper = TcpStream::connect(server.local_addr)
        .await
        .expect("connect");
    let (sleeper_read, mut sleeper_write) = sleeper.into_split();
    sleeper_write
        .write_all(b"/join busy\n")
        .await
        .expect("write");
    talker.cmd("/join busy").await;
    // The sleeper never reads. Flood the room with big lines until it is cut off.
    // Big lines fill the kernel's socket buffers (a few MB on loopback) in few round trips.
    let big = "x".repeat(32 * 1024);
    let mut talker_got = 0;
    while server
        .stats
        .slow_disconnects
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        talker.send(&big).await;
        // The talker keeps receiving its own lines promptly: the room is not held up.
        let line = talker.line().await;
        if line.ends_with(&big) {
            talker_got += 1;
        }
        assert!(
            talker_got < 20_000,
            "the slow client was never disconnected"
        );
    }
    assert!(
        server
            .stats
            .dropped_lines
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 200
    );
    drop(sleeper_read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netcat_speaks_the_protocol() {
    let Ok(nc) = which_nc() else {
        // .ci/run installs netcat-openbsd; a developer machine without it skips this test loudly.
        eprintln!("SKIPPED: no nc on PATH");
        return;
    };
    let (_sys, server) = server(ChatConfig::default()).await;
    let mut ada = Client::connect(&server).await;
    ada.cmd("/nick ada").await;
    ada.cmd("/join nc").await;
    let out = tokio::process::Command::new(nc)
        .args([
            "-q",
            "1",
            "127.0.0.1",
            &server.local_addr.port().to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = out.expect("spawn nc");
    let mut stdin = child.stdin.take().expect("stdin");
    // No /quit: it would stop the session before the room's echo reaches it. `-q 1` closes the
    // connection a second after the input ends.
    stdin
        .write_all(b"/nick netcat\n/join nc\nhi from netcat\n")
        .await
        .expect("write");
    drop(stdin);
    let output = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("nc ends")
        .expect("nc output");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("* netcat joined nc"), "{text}");
    assert!(text.contains("netcat: hi from netcat"), "{text}");
    assert_eq!(ada.line().await, "* netcat joined nc");
    assert_eq!(ada.line().await, "netcat: hi from netcat");
}

fn which_nc() -> Result<String, ()> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = format!("{dir}/nc");
        if std::path::Path::new(&p).exists() {
            return Ok(p);
        }
    }
    Err(())
}
