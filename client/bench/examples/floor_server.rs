//! The floor: what a Redis-protocol server costs on this kernel when its user space does next to
//! nothing. One thread, one epoll instance, level-triggered, the shape of Redis's `ae` loop: read
//! every readable socket, answer each complete request with a canned reply (`SET` → `+OK`, `GET`
//! → a `--value-size`-byte bulk string, `PING` → `+PONG`), then write every connection's replies
//! before waiting again. No store, no hashing, no allocation per request.
//!
//! `scripts/bench-wire.sh floor` runs it next to redis-server and shardcache in the same rounds:
//! its requests per CPU-second bound what any server can reach here, since its CPU time is almost
//! all the kernel's TCP and wake-up work that every server pays per request.
//!
//! `--io-uring` serves the same replies through one io_uring instead (Linux): one receive in
//! flight per connection into its own buffer, one send per batch of replies, and the loop waits
//! in the ring itself (`io_uring_enter` for at least one completion, which also submits what
//! the last batch queued): the floor for a server on io_uring, with no runtime, no eventfd and
//! no epoll.
//!
//! ```text
//! cargo run --release -p shardcache-bench --example floor_server -- --port 16390
//! ```

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// TCP port on 127.0.0.1.
    #[arg(long, default_value_t = 16390)]
    port: u16,
    /// Length of the value every GET returns.
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// Serve through io_uring instead of epoll (Linux).
    #[arg(long)]
    io_uring: bool,
}

const READ_CHUNK: usize = 16 * 1024;
/// A connection whose unanswered input exceeds this is closed (no request here is that large).
const MAX_INPUT: usize = 1 << 20;

struct Conn {
    input: Vec<u8>,
    output: Vec<u8>,
    /// Registered for `EPOLLOUT` (a write was short).
    want_out: bool,
}

/// The length of the complete RESP multibulk request at the start of `buf` and its first
/// argument's first byte; `Ok(None)` when more bytes are needed, `Err` when it is not RESP.
fn scan(buf: &[u8]) -> Result<Option<(usize, u8)>, ()> {
    fn line(buf: &[u8], at: usize, tag: u8) -> Result<Option<(usize, usize)>, ()> {
        if at >= buf.len() {
            return Ok(None);
        }
        if buf[at] != tag {
            return Err(());
        }
        let mut n = 0usize;
        let mut i = at + 1;
        while i < buf.len() {
            match buf[i] {
                b'0'..=b'9' => {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(usize::from(buf[i] - b'0')))
                        .ok_or(())?
                }
                b'\r' => {
                    return if i + 1 < buf.len() {
                        if buf[i + 1] == b'\n' {
                            Ok(Some((n, i + 2)))
                        } else {
                            Err(())
                        }
                    } else {
                        Ok(None)
                    };
                }
                _ => return Err(()),
            }
            i += 1;
        }
        Ok(None)
    }
    let Some((args, mut at)) = line(buf, 0, b'*')? else {
        return Ok(None);
    };
    let mut first = 0;
    for i in 0..args {
        let Some((len, data)) = line(buf, at, b'$')? else {
            return Ok(None);
        };
        let end = data
            .checked_add(len)
            .and_then(|e| e.checked_add(2))
            .ok_or(())?;
        if end > buf.len() {
            return Ok(None);
        }
        if i == 0 && len > 0 {
            first = buf[data].to_ascii_uppercase();
        }
        at = end;
    }
    Ok(Some((at, first)))
}

