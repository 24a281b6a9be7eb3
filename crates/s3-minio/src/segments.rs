//! Large reads as consecutive ranged GETs, several in flight, yielded strictly in order.
//!
//! One GET stream from Garage is bound by one of its cores (its CPU-seconds per GiB equal the
//! GET's wall seconds, see `bench/results`): a read of several segments keeps up to
//! `parallel` segment GETs in flight so that the store can use more than one core.
//!
//! - The segment in front (the *current* one) streams through as its bytes arrive, unbuffered.
//! - The segments behind it (*read-ahead*) buffer their bytes, at most one segment each. Each
//!   holds a permit of the store's [`ReadAheadBudget`] (one segment's bytes) from its request to
//!   its last byte; when no permit is free the read simply has fewer segments in flight (at
//!   least the current one): it never waits for memory and never fails for it.
//! - A failure of any segment (request, status, body, a length other than asked) ends the
//!   stream with that error once the bytes before it were yielded; nothing after it is.
//! - Everything is polled from the stream itself: dropping it drops (and so cancels) every
//!   segment request in flight.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A body: the bytes of one response.
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;
/// A segment request until its response headers are checked.
pub(crate) type Opening = Pin<Box<dyn Future<Output = Result<Body, io::Error>> + Send>>;
/// Sends the GET of bytes `first..=last` (inclusive) and checks its answer.
pub(crate) type Opener = Arc<dyn Fn(u64, u64) -> Opening + Send + Sync>;

/// The memory every read of one store shares for its read-ahead segments: permits of one
/// segment each (`DOWNLOAD_READ_AHEAD_BYTES / DOWNLOAD_SEGMENT_BYTES`).
#[derive(Debug, Clone)]
pub(crate) struct ReadAheadBudget {
    permits: Arc<Semaphore>,
}

impl ReadAheadBudget {
    /// `bytes / segment` permits (none when `bytes < segment`).
    pub(crate) fn new(bytes: u64, segment: u64) -> Self {
        let permits = usize::try_from(bytes / segment.max(1))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(permits)),
        }
    }

    /// One segment's worth of read-ahead, when one is free now (never waits).
    pub(crate) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Permits free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// How a read is cut: the bytes `first..=last` of the object in segments of `segment`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Size of one segment (the last may be shorter).
    pub(crate) segment: u64,
    /// Segment requests in flight at most, the current one included (at least 1).
    pub(crate) parallel: usize,
}

/// One segment of the read.
struct Segment {
    first: u64,
    expected: u64,
    received: u64,
    state: State,
    /// Bytes received while the segment was not in front.
    buffered: VecDeque<Bytes>,
    /// The read-ahead memory this segment may use (none for a segment opened in front).
    _permit: Option<OwnedSemaphorePermit>,
}

enum State {
    Opening(Opening),
    Body(Body),
    /// Every expected byte received.
    Ended,
    /// Failed: the error is yielded when the segment comes in front.
    Failed(io::Error),
}

impl Segment {
    fn new(first: u64, last: u64, state: State, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            first,
            expected: last - first + 1,
            received: 0,
            state,
            buffered: VecDeque::new(),
            _permit: permit,
        }
    }

    /// Polls the request or the body once: `Ready(Some(bytes))` for a chunk,
    /// `Ready(None)` when the state changed (ended, failed, or headers came), `Pending`.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match &mut self.state {
            State::Opening(opening) => match opening.as_mut().poll(cx) {
                Poll::Ready(Ok(body)) => {
                    self.state = State::Body(body);
                    Poll::Ready(None)
                }
                Poll::Ready(Err(e)) => {
                    self.state = State::Failed(e);
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
            State::Body(body) => match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    self.received += bytes.len() as u64;
                    if self.received > self.expected {
                        self.state = State::Failed(self.length_error("more than"));
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(bytes))
                }
                Poll::Ready(Some(Err(e))) => {
                    self.state = State::Failed(e);
                    Poll::Ready(None)
                }
                Poll::Ready(None) => {
                    self.state = if self.received == self.expected {
                        State::Ended
                    } else {
                        State::Failed(self.length_error("only"))
                    };
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
            State::Ended | State::Failed(_) => Poll::Pending,
        }
    }

    fn length_error(&self, how: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the object store sent {how} {} bytes for the segment at byte {} ({} expected)",
                self.received, self.first, self.expected
            ),
        )
    }

    /// A read-ahead segment: takes every chunk ready now into its buffer.
    fn drive(&mut self, cx: &mut Context<'_>) {
        loop {
            match self.poll_step(cx) {
                Poll::Ready(Some(bytes)) => self.buffered.push_back(bytes),
                Poll::Ready(None) if matches!(self.state, State::Body(_)) => {}
                Poll::Ready(None) | Poll::Pending => return,
            }
        }
    }
}

