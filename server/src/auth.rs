//! Authentication: the `requirepass` password and its constant-time check.
//!
//! The password can change at run time (`CONFIG SET requirepass`), so it lives behind a lock;
//! whether one is set at all is mirrored in an atomic, so the dispatcher's check for a client
//! that has not authenticated reads no lock. An authenticated client costs the hot path one
//! `bool` test in `command::execute` and nothing here.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

/// Redis's reply to a command sent before `AUTH` when a password is set.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to a wrong password or a user other than `default`.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The server's password, if any (Redis's `default` user).
#[derive(Debug, Default)]
pub struct Auth {
    /// The password; `None` when clients need not authenticate.
    password: RwLock<Option<Box<[u8]>>>,
    /// `password.is_some()`, readable without the lock.
    required: AtomicBool,
}

impl Auth {
    /// A password from `--requirepass`; as in Redis, an empty one means none.
    pub fn new(password: Option<&str>) -> Auth {
        let auth = Auth::default();
        auth.set(password.map(str::as_bytes));
        auth
    }

    /// Whether clients must authenticate (a password is set).
    pub fn required(&self) -> bool {
        self.required.load(Ordering::Acquire)
    }

    /// Sets or (with `None` or an empty password) clears the password. Connections already
    /// authenticated stay so, as in Redis.
    pub fn set(&self, password: Option<&[u8]>) {
        let password = password.filter(|p| !p.is_empty());
        let mut guard = self.password.write();
        *guard = password.map(Box::from);
        self.required.store(guard.is_some(), Ordering::Release);
    }

    /// Whether `candidate` is the password (always true when none is set: Redis's `nopass`
    /// default user accepts any). Constant time in the password's content.
    pub fn check(&self, candidate: &[u8]) -> bool {
        match &*self.password.read() {
            Some(p) => constant_time_eq(p, candidate),
            None => true,
        }
    }

    /// The password as `CONFIG GET requirepass` shows it (Redis shows it too; disable `CONFIG`
    /// with `--disable-command` where that matters). Empty when none.
    pub fn config_value(&self) -> String {
        self.password
            .read()
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default()
    }

    /// Checks `AUTH [username] password` / `HELLO … AUTH username password`: only the
    /// `default` user exists (case-sensitive, as Redis's user names).
    pub fn authenticate(&self, username: Option<&[u8]>, password: &[u8]) -> bool {
        // Compare the password even for a wrong user, so the timing says nothing about which
        // of the two was wrong.
        let user_ok = matches!(username, None | Some(b"default"));
        let pass_ok = self.check(password);
        user_ok & pass_ok
    }
}

/// Compares two byte strings in time that depends only on the longer length, never on where
/// they differ: every position up to the longer length is XORed (missing bytes count as 0)
/// and the differences folded together with the length difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_eq() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"a", b""),
            (b"", b"a"),
            (b"pw", b"pw"),
            (b"pw", b"pw\0"),
            (b"pw\0", b"pw"),
            (b"secret", b"secreT"),
        ];
        for (a, b) in cases {
            assert_eq!(constant_time_eq(a, b), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn password_lifecycle() {
        let a = Auth::new(None);
        assert!(!a.required());
        assert!(a.authenticate(Some(b"default"), b"anything"));
        assert!(!a.authenticate(Some(b"bob"), b"anything"));
        let a = Auth::new(Some(""));
        assert!(!a.required());
        a.set(Some(b"pw"));
        assert!(a.required());
        assert!(a.authenticate(None, b"pw"));
        assert!(a.authenticate(Some(b"default"), b"pw"));
        assert!(!a.authenticate(Some(b"Default"), b"pw"));
        assert!(!a.authenticate(None, b"pW"));
        assert_eq!(a.config_value(), "pw");
        a.set(Some(b""));
        assert!(!a.required());
    }
}
