//! The io_uring backend (`--io-backend io_uring`): one ring per worker thread.
//!
//! Each worker thread owns a [`Driver`] (thread-local: only that thread submits, which lets the
//! ring run with `SINGLE_ISSUER | DEFER_TASKRUN`, so the kernel finishes completions only when
//! the worker asks, in one batch). The worker's tokio runtime stays (timers, `CLIENT PAUSE`,
//! the blocking pool and `MONITOR` channels work as on epoll), but a connection is not a tokio
//! task: it is an *inline task* of the driver ([`spawn_inline`]), its future kept in its
//! socket's slot and polled by the driver task itself right after the turn that completed its
//! receive or send. That skips, per request, the runtime's wake, queue and task-poll harness;
//! anything else that wakes the connection (a timer, the blocking pool, another thread) queues
//! it for the driver (`Remote`). New sockets arrive through the driver's [`Inbox`].
//! The socket reads and writes go through the ring:
//!
//! - receive: one multishot `recv` per connection, filling buffers from the worker's
//!   provided-buffer ring. The driver copies each completion into the connection's pending
//!   input and gives the buffer back at once. The receive is armed with a total byte limit,
//!   what keeps the pending input under [`RECV_PAUSE`] (plus one buffer): the kernel ends it
//!   there, and it is re-armed once the connection has consumed some, so a client that does
//!   not read its replies is throttled by TCP as on epoll. Kernels before 6.17 refuse the
//!   limit; there each arm is a single-shot `recv` of one buffer.
//! - send: a connection's flush queues one `send` of its whole output buffer (owned by the
//!   driver until it completes) and returns at once, taking a spare buffer to build the next
//!   batch in ("write-behind"): the connection goes on reading while the kernel sends, and is
//!   not woken when the send completes. Its next flush (or shutdown) first waits for that
//!   send, so at most one send per connection is in flight and a client that does not read
//!   its replies still stops the connection (and then TCP stops the client).
//! - the driver task: every turn submits all queued entries and reaps all completions with one
//!   `io_uring_enter`, polls the connections they concern (up to `POLLS_PER_TICK`), then
//!   yields, so the runtime's other work runs between turns. With nothing to do it parks on
//!   an eventfd registered with the ring, watched by the worker's tokio reactor (with the
//!   runtime's other sources). The eventfd is muted
//!   (`IORING_CQ_EVENTFD_DISABLED`) while the driver is awake, so completions posted while it
//!   works cost no eventfd signal and no wake-up of the reactor.
//! - close: a connection that ends with a send in flight (its last replies, e.g. to a client
//!   that half-closed after its last request) leaves the send to finish; the socket is closed
//!   when it completes, or after [`LINGER`] if the peer never reads it.
//!
//! Ownership: the driver owns each socket (closed only when no operation on it is in flight),
//! each send buffer while the kernel reads it and the provided buffers; a [`UringStream`] is a
//! handle (slot index and generation) that the connection task holds; the slot holds the
//! task while it is not being polled (a task is taken out of its slot to be polled, with no
//! borrow of the driver held, since the connection calls into the driver). Dropping the
//! handle cancels what is in flight; completions for a freed slot are recognized by the
//! generation and ignored. A task that panics is dropped alone (its connection closes).

use std::alloc::Layout;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use bytes::{Buf, BytesMut};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::{debug, warn};

/// The most a connection's read takes from its pending input beyond its buffer's spare room.
const READ_CHUNK: usize = 16 * 1024;
/// Sends up to this size are write-behind (the flush returns before they complete); a larger
/// one is waited for.
const WRITE_BEHIND_MAX: usize = 64 * 1024;
/// Submission queue entries.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: every connection has a multishot receive armed, and a turn may
/// complete several sends too.
const CQ_ENTRIES: u32 = 4096;
/// Provided receive buffers per worker (a power of two) and their size: 2 MiB a worker.
const BUF_COUNT: u16 = 128;
const BUF_SIZE: usize = 16 * 1024;
/// The provided-buffer group id.
const BGID: u16 = 0;
/// Received bytes a connection may hold unconsumed (plus one buffer): its receive is armed for
/// at most what is left of this, and not re-armed until the connection has consumed some.
pub const RECV_PAUSE: usize = 128 * 1024;
/// Sockets registered with the ring as fixed files (the first this many slots): their
/// operations skip the kernel's per-operation file lookup and reference count.
const FIXED_FILES: u32 = 4096;
/// The largest single `send` (a longer buffer is sent in several).
const MAX_SEND: usize = 1 << 30;
/// How long a closed connection's last send may take before it is cancelled (and the socket
/// closed): a peer that stopped reading gets this long to drain its final replies.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Inline tasks polled per poll of the driver task; more ready ones wait for its next poll,
/// after the runtime has run its other tasks, timers and I/O.
const POLLS_PER_TICK: usize = 64;

/// `IORING_ENTER_GETEVENTS`: the enter also reaps (and runs the deferred completion work).
const ENTER_GETEVENTS: u32 = 1;

/// Operation kinds, in the low byte of an entry's user data.
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;
const OP_LINGER: u64 = 4;

/// User data: generation (24 bits) | slot index (32 bits) | operation (8 bits).
fn user_data(index: u32, gen: u32, op: u64) -> u64 {
    (u64::from(gen & 0xff_ffff) << 40) | (u64::from(index) << 8) | op
}

fn split_user_data(ud: u64) -> (u32, u32, u64) {
    ((ud >> 8) as u32, (ud >> 40) as u32, ud & 0xff)
}

