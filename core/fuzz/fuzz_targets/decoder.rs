//! The frame decoder on arbitrary wire bytes: see `ringcast_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast_fuzz::decode::check(data));
