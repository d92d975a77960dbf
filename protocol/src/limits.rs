//! Size limits applied while decoding.

/// Caps on every size a peer controls, checked *before* any memory is reserved, so a client
/// declaring a huge array or bulk string cannot make us allocate for bytes it never sends.
///
/// The defaults are Redis 7's: `proto-max-bulk-len`, `PROTO_INLINE_MAX_SIZE`, and the `INT_MAX`
/// sanity check on multibulk counts. Build with `Limits { max_bulk_len: .., ..Limits::default() }`
/// so new fields can be added without breaking callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted bulk string (`$<len>`), in bytes. Redis `proto-max-bulk-len`,
    /// default 512 MiB. Larger lengths are `invalid bulk length`.
    pub max_bulk_len: usize,
    /// Longest line: inline requests, and the `*<n>` / `$<len>` lines of multibulk requests
    /// (Redis `PROTO_INLINE_MAX_SIZE`, 64 KiB). As in Redis, it counts the bytes before the
    /// byte searched for (`\n` for inline requests, so a `\r` before it counts; `\r` for
    /// multibulk lines). For replies decoded by [`FrameDecoder`](crate::FrameDecoder) it bounds
    /// every line (simple strings, numbers, headers).
    pub max_inline_len: usize,
    /// Largest accepted element count of a request array (`*<n>`) or reply aggregate. Redis only
    /// rejects counts above `INT_MAX`, which is the default; counts above `INT_MAX` are always
    /// rejected whatever this says.
    pub max_multibulk_len: usize,
}

impl Default for Limits {
    /// Redis 7 defaults: 512 MiB bulks, 64 KiB lines, `INT_MAX` elements.
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_inline_len: 64 * 1024,
            // i32::MAX is positive, so the cast is lossless on 32- and 64-bit targets.
            max_multibulk_len: i32::MAX as usize,
        }
    }
}