thread_local! {
    /// This worker thread's driver, when it runs on io_uring.
    static DRIVER: RefCell<Option<Driver>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's driver; `None` when the thread has none (or it is being torn
/// down).
fn with_driver<R>(f: impl FnOnce(&mut Driver) -> R) -> Option<R> {
    DRIVER
        .try_with(|d| d.try_borrow_mut().ok().and_then(|mut d| d.as_mut().map(f)))
        .ok()
        .flatten()
}

/// Sets up this thread's io_uring driver and spawns its task on `rt` (the worker's runtime,
/// which must run on this thread). Called on the worker thread before it serves anything.
/// Returns the driver's [`Inbox`], through which the acceptor hands it connections.
///
/// # Errors
/// When io_uring is unavailable (an old kernel, `ENOSYS`/`EPERM` from a seccomp profile, a
/// missing feature) or `fail` is set (tests); the worker then serves its clients on epoll.
/// `recv_limit` false (tests) arms receives without their byte limit, as on kernels that
/// refuse it.
pub fn install(rt: &tokio::runtime::Runtime, fail: bool, recv_limit: bool) -> io::Result<Inbox> {
    if fail {
        return Err(io::Error::other(
            "simulated failure (--io-uring-fail-setup)",
        ));
    }
    let mut driver = Driver::new()?;
    driver.recv_limit = recv_limit;
    let eventfd = driver.eventfd.try_clone()?;
    let afd = {
        let _guard = rt.enter();
        // SAFETY: the eventfd is owned by the `EventFd` the `AsyncFd` owns; it stays open and
        // the same descriptor until the `AsyncFd` is dropped.
        unsafe { AsyncFd::register_with_interest(EventFd(eventfd), Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?
    };
    let inbox = Inbox(Arc::clone(&driver.remote));
    DRIVER.with(|d| *d.borrow_mut() = Some(driver));
    rt.spawn(drive(afd));
    Ok(inbox)
}

/// Tears down this thread's driver (after the runtime and its connections are gone).
pub fn uninstall() {
    let driver = DRIVER.try_with(|d| d.borrow_mut().take()).ok().flatten();
    drop(driver);
}

/// The eventfd the ring signals when completions wait to be reaped.
struct EventFd(OwnedFd);

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A connection future served inline by the driver task (see [`spawn_inline`]).
struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    /// Its waker, for wake-ups by anything but the ring (timers, channels, the blocking
    /// pool); made once, lent to every poll.
    waker: Waker,
}

/// Wake-ups of inline tasks by anything but the ring, possibly from other threads: queued
/// here, taken by the driver at its next turn.
#[derive(Default)]
struct Remote {
    /// (slot index, generation) of each woken task.
    queue: Mutex<Vec<(u32, u32)>>,
    /// Jobs for the driver's thread: connections handed over by the acceptor ([`Inbox`]).
    jobs: Mutex<Vec<Job>>,
    /// `queue` or `jobs` is not empty (read without the locks, every turn).
    pending: AtomicBool,
    /// The driver task's waker.
    driver: Mutex<Option<Waker>>,
}

/// Work handed to a worker's driver from another thread, run on the worker's thread.
pub type Job = Box<dyn FnOnce() + Send>;

impl Remote {
    /// Flags the driver and wakes it.
    fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        if let Some(w) = self
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

/// A worker's door for new connections: the acceptor (another thread) sends a job that opens
/// the socket on the worker and makes it an inline task; the driver task runs it at its next
/// turn. (Not a task spawned on the worker's runtime: the runtime looks at tasks spawned
/// from other threads only every few dozen of its ticks, and a driver tick polls up to
/// `POLLS_PER_TICK` connections, so under load a new connection could wait for seconds.)
#[derive(Clone)]
pub struct Inbox(Arc<Remote>);

impl Inbox {
    /// Queues `job` for the driver's thread.
    pub fn send(&self, job: Job) {
        self.0
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job);
        self.0.notify();
    }
}

/// An inline task's waker.
struct TaskWake {
    index: u32,
    gen: u32,
    remote: Arc<Remote>,
}

impl Wake for TaskWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.remote
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.index, self.gen));
        self.remote.notify();
    }
}

/// A socket's place in its driver (slot index and generation).
#[derive(Debug, Clone, Copy)]
pub struct SlotId {
    index: u32,
    gen: u32,
}

/// Serves `future`, the connection that owns the stream `id` names, as an inline task of this thread's
/// driver: the driver task polls it itself right after the turn that completed its receive
/// or send (and when anything else wakes it), instead of waking a tokio task for the
/// runtime to schedule. It is polled `unconstrained` (outside tokio's cooperative budget,
/// which is the driver task's), and a panic in it ends it alone.
///
/// # Errors
/// Gives `future` back when this thread has no driver or the stream is not its (the caller
/// then awaits it itself).
pub fn spawn_inline<F>(id: SlotId, future: F) -> Result<(), F>
where
    F: Future<Output = ()> + 'static,
{
    let SlotId { index, gen } = id;
    let mut future = Some(future);
    with_driver(|d| {
        let remote = Arc::clone(&d.remote);
        let Some(slot) = live_slot(&mut d.slots, index, gen) else {
            return;
        };
        let Some(future) = future.take() else {
            return;
        };
        slot.task = Some(Task {
            future: Box::pin(tokio::task::unconstrained(future)),
            waker: Waker::from(Arc::new(TaskWake { index, gen, remote })),
        });
        slot.inline = true;
        // Its first poll, at the driver's next turn.
        slot.wake(index, &mut d.ready, false);
        d.kicked = true;
        if let Some(w) = d.idle.take() {
            w.wake();
        }
    });
    future.map_or(Ok(()), Err)
}

