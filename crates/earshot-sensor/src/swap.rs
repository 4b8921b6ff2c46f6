//! A value a configuration reload replaces while other tasks keep reading it.

use std::sync::RwLock;

/// Readers take a clone (make `T` cheap to clone: an `Arc`, an `Option<Arc<_>>`); a writer
/// replaces the whole value. A panic while the lock was held cannot leave a half-written value
/// (every write is one assignment), so a poisoned lock is used as it is, not given up on.
#[derive(Debug, Default)]
pub(crate) struct Swap<T>(RwLock<T>);

impl<T: Clone> Swap<T> {
    pub fn new(value: T) -> Self {
        Swap(RwLock::new(value))
    }

    pub fn get(&self) -> T {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, value: T) {
        match self.0.write() {
            Ok(mut v) => *v = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}
