//! A body stream that fails when the store stays silent too long.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_core::Stream;
use tokio::time::{Instant, Sleep};

type Inner = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Yields the inner stream's items; when the inner stream has been pending for `idle` while
/// being polled, yields one `TimedOut` error and ends.
///
/// Only the time spent *waiting on the store* counts: a slow consumer that polls late does not
/// trip the timeout, since the deadline is set when the inner stream first answers `Pending`.
pub(crate) struct IdleTimeout {
    inner: Inner,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
    done: bool,
}

impl IdleTimeout {
    pub(crate) fn new(inner: Inner, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            done: false,
        }
    }
}

impl Stream for IdleTimeout {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(item) => {
                this.waiting = false;
                if !matches!(item, Some(Ok(_))) {
                    this.done = true;
                }
                Poll::Ready(item)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.sleep.as_mut().reset(Instant::now() + this.idle);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("object store sent nothing for {:?}", this.idle),
                        ))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_silent_store_times_out_and_a_chatty_one_does_not() {
        // Chunks every 50 ms for 1 s with a 200 ms idle timeout: never trips.
        let chatty = futures_util::stream::unfold(0u32, |n| async move {
            if n == 20 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok(Bytes::from_static(b"x")), n + 1))
        });
        let got: Vec<_> = IdleTimeout::new(Box::pin(chatty), Duration::from_millis(200))
            .collect()
            .await;
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(Result::is_ok));

        // One chunk, then silence: one TimedOut error, then the end.
        let silent = futures_util::stream::once(async { Ok(Bytes::from_static(b"y")) })
            .chain(futures_util::stream::pending());
        let mut s = IdleTimeout::new(Box::pin(silent), Duration::from_millis(200));
        assert!(matches!(s.next().await, Some(Ok(_))));
        let err = s.next().await.and_then(Result::err).map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::TimedOut));
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_consumer_does_not_trip_it() {
        let ready = futures_util::stream::iter([Ok(Bytes::from_static(b"a")), Ok(Bytes::new())]);
        let mut s = IdleTimeout::new(Box::pin(ready), Duration::from_millis(100));
        assert!(matches!(s.next().await, Some(Ok(_))));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(matches!(s.next().await, Some(Ok(_))));
        assert!(s.next().await.is_none());
    }
}