/// Answers every complete request at the start of `input` (removing them) with its canned
/// reply appended to `output`. `Err` when the input is not RESP or holds over [`MAX_INPUT`]
/// bytes unanswered: the connection is to be closed.
fn answer(input: &mut Vec<u8>, output: &mut Vec<u8>, get_reply: &[u8]) -> Result<(), ()> {
    let mut at = 0;
    let result = loop {
        match scan(&input[at..]) {
            Ok(Some((used, first))) => {
                at += used;
                match first {
                    b'G' => output.extend_from_slice(get_reply),
                    b'S' => output.extend_from_slice(b"+OK\r\n"),
                    b'P' => output.extend_from_slice(b"+PONG\r\n"),
                    _ => output.extend_from_slice(b"-ERR unknown command\r\n"),
                }
            }
            Ok(None) => break Ok(()),
            Err(()) => break Err(()),
        }
    };
    input.drain(..at);
    if input.len() > MAX_INPUT {
        return Err(());
    }
    result
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    check(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }).map(|_| ())
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))?;
    listener.set_nonblocking(true)?;
    let lfd = listener.as_raw_fd();
    let mut get_reply = format!("${}\r\n", args.value_size).into_bytes();
    get_reply.resize(get_reply.len() + args.value_size, b'x');
    get_reply.extend_from_slice(b"\r\n");
    if args.io_uring {
        #[cfg(target_os = "linux")]
        return uring_loop::run(&listener, &get_reply);
        #[cfg(not(target_os = "linux"))]
        return Err(io::Error::other("--io-uring: Linux only"));
    }

    // SAFETY: plain system call.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32)?;
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut to_write: Vec<RawFd> = Vec::new();
    let mut to_close: Vec<RawFd> = Vec::new();
    loop {
        // SAFETY: `events` has room for `events.len()` entries.
        let n =
            unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as libc::c_int, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            if fd == lfd {
                while let Ok((s, _)) = listener.accept() {
                    s.set_nodelay(true)?;
                    s.set_nonblocking(true)?;
                    let fd = s.into_raw_fd();
                    epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32)?;
                    conns.insert(
                        fd,
                        Conn {
                            input: Vec::with_capacity(READ_CHUNK),
                            output: Vec::with_capacity(READ_CHUNK),
                            want_out: false,
                        },
                    );
                }
                continue;
            }
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            if ev.events & libc::EPOLLOUT as u32 != 0 && !c.output.is_empty() {
                to_write.push(fd);
            }
            if ev.events & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
                continue;
            }
            let len = c.input.len();
            c.input.resize(len + READ_CHUNK, 0);
            // SAFETY: the spare READ_CHUNK bytes after `len` are ours.
            let r = unsafe { libc::read(fd, c.input.as_mut_ptr().add(len).cast(), READ_CHUNK) };
            if r <= 0 {
                c.input.truncate(len);
                let e = io::Error::last_os_error();
                if r == 0 || e.kind() != io::ErrorKind::WouldBlock {
                    to_close.push(fd);
                }
                continue;
            }
            c.input.truncate(len + r as usize);
            if answer(&mut c.input, &mut c.output, &get_reply).is_err() {
                to_close.push(fd);
            }
            if !c.output.is_empty() {
                to_write.push(fd);
            }
        }
        // Redis's beforeSleep: every reply of this turn is written before waiting again.
        for fd in to_write.drain(..) {
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            if c.output.is_empty() {
                continue;
            }
            // SAFETY: `output` is valid for its length.
            let w = unsafe { libc::write(fd, c.output.as_ptr().cast(), c.output.len()) };
            if w < 0 {
                if io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                    to_close.push(fd);
                }
                continue;
            }
            c.output.drain(..w as usize);
            let want = !c.output.is_empty();
            if want != c.want_out {
                c.want_out = want;
                let events = if want {
                    libc::EPOLLIN | libc::EPOLLOUT
                } else {
                    libc::EPOLLIN
                };
                epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, events as u32)?;
            }
        }
        for fd in to_close.drain(..) {
            if conns.remove(&fd).is_some() {
                // SAFETY: `fd` was ours (accepted and registered) and is closed once.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// The io_uring loop of `--io-uring`.
#[cfg(target_os = "linux")]
mod uring_loop {
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{AsRawFd, RawFd};

    use io_uring::{cqueue, opcode, squeue, types, IoUring};

    use super::{answer, READ_CHUNK};

    const ACCEPT: u64 = 1;
    const RECV: u64 = 2;
    const SEND: u64 = 3;

    struct Conn {
        fd: RawFd,
        /// What the receive in flight fills (never moved while it is in flight).
        rbuf: Box<[u8]>,
        input: Vec<u8>,
        /// Replies built while a send is in flight.
        output: Vec<u8>,
        /// The send in flight (never touched until it completes) and how much has gone.
        sending: Vec<u8>,
        sent: usize,
        send_busy: bool,
        recv_busy: bool,
        /// The peer closed or a call failed: close once no send is in flight.
        closing: bool,
    }

    fn ud(slot: usize, op: u64) -> u64 {
        ((slot as u64) << 8) | op
    }

    /// Queues `entry`, submitting first when the queue is full.
    fn push(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer an entry points to (a connection's `rbuf` or `sending`) is
            // left alone until its completion is reaped.
            if unsafe { ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            ring.submit()?;
        }
    }

    fn recv(ring: &mut IoUring, slot: usize, c: &mut Conn) -> io::Result<()> {
        let e = opcode::Recv::new(types::Fd(c.fd), c.rbuf.as_mut_ptr(), c.rbuf.len() as u32)
            .build()
            .user_data(ud(slot, RECV));
        c.recv_busy = true;
        push(ring, &e)
    }

    fn send(ring: &mut IoUring, slot: usize, c: &mut Conn) -> io::Result<()> {
        let rest = &c.sending[c.sent..];
        let e = opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(ud(slot, SEND));
        c.send_busy = true;
        push(ring, &e)
    }

    /// Sends what `output` holds, unless a send is in flight (it goes after that one).
    fn flush(ring: &mut IoUring, slot: usize, c: &mut Conn) -> io::Result<()> {
        if c.send_busy || c.output.is_empty() {
            return Ok(());
        }
        std::mem::swap(&mut c.output, &mut c.sending);
        c.output.clear();
        c.sent = 0;
        send(ring, slot, c)
    }

    pub fn run(listener: &TcpListener, get_reply: &[u8]) -> io::Result<()> {
        let mut ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(1024)
            .or_else(|_| IoUring::new(1024))?;
        listener.set_nonblocking(false)?;
        let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .build()
            .user_data(ACCEPT);
        push(&mut ring, &accept)?;
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut cqes: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            cqes.clear();
            cqes.extend(
                ring.completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(ud, res, flags) in &cqes {
                let (slot, op) = ((ud >> 8) as usize, ud & 0xff);
                if op == ACCEPT {
                    if res >= 0 {
                        let one: libc::c_int = 1;
                        // SAFETY: `res` is a socket we now own; setsockopt reads `one`.
                        unsafe {
                            libc::setsockopt(
                                res,
                                libc::IPPROTO_TCP,
                                libc::TCP_NODELAY,
                                std::ptr::addr_of!(one).cast(),
                                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                            );
                        }
                        let slot = free.pop().unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        let mut c = Conn {
                            fd: res,
                            rbuf: vec![0u8; READ_CHUNK].into_boxed_slice(),
                            input: Vec::with_capacity(READ_CHUNK),
                            output: Vec::with_capacity(READ_CHUNK),
                            sending: Vec::with_capacity(READ_CHUNK),
                            sent: 0,
                            send_busy: false,
                            recv_busy: false,
                            closing: false,
                        };
                        recv(&mut ring, slot, &mut c)?;
                        conns[slot] = Some(c);
                    }
                    if !cqueue::more(flags) {
                        push(&mut ring, &accept)?;
                    }
                    continue;
                }
                let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) else {
                    continue;
                };
                if op == RECV {
                    c.recv_busy = false;
                    if res <= 0 {
                        c.closing = true;
                    } else {
                        let n = res as usize;
                        c.input.extend_from_slice(&c.rbuf[..n]);
                        if answer(&mut c.input, &mut c.output, get_reply).is_err() {
                            c.closing = true;
                        } else {
                            flush(&mut ring, slot, c)?;
                            if !c.closing {
                                recv(&mut ring, slot, c)?;
                            }
                        }
                    }
                } else if op == SEND {
                    c.send_busy = false;
                    if res <= 0 {
                        c.closing = true;
                    } else {
                        c.sent += res as usize;
                        if c.sent < c.sending.len() {
                            send(&mut ring, slot, c)?;
                        } else {
                            flush(&mut ring, slot, c)?;
                        }
                    }
                }
                // A closing connection's socket is closed once nothing is in flight on it.
                if c.closing && !c.send_busy && !c.recv_busy {
                    // SAFETY: `fd` is ours, with no operation in flight, closed once.
                    unsafe { libc::close(c.fd) };
                    conns[slot] = None;
                    free.push(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn scan_finds_whole_requests_only() {
        let get = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        assert_eq!(scan(get), Ok(Some((get.len(), b'G'))));
        for cut in 0..get.len() {
            assert_eq!(scan(&get[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(scan(b"GET key\r\n"), Err(()));
        assert_eq!(scan(b"*1\r\n$x\r\n"), Err(()));
        assert_eq!(scan(b"*1\r\n$99999999999999999999999\r\n"), Err(()));
    }
}
