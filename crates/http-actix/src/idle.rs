//! A request body that fails when its client sends nothing for too long
//! (`BODY_IDLE_TIMEOUT_SECONDS`).
//!
//! actix's `Payload` has no idle timeout of its own: a client that opens an upload and stops
//! sending would hold its connection, its buffers and its reservation for as long as it likes.
//! Only the time spent *waiting on the client* counts: the clock starts when the body has
//! nothing to give while the service asks for more, so a service that reads slowly (waiting for
//! the object store, for an upload buffer) never trips it.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{error::PayloadError, web::Bytes};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// Yields the body's chunks; once the body has been pending for `idle` while polled, yields one
/// `PayloadError` (an `io::ErrorKind::TimedOut`) and ends.
pub(crate) struct IdleBody<S> {
    inner: S,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
    done: bool,
}

impl<S> IdleBody<S> {
    pub(crate) fn new(inner: S, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            done: false,
        }
    }
}

/// The sentence of an idle body's error (also what the client's answer says).
pub(crate) fn idle_message(idle: Duration) -> String {
    format!(
        "the request body sent nothing for {} s: the request was cut off and nothing was kept",
        idle.as_secs()
    )
}

impl<S> Stream for IdleBody<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
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
                        Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                            io::ErrorKind::TimedOut,
                            idle_message(this.idle),
                        )))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_is_cut_and_a_trickling_one_is_not() {
        // A chunk every 50 ms with a 200 ms idle timeout: never cut.
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            if n == 20 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok(Bytes::from_static(b"x")), n + 1))
        });
        let got: Vec<_> = IdleBody::new(Box::pin(trickle), Duration::from_millis(200))
            .collect()
            .await;
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(Result::is_ok));

        // One chunk, then silence: one error after the timeout, then the end.
        let started = Instant::now();
        let silent = futures_util::stream::once(async { Ok(Bytes::from_static(b"y")) })
            .chain(futures_util::stream::pending());
        let mut body = IdleBody::new(Box::pin(silent), Duration::from_millis(200));
        assert!(matches!(body.next().await, Some(Ok(_))));
        match body.next().await {
            Some(Err(PayloadError::Io(e))) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_does_not_trip_it() {
        let ready = futures_util::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Ok(Bytes::from_static(b"b")),
        ]);
        let mut body = IdleBody::new(ready, Duration::from_millis(100));
        assert!(matches!(body.next().await, Some(Ok(_))));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(matches!(body.next().await, Some(Ok(_))));
        assert!(body.next().await.is_none());
    }
}
