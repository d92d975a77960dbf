//! Redis glob matching (`stringmatchlen` with `nocase = 0`), used by KEYS and SCAN MATCH.
//!
//! A faithful port of Redis 7's matcher, including its quirks (unterminated `[` classes,
//! reversed ranges, `\` escapes) and its protections against abusive patterns (nesting
//! limit, and giving up on longer `*` matches once the tail failed everywhere), so it runs
//! in polynomial time and never panics.

/// Byte at `i`, or 0 past the end — Redis relies on the sds NUL terminator the same way.
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Whether `string` matches the Redis glob `pattern` (case-sensitive).
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    matchlen(pattern, string, &mut skip_longer, 0)
}

/// Whether `pattern` contains no glob metacharacters, so it can only match itself.
pub(crate) fn is_literal(pattern: &[u8]) -> bool {
    !pattern
        .iter()
        .any(|&c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
}

#[cfg(test)]
thread_local! {
    /// Calls of `matchlen` on this thread: the tests bound the matcher's work by it, not by time.
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn matchlen(pat: &[u8], s: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    #[cfg(test)]
    CALLS.with(|c| c.set(c.get() + 1));
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut plen) = (0usize, pat.len());
    let (mut i, mut slen) = (0usize, s.len());
    while plen > 0 && slen > 0 {
        match pat[p] {
            b'*' => {
                while plen > 0 && at(pat, p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen > 0 {
                    if matchlen(
                        &pat[p + 1..p + plen],
                        &s[i..i + slen],
                        skip_longer,
                        nesting + 1,
                    ) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    i += 1;
                    slen -= 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                i += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = at(pat, p) == b'^' && plen > 0;
                if not {
                    p += 1;
                    plen -= 1;
                }
                let c = s[i];
                let mut matched = false;
                loop {
                    if plen >= 2 && pat[p] == b'\\' {
                        p += 1;
                        plen -= 1;
                        if pat[p] == c {
                            matched = true;
                        }
                    } else if plen > 0 && pat[p] == b']' {
                        break;
                    } else if plen == 0 {
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && pat[p + 1] == b'-' {
                        let (mut start, mut end) = (pat[p], pat[p + 2]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        plen -= 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if pat[p] == c {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                i += 1;
                slen -= 1;
            }
            first => {
                let mut pc = first;
                if first == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    pc = pat[p];
                }
                if pc != s[i] {
                    return false;
                }
                i += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while plen > 0 && pat[p] == b'*' {
                p += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, string: &str, expected: bool) {
        assert_eq!(
            glob_match(pattern.as_bytes(), string.as_bytes()),
            expected,
            "pattern {pattern:?} string {string:?}"
        );
    }

    #[test]
    fn redis_cases() {
        // From the Redis KEYS documentation and util.c tests.
        check("h?llo", "hello", true);
        check("h?llo", "hallo", true);
        check("h?llo", "hllo", false);
        check("h*llo", "hllo", true);
        check("h*llo", "heeeello", true);
        check("h[ae]llo", "hello", true);
        check("h[ae]llo", "hallo", true);
        check("h[ae]llo", "hillo", false);
        check("h[^e]llo", "hallo", true);
        check("h[^e]llo", "hello", false);
        check("h[a-b]llo", "hallo", true);
        check("h[a-b]llo", "hbllo", true);
        check("h[a-b]llo", "hcllo", false);
        check("h[b-a]llo", "hallo", true); // reversed range
        check("*", "", false); // Redis special-cases a lone "*" in KEYS / SCAN instead
        check("a*", "a", true);
        check("*", "anything", true);
        check("", "", true);
        check("", "a", false);
        check("a", "", false);
        check("**", "x", true);
        check("a*", "a", true);
        check("a**", "a", true);
        check("*a", "a", true);
        check("*a", "ba", true);
        check("*a", "ab", false);
        check("h\\*llo", "h*llo", true);
        check("h\\*llo", "hello", false);
        check("h[\\]]llo", "h]llo", true);
        check("foo*bar*baz", "foo__bar__baz", true);
        check("foo*bar*baz", "foo__baz__bar", false);
        check("user:[0-9]*", "user:42", true);
        check("user:[0-9]*", "user:x42", false);
        check("?", "", false);
        check("a?", "a", false);
        check("[abc", "a", true); // unterminated class: Redis matches with what it saw
        check("[abc", "ab", false);
        check("[", "a", false);
        check("[^", "a", true);
        check("\\", "\\", true);
        check("a\\", "a\\", true);
        check("*[", "a", false);
    }

    #[test]
    fn abusive_pattern_costs_polynomial_work() {
        // 60 stars against 200 characters: naive backtracking makes C(260, 60) calls; Redis's
        // skip-longer rule gives up once a tail failed everywhere, so each star scans the
        // string at most once (at most stars x length calls).
        let p = "a*".repeat(60) + "b";
        let s = "a".repeat(200);
        CALLS.with(|c| c.set(0));
        assert!(!glob_match(p.as_bytes(), s.as_bytes()));
        let calls = CALLS.with(|c| c.get());
        assert!(calls <= 60 * 200, "{calls} calls of matchlen");
    }

    #[test]
    fn literal_detection() {
        assert!(is_literal(b"user:1"));
        assert!(!is_literal(b"user:*"));
        assert!(!is_literal(b"a\\b"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b'*'), proptest::strategy::Just(b'?'),
            proptest::strategy::Just(b'['), proptest::strategy::Just(b']'),
            proptest::strategy::Just(b'^'), proptest::strategy::Just(b'-'),
            proptest::strategy::Just(b'\\'), proptest::strategy::Just(b'a'),
            proptest::strategy::Just(b'b')], 0..12),
            s in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b'a'), proptest::strategy::Just(b'b'),
            proptest::strategy::Just(b'-'), proptest::strategy::Just(b']')], 0..12)) {
            let _ = glob_match(&p, &s);
        }

        #[test]
        fn literal_matches_itself(s in proptest::collection::vec(b'a'..=b'z', 0..20)) {
            proptest::prop_assert!(glob_match(&s, &s));
        }
    }
}
