//! What one zlib-rs stream (flate2's backend here) holds on the heap, by
//! window bits, counted by a global allocator that tracks this thread's
//! live bytes. `proto::deflate::DEFLATE_STATE_BYTES` and
//! `INFLATE_STATE_BYTES` (which the negotiation's memory budget and the
//! capacity model use) are these figures; this test fails when zlib-rs (or
//! how flate2 builds its streams) changes them, so they are updated with
//! the code. Run with `--nocapture` to see the table:
//! `cargo test -p ringcast --test zlib_state -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use ringcast::proto::deflate::{DEFLATE_STATE_BYTES, INFLATE_STATE_BYTES};

/// Counts the bytes this thread has live; everything else is `System`'s.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    // `try_with`: during thread teardown the counter may be gone already.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: the caller's layout is passed on as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// A chat-like message, compressible, 4 KiB.
fn message() -> Vec<u8> {
    let text = r#"{"channel":"room:42","offset":1234,"epoch":7,"data":{"user":"ana","text":"see you at the station at nine"}}"#;
    text.bytes().cycle().take(4096).collect()
}

/// Live bytes a deflate stream of `bits` at `level` holds once made, and
/// once it has compressed a message (zlib-rs may allocate lazily).
fn deflate_bytes(level: u32, bits: u8) -> (isize, isize) {
    let before = live();
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, bits);
    let made = live() - before;
    let mut out = Vec::with_capacity(8192);
    let input = message();
    let start = live();
    c.compress_vec(&input, &mut out, FlushCompress::Sync)
        .expect("deflate");
    let used = made + (live() - start);
    drop(c);
    (made, used)
}

fn inflate_bytes(bits: u8) -> (isize, isize) {
    let mut packed = Vec::with_capacity(8192);
    Compress::new_with_window_bits(Compression::new(6), false, bits)
        .compress_vec(&message(), &mut packed, FlushCompress::Sync)
        .expect("deflate");
    let mut out = Vec::with_capacity(8192);
    let before = live();
    let mut d = Decompress::new_with_window_bits(false, bits);
    let made = live() - before;
    let start = live();
    d.decompress_vec(&packed, &mut out, FlushDecompress::Sync)
        .expect("inflate");
    let used = made + (live() - start);
    drop(d);
    (made, used)
}

/// zlib's own estimate (zconf.h): deflate needs `(1 << (windowBits+2)) +
/// (1 << (memLevel+9))` with memLevel 8 (flate2's), inflate `1 <<
/// windowBits` plus about 7 KB.
fn zlib_formula(bits: u8) -> (isize, isize) {
    ((1 << (bits + 2)) + (1 << (8 + 9)), (1 << bits) + 7 * 1024)
}

/// Window bits; (level, (bytes once made, bytes after a message)) for
/// deflate; the same pair for inflate.
type Row = (u8, Vec<(u32, (isize, isize))>, (isize, isize));

#[test]
fn zlib_state_per_window_matches_the_capacity_model() {
    let rows: Vec<Row> = (9..=15u8)
        .map(|bits| {
            let levels = [1, 2, 6, 9].map(|l| (l, deflate_bytes(l, bits))).into();
            (bits, levels, inflate_bytes(bits))
        })
        .collect();
    println!("bits | deflate made / after a 4 KiB message, by level | inflate made / after | zlib's formula, deflate / inflate");
    for (bits, levels, inflate) in &rows {
        let formula = zlib_formula(*bits);
        println!(
            "{bits} | {} | {} / {} | {} / {}",
            levels
                .iter()
                .map(|(l, (m, u))| format!("L{l} {m} / {u}"))
                .collect::<Vec<_>>()
                .join(", "),
            inflate.0,
            inflate.1,
            formula.0,
            formula.1
        );
    }
    for (bits, levels, inflate) in &rows {
        let i = usize::from(bits - 9);
        // The model's figure is the most any level holds after a message.
        let deflate = levels.iter().map(|(_, (_, u))| *u).max().unwrap_or(0);
        assert_eq!(
            deflate as u64, DEFLATE_STATE_BYTES[i],
            "deflate, {bits} bits"
        );
        // zlib-rs makes every inflate stream with a 15-bit window.
        assert_eq!(
            inflate.1 as u64, INFLATE_STATE_BYTES,
            "inflate, {bits} bits"
        );
        // Nothing is allocated late: what a stream holds once made is what
        // it holds after a message.
        assert!(levels.iter().all(|(_, (made, used))| made == used));
        assert_eq!(inflate.0, inflate.1);
        // The deflate state grows with the window, and zlib's own formula
        // is within a factor of two of what zlib-rs holds.
        if i > 0 {
            assert!(DEFLATE_STATE_BYTES[i] > DEFLATE_STATE_BYTES[i - 1]);
        }
        let formula = zlib_formula(*bits);
        assert!(
            deflate < 2 * formula.0 && formula.0 < 2 * deflate,
            "{bits} bits"
        );
        if *bits == 15 {
            assert!(inflate.1 < 2 * formula.1 && formula.1 < 2 * inflate.1);
        }
    }
}
