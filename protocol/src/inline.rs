//! Splitting inline requests into arguments, exactly like Redis's `sdssplitargs` (sds.c).

use smallvec::SmallVec;

/// One argument of an inline request: a range of the line when the argument appears in it
/// verbatim (no escapes, no quotes inside the word), or owned bytes otherwise. Keeping ranges
/// lets the decoder hand out zero-copy `Bytes` slices for plain words.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// `line[start..end]`.
    Range(usize, usize),
    /// Bytes built from escapes or from quoted parts glued to a word.
    Owned(Vec<u8>),
}

/// The argument being built: a range of the line for as long as every byte appended is the
/// next source byte, switching to an owned copy the first time that stops being true.
struct Token {
    start: usize,
    end: usize,
    owned: Option<Vec<u8>>,
}

impl Token {
    fn new(at: usize) -> Self {
        Token {
            start: at,
            end: at,
            owned: None,
        }
    }

    /// Appends `line[i]` (which is `b`).
    fn push_source(&mut self, line: &[u8], i: usize, b: u8) {
        match &mut self.owned {
            Some(v) => v.push(b),
            None if self.start == self.end => {
                self.start = i;
                self.end = i + 1;
            }
            None if self.end == i => self.end += 1,
            None => self.owned_mut(line).push(b),
        }
    }

    /// Appends a byte that is not the next source byte (an escape's result).
    fn push_byte(&mut self, line: &[u8], b: u8) {
        self.owned_mut(line).push(b);
    }

    fn owned_mut(&mut self, line: &[u8]) -> &mut Vec<u8> {
        let (start, end) = (self.start, self.end);
        self.owned
            .get_or_insert_with(|| line.get(start..end).unwrap_or_default().to_vec())
    }

    fn finish(self) -> Piece {
        match self.owned {
            Some(v) => Piece::Owned(v),
            None => Piece::Range(self.start, self.end),
        }
    }
}

/// C `isspace` in the "C" locale (Redis never changes `LC_CTYPE`).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` (an inline request without its line terminator) the way `sdssplitargs` does,
/// returning `None` on unbalanced quotes.
///
/// The rules, kept quirk for quirk: blanks (`isspace`) separate arguments, but inside a word only
/// space, tab, CR, LF and NUL end it (so a vertical tab belongs to the word); `"..."` understands
/// `\n \r \t \b \a \xHH` and `\<any>`; `'...'` understands only `\'`; quotes may start in the
/// middle of a word (`a"b c"` is `ab c`); a closing quote must be followed by a blank or the end
/// of the line. A NUL byte ends the line, as in C.
pub(crate) fn split_args(line: &[u8]) -> Option<SmallVec<[Piece; 8]>> {
    // Reading past the end yields NUL, like the C string's terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut out = SmallVec::new();
    let mut p = 0;
    loop {
        while at(p) != 0 && is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(out);
        }
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        let mut token = Token::new(p);
        while !done {
            let c = at(p);
            if in_double {
                let hex = (c == b'\\' && at(p + 1) == b'x')
                    .then(|| Some(hex_value(at(p + 2))? * 16 + hex_value(at(p + 3))?))
                    .flatten();
                if let Some(byte) = hex {
                    token.push_byte(line, byte);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    let byte = match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    token.push_byte(line, byte);
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    token.push_source(line, p, c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    token.push_byte(line, b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    token.push_source(line, p, c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => token.push_source(line, p, c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        out.push(token.finish());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `line` and renders the result as `["a" "b"]`, or `unbalanced`; also checks that
    /// plain words stay ranges of the line (zero-copy).
    fn check(line: &[u8], expected: &str) {
        let got = match split_args(line) {
            None => "unbalanced".to_string(),
            Some(pieces) => {
                let words: Vec<String> = pieces
                    .iter()
                    .map(|p| {
                        let bytes = match p {
                            Piece::Range(s, e) => &line[*s..*e],
                            Piece::Owned(v) => &v[..],
                        };
                        format!("\"{}\"", bytes.escape_ascii())
                    })
                    .collect();
                format!("[{}]", words.join(" "))
            }
        };
        assert_eq!(got, expected, "line {:?}", line.escape_ascii().to_string());
    }

    #[test]
    fn sdssplitargs_rules() {
        check(b"", "[]");
        check(b"   \t ", "[]");
        check(b"PING", r#"["PING"]"#);
        check(b"  set  k   v ", r#"["set" "k" "v"]"#);
        check(b"a\tb", r#"["a" "b"]"#);
        check(b"a\x0bb", r#"["a\x0bb"]"#); // vertical tab does not end a word
        check(b"\x0ba", r#"["a"]"#); // but is skipped as a leading blank
        check(b"a\rb", r#"["a" "b"]"#);
        check(br#""a\x41\n""#, r#"["aA\n"]"#);
        check(br#""\x4g""#, r#"["x4g"]"#); // bad hex: `\x` is just `x`
        check(br#""\x""#, r#"["x"]"#);
        check(br#""a\"b""#, r#"["a\"b"]"#);
        check(br#""\\""#, r#"["\\"]"#);
        check(br#""\t\r\b\a\q""#, r#"["\t\r\x08\x07q"]"#);
        check(br#""hello world""#, r#"["hello world"]"#);
        check(br#""" ''"#, r#"["" ""]"#);
        check(br#"'it\'s'"#, r#"["it\'s"]"#);
        check(br#"'a\nb'"#, r#"["a\\nb"]"#); // no escapes but \' in single quotes
        check(br#"'it''s'"#, "unbalanced");
        check(br#""a"b"#, "unbalanced");
        check(br#""a""b""#, "unbalanced");
        check(br#""unterminated"#, "unbalanced");
        check(br#"'unterminated"#, "unbalanced");
        check(br#""ends with backslash\"#, "unbalanced");
        check(br#"foo"bar baz""#, r#"["foobar baz"]"#);
        check(br#"foo'bar'"#, r#"["foobar"]"#);
        check(b"\"a\"\x0bb", r#"["a" "b"]"#); // isspace after a closing quote
        check(b"a\0b c", r#"["a"]"#); // NUL ends the line, as in C
    }

    #[test]
    fn plain_words_and_plain_quotes_are_ranges() {
        let pieces = split_args(br#"SET "key" value"#).unwrap();
        assert_eq!(
            pieces.as_slice(),
            &[Piece::Range(0, 3), Piece::Range(5, 8), Piece::Range(10, 15)]
        );
        let pieces = split_args(br#"a"b""#).unwrap();
        assert_eq!(pieces.as_slice(), &[Piece::Owned(b"ab".to_vec())]);
    }
}
