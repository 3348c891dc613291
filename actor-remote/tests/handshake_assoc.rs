//! Handshake refusals name their cause on both sides; association liveness and incarnations;
//! both driven over a simulated network (delay, loss, partition) on a virtual clock, no sockets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actor_remote::association::{Action, Association, Incarnation, Incarnations, Liveness};
use actor_remote::handshake::{Handshake, HandshakeConfig, HandshakeError, PeerInfo, Progress};
use actor_remote::wire::{Frame, FrameDecoder, Hello, RejectReason};
use actor_remote::{Bincode, Codec};

fn config(node: &str, secret: Option<&[u8]>) -> HandshakeConfig {
    HandshakeConfig {
        node: node.into(),
        incarnation: 7,
        secret: secret.map(<[u8]>::to_vec),
        codec: Bincode.name().into(),
        timeout: Duration::from_secs(3),
    }
}

/// One direction of a simulated link: bytes arrive `delay` after they were sent, unless the link
/// is partitioned (then they are lost) or the frame is picked by `drop_every`.
struct Link {
    delay: Duration,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    partitioned: bool,
    drop_every: Option<usize>,
    sent: usize,
}

impl Link {
    fn new(delay: Duration) -> Self {
        Self {
            delay,
            in_flight: VecDeque::new(),
            partitioned: false,
            drop_every: None,
            sent: 0,
        }
    }
    fn send(&mut self, now: Instant, frame: &Frame) {
        self.sent += 1;
        if self.partitioned || self.drop_every.is_some_and(|n| self.sent.is_multiple_of(n)) {
            return;
        }
        let mut bytes = Vec::new();
        frame.encode(&Bincode, &mut bytes).expect("encode");
        self.in_flight.push_back((now + self.delay, bytes));
    }
    fn deliver(&mut self, now: Instant, to: &mut FrameDecoder<Bincode>) -> Vec<Frame> {
        while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, bytes)) = self.in_flight.pop_front() {
                to.push(&bytes);
            }
        }
        let mut frames = Vec::new();
        while let Some(f) = to.next_frame().expect("valid stream") {
            frames.push(f);
        }
        frames
    }
}

/// Runs a handshake between `a` and `b` over links with `delay`, stepping the virtual clock 1 ms
/// at a time, until both ended. Returns each side's outcome and the elapsed virtual time.
fn run_handshake(
    a: HandshakeConfig,
    b: HandshakeConfig,
    delay: Duration,
) -> (
    Result<PeerInfo, HandshakeError>,
    Result<PeerInfo, HandshakeError>,
    Duration,
) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut ha = Handshake::new(a, [1; 16], now);
    let mut hb = Handshake::new(b, [2; 16], now);
    let (mut ab, mut ba) = (Link::new(delay), Link::new(delay));
    let (mut da, mut db) = (
        FrameDecoder::new(Bincode, 1 << 16),
        FrameDecoder::new(Bincode, 1 << 16),
    );
    let (mut ra, mut rb) = (None, None);
    while ra.is_none() || rb.is_none() {
        for f in ha.poll_transmit() {
            ab.send(now, &f);
        }
        for f in hb.poll_transmit() {
            ba.send(now, &f);
        }
        for f in ab.deliver(now, &mut db) {
            if rb.is_none() {
                match hb.handle(f) {
                    Ok(Progress::Established(p)) => rb = Some(Ok(p)),
                    Ok(Progress::Pending) => {}
                    Err(e) => rb = Some(Err(e)),
                }
            }
        }
        for f in ba.deliver(now, &mut da) {
            if ra.is_none() {
                match ha.handle(f) {
                    Ok(Progress::Established(p)) => ra = Some(Ok(p)),
                    Ok(Progress::Pending) => {}
                    Err(e) => ra = Some(Err(e)),
                }
            }
        }
        if ra.is_none()
            && let Err(e) = ha.handle_timeout(now)
        {
            ra = Some(Err(e));
        }
        if rb.is_none()
            && let Err(e) = hb.handle_timeout(now)
        {
            rb = Some(Err(e));
        }
        // Flush what the handlers queued (the Reject of a refusal, the Auth) before time moves.
        for f in ha.poll_transmit() {
            ab.send(now, &f);
        }
        for f in hb.poll_transmit() {
            ba.send(now, &f);
        }
        now += Duration::from_millis(1);
        assert!(now - t0 < Duration::from_secs(60), "handshake never ended");
    }
    (ra.expect("ended"), rb.expect("ended"), now - t0)
}

