//! The protocol core must stay sans-IO: it may not import tokio or quinn, nor read the clock.
//! This test fails when one of those modules gains such a dependency.

#[test]
fn protocol_core_modules_do_no_io_and_read_no_clock() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for module in ["wire.rs", "handshake.rs", "association.rs", "codec.rs"] {
        let path = format!("{dir}/{module}");
        let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for forbidden in [
            "tokio",
            "quinn",
            "Instant::now",
            "SystemTime",
            "std::net",
            "std::thread",
        ] {
            let hit = src
                .lines()
                .find(|l| !l.trim_start().starts_with("//") && l.contains(forbidden));
            assert!(
                hit.is_none(),
                "{module} uses {forbidden}: {}",
                hit.unwrap_or_default()
            );
        }
    }
}
