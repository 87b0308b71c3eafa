//! Oracles for the fuzz targets in `fuzz_targets/`: each target is a one-line
//! call into a `check` function here, so a crash found by the fuzzer can be
//! replayed as a plain unit test (`tests/regressions.rs`) without libFuzzer.
//!
//! | module | target(s) | what it asserts |
//! | --- | --- | --- |
//! | `handshake` | `handshake` | prefix/whole agreement, exact head length, responses re-parse |
//! | `decode` | `decoder` | progress contract, chunked == whole, memory bound, UTF-8 |
//! | `frames` | `decoder_frames` | the decoder against an independent RFC 6455 model |
//! | `command` | `command` | v1 commands: no panic, replies and pushes are valid JSON |
//! | `session` | `session` | close handshake and timeouts under virtual time |
//!
//! Every check panics on a broken guarantee; libFuzzer reports the panic as a
//! crash and saves the input under `artifacts/<target>/`.

pub mod command;
pub mod decode;
pub mod frames;
pub mod handshake;
pub mod input;
pub mod session;
