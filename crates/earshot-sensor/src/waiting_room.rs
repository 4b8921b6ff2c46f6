//! A waiting room for connections that have not yet said who they are.
//!
//! A TCP connection costs the sensor a file descriptor and a task from the moment it is
//! accepted, long before its request (and its token) can be read. Giving such connections a
//! fixed number of seats, and making the newest arrival push out the one that has waited longest,
//! means idle or trickling clients can never hold the door shut: a client that sends its request
//! promptly always gets in, however many silent ones are queued, and the silent ones cost at most
//! the room's size.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Seats for connections still reading their first request; see the module documentation.
#[derive(Debug)]
pub(crate) struct WaitingRoom {
    capacity: usize,
    seats: Mutex<Seats>,
}

#[derive(Debug, Default)]
struct Seats {
    next_id: u64,
    /// By arrival: the first entry has waited longest. Its sender tells the connection to leave.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

/// One connection's place in a [`WaitingRoom`]; leaving (dropping it) frees the seat.
#[derive(Debug)]
pub(crate) struct Seat {
    id: u64,
    room: Arc<WaitingRoom>,
    told_to_leave: oneshot::Receiver<()>,
}

impl WaitingRoom {
    /// A room of `capacity` seats (at least one).
    pub fn new(capacity: usize) -> Arc<WaitingRoom> {
        Arc::new(WaitingRoom {
            capacity: capacity.max(1),
            seats: Mutex::new(Seats::default()),
        })
    }

    /// Seats a new arrival. When the room is full, the connection that has waited longest is
    /// told to leave, so entering never fails and never waits. Also returns how many were told
    /// to leave (0 or 1), for the caller to count.
    pub fn enter(self: &Arc<Self>) -> (Seat, u64) {
        let (tell, told_to_leave) = oneshot::channel();
        let mut seats = self.lock();
        let mut evicted = 0;
        while seats.waiting.len() >= self.capacity {
            let Some((_, oldest)) = seats.waiting.pop_first() else {
                break;
            };
            // The connection may be finishing at this very moment; then there is no one to tell.
            let _ = oldest.send(());
            evicted += 1;
        }
        let id = seats.next_id;
        seats.next_id += 1;
        seats.waiting.insert(id, tell);
        let seat = Seat {
            id,
            room: self.clone(),
            told_to_leave,
        };
        (seat, evicted)
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Every change under the lock is one insert or removal, so a panic elsewhere cannot leave
    /// it half-done: a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Seats> {
        self.seats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Seat {
    /// Resolves when the room needs this seat for a newer connection. Cancel-safe: use it in a
    /// `select!` against the connection's read.
    pub async fn told_to_leave(&mut self) {
        // An error means the sender was dropped, which only eviction does while the seat lives.
        let _ = (&mut self.told_to_leave).await;
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.room.lock().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn resolved(seat: &mut Seat) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let fut = pin!(seat.told_to_leave());
        matches!(fut.poll(&mut cx), Poll::Ready(()))
    }

    #[test]
    fn the_longest_waiting_connection_makes_room() {
        let room = WaitingRoom::new(2);
        let (mut a, _) = room.enter();
        let (mut b, _) = room.enter();
        assert_eq!(room.len(), 2);
        assert!(!resolved(&mut a) && !resolved(&mut b));
        let (mut c, evicted) = room.enter();
        assert_eq!(evicted, 1);
        assert!(resolved(&mut a), "the oldest is told to leave");
        assert!(!resolved(&mut b) && !resolved(&mut c));
        assert_eq!(room.len(), 2);
        // An evicted seat dropped later does not free anyone else's seat.
        drop(a);
        assert_eq!(room.len(), 2);
        drop(b);
        assert_eq!(room.len(), 1);
        let (mut d, evicted) = room.enter();
        assert_eq!(evicted, 0);
        assert!(!resolved(&mut c) && !resolved(&mut d));
        assert_eq!(room.len(), 2);
    }

    #[test]
    fn leaving_frees_the_seat() {
        let room = WaitingRoom::new(1);
        drop(room.enter());
        assert_eq!(room.len(), 0);
        let (mut s, evicted) = room.enter();
        assert!(!resolved(&mut s));
        assert_eq!(evicted, 0);
    }
}