/// Runs the jobs handed over since the last turn, then polls up to [`POLLS_PER_TICK`] of the
/// inline tasks made ready (by the last turn, or woken since); the others stay queued, first
/// in line. Returns how many jobs and tasks ran.
fn run_ready() -> usize {
    let Some((jobs, mut batch)) = with_driver(|d| (d.take_remote(), std::mem::take(&mut d.ready)))
    else {
        return 0;
    };
    let ran = jobs.len() + batch.len().min(POLLS_PER_TICK);
    for job in jobs {
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            warn!("opening a connection panicked; it is closed");
        }
    }
    let later = if batch.len() > POLLS_PER_TICK {
        batch.split_off(POLLS_PER_TICK)
    } else {
        Vec::new()
    };
    for &index in &batch {
        poll_task(index);
    }
    with_driver(|d| {
        if !later.is_empty() {
            // Those not polled go first, then any queued meanwhile (new connections).
            let mut queue = later;
            queue.append(&mut d.ready);
            d.ready = queue;
        } else if d.ready.is_empty() {
            // The storage back, for the next turn.
            batch.clear();
            d.ready = batch;
        }
    });
    ran
}

/// Polls slot `index`'s inline task, if it has one; puts it back unless it is finished.
fn poll_task(index: u32) {
    let task = with_driver(|d| {
        let slot = d.slots.get_mut(index as usize)?;
        slot.queued = false;
        slot.task.take().map(|t| (t, slot.gen))
    })
    .flatten();
    let Some((mut task, gen)) = task else {
        return;
    };
    let mut cx = Context::from_waker(&task.waker);
    match std::panic::catch_unwind(AssertUnwindSafe(|| task.future.as_mut().poll(&mut cx))) {
        Ok(Poll::Pending) => {
            // Back in its slot, which lives as long as the task (the task owns the stream
            // that holds it open).
            let stray = with_driver(|d| match d.slots.get_mut(index as usize) {
                Some(slot) if slot.gen == gen && slot.socket.is_some() => {
                    slot.task = Some(task);
                    None
                }
                _ => Some(task),
            })
            .flatten();
            drop_task(stray);
        }
        Ok(Poll::Ready(())) => drop_task(Some(task)),
        Err(_) => {
            warn!("a connection task panicked; its connection is closed");
            drop_task(Some(task));
        }
    }
}

/// Drops an inline task (outside any borrow of the driver: its stream's drop uses it), even
/// when its destructor panics.
fn drop_task(task: Option<Task>) {
    if let Some(task) = task {
        if std::panic::catch_unwind(AssertUnwindSafe(move || drop(task))).is_err() {
            warn!("a connection task panicked while closing");
        }
    }
}

/// Drops this thread's inline tasks (the connections still open when the worker stops),
/// before its runtime shuts down.
pub fn drop_tasks() {
    let tasks: Vec<Task> = with_driver(|d| {
        d.ready.clear();
        d.slots.iter_mut().filter_map(|s| s.task.take()).collect()
    })
    .unwrap_or_default();
    for task in tasks {
        drop_task(Some(task));
    }
}

/// Resolves after being polled twice: lets every task woken so far run before the caller goes
/// on (the runtime queues a task that wakes itself behind those already queued, with no
/// system call).
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// The driver task: one `io_uring_enter` per turn, until the worker stops.
async fn drive(afd: AsyncFd<EventFd>) {
    // Our waker, for inline tasks woken by anything but the ring.
    poll_fn(|cx| {
        with_driver(|d| {
            *d.remote
                .driver
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        });
        Poll::Ready(())
    })
    .await;
    let mut force = true;
    loop {
        let Some(reaped) = with_driver(|d| d.turn(force)) else {
            return;
        };
        let ran = run_ready();
        if reaped > 0 || ran > 0 {
            force = false;
            yield_once().await;
            continue;
        }
        // Nothing completed: park until the ring signals its eventfd or a connection queues
        // an entry. Unmute the eventfd first, then look again: work that arrived before it
        // was unmuted is seen here, work after it signals.
        let busy = with_driver(Driver::unmute).unwrap_or(false);
        if busy {
            with_driver(Driver::mute);
            force = true;
            continue;
        }
        poll_fn(|cx| {
            let kicked = with_driver(|d| {
                if d.kicked || d.has_ready() {
                    true
                } else {
                    d.idle = Some(cx.waker().clone());
                    false
                }
            })
            .unwrap_or(true);
            if kicked {
                return Poll::Ready(());
            }
            match afd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut ready)) => {
                    ready.clear_ready();
                    Poll::Ready(())
                }
                Poll::Ready(Err(e)) => {
                    warn!(error = %e, "io_uring driver: eventfd failed");
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        with_driver(|d| {
            d.idle = None;
            d.mute();
        });
        force = true;
    }
}

/// One connection's state in the driver.
struct Slot {
    /// Bumped when the slot is freed, so late completions for its previous socket are ignored.
    gen: u32,
    /// The socket; `None` for a free slot.
    socket: Option<StdTcpStream>,
    fd: RawFd,
    /// The socket is the ring's fixed file at the slot's index.
    fixed: bool,
    /// Received and not yet read by the connection.
    pending: BytesMut,
    /// The multishot receive is in flight.
    recv_armed: bool,
    /// It was armed with a total byte limit.
    recv_limited: bool,
    /// A cancel of the receive has been queued (the connection closed).
    recv_cancelling: bool,
    /// The peer closed or the socket failed (`error`).
    eof: bool,
    error: Option<i32>,
    /// The task that last waited for input. Kept after a wake-up (the same task waits
    /// again, so the next wait costs no waker clone); a stale one costs at most a spurious
    /// poll.
    reader: Option<Waker>,
    /// The buffer being sent and how much of it has gone.
    send: Option<BytesMut>,
    send_off: usize,
    /// A finished send's buffer and result, for the connection's next flush.
    sent: Option<(BytesMut, io::Result<()>)>,
    /// The task that last waited for a send (kept, as `reader`), and whether it is waiting
    /// now (a finished send wakes no one otherwise: the connection went on without it).
    writer: Option<Waker>,
    writer_waiting: bool,
    /// The connection dropped its handle: free once nothing is in flight.
    closed: bool,
    /// The closed connection's last send outlived [`LINGER`] and was cancelled: what remains
    /// of it is not sent (until then, a short send is continued, closed or not).
    given_up: bool,
    /// The connection is an inline task of the driver (see [`spawn_inline`]): its completions
    /// queue it in [`Driver::ready`] instead of waking a waker.
    inline: bool,
    /// The inline task, while it is not being polled.
    task: Option<Task>,
    /// It is in [`Driver::ready`].
    queued: bool,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            gen: 0,
            socket: None,
            fd: -1,
            fixed: false,
            pending: BytesMut::new(),
            recv_armed: false,
            recv_limited: false,
            recv_cancelling: false,
            eof: false,
            error: None,
            reader: None,
            send: None,
            send_off: 0,
            sent: None,
            writer: None,
            writer_waiting: false,
            closed: false,
            given_up: false,
            inline: false,
            task: None,
            queued: false,
        }
    }

    /// Wakes the connection waiting on slot `index` (its reader, or its `writer`): an inline
    /// task is queued in `ready` (once), another one's waker is woken.
    fn wake(&mut self, index: u32, ready: &mut Vec<u32>, writer: bool) {
        if self.inline {
            if !self.queued {
                self.queued = true;
                ready.push(index);
            }
        } else if let Some(w) = if writer { &self.writer } else { &self.reader } {
            w.wake_by_ref();
        }
    }
}