/// The bytes `first..=last` of an object, from a first response already open (the segment
/// `first..=first_last`) and segment GETs sent by `open` for the rest.
pub(crate) struct Segmented {
    segments: VecDeque<Segment>,
    /// First byte of the next segment not yet requested.
    next: u64,
    last: u64,
    layout: Layout,
    budget: ReadAheadBudget,
    open: Opener,
    done: bool,
}

impl Segmented {
    /// `head` is the open body of the bytes `first..=head_last`; the read ends at `last`.
    /// `permit`, when given, is the read-ahead memory of the second segment (taken before the
    /// first request, to decide whether to cut the read at all).
    pub(crate) fn new(
        head: Body,
        (first, head_last, last): (u64, u64, u64),
        layout: Layout,
        budget: ReadAheadBudget,
        permit: Option<OwnedSemaphorePermit>,
        open: Opener,
    ) -> Self {
        let mut this = Self {
            segments: VecDeque::from([Segment::new(first, head_last, State::Body(head), None)]),
            next: head_last.saturating_add(1),
            last,
            layout,
            budget,
            open,
            done: false,
        };
        if let Some(permit) = permit {
            this.request_next(Some(permit));
        }
        this
    }

    /// Requests the next segment (none left: nothing).
    fn request_next(&mut self, permit: Option<OwnedSemaphorePermit>) {
        if !self.more_to_request() {
            return;
        }
        let first = self.next;
        let last = first
            .saturating_add(self.layout.segment.max(1) - 1)
            .min(self.last);
        // `last` is below the object's size, a u64: `last + 1` does not overflow.
        self.next = last.saturating_add(1);
        let opening = (self.open)(first, last);
        self.segments
            .push_back(Segment::new(first, last, State::Opening(opening), permit));
    }

    fn more_to_request(&self) -> bool {
        self.next <= self.last
    }

    /// Keeps up to `parallel` segments in flight: the one in front without a permit, each
    /// read-ahead one with a permit while the budget has one.
    fn fill(&mut self) {
        if self
            .segments
            .iter()
            .any(|s| matches!(s.state, State::Failed(_)))
        {
            return;
        }
        while self.more_to_request() && self.segments.len() < self.layout.parallel.max(1) {
            if self.segments.is_empty() {
                self.request_next(None);
            } else if let Some(permit) = self.budget.try_take() {
                self.request_next(Some(permit));
            } else {
                return;
            }
        }
    }
}

