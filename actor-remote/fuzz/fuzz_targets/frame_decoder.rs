//! Fuzzes the frame decoder with arbitrary byte streams split at arbitrary points: it must never
//! panic, never buffer more than one maximum frame, and re-encode every frame it accepts to bytes
//! that decode to the same frame.
//!
//! Run: `cd actor-remote/fuzz && cargo fuzz run frame_decoder -s none`
#![no_main]

use actor_remote::Bincode;
use actor_remote::wire::FrameDecoder;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);
    let mut decoder = FrameDecoder::new(Bincode, MAX_FRAME);
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let mut again = Vec::new();
                    if frame.encode(&Bincode, &mut again).is_ok() {
                        let mut check = FrameDecoder::new(Bincode, usize::MAX);
                        check.push(&again);
                        assert_eq!(check.next_frame().ok().flatten().as_ref(), Some(&frame));
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= MAX_FRAME + 4 + chunk);
    }
});