/// The provided-buffer ring: `BUF_COUNT` buffers the kernel receives into.
struct BufRing {
    /// The ring of `io_uring_buf` entries (page-aligned, shared with the kernel).
    entries: *mut types::BufRingEntry,
    entries_layout: Layout,
    /// The buffers, `BUF_COUNT` × `BUF_SIZE` bytes.
    mem: *mut u8,
    mem_layout: Layout,
    /// The tail as we advance it; published to the kernel by [`BufRing::publish`].
    tail: u16,
}

impl BufRing {
    fn new() -> io::Result<BufRing> {
        let entries_layout = Layout::from_size_align(
            usize::from(BUF_COUNT) * std::mem::size_of::<types::BufRingEntry>(),
            4096,
        )
        .map_err(io::Error::other)?;
        let mem_layout = Layout::from_size_align(usize::from(BUF_COUNT) * BUF_SIZE, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let entries =
            unsafe { std::alloc::alloc_zeroed(entries_layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // SAFETY: as above.
        let mem = unsafe { std::alloc::alloc(mem_layout) };
        if mem.is_null() {
            // SAFETY: allocated above with this layout.
            unsafe { std::alloc::dealloc(entries.cast(), entries_layout) };
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // Touch the buffers now: they are the backend's fixed memory (in RSS from the start,
        // not growing later as receives first reach each one).
        // SAFETY: `mem` is `mem_layout.size()` bytes, just allocated.
        unsafe { std::ptr::write_bytes(mem, 0, mem_layout.size()) };
        let mut ring = BufRing {
            entries,
            entries_layout,
            mem,
            mem_layout,
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            ring.give_back(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Queues buffer `bid` for the kernel again (visible after [`BufRing::publish`]).
    fn give_back(&mut self, bid: u16) {
        if bid >= BUF_COUNT {
            return;
        }
        let at = usize::from(self.tail & (BUF_COUNT - 1));
        // SAFETY: `at` < BUF_COUNT entries; the kernel reads only entries before the published
        // tail, and this one is past it. Writing addr/len/bid leaves entry 0's `resv` (the
        // shared tail) alone.
        unsafe {
            let e = &mut *self.entries.add(at);
            e.set_addr(self.mem.add(usize::from(bid) * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the tail: the buffers given back become the kernel's.
    fn publish(&self) {
        // SAFETY: the tail field lies in the first entry, which lives as long as `self`; the
        // kernel reads it concurrently, hence the atomic release store.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`, which the kernel has filled and handed to us.
    fn data(&self, bid: u16, len: usize) -> &[u8] {
        if bid >= BUF_COUNT {
            return &[];
        }
        // SAFETY: buffer `bid` is ours until given back; `len` ≤ BUF_SIZE is checked.
        unsafe {
            std::slice::from_raw_parts(self.mem.add(usize::from(bid) * BUF_SIZE), len.min(BUF_SIZE))
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring is unregistered first (see
        // `Driver::drop`), so the kernel no longer writes to them.
        unsafe {
            std::alloc::dealloc(self.entries.cast(), self.entries_layout);
            std::alloc::dealloc(self.mem, self.mem_layout);
        }
    }
}

/// A worker thread's ring and the state of its connections.
pub struct Driver {
    ring: IoUring,
    bufs: BufRing,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slots whose multishot receive ended and must be re-armed after this reap.
    rearm: Vec<u32>,
    /// Completions copied out of the queue, to handle with `&mut self`.
    cqes: Vec<(u64, i32, u32)>,
    /// The ring signals this when completions wait (watched by the driver task).
    eventfd: OwnedFd,
    /// A connection queued an entry since the last turn.
    kicked: bool,
    /// The parked driver task.
    idle: Option<Waker>,
    /// A sparse fixed-file table of [`FIXED_FILES`] entries is registered.
    fixed_files: bool,
    /// [`LINGER`] for the kernel, which reads it when the timeout entry is submitted (boxed:
    /// its address must not change while an entry points to it).
    linger: Box<types::Timespec>,
    /// Receives are armed with a total byte limit (cleared when the kernel refuses one).
    recv_limit: bool,
    /// Slots whose inline task is to be polled (each at most once: [`Slot::queued`]).
    ready: Vec<u32>,
    /// Wake-ups of inline tasks by anything but the ring.
    remote: Arc<Remote>,
}

impl Driver {
    fn new() -> io::Result<Driver> {
        // SINGLE_ISSUER + DEFER_TASKRUN (6.1+): completions are finished in our own enter,
        // in one batch, never by interrupting the worker. Older kernels: plain ring.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .build(SQ_ENTRIES)
            })?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [
            (opcode::RecvMulti::CODE, "recv"),
            (opcode::Send::CODE, "send"),
            (opcode::AsyncCancel::CODE, "async cancel"),
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::other(format!(
                    "the kernel's io_uring lacks {name}"
                )));
            }
        }
        let bufs = BufRing::new()?;
        // SAFETY: the entries stay allocated until after the ring is unregistered (Drop).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries as u64,
                BUF_COUNT,
                BGID,
                0,
            )?;
        }
        // SAFETY: eventfd(2) returns a new descriptor or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        let fixed_files = ring.submitter().register_files_sparse(FIXED_FILES).is_ok();
        Ok(Driver {
            ring,
            bufs,
            slots: Vec::new(),
            free: Vec::new(),
            rearm: Vec::new(),
            cqes: Vec::with_capacity(256),
            eventfd,
            kicked: false,
            idle: None,
            fixed_files,
            recv_limit: true,
            ready: Vec::new(),
            remote: Arc::new(Remote::default()),
            linger: Box::new(
                types::Timespec::new()
                    .sec(LINGER.as_secs())
                    .nsec(LINGER.subsec_nanos()),
            ),
        })
    }

    /// Queues the cancellation of slot `index`'s operation `op` (generation `gen`).
    fn cancel(&mut self, index: u32, gen: u32, op: u64) {
        let entry = opcode::AsyncCancel::new(user_data(index, gen, op))
            .build()
            .user_data(user_data(index, gen, OP_CANCEL));
        self.push(&entry);
    }

    /// Mutes the ring's eventfd: the driver is awake and reaps by itself.
    fn mute(&mut self) {
        self.ring.completion().disable_eventfd();
    }

    /// Unmutes the eventfd before the driver parks. Returns whether there is work already
    /// (completions, deferred completion work, queued entries, a kick), in which case the
    /// driver must not park.
    fn unmute(&mut self) -> bool {
        self.ring.completion().enable_eventfd();
        let (queued, taskrun, overflow) = {
            let sq = self.ring.submission();
            (!sq.is_empty(), sq.taskrun(), sq.cq_overflow())
        };
        queued
            || taskrun
            || overflow
            || self.kicked
            || self.has_ready()
            || !self.ring.completion().is_empty()
    }

    /// Inline tasks wait to be polled (queued by the ring, or woken from elsewhere).
    fn has_ready(&self) -> bool {
        !self.ready.is_empty() || self.remote.pending.load(Ordering::Acquire)
    }

    /// Queues the inline tasks woken from elsewhere since the last look; returns the jobs
    /// handed over.
    fn take_remote(&mut self) -> Vec<Job> {
        if !self.remote.pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        let woken = std::mem::take(
            &mut *self
                .remote
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (index, gen) in woken {
            if let Some(slot) = live_slot(&mut self.slots, index, gen) {
                slot.wake(index, &mut self.ready, false);
            }
        }
        std::mem::take(
            &mut *self
                .remote
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Queues `entry`, submitting first when the queue is full.
    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to is owned by the driver (a slot's send
            // buffer, the provided buffers) until its completion is reaped.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                break;
            }
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                    warn!(error = %e, "io_uring submit failed");
                    return;
                }
            }
        }
        self.kicked = true;
        if let Some(w) = self.idle.take() {
            w.wake();
        }
    }

    /// One turn: submit what is queued and reap every completion (one `io_uring_enter`
    /// when there is anything to submit or finish). Returns the completions handled.
    fn turn(&mut self, force: bool) -> usize {
        self.kicked = false;
        let (to_submit, taskrun, overflow) = {
            let sq = self.ring.submission();
            (sq.len(), sq.taskrun(), sq.cq_overflow())
        };
        if force || to_submit > 0 || taskrun || overflow {
            // SAFETY: no argument is passed.
            let r = unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    to_submit as u32,
                    0,
                    ENTER_GETEVENTS,
                    None,
                )
            };
            if let Err(e) = r {
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) {
                    warn!(error = %e, "io_uring_enter failed");
                }
            }
        }
        let mut handled = 0;
        loop {
            self.cqes.clear();
            self.cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            if self.cqes.is_empty() {
                break;
            }
            handled += self.cqes.len();
            let cqes = std::mem::take(&mut self.cqes);
            for &(ud, res, flags) in &cqes {
                let (index, gen, op) = split_user_data(ud);
                match op {
                    OP_RECV => self.on_recv(index, gen, res, flags),
                    OP_SEND => self.on_send(index, gen, res),
                    OP_LINGER => self.on_linger(index, gen),
                    _ => {}
                }
            }
            self.cqes = cqes;
        }
        if handled > 0 {
            self.bufs.publish();
            let rearm = std::mem::take(&mut self.rearm);
            for &index in &rearm {
                self.arm(index);
            }
            self.rearm = rearm;
            self.rearm.clear();
        }
        handled
    }

    /// The live slot `index` of generation `gen`.
    fn slot(&mut self, index: u32, gen: u32) -> Option<&mut Slot> {
        live_slot(&mut self.slots, index, gen)
    }

    fn on_recv(&mut self, index: u32, gen: u32, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let data_len = usize::try_from(res).unwrap_or(0);
        let Some(slot) = live_slot(&mut self.slots, index, gen) else {
            if let Some(bid) = bid {
                self.bufs.give_back(bid);
            }
            return;
        };
        if let Some(bid) = bid {
            if !slot.closed && data_len > 0 {
                slot.pending
                    .extend_from_slice(self.bufs.data(bid, data_len));
            }
            self.bufs.give_back(bid);
        }
        if !more {
            slot.recv_armed = false;
            slot.recv_cancelling = false;
        }
        let mut wake = false;
        let mut limit_refused = false;
        match res {
            n if n > 0 => wake = true,
            0 => {
                slot.eof = true;
                wake = true;
            }
            e if -e == libc::ECANCELED || -e == libc::ENOBUFS => {}
            e if -e == libc::EINVAL && slot.recv_limited => limit_refused = true,
            e => {
                slot.eof = true;
                slot.error = Some(-e);
                wake = true;
            }
        }
        if wake {
            slot.wake(index, &mut self.ready, false);
        }
        let pause = slot.pending.len() >= RECV_PAUSE;
        if limit_refused && self.recv_limit {
            debug!("io_uring: the kernel refuses a receive's byte limit; one buffer per receive");
            self.recv_limit = false;
        }
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.closed {
            self.try_free(index);
        } else if !more && !slot.eof && !pause {
            self.rearm.push(index);
        }
    }

    fn on_send(&mut self, index: u32, gen: u32, res: i32) {
        let Some(slot) = live_slot(&mut self.slots, index, gen) else {
            return;
        };
        let Some(buf) = slot.send.as_ref() else {
            return;
        };
        let result = match res {
            n if n > 0 => {
                slot.send_off += n as usize;
                if slot.send_off < buf.len() {
                    if !slot.given_up {
                        let entry = send_entry(slot, index);
                        self.push(&entry);
                        return;
                    }
                    Err(io::ErrorKind::BrokenPipe.into())
                } else {
                    Ok(())
                }
            }
            0 => Err(io::ErrorKind::WriteZero.into()),
            e if (-e == libc::EINTR || -e == libc::EAGAIN) && !slot.given_up => {
                let entry = send_entry(slot, index);
                self.push(&entry);
                return;
            }
            e => Err(io::Error::from_raw_os_error(-e)),
        };
        let buf = slot.send.take().unwrap_or_default();
        slot.send_off = 0;
        if slot.closed {
            self.try_free(index);
            return;
        }
        slot.sent = Some((buf, result));
        if slot.writer_waiting {
            slot.writer_waiting = false;
            slot.wake(index, &mut self.ready, true);
        }
    }

    /// A closed connection's send outlived [`LINGER`]: cancel it (its completion frees the
    /// slot and closes the socket).
    fn on_linger(&mut self, index: u32, gen: u32) {
        let Some(slot) = self.slot(index, gen) else {
            return;
        };
        if slot.closed && slot.send.is_some() {
            slot.given_up = true;
            let gen = slot.gen;
            self.cancel(index, gen, OP_SEND);
        }
    }

    /// Arms slot `index`'s multishot receive, unless it is armed, closed, at the end of its
    /// stream or holding [`RECV_PAUSE`] bytes.
    fn arm(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.socket.is_none()
            || slot.closed
            || slot.recv_armed
            || slot.eof
            || slot.pending.len() >= RECV_PAUSE
        {
            return;
        }
        slot.recv_armed = true;
        slot.recv_limited = self.recv_limit;
        let entry = if self.recv_limit {
            // The receive ends by itself once the pending input could reach RECV_PAUSE (plus
            // at most one buffer). Cancelling it there instead is too late: in one turn the
            // kernel completes many buffers' worth first (1 MiB pending was seen).
            let room = (RECV_PAUSE - slot.pending.len()) as u32;
            let entry = if slot.fixed {
                opcode::RecvMulti::new(types::Fixed(index), BGID).build()
            } else {
                opcode::RecvMulti::new(types::Fd(slot.fd), BGID).build()
            };
            with_total_limit(entry, room)
        } else {
            // Kernels without the limit: one buffer per receive, re-armed as above.
            let len = BUF_SIZE as u32;
            let entry = if slot.fixed {
                opcode::Recv::new(types::Fixed(index), std::ptr::null_mut(), len)
            } else {
                opcode::Recv::new(types::Fd(slot.fd), std::ptr::null_mut(), len)
            };
            entry
                .buf_group(BGID)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        };
        let entry = entry.user_data(user_data(index, slot.gen, OP_RECV));
        self.push(&entry);
    }

    /// Takes a socket in: a slot, its receive armed.
    fn open(&mut self, socket: StdTcpStream) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::empty());
                (self.slots.len() - 1) as u32
            }
        };
        let fd = socket.as_raw_fd();
        let fixed = self.fixed_files
            && index < FIXED_FILES
            && self
                .ring
                .submitter()
                .register_files_update(index, &[fd])
                .is_ok();
        let slot = &mut self.slots[index as usize];
        slot.fd = fd;
        slot.fixed = fixed;
        slot.socket = Some(socket);
        let gen = slot.gen;
        self.arm(index);
        (index, gen)
    }

