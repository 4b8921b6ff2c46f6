//! Who may start listening: the listener limits, checked by the connection before anything is
//! asked of the pipeline, so a refused request costs a map look-up and nothing on the packet
//! path. Counts are held by [`Admitted`] guards and released when a listener's connection (or
//! `listen` registration) goes, whatever the reason.

use earshot_manager::CallRef;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The limits on listeners and their memory.
#[derive(Clone, Copy, Debug)]
pub struct ListenLimits {
    /// Listeners in total.
    pub max_listeners: usize,
    /// Listeners of one call.
    pub max_per_call: usize,
    /// Listeners of one call from one client (address and token identity); 0: no such limit.
    pub max_per_client_per_call: usize,
    /// Bytes of audio frames queued for one listener.
    pub queue_bytes: usize,
    /// Bytes of audio frames queued for all listeners together.
    pub memory_bytes: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_listeners: 1000,
            max_per_call: 50,
            max_per_client_per_call: 8,
            queue_bytes: 1 << 20,
            memory_bytes: 128 << 20,
        }
    }
}

/// Who is asking: the address it connects from and the name of the credential it showed.
/// The Manager API has one shared token, so the identity is "token" or "none"; it is never
/// the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    pub addr: IpAddr,
    pub identity: &'static str,
}

/// Why a listener was refused; the text is what the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Sensor,
    Call,
    Client,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Sensor => "too many listeners on this sensor: try again later",
            Refusal::Call => "too many listeners of this call: try again later",
            Refusal::Client => {
                "too many listeners of this call from your address: stop one first \
                 ([listen] max_per_client_per_call)"
            }
        }
    }
}

/// Listener counts: in total, per call, per call and client.
#[derive(Debug, Default)]
pub struct Admission {
    limits: ListenLimits,
    total: usize,
    per_call: HashMap<CallRef, usize>,
    per_client: HashMap<(CallRef, Client), usize>,
}

impl Admission {
    pub fn new(limits: ListenLimits) -> Self {
        Admission {
            limits,
            ..Admission::default()
        }
    }

    /// Counts a new listener of `call` from `client`, or says which limit it would break.
    pub fn admit(&mut self, call: CallRef, client: &Client) -> Result<(), Refusal> {
        let l = &self.limits;
        if self.total >= l.max_listeners {
            return Err(Refusal::Sensor);
        }
        let on_call = self.per_call.get(&call).copied().unwrap_or(0);
        if on_call >= l.max_per_call {
            return Err(Refusal::Call);
        }
        let key = (call, client.clone());
        let mine = self.per_client.get(&key).copied().unwrap_or(0);
        if l.max_per_client_per_call > 0 && mine >= l.max_per_client_per_call {
            return Err(Refusal::Client);
        }
        self.total += 1;
        self.per_call.insert(call, on_call + 1);
        self.per_client.insert(key, mine + 1);
        Ok(())
    }

    pub fn release(&mut self, call: CallRef, client: &Client) {
        self.total = self.total.saturating_sub(1);
        decrement(&mut self.per_call, call);
        decrement(&mut self.per_client, (call, client.clone()));
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

/// Lowers a count, forgetting the key at zero so the maps hold only live listeners.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
    }
}

/// The admission shared by the sensor's connections.
#[derive(Clone, Debug)]
pub struct Gate(Arc<Mutex<Admission>>);

impl Gate {
    pub fn new(limits: ListenLimits) -> Self {
        Gate(Arc::new(Mutex::new(Admission::new(limits))))
    }

    fn lock(&self) -> MutexGuard<'_, Admission> {
        match self.0.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A guard holding one listener's place, released when dropped.
    pub fn admit(&self, call: CallRef, client: Client) -> Result<Admitted, Refusal> {
        self.lock().admit(call, &client)?;
        Ok(Admitted {
            gate: self.clone(),
            call,
            client,
        })
    }

    pub fn total(&self) -> usize {
        self.lock().total()
    }
}

/// One admitted listener's place in the counts.
#[derive(Debug)]
pub struct Admitted {
    gate: Gate,
    call: CallRef,
    client: Client,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.lock().release(self.call, &self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(last: u8, identity: &'static str) -> Client {
        Client {
            addr: IpAddr::from([10, 0, 0, last]),
            identity,
        }
    }

    fn limits() -> ListenLimits {
        ListenLimits {
            max_listeners: 100,
            max_per_call: 50,
            max_per_client_per_call: 4,
            ..ListenLimits::default()
        }
    }

    #[test]
    fn one_client_cannot_take_a_calls_slots() {
        let gate = Gate::new(limits());
        let (call, other_call) = (CallRef::from_u64(1), CallRef::from_u64(2));
        let mut held: Vec<Admitted> = (0..4)
            .map(|_| gate.admit(call, client(1, "none")).expect("within the cap"))
            .collect();
        assert_eq!(
            gate.admit(call, client(1, "none")).map(|_| ()),
            Err(Refusal::Client)
        );
        // The same client on another call, other clients on this one: still admitted.
        held.push(
            gate.admit(other_call, client(1, "none"))
                .expect("other call"),
        );
        held.push(gate.admit(call, client(2, "none")).expect("other address"));
        held.push(
            gate.admit(call, client(1, "token"))
                .expect("other identity"),
        );
        held.remove(0);
        held.push(
            gate.admit(call, client(1, "none"))
                .expect("a place was freed"),
        );
        assert_eq!(gate.total(), 7);
        drop(held);
        assert_eq!(gate.total(), 0);
        let a = gate.0.lock().expect("lock");
        assert!(
            a.per_call.is_empty() && a.per_client.is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn the_call_and_sensor_limits_hold_across_clients() {
        let gate = Gate::new(ListenLimits {
            max_listeners: 60,
            ..limits()
        });
        let mut held = Vec::new();
        for i in 0..50u8 {
            held.push(
                gate.admit(CallRef::from_u64(1), client(i, "none"))
                    .expect("under 50"),
            );
        }
        let refused = gate
            .admit(CallRef::from_u64(1), client(200, "none"))
            .map(|_| ());
        assert_eq!(refused, Err(Refusal::Call));
        for i in 0..10u8 {
            held.push(
                gate.admit(CallRef::from_u64(2), client(i, "none"))
                    .expect("under 60"),
            );
        }
        let refused = gate
            .admit(CallRef::from_u64(3), client(201, "none"))
            .map(|_| ());
        assert_eq!(refused, Err(Refusal::Sensor));
    }

    #[test]
    fn no_client_cap_when_it_is_zero() {
        let gate = Gate::new(ListenLimits {
            max_per_client_per_call: 0,
            ..limits()
        });
        let held: Vec<_> = (0..50)
            .map(|_| {
                gate.admit(CallRef::from_u64(1), client(1, "none"))
                    .expect("no client cap")
            })
            .collect();
        assert_eq!(held.len(), 50);
    }
}
