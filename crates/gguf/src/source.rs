//! A position-tracking, bounds-checked little-endian reader.
//!
//! Every length in a GGUF header is attacker-controlled, so nothing here reads or
//! allocates more than what is left of the file: a length is first compared with
//! the remaining bytes, and only then is memory taken. The current position is
//! tracked by hand so that every error can say where it happened.

use crate::error::GgufError;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Buffer for sequential header reads: big enough that a 32k-token vocabulary is a
/// handful of syscalls, small enough that scanning thousands of files stays cheap.
pub(crate) const BUF_SIZE: usize = 64 * 1024;

pub(crate) struct Source<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Source<R> {
    /// Measures the stream and rewinds it to the start: offset 0 is the magic.
    pub(crate) fn new(mut r: R) -> Result<Self, GgufError> {
        let io_err = |source| GgufError::Io { offset: 0, source };
        let len = r.seek(SeekFrom::End(0)).map_err(io_err)?;
        r.seek(SeekFrom::Start(0)).map_err(io_err)?;
        Ok(Source {
            inner: BufReader::with_capacity(BUF_SIZE, r),
            pos: 0,
            len,
        })
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails with `Truncated` unless `n` more bytes exist.
    pub(crate) fn ensure(&self, n: u64) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                offset: self.pos,
                needed: n,
            });
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.ensure(buf.len() as u64)?;
        self.inner
            .read_exact(buf)
            .map_err(|e| self.io_error(e, buf.len() as u64))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The file can still shrink under us (another process truncating it), so an
    /// early EOF is reported as truncation rather than an opaque I/O error.
    fn io_error(&self, e: io::Error, needed: u64) -> GgufError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            GgufError::Truncated {
                offset: self.pos,
                needed,
            }
        } else {
            GgufError::Io {
                offset: self.pos,
                source: e,
            }
        }
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, GgufError> {
        Ok(self.bytes::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.bytes()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    /// Skips `n` bytes without reading them; stays inside the buffer when it can.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        self.ensure(n)?;
        // `ensure` bounds n by the stream length, which a real stream keeps below i64::MAX.
        let delta = i64::try_from(n).map_err(|_| GgufError::TooLarge {
            offset: self.pos,
            what: "skip length",
            value: n,
        })?;
        self.inner.seek_relative(delta).map_err(|e| GgufError::Io {
            offset: self.pos,
            source: e,
        })?;
        self.pos += n;
        Ok(())
    }

    /// Reads a string's u64 length prefix, refusing one above `max`.
    fn string_len(&mut self, what: &'static str, max: u64) -> Result<u64, GgufError> {
        let offset = self.pos;
        let len = self.u64()?;
        if len > max {
            return Err(GgufError::TooLarge {
                offset,
                what,
                value: len,
            });
        }
        Ok(len)
    }

    /// Reads a u64-length-prefixed string. `max` guards memory; the remaining-bytes
    /// check guards against lengths the file cannot hold.
    pub(crate) fn string(&mut self, what: &'static str, max: u64) -> Result<String, GgufError> {
        let len = self.string_len(what, max)?;
        self.ensure(len)?;
        let start = self.pos;
        // Bounded by `max` and by what is left of the file, so this cannot be huge.
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf)?;
        String::from_utf8(buf).map_err(|e| GgufError::InvalidUtf8 {
            offset: start + e.utf8_error().valid_up_to() as u64,
        })
    }

    /// Skips a u64-length-prefixed string, checking only its length.
    pub(crate) fn skip_string(&mut self, what: &'static str, max: u64) -> Result<(), GgufError> {
        let len = self.string_len(what, max)?;
        self.skip(len)
    }
}