    /// The connection is gone: cancel what is in flight; free the slot once nothing is.
    fn close(&mut self, index: u32, gen: u32) {
        let Some(slot) = self.slot(index, gen) else {
            return;
        };
        slot.closed = true;
        slot.reader = None;
        slot.writer = None;
        slot.writer_waiting = false;
        slot.sent = None;
        let gen = slot.gen;
        let sending = slot.send.is_some();
        if slot.recv_armed && !slot.recv_cancelling {
            slot.recv_cancelling = true;
            self.cancel(index, gen, OP_RECV);
        }
        if sending {
            // The connection's last replies are still going out: let them, for LINGER.
            let timeout = opcode::Timeout::new(&*self.linger)
                .build()
                .user_data(user_data(index, gen, OP_LINGER));
            self.push(&timeout);
        }
        self.try_free(index);
    }

    /// Frees a closed slot with nothing in flight: closes its socket.
    fn try_free(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if !slot.closed || slot.recv_armed || slot.send.is_some() || slot.socket.is_none() {
            return;
        }
        let gen = slot.gen.wrapping_add(1);
        let fixed = slot.fixed;
        *slot = Slot::empty();
        slot.gen = gen;
        if fixed {
            // The table's reference would keep the socket open after ours is closed.
            let _ = self.ring.submitter().register_files_update(index, &[-1]);
        }
        self.free.push(index);
    }

