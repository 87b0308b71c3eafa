//! Replays every committed seed through its target's check, without libFuzzer:
//! `cargo test` here proves the seeds still parse as their targets expect and
//! that the oracles hold on them.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable seeds dir").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
}

#[test]
fn handshake_seeds() {
    replay("handshake", ringcast_fuzz::handshake::check);
}

#[test]
fn decoder_seeds() {
    replay("decoder", ringcast_fuzz::decode::check);
}

#[test]
fn decoder_frames_seeds() {
    replay("decoder_frames", ringcast_fuzz::frames::check);
}

#[test]
fn command_seeds() {
    replay("command", ringcast_fuzz::command::check);
}

#[test]
fn session_seeds() {
    replay("session", ringcast_fuzz::session::check);
}

/// The model and the encoder agree with the decoder on the RFC 6455 §5.7
/// example, so a seed that builds it really reaches the event path.
#[test]
fn frames_model_sees_the_rfc_example() {
    use ringcast::proto::decoder::{Limits, Role};
    use ringcast_fuzz::decode::Ev;
    use ringcast_fuzz::frames::{encode, model, LenForm, Spec};
    let spec = Spec {
        opcode: 0x1,
        fin: true,
        rsv: 0,
        mask: Some([0x37, 0xfa, 0x21, 0x3d]),
        len_form: LenForm::Minimal,
        payload: b"Hello".to_vec(),
    };
    let specs = [spec];
    assert_eq!(
        encode(&specs),
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    );
    let expected = model(Role::Server, Limits::default(), &specs);
    assert_eq!(expected.events, vec![Ev::Text("Hello".into())]);
    assert!(expected.allowed.is_none());
}
