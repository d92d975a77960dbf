//! Argument parsing helpers shared by the handlers: Redis's integer rules, keyword matching.

use super::CmdError;

/// Parses an integer argument with Redis's strictness (no spaces, no `+`, no leading zeros).
///
/// # Errors
/// [`CmdError::NOT_INTEGER`].
pub fn parse_i64(b: &[u8]) -> Result<i64, CmdError> {
    parse_i64_strict(b).ok_or(CmdError::NOT_INTEGER)
}

/// Redis's `string2ll`: the exact decimal form of an `i64` and nothing else (no spaces, no
/// `+`, no leading zeros, no `-0`). The protocol crate's parser, which reads RESP lengths by
/// the same rules.
pub use shardcache_protocol::parse_i64 as parse_i64_strict;

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        let ok = [
            ("0", 0),
            ("-1", -1),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (s, v) in ok {
            assert_eq!(parse_i64_strict(s.as_bytes()), Some(v), "{s}");
        }
        for s in [
            "",
            "-",
            "+1",
            "01",
            "-0",
            " 1",
            "1 ",
            "9223372036854775808",
            "1.0",
            "-9223372036854775809",
        ] {
            assert_eq!(parse_i64_strict(s.as_bytes()), None, "{s}");
        }
    }
}