    fn poll_read(
        &mut self,
        index: u32,
        gen: u32,
        buf: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let Some(slot) = self.slot(index, gen) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if !slot.pending.is_empty() {
            // Like a `read` into `buf`'s spare capacity (at least `READ_CHUNK`): the
            // connection's input grows as on epoll, not by what piled up here (growing it by
            // up to `RECV_PAUSE` per read churned large buffers through the allocator). A
            // small batch into an empty input is handed over whole, without a copy.
            let room = (buf.capacity() - buf.len()).max(READ_CHUNK);
            let n = slot.pending.len().min(room);
            if buf.is_empty() && n == slot.pending.len() && slot.pending.capacity() <= room {
                std::mem::swap(buf, &mut slot.pending);
            } else {
                buf.extend_from_slice(&slot.pending[..n]);
                slot.pending.advance(n);
            }
            if slot.pending.is_empty() && slot.pending.capacity() > super::SHRINK_ABOVE {
                slot.pending = BytesMut::new();
            }
            self.arm(index);
            return Poll::Ready(Ok(n));
        }
        if slot.eof {
            return Poll::Ready(match slot.error {
                Some(e) => Err(io::Error::from_raw_os_error(e)),
                None => Ok(0),
            });
        }
        match &slot.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.reader = Some(cx.waker().clone()),
        }
        self.arm(index);
        Poll::Pending
    }

    fn start_send(&mut self, index: u32, gen: u32, buf: &mut BytesMut) -> io::Result<()> {
        let Some(slot) = self.slot(index, gen) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if slot.send.is_some() {
            return Err(io::Error::other("a write is already in flight"));
        }
        slot.sent = None;
        slot.send = Some(std::mem::take(buf));
        slot.send_off = 0;
        let entry = send_entry(slot, index);
        self.push(&entry);
        Ok(())
    }

    /// The buffer and result of the connection's send, once it has completed.
    fn poll_sent(
        &mut self,
        index: u32,
        gen: u32,
        cx: &mut Context<'_>,
    ) -> Poll<(BytesMut, io::Result<()>)> {
        let Some(slot) = self.slot(index, gen) else {
            return Poll::Ready((BytesMut::new(), Err(io::ErrorKind::NotConnected.into())));
        };
        match slot.sent.take() {
            Some(done) => {
                slot.writer_waiting = false;
                Poll::Ready(done)
            }
            None => {
                match &slot.writer {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.writer = Some(cx.waker().clone()),
                }
                slot.writer_waiting = true;
                Poll::Pending
            }
        }
    }
}