#[test]
fn matching_secrets_establish_in_three_one_way_delays() {
    let (a, b, took) = run_handshake(
        config("a", Some(b"s3cret")),
        config("b", Some(b"s3cret")),
        Duration::from_millis(20),
    );
    assert_eq!(
        a,
        Ok(PeerInfo {
            node: "b".into(),
            incarnation: 7
        })
    );
    assert_eq!(
        b,
        Ok(PeerInfo {
            node: "a".into(),
            incarnation: 7
        })
    );
    // Hello, Auth and Accept each cross in flight: three one-way delays.
    assert!(
        took >= Duration::from_millis(60) && took < Duration::from_millis(65),
        "{took:?}"
    );
}

#[test]
fn without_a_secret_mutual_tls_alone_authenticates() {
    let (a, b, _) = run_handshake(
        config("a", None),
        config("b", None),
        Duration::from_millis(5),
    );
    assert!(a.is_ok() && b.is_ok());
}

#[test]
fn a_wrong_secret_is_refused_with_the_cause_on_both_sides() {
    let (a, b, _) = run_handshake(
        config("a", Some(b"right")),
        config("b", Some(b"wrong")),
        Duration::from_millis(5),
    );
    // Each side verifies the other's proof: both refuse, and each also hears the other's reason.
    for r in [a, b] {
        match r {
            Err(HandshakeError::Refused(RejectReason::BadSecret))
            | Err(HandshakeError::RejectedByPeer(RejectReason::BadSecret)) => {}
            other => panic!("expected a secret refusal, got {other:?}"),
        }
    }
    let (a, b, _) = run_handshake(
        config("a", Some(b"right")),
        config("b", None),
        Duration::from_millis(5),
    );
    assert_eq!(a, Err(HandshakeError::Refused(RejectReason::BadSecret)));
    assert_eq!(
        b,
        Err(HandshakeError::RejectedByPeer(RejectReason::BadSecret))
    );
    assert_eq!(
        HandshakeError::Refused(RejectReason::BadSecret).to_string(),
        "refused the peer: wrong cluster secret"
    );
}

#[test]
fn an_incompatible_version_or_codec_is_refused_naming_both() {
    let now = Instant::now();
    let mut h = Handshake::new(config("a", None), [1; 16], now);
    h.poll_transmit();
    let future = Frame::Hello(Hello {
        protocol: 99,
        codec: "bincode2".into(),
        node: "b".into(),
        incarnation: 1,
        nonce: [0; 16],
    });
    let err = h.handle(future).expect_err("refused");
    assert_eq!(
        err,
        HandshakeError::Refused(RejectReason::Version {
            ours: 1,
            theirs: 99
        })
    );
    assert!(
        err.to_string().contains("ours is 1, the peer speaks 99"),
        "{err}"
    );
    assert_eq!(
        h.poll_transmit(),
        vec![Frame::Reject(RejectReason::Version {
            ours: 1,
            theirs: 99
        })]
    );

    let mut h = Handshake::new(config("a", None), [1; 16], now);
    let other = Frame::Hello(Hello {
        protocol: 1,
        codec: "postcard".into(),
        node: "b".into(),
        incarnation: 1,
        nonce: [0; 16],
    });
    assert!(matches!(
        h.handle(other),
        Err(HandshakeError::Refused(RejectReason::Codec { .. }))
    ));
}

