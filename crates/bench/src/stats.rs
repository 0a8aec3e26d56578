//! Latency samples and the closed-loop driver every throughput stage uses.
//!
//! Percentiles come from a sorted `Vec` of microseconds: a stage records at most a few hundred
//! thousand samples, so sorting is cheaper than any histogram set-up and exact.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::Mutex;

/// Latencies of one measured case, in microseconds, and the rate they were achieved at.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Sorted latencies in microseconds.
    samples: Vec<u64>,
    /// The measured window (after warm-up); zero when only latencies matter.
    pub elapsed: Duration,
}

impl Measured {
    /// Builds a summary from unsorted samples.
    pub fn new(mut samples: Vec<u64>, elapsed: Duration) -> Measured {
        samples.sort_unstable();
        Measured { samples, elapsed }
    }

    /// How many operations were measured.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// Operations per second over the measured window.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.samples.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`th percentile (0–100), nearest rank, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.samples.len()) - 1;
        self.samples[index] as f64 / 1000.0
    }

    /// The median in milliseconds.
    pub fn p50(&self) -> f64 {
        self.percentile_ms(50.0)
    }

    /// The 99th percentile in milliseconds.
    pub fn p99(&self) -> f64 {
        self.percentile_ms(99.0)
    }
}

/// Microseconds of a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How long a closed-loop run lasts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Operations finishing before this much time has passed are not recorded.
    pub warmup: Duration,
    /// How long operations are recorded for, after the warm-up.
    pub measure: Duration,
}

/// An operation of a client: it takes the client's state and gives it back when done.
pub type Op<S> = Arc<dyn Fn(S) -> BoxFuture<'static, anyhow::Result<S>> + Send + Sync>;

/// Runs one task per initial state, each issuing `op` back to back (a closed loop) until the
/// window closes, and returns the latencies of the operations that finished inside the
/// measured part of the window, with the clients' final states. The first error stops the
/// run.
pub async fn drive<S>(
    states: Vec<S>,
    window: Window,
    op: Op<S>,
) -> anyhow::Result<(Measured, Vec<S>)>
where
    S: Send + 'static,
{
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let deadline = measure_from + window.measure;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for state in states {
        let op = Arc::clone(&op);
        let samples = Arc::clone(&samples);
        tasks.push(tokio::spawn(async move {
            let mut state = state;
            let mut mine = Vec::new();
            while Instant::now() < deadline {
                let began = Instant::now();
                state = op(state).await?;
                let done = Instant::now();
                if done >= measure_from && done <= deadline {
                    mine.push(micros(done - began));
                }
            }
            samples.lock().await.extend(mine);
            anyhow::Ok(state)
        }));
    }
    let mut finals = Vec::with_capacity(tasks.len());
    for task in tasks {
        finals.push(task.await??);
    }
    let elapsed = Instant::now()
        .min(deadline)
        .saturating_duration_since(measure_from);
    let samples = std::mem::take(&mut *samples.lock().await);
    // Operations still in flight at the deadline are not counted, and the window is the
    // measured one, so the rate is operations finished per second of measurement.
    Ok((Measured::new(samples, elapsed.max(window.measure)), finals))
}

/// Times `count` sequential calls of `op` (after `warmup` unrecorded ones): for latency
/// stages where one client at a time is the point.
pub async fn sequential<F, Fut>(warmup: usize, count: usize, mut op: F) -> anyhow::Result<Measured>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in 0..warmup {
        op(i).await?;
    }
    let mut samples = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let began = Instant::now();
        op(warmup + i).await?;
        samples.push(micros(began.elapsed()));
    }
    Ok(Measured::new(samples, start.elapsed()))
}

/// A small deterministic pseudo-random generator (xorshift64*), so runs pick the same ids
/// and cursors and no dependency is needed for it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (zero is replaced, as xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`0` when `n` is zero).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let m = Measured::new(
            (1..=100).map(|ms| ms * 1000).collect(),
            Duration::from_secs(1),
        );
        assert_eq!(m.p50(), 50.0);
        assert_eq!(m.p99(), 99.0);
        assert_eq!(m.percentile_ms(100.0), 100.0);
        assert_eq!(m.rate(), 100.0);
    }

    #[test]
    fn an_empty_measurement_has_no_percentiles() {
        assert!(Measured::default().p99().is_nan());
    }

    #[test]
    fn the_generator_stays_below_its_bound() {
        let mut rng = Rng::new(7);
        assert!((0..1000).all(|_| rng.below(10) < 10));
        assert_eq!(rng.below(0), 0);
    }
}
