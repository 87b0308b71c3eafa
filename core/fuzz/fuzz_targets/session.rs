//! The session state machine on virtual time: see `ringcast_fuzz::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast_fuzz::session::check(data));