/// Slot `index` of `slots` if it is live and of generation `gen`.
fn live_slot(slots: &mut [Slot], index: u32, gen: u32) -> Option<&mut Slot> {
    slots
        .get_mut(index as usize)
        .filter(|s| s.socket.is_some() && (s.gen & 0xff_ffff) == (gen & 0xff_ffff))
}

/// `entry`, a multishot `recv`, with a total byte limit: the kernel ends the receive (a
/// completion without `IORING_CQE_F_MORE`) once it has received `limit` bytes, overshooting by
/// at most one provided buffer. The limit is `sqe->optlen` (Linux 6.17+; older kernels read the
/// field as `file_index` and refuse the entry with `EINVAL`); io-uring 0.7's builder has no
/// field for it.
fn with_total_limit(entry: squeue::Entry, limit: u32) -> squeue::Entry {
    /// Offset of `optlen` in `struct io_uring_sqe` (the kernel's ABI).
    const OPTLEN: usize = 44;
    const SQE: usize = 64;
    const _: () = assert!(std::mem::size_of::<squeue::Entry>() == SQE);
    // SAFETY: `Entry` is `#[repr(C)]` around the kernel's 64-byte `struct io_uring_sqe`, made
    // of integers and unions of integers with no padding, so every byte is initialized and any
    // bytes are a valid value; the size is checked above.
    let mut raw: [u8; SQE] = unsafe { std::mem::transmute(entry) };
    raw[OPTLEN..OPTLEN + 4].copy_from_slice(&limit.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; SQE], squeue::Entry>(raw) }
}

