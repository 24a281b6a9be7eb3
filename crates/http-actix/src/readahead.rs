//! A bounded read-ahead between the object store's stream and the client's socket.
//!
//! Without it, a proxied download reads the store only when the client's socket has room: the
//! store's connection waits while the service writes, and the service's writes wait for the
//! store's next chunk, so each side idles in turn (on a 2-core machine shared by the store,
//! the service and the client, each wait is a context switch and an idle core). With it, a
//! task of its own keeps reading the store while the response is being written, up to
//! `budget` bytes ahead; the response then takes every chunk already read at once (actix
//! fills its write buffer from the ready chunks), so the client's socket gets fewer, larger
//! writes. The task runs on the runtime of the request (actix's worker thread): no chunk
//! crosses threads.
//!
//! Memory: at most `budget` bytes are held per download (plus the one chunk the task holds
//! while it waits for room); the store's stream is not polled while the budget is used up.
//! The task ends with the stream, or as soon as the response's body is dropped (client gone).

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use storage_domain::ports::ByteStream;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    task::JoinHandle,
};

type Item = (Result<Bytes, io::Error>, Option<OwnedSemaphorePermit>);

/// `body`, read ahead by up to `budget` bytes by a task of its own; `budget == 0`: `body`
/// itself. Must be called inside a Tokio runtime.
pub(crate) fn read_ahead(body: ByteStream, budget: usize) -> ByteStream {
    if budget == 0 {
        return body;
    }
    let room = Arc::new(Semaphore::new(budget));
    let (tx, rx) = mpsc::unbounded_channel::<Item>();
    let task = tokio::spawn(fill(body, room, budget, tx));
    Box::pin(ReadAhead { rx, task })
}

/// Reads `body` into `tx`, each chunk holding its bytes of `room` until the response took it.
async fn fill(
    mut body: ByteStream,
    room: Arc<Semaphore>,
    budget: usize,
    tx: mpsc::UnboundedSender<Item>,
) {
    loop {
        // Room first: the store is not read while `budget` bytes wait for the client.
        let Ok(permit) = Arc::clone(&room).acquire_owned().await else {
            return;
        };
        let Some(item) = body.next().await else {
            return;
        };
        let failed = item.is_err();
        let permit = match &item {
            Ok(chunk) if chunk.len() > 1 => {
                // The first byte's permit is held; take the rest of the chunk's (a chunk larger
                // than the budget takes all of it).
                let more = u32::try_from(chunk.len().min(budget) - 1).unwrap_or(u32::MAX);
                match Arc::clone(&room).acquire_many_owned(more).await {
                    Ok(mut rest) => {
                        rest.merge(permit);
                        rest
                    }
                    Err(_) => return,
                }
            }
            _ => permit,
        };
        if tx.send((item, Some(permit))).is_err() || failed {
            return;
        }
    }
}

/// The response's side: yields what the task read; aborts the task when dropped.
struct ReadAhead {
    rx: mpsc::UnboundedReceiver<Item>,
    task: JoinHandle<()>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for ReadAhead {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The permit is released as the chunk is handed over (actix copies it into its write
        // buffer at once).
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|(chunk, _permit)| chunk))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream;

    use super::*;

    fn chunks(sizes: &[usize], polled: Arc<AtomicUsize>) -> ByteStream {
        let items: Vec<_> = sizes
            .iter()
            .map(|&n| Ok::<_, io::Error>(Bytes::from(vec![7u8; n])))
            .collect();
        Box::pin(stream::iter(items).inspect(move |_| {
            polled.fetch_add(1, Ordering::SeqCst);
        }))
    }

    #[tokio::test]
    async fn reads_ahead_within_its_budget_and_yields_everything_in_order() {
        let polled = Arc::new(AtomicUsize::new(0));
        let sizes = [100, 200, 300, 400, 500];
        let mut body = read_ahead(chunks(&sizes, Arc::clone(&polled)), 450);
        // Nothing taken yet: the task reads 100 + 200 (300 held), then waits for room for the
        // 300 it has read (a chunk is read before its size is known).
        tokio::task::yield_now().await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(polled.load(Ordering::SeqCst), 3, "read ahead up to the budget");
        let mut got = Vec::new();
        while let Some(chunk) = body.next().await {
            got.push(chunk.unwrap().len());
        }
        assert_eq!(got, sizes);
    }

    #[tokio::test]
    async fn a_dropped_response_stops_the_reading() {
        let polled = Arc::new(AtomicUsize::new(0));
        let endless = {
            let polled = Arc::clone(&polled);
            Box::pin(stream::repeat_with(move || {
                polled.fetch_add(1, Ordering::SeqCst);
                Ok::<_, io::Error>(Bytes::from_static(b"0123456789"))
            }))
        };
        let body = read_ahead(endless, 1000);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let before = polled.load(Ordering::SeqCst);
        assert!(before <= 101, "bounded: {before} chunks of 10 bytes");
        drop(body);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(polled.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn an_error_is_passed_on_and_ends_the_stream() {
        let items = vec![
            Ok(Bytes::from_static(b"a")),
            Err(io::Error::other("store failed")),
            Ok(Bytes::from_static(b"never")),
        ];
        let mut body = read_ahead(Box::pin(stream::iter(items)), 100);
        assert!(matches!(body.next().await, Some(Ok(_))));
        assert!(matches!(body.next().await, Some(Err(_))));
        assert!(body.next().await.is_none());
    }
}
