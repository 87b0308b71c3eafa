//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`, Linux 5.19): `count`
//! buffers of `size` bytes that the kernel picks from when a multishot
//! `recv` completes, so a connection with nothing to read holds no buffer.
//!
//! Two allocations, both owned here: the ring of `count` 16-byte entries
//! (page-aligned, as the kernel requires, from `mmap`) and one block of
//! `count × size` bytes the entries point into. The kernel takes entries at
//! the head; [`BufRing::recycle`] puts a buffer back at the tail, and the tail
//! is published to the kernel with a release store.
//!
//! Not every buffer is handed out at once: the ring starts with `initial`
//! and doubles towards `count` each time [`BufRing::grow`] is called (the
//! owner calls it when a receive found none left). The kernel takes
//! buffers in ring order, so every buffer handed out is touched, and made
//! resident, within one pass over the ring; one handed out only when the
//! load needs it keeps a worker that never had a burst at `initial × size`
//! resident (19,000 idle connections on one worker: 0.70 KiB each with 64
//! buffers of 4 KiB, 1.55 KiB with all 4,096 handed out at start).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_bytes: usize,
    data: Box<[u8]>,
    count: u16,
    /// Buffers handed to the kernel so far (ids `0..provided`).
    provided: u16,
    size: usize,
    group: u16,
    /// The tail as this side knows it (the kernel reads the shared copy).
    tail: u16,
}

impl BufRing {
    /// Reserves `count` buffers (a power of two, at most 32,768) of `size`
    /// bytes, registers them with `ring` as buffer group `group`, and hands
    /// the first `initial` (1..=`count`) to the kernel.
    pub fn register(
        ring: &IoUring,
        group: u16,
        count: u16,
        initial: u16,
        size: usize,
    ) -> io::Result<Self> {
        if !count.is_power_of_two() || count > 1 << 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer count {count} is not a power of two up to 32768"),
            ));
        }
        if initial == 0 || initial > count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("initial buffer count {initial} is not in 1..={count}"),
            ));
        }
        if size == 0 || u32::try_from(size).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer size {size} is not in 1..=4 GiB"),
            ));
        }
        let ring_bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; the arguments are valid and
        // the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring_ptr = NonNull::new(addr.cast::<BufRingEntry>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mut this = Self {
            ring: ring_ptr,
            ring_bytes,
            data: vec![0u8; usize::from(count) * size].into_boxed_slice(),
            count,
            provided: initial,
            size,
            group,
            tail: 0,
        };
        // SAFETY: the ring memory is page-aligned, `count` entries long, and
        // stays mapped until `Drop`, which unregisters it first.
        unsafe {
            ring.submitter()
                .register_buf_ring(ring_ptr.as_ptr() as u64, count, group)?;
        }
        for bid in 0..initial {
            this.put(bid);
        }
        this.publish();
        Ok(this)
    }

    /// Hands the kernel as many buffers again as it has (up to `count`);
    /// returns how many it has now, or `None` when all were handed out.
    pub fn grow(&mut self) -> Option<u16> {
        if self.provided == self.count {
            return None;
        }
        let to = self.provided.saturating_mul(2).min(self.count);
        for bid in self.provided..to {
            self.put(bid);
        }
        self.publish();
        self.provided = to;
        Some(to)
    }

    /// Buffers handed to the kernel so far.
    pub fn provided(&self) -> u16 {
        self.provided
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// The first `len` bytes the kernel wrote into buffer `bid`.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid % self.count) * self.size;
        &self.data[start..start + len.min(self.size)]
    }

    /// [`BufRing::get`], writable: the owner of a completion's buffer may
    /// change its bytes in place (unmasking) until it recycles it.
    pub fn get_mut(&mut self, bid: u16, len: usize) -> &mut [u8] {
        let start = usize::from(bid % self.count) * self.size;
        &mut self.data[start..start + len.min(self.size)]
    }

    /// Gives buffer `bid` back to the kernel (its bytes were consumed).
    pub fn recycle(&mut self, bid: u16) {
        self.put(bid);
        self.publish();
    }

    /// Gives several buffers back with one tail update.
    pub fn recycle_all(&mut self, bids: impl IntoIterator<Item = u16>) {
        for bid in bids {
            self.put(bid);
        }
        self.publish();
    }

    fn put(&mut self, bid: u16) {
        let bid = bid % self.count;
        let slot = usize::from(self.tail & (self.count - 1));
        let addr = self.data.as_ptr() as u64 + (usize::from(bid) * self.size) as u64;
        // SAFETY: `slot < count`, inside the mapping. The kernel reads only
        // entries between its head and the published tail; this one is past
        // the published tail until `publish`.
        let entry = unsafe { &mut *self.ring.as_ptr().add(slot) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail shares the first entry's last field (the kernel's
        // layout); it is only ever written here, and read by the kernel
        // through an acquire load.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Unregisters the group from `ring`; call before dropping either.
    pub fn unregister(&self, ring: &IoUring) -> io::Result<()> {
        ring.submitter().unregister_buf_ring(self.group)
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `register` with this length. The
        // kernel no longer reads it once the group is unregistered or the
        // ring is closed, which the owner (`Ring`) ensures before dropping.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes);
        }
    }
}