impl Stream for Segmented {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            this.fill();
            for segment in this.segments.iter_mut().skip(1) {
                segment.drive(cx);
            }
            let Some(front) = this.segments.front_mut() else {
                this.done = true;
                return Poll::Ready(None);
            };
            if let Some(bytes) = front.buffered.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            match front.poll_step(cx) {
                Poll::Ready(Some(bytes)) => {
                    if !bytes.is_empty() {
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                }
                Poll::Ready(None) => {}
                Poll::Pending => match std::mem::replace(&mut front.state, State::Ended) {
                    State::Failed(e) => {
                        this.done = true;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(e)));
                    }
                    State::Ended => {
                        this.segments.pop_front();
                    }
                    other => {
                        front.state = other;
                        return Poll::Pending;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Mutex, time::Duration};

    use futures_util::StreamExt;

    use super::*;

    /// An object of `size` bytes (byte i = i mod 251) served by segment GETs whose answers
    /// come after `delay(first)`; records each request.
    fn object(size: u64) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    struct Fake {
        data: Arc<Vec<u8>>,
        requests: Arc<Mutex<Vec<(u64, u64)>>>,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
        max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Fake {
        fn new(size: u64) -> Self {
            Self {
                data: Arc::new(object(size)),
                requests: Arc::default(),
                in_flight: Arc::default(),
                max_in_flight: Arc::default(),
            }
        }

        /// Serves `first..=last` in 1000-byte chunks, the whole after `delay(first)`; a segment
        /// for which `fail(first)` holds fails after its first chunk.
        fn opener(
            &self,
            delay: impl Fn(u64) -> Duration + Send + Sync + 'static,
            fail: impl Fn(u64) -> bool + Send + Sync + 'static,
        ) -> Opener {
            let data = Arc::clone(&self.data);
            let requests = Arc::clone(&self.requests);
            let in_flight = Arc::clone(&self.in_flight);
            let max_in_flight = Arc::clone(&self.max_in_flight);
            let delay = Arc::new(delay);
            let fail = Arc::new(fail);
            Arc::new(move |first, last| {
                requests.lock().unwrap().push((first, last));
                let data = Arc::clone(&data);
                let delay = Arc::clone(&delay);
                let fail = Arc::clone(&fail);
                let in_flight = Arc::clone(&in_flight);
                let max_in_flight = Arc::clone(&max_in_flight);
                Box::pin(async move {
                    let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    let guard = Decrement(in_flight);
                    tokio::time::sleep(delay(first)).await;
                    let bytes = data[first as usize..=last as usize].to_vec();
                    let mut chunks: Vec<Result<Bytes, io::Error>> = bytes
                        .chunks(1000)
                        .map(|c| Ok(Bytes::copy_from_slice(c)))
                        .collect();
                    if fail(first) {
                        chunks.truncate(1);
                        chunks.push(Err(io::Error::other(format!("segment {first} broke"))));
                    }
                    let body: Body = Box::pin(futures_util::stream::iter(chunks).chain(
                        futures_util::stream::poll_fn(move |_| {
                            let _ = &guard;
                            Poll::Ready(None)
                        }),
                    ));
                    Ok(body)
                })
            })
        }

        fn head(&self, last: u64) -> Body {
            let bytes = self.data[..=last as usize].to_vec();
            Box::pin(futures_util::stream::iter(
                bytes
                    .chunks(1000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            ))
        }
    }

    struct Decrement(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Decrement {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    async fn read_all(mut s: Segmented) -> (Vec<u8>, Option<io::Error>) {
        let mut got = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => got.extend_from_slice(&b),
                Err(e) => {
                    assert!(s.next().await.is_none(), "nothing after an error");
                    return (got, Some(e));
                }
            }
        }
        (got, None)
    }

    const SEG: u64 = 10_000;

    fn layout(parallel: usize) -> Layout {
        Layout {
            segment: SEG,
            parallel,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn segments_finishing_out_of_order_are_yielded_in_order() {
        let size = 95_000;
        let fake = Fake::new(size);
        let budget = ReadAheadBudget::new(4 * SEG, SEG);
        // Later segments answer first: segment k waits 100 ms / (k + 1).
        let open = fake.opener(
            |first| Duration::from_millis(100 / (first / SEG + 1)),
            |_| false,
        );
        let permit = budget.try_take();
        let s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, size - 1),
            layout(3),
            budget.clone(),
            permit,
            open,
        );
        let (got, err) = read_all(s).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, *fake.data, "the bytes, in order");
        let requests = fake.requests.lock().unwrap().clone();
        let expected: Vec<(u64, u64)> = (1..10)
            .map(|k| (k * SEG, ((k + 1) * SEG - 1).min(size - 1)))
            .collect();
        assert_eq!(requests, expected);
        assert_eq!(
            fake.max_in_flight.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "three segment requests in flight at most"
        );
        assert_eq!(budget.available(), 4, "every permit returned");
    }

    #[tokio::test(start_paused = true)]
    async fn a_range_in_the_middle_of_the_object_is_cut_at_its_bounds() {
        let fake = Fake::new(100_000);
        let budget = ReadAheadBudget::new(SEG, SEG);
        let open = fake.opener(|_| Duration::from_millis(1), |_| false);
        // Bytes 0..=24_999, the head being the first 10_000 of them.
        let s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, 24_999),
            layout(2),
            budget.clone(),
            budget.try_take(),
            open,
        );
        let (got, err) = read_all(s).await;
        assert!(err.is_none());
        assert_eq!(got, fake.data[..25_000]);
        assert_eq!(
            *fake.requests.lock().unwrap(),
            vec![(10_000, 19_999), (20_000, 24_999)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_budget_free_the_read_goes_one_segment_at_a_time() {
        let size = 45_000;
        let fake = Fake::new(size);
        // A budget smaller than one segment: no permit at all.
        let budget = ReadAheadBudget::new(SEG - 1, SEG);
        assert_eq!(budget.available(), 0);
        let open = fake.opener(|_| Duration::from_millis(5), |_| false);
        let s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, size - 1),
            layout(4),
            budget.clone(),
            None,
            open,
        );
        let (got, err) = read_all(s).await;
        assert!(err.is_none());
        assert_eq!(got, *fake.data);
        assert_eq!(
            fake.max_in_flight.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one segment request at a time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_read_ahead_across_reads() {
        let size = 60_000;
        let fake = Fake::new(size);
        // Two permits for three reads of parallelism 3.
        let budget = ReadAheadBudget::new(2 * SEG, SEG);
        let open = fake.opener(|_| Duration::from_millis(10), |_| false);
        let reads: Vec<_> = (0..3)
            .map(|_| {
                Segmented::new(
                    fake.head(SEG - 1),
                    (0, SEG - 1, size - 1),
                    layout(3),
                    budget.clone(),
                    budget.try_take(),
                    Arc::clone(&open),
                )
            })
            .collect();
        assert_eq!(budget.available(), 0);
        let results = futures_util::future::join_all(reads.into_iter().map(read_all)).await;
        for (got, err) in results {
            assert!(err.is_none());
            assert_eq!(got, *fake.data);
        }
        // Each read has one current segment in flight; read-ahead requests never exceed the
        // two permits.
        assert!(fake.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) <= 3 + 2);
        assert_eq!(budget.available(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_segment_ends_the_read_after_the_bytes_before_it() {
        let size = 50_000;
        let fake = Fake::new(size);
        let budget = ReadAheadBudget::new(4 * SEG, SEG);
        // Segment 3 (bytes 30_000..) fails after its first chunk, and answers first.
        let open = fake.opener(
            |first| {
                if first == 3 * SEG {
                    Duration::from_millis(1)
                } else {
                    Duration::from_millis(50)
                }
            },
            |first| first == 3 * SEG,
        );
        let s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, size - 1),
            layout(4),
            budget.clone(),
            budget.try_take(),
            open,
        );
        let (got, err) = read_all(s).await;
        let err = err.expect("the read fails");
        assert!(err.to_string().contains("segment 30000 broke"), "{err}");
        assert_eq!(
            got,
            fake.data[..3 * SEG as usize + 1000],
            "every byte before the failure, in order, and nothing after it"
        );
        assert_eq!(budget.available(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_segment_is_an_error() {
        let fake = Fake::new(30_000);
        let budget = ReadAheadBudget::new(SEG, SEG);
        let data = Arc::clone(&fake.data);
        // Answers one byte less than asked.
        let open: Opener = Arc::new(move |first, last| {
            let bytes = Bytes::copy_from_slice(&data[first as usize..last as usize]);
            Box::pin(async move {
                let body: Body = Box::pin(futures_util::stream::iter([Ok(bytes)]));
                Ok(body)
            })
        });
        let s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, 29_999),
            layout(2),
            budget.clone(),
            budget.try_take(),
            open,
        );
        let (got, err) = read_all(s).await;
        let err = err.expect("a short segment fails the read");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            got,
            fake.data[..19_999],
            "the bytes received, then the error"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_read_cancels_its_segment_requests() {
        let fake = Fake::new(50_000);
        let budget = ReadAheadBudget::new(4 * SEG, SEG);
        let open = fake.opener(|_| Duration::from_secs(3600), |_| false);
        let mut s = Segmented::new(
            fake.head(SEG - 1),
            (0, SEG - 1, 49_999),
            layout(4),
            budget.clone(),
            budget.try_take(),
            open,
        );
        // The head's 10 chunks, then the next segment's request hangs.
        for _ in 0..10 {
            assert!(s.next().await.is_some());
        }
        assert!(
            tokio::time::timeout(Duration::from_secs(1), s.next())
                .await
                .is_err()
        );
        assert_eq!(
            fake.in_flight.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "four segment requests in flight (the parallelism)"
        );
        drop(s);
        assert_eq!(fake.in_flight.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(budget.available(), 4);
    }
}
