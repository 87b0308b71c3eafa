//! The protocol v1 command parser: see `ringcast_fuzz::command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast_fuzz::command::check(data));