/// The `send` of what remains of `slot`'s buffer.
fn send_entry(slot: &Slot, index: u32) -> squeue::Entry {
    let (ptr, len) = match slot.send.as_ref() {
        Some(b) => {
            let rest = &b[slot.send_off.min(b.len())..];
            (rest.as_ptr(), rest.len().min(MAX_SEND))
        }
        None => (std::ptr::null(), 0),
    };
    let entry = if slot.fixed {
        opcode::Send::new(types::Fixed(index), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    } else {
        opcode::Send::new(types::Fd(slot.fd), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    };
    entry.user_data(user_data(index, slot.gen, OP_SEND))
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Stop the kernel from filling provided buffers before they are freed.
        if let Err(e) = self.ring.submitter().unregister_buf_ring(BGID) {
            debug!(error = %e, "io_uring: unregistering the buffer ring failed");
        }
        // A send still in flight when the worker stops (its client past the shutdown
        // deadline) keeps its buffer: the ring's teardown may finish after this returns. The
        // worker is stopping with the process, so this is bounded by one buffer per client.
        for slot in &mut self.slots {
            if let Some(buf) = slot.send.take() {
                std::mem::forget(buf);
            }
        }
    }
}

/// A client socket served by this worker's io_uring driver.
pub struct UringStream {
    index: u32,
    gen: u32,
    fd: RawFd,
    local: Option<SocketAddr>,
    /// A send of ours is in flight (or finished and not yet collected).
    in_flight: bool,
    /// The buffer of the last completed send, emptied: the next batch is built in it.
    spare: BytesMut,
}

impl UringStream {
    /// Hands `socket` to this thread's driver and arms its receive.
    ///
    /// # Errors
    /// When this thread has no driver, or the socket cannot be switched to blocking mode
    /// (io_uring then waits for the socket itself, where a non-blocking one could fail with
    /// `EAGAIN`).
    pub fn open(socket: StdTcpStream) -> io::Result<UringStream> {
        socket.set_nonblocking(false)?;
        let fd = socket.as_raw_fd();
        let local = socket.local_addr().ok();
        let (index, gen) = with_driver(|d| d.open(socket))
            .ok_or_else(|| io::Error::other("this thread has no io_uring driver"))?;
        Ok(UringStream {
            index,
            gen,
            fd,
            local,
            in_flight: false,
            spare: BytesMut::new(),
        })
    }

    /// Its place in the driver.
    pub fn id(&self) -> SlotId {
        SlotId {
            index: self.index,
            gen: self.gen,
        }
    }

    /// See [`super::Stream::read_buf`].
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let (index, gen) = (self.index, self.gen);
        poll_fn(|cx| {
            with_driver(|d| d.poll_read(index, gen, buf, cx))
                .unwrap_or_else(|| Poll::Ready(Err(io::ErrorKind::NotConnected.into())))
        })
        .await
    }

    /// See [`super::Stream::write_buf`]. Write-behind: waits for the previous send, queues
    /// this one and returns with `buf` replaced by an empty buffer (the previous send's); an
    /// error of this send is returned by the next write or [`UringStream::drain`].
    pub async fn write_buf(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.drain().await?;
        let (index, gen) = (self.index, self.gen);
        let len = buf.len();
        with_driver(|d| d.start_send(index, gen, buf))
            .unwrap_or_else(|| Err(io::ErrorKind::NotConnected.into()))?;
        self.in_flight = true;
        *buf = std::mem::take(&mut self.spare);
        if len > WRITE_BEHIND_MAX {
            // A large send is waited for: the connection would otherwise build a second large
            // buffer while the first is still in flight (twice the memory of epoll for a
            // client that reads slowly), and the system call is nothing next to its copy.
            self.drain().await?;
        }
        Ok(())
    }

    /// Waits until the last send has completed; returns its result.
    ///
    /// # Errors
    /// The send's.
    pub async fn drain(&mut self) -> io::Result<()> {
        if !self.in_flight {
            return Ok(());
        }
        let (index, gen) = (self.index, self.gen);
        let (mut buf, result) = poll_fn(|cx| {
            with_driver(|d| d.poll_sent(index, gen, cx)).unwrap_or_else(|| {
                Poll::Ready((BytesMut::new(), Err(io::ErrorKind::NotConnected.into())))
            })
        })
        .await;
        self.in_flight = false;
        buf.clear();
        if buf.capacity() <= super::SHRINK_ABOVE {
            self.spare = buf;
        }
        result
    }

    /// Shuts the socket for writing, once the last send has completed (so no reply is cut).
    ///
    /// # Errors
    /// The last send's, or shutdown(2)'s.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.drain().await?;
        // SAFETY: `fd` stays open while this handle lives (the driver closes it after the
        // handle is dropped).
        if unsafe { libc::shutdown(self.fd, libc::SHUT_WR) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The socket's local address.
    ///
    /// # Errors
    /// When the OS could not report it when the connection was opened.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local
            .ok_or_else(|| io::Error::other("local address unknown"))
    }
}

impl AsRawFd for UringStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Drop for UringStream {
    fn drop(&mut self) {
        let (index, gen) = (self.index, self.gen);
        with_driver(|d| d.close(index, gen));
    }
}