#[test]
fn the_handshake_times_out_and_refuses_out_of_order_frames() {
    let t0 = Instant::now();
    let mut h = Handshake::new(config("a", None), [1; 16], t0);
    assert_eq!(h.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    assert_eq!(h.handle_timeout(t0 + Duration::from_secs(2)), Ok(()));
    assert_eq!(
        h.handle_timeout(t0 + Duration::from_secs(3)),
        Err(HandshakeError::TimedOut(Duration::from_secs(3)))
    );

    let mut h = Handshake::new(config("a", None), [1; 16], t0);
    let err = h
        .handle(Frame::Tell {
            recipient: 1,
            manifest: 0,
            payload: vec![],
        })
        .expect_err("refused");
    assert!(
        matches!(err, HandshakeError::Refused(RejectReason::Protocol(ref why)) if why.contains("tell")),
        "{err}"
    );
}

#[test]
fn liveness_heartbeats_when_idle_and_declares_unreachable_once() {
    let t0 = Instant::now();
    let live = Liveness {
        heartbeat_interval: Duration::from_secs(1),
        unreachable_after: Duration::from_secs(5),
    };
    let mut a = Association::new(live, t0);
    assert_eq!(a.poll_timeout(), t0 + Duration::from_secs(1));
    assert_eq!(
        a.handle_timeout(t0 + Duration::from_secs(1)),
        vec![Action::SendHeartbeat(0)]
    );
    // Sending application frames postpones heartbeats.
    a.on_sent(t0 + Duration::from_millis(1_500));
    assert_eq!(a.poll_timeout(), t0 + Duration::from_millis(2_500));
    a.on_received(t0 + Duration::from_secs(2));
    let mut unreachable_at = None;
    let mut heartbeats = 0;
    let mut now = t0 + Duration::from_secs(2);
    while now < t0 + Duration::from_secs(20) {
        now = a.poll_timeout().max(now + Duration::from_millis(1));
        for action in a.handle_timeout(now) {
            match action {
                Action::SendHeartbeat(_) => heartbeats += 1,
                Action::Unreachable { silent_for } => {
                    assert!(unreachable_at.is_none(), "declared twice");
                    assert_eq!(silent_for, Duration::from_secs(5));
                    unreachable_at = Some(now);
                }
            }
        }
    }
    assert_eq!(
        unreachable_at,
        Some(t0 + Duration::from_secs(7)),
        "5 s after the last frame heard"
    );
    assert!(
        heartbeats >= 15,
        "keeps probing while unreachable: {heartbeats}"
    );
    a.on_received(now);
    assert!(!a.is_unreachable());
}

#[test]
fn a_partition_is_detected_by_both_sides_within_the_configured_time() {
    // Two associations exchange heartbeats over a lossy, delayed link; a partition silences them.
    let t0 = Instant::now();
    let live = Liveness {
        heartbeat_interval: Duration::from_millis(200),
        unreachable_after: Duration::from_secs(2),
    };
    let (mut a, mut b) = (Association::new(live, t0), Association::new(live, t0));
    let (mut ab, mut ba) = (
        Link::new(Duration::from_millis(30)),
        Link::new(Duration::from_millis(30)),
    );
    ab.drop_every = Some(3); // lose every third frame: not enough to look dead
    let (mut da, mut db) = (
        FrameDecoder::new(Bincode, 1 << 10),
        FrameDecoder::new(Bincode, 1 << 10),
    );
    let partition_at = t0 + Duration::from_secs(10);
    let (mut a_down, mut b_down) = (None, None);
    let mut now = t0;
    while now < t0 + Duration::from_secs(20) {
        if now >= partition_at {
            ab.partitioned = true;
            ba.partitioned = true;
        }
        for act in a.handle_timeout(now) {
            match act {
                Action::SendHeartbeat(seq) => ab.send(now, &Frame::Heartbeat { seq }),
                Action::Unreachable { .. } => a_down = a_down.or(Some(now)),
            }
        }
        for act in b.handle_timeout(now) {
            match act {
                Action::SendHeartbeat(seq) => ba.send(now, &Frame::Heartbeat { seq }),
                Action::Unreachable { .. } => b_down = b_down.or(Some(now)),
            }
        }
        for f in ab.deliver(now, &mut db) {
            b.on_received(now);
            if let Frame::Heartbeat { seq } = f {
                ba.send(now, &Frame::HeartbeatAck { seq });
                b.on_sent(now);
            }
        }
        for f in ba.deliver(now, &mut da) {
            a.on_received(now);
            if let Frame::Heartbeat { seq } = f {
                ab.send(now, &Frame::HeartbeatAck { seq });
                a.on_sent(now);
            }
        }
        now += Duration::from_millis(10);
    }
    for (side, down) in [("a", a_down), ("b", b_down)] {
        let down = down.unwrap_or_else(|| panic!("{side} never noticed the partition"));
        assert!(
            down > partition_at,
            "{side} declared the peer dead before the partition (loss alone)"
        );
        assert!(
            down <= partition_at + Duration::from_millis(2_300),
            "{side} took until {:?}",
            down - partition_at
        );
    }
}

#[test]
fn incarnations_tell_reconnects_from_restarts_and_stale_peers() {
    let mut seen = Incarnations::default();
    assert_eq!(seen.observe("node-b", 100), Incarnation::New);
    assert_eq!(seen.observe("node-b", 100), Incarnation::Same);
    assert_eq!(
        seen.observe("node-b", 250),
        Incarnation::Restarted { previous: 100 }
    );
    assert_eq!(
        seen.observe("node-b", 100),
        Incarnation::Stale { newest: 250 }
    );
    assert_eq!(seen.observe("node-c", 1), Incarnation::New);
}
