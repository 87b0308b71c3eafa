//! The frame decoder against an RFC 6455 model: see `ringcast_fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast_fuzz::frames::check(data));
