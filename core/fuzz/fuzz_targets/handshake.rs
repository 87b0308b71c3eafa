//! The opening-handshake parser: see `ringcast_fuzz::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast_fuzz::handshake::check(data));
