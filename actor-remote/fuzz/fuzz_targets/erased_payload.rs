//! Fuzzes the type-erased payload decoding used for messages to exported refs and answers to
//! reply ports: arbitrary bytes must never panic, and a value accepted with its end check must
//! be the whole payload (it encodes and decodes to itself).
//!
//! Run: `cd actor-remote/fuzz && cargo fuzz run erased_payload -s none`
#![no_main]

use std::collections::BTreeMap;

use actor_remote::{Bincode, Codec};
use libfuzzer_sys::fuzz_target;

/// A message shaped like a game server's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum GameMsg {
    Join { player: u64, name: String },
    Move(i32, i32, u8),
    Chat(Vec<String>),
    Scores(BTreeMap<String, u32>),
    Leave(Option<u64>),
    Blob(Vec<u8>),
    Nested(Box<Option<GameMsg>>),
    Ping,
}

fn decode(bytes: &[u8]) -> Option<GameMsg> {
    let mut seen = None;
    let decoded = Bincode.decode_erased(bytes, &mut |de, end| {
        let msg: GameMsg = erased_serde::deserialize(de)?;
        end()?;
        seen = Some(msg);
        Ok(())
    });
    decoded.ok().and(seen)
}

fuzz_target!(|data: &[u8]| {
    if let Some(msg) = decode(data) {
        let mut again = Vec::new();
        Bincode.encode(&msg, &mut again).expect("an accepted value encodes");
        assert_eq!(decode(&again), Some(msg));
    }
});
