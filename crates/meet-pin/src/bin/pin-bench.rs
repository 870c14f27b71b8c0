//! Allocates PINs for counters 0, 1, … as room creation would, checks that none repeats,
//! and prints the time per allocation.
//!
//! ```sh
//! cargo run --release -p meet-pin --bin pin-bench -- [COUNT] [LENGTH]   # defaults 10000000 10
//! ```

use std::process::ExitCode;
use std::time::Instant;

use meet_pin::PinPermutation;

const DEFAULT_COUNT: u64 = 10_000_000;
const DEFAULT_LENGTH: u32 = 10;

fn argument<T: std::str::FromStr>(position: usize, default: T) -> Result<T, String> {
    match std::env::args().nth(position) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("argument {position} is not a number: {text:?}")),
    }
}

/// CPU time of this thread in nanoseconds (Linux), which stays meaningful when other
/// processes share the cores and the wall-clock figure does not.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn run() -> Result<(), String> {
    let count: u64 = argument(1, DEFAULT_COUNT)?;
    let length: u32 = argument(2, DEFAULT_LENGTH)?;
    let permutation = PinPermutation::new(b"pin-bench secret, not a real one", length, "")
        .map_err(|e| e.to_string())?;
    if count > permutation.capacity() {
        return Err(format!(
            "{count} PINs asked for but only {} exist with {length} digits",
            permutation.capacity()
        ));
    }

    let mut pins: Vec<u64> = Vec::with_capacity(count as usize);
    let cpu_started = thread_cpu_ns();
    let started = Instant::now();
    for counter in 0..count {
        // The string is what a room stores; keep its numeric value for the check.
        let pin = permutation.pin_for(counter).map_err(|e| e.to_string())?;
        debug_assert_eq!(pin.len(), length as usize);
        pins.push(pin.parse().map_err(|_| format!("bad PIN {pin:?}"))?);
    }
    let elapsed = started.elapsed();
    let cpu_ns = thread_cpu_ns()
        .zip(cpu_started)
        .map(|(end, start)| end.saturating_sub(start));

    pins.sort_unstable();
    let collisions = pins.windows(2).filter(|w| w[0] == w[1]).count();
    let per_allocation_ns = elapsed.as_nanos() as f64 / count.max(1) as f64;
    let cpu = match cpu_ns {
        Some(ns) => format!(", {:.0} ns of CPU time", ns as f64 / count.max(1) as f64),
        None => String::new(),
    };
    println!(
        "{count} PINs of {length} digits in {:.3} s: {per_allocation_ns:.0} ns per allocation{cpu} \
         (string formatting and parsing included), {collisions} collisions",
        elapsed.as_secs_f64()
    );
    if collisions == 0 {
        Ok(())
    } else {
        Err(format!("{collisions} collisions"))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pin-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
