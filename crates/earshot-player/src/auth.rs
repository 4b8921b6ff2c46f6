//! Passwords (argon2), session tokens and CSRF tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// False for a wrong password and for a stored hash that cannot be parsed.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new session token (for the cookie) and a CSRF token.
pub fn new_tokens() -> Result<(String, String), AuthError> {
    Ok((hex(&random_bytes::<32>()?), hex(&random_bytes::<16>()?)))
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> Result<String, AuthError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex(&b))
}

/// Only this hash is stored, so a leaked database does not hand out live sessions.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A fixed set of threads that check passwords, at most `threads` at once.
///
/// argon2 takes 19 MiB and tens of milliseconds per check. On tokio's blocking pool (up to 512
/// threads) a login flood ran hundreds at once, and every thread's malloc arena kept its
/// 19 MiB afterwards: gigabytes. Here the same few threads do every check, so the memory is
/// bounded by `threads` × 19 MiB and reused; a login waits for a free thread, up to a deadline.
pub struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

type Job = Box<dyn FnOnce() + Send>;

/// No hashing thread became free in time: the player is busy with other logins.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl HashPool {
    pub fn new(threads: usize) -> HashPool {
        let threads = threads.max(1);
        // Never more jobs queued than threads: a permit is held from submission to the end.
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(threads);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("earshot-hash-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, not while it runs.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    // The pool (its sender) is gone: the thread ends.
                    let Ok(job) = job else { return };
                    job();
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password-hashing thread: {e}");
            }
        }
        HashPool {
            jobs,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(threads)),
        }
    }

    /// Waits at most `wait` for a free hashing thread.
    pub async fn slot(&self, wait: Duration) -> Result<HashSlot<'_>, Busy> {
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        Ok(HashSlot { pool: self, permit })
    }
}

/// A hashing thread reserved for one check (see [`HashPool::slot`]).
pub struct HashSlot<'a> {
    pool: &'a HashPool,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl HashSlot<'_> {
    /// [`verify_password`] on the reserved thread.
    pub async fn verify(self, password: String, hash: String) -> Result<bool, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let permit = self.permit;
        let job: Job = Box::new(move || {
            let ok = verify_password(&password, &hash);
            // Released when the work is done, not when the caller stops waiting for it.
            drop(permit);
            let _ = tx.send(ok);
        });
        // Never full (permits = capacity); an error means no thread could be started.
        self.pool.jobs.try_send(job).map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }
}

/// Used when the user is unknown, so a wrong name takes as long as a wrong password.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$X4PmvbVV3i2cGr8dhPuCfMbDqQW3fCpC8kjhiuDmJ/0";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pool_checks_passwords_and_refuses_when_busy() {
        let pool = HashPool::new(1);
        let h = hash_password("pw").unwrap();
        let slot = pool.slot(Duration::from_secs(5)).await.unwrap();
        // The only thread is reserved: nobody else gets one.
        assert!(pool.slot(Duration::from_millis(50)).await.is_err());
        assert_eq!(slot.verify("pw".into(), h.clone()).await, Ok(true));
        let slot = pool.slot(Duration::from_secs(5)).await.unwrap();
        assert_eq!(slot.verify("pW".into(), h).await, Ok(false));
    }

    #[test]
    fn passwords_verify_and_the_dummy_hash_parses() {
        let h = hash_password("pw").unwrap();
        assert!(verify_password("pw", &h));
        assert!(!verify_password("pW", &h));
        assert!(!verify_password("pw", "not a hash"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
