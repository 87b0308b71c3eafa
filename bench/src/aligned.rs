//! Byte buffers whose payload starts at a known offset from a 64-byte
//! boundary, so a bench can say "aligned" or "offset by 1" and mean it
//! (a `Vec<u8>` from the allocator is only guaranteed 1-byte alignment).

/// A heap buffer holding `len` bytes starting `offset` bytes past a 64-byte
/// boundary.
#[derive(Debug, Clone)]
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes filled with `fill`, starting `offset % 64` bytes past a
    /// 64-byte boundary.
    pub fn new(len: usize, offset: usize, fill: u8) -> Self {
        let storage = vec![fill; len + 128];
        let misalign = storage.as_ptr() as usize % 64;
        let start = (64 - misalign) % 64 + offset % 64;
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_from_a_64_byte_boundary() {
        for offset in [0, 1, 3, 63] {
            let mut buf = AlignedBuf::new(100, offset, 7);
            assert_eq!(buf.as_mut_slice().as_ptr() as usize % 64, offset);
            assert_eq!(buf.as_slice().len(), 100);
            assert!(buf.as_slice().iter().all(|&b| b == 7));
        }
    }
}
