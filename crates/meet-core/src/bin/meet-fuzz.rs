//! `cargo run --release -p meet-core --features native --bin meet-fuzz [-- CASES]`
//!
//! Runs CASES (default 1,000,000) generated inputs through each parser that
//! sees untrusted input (the same targets as `tests/fuzz.rs`) and prints
//! the count and the time per parser; a panic stops it with the input.

#[path = "../../fuzz/targets.rs"]
mod targets;

use std::time::Instant;

/// Seeds the mutations start from: near-valid inputs of every parser.
const SEEDS: &[&[u8]] = &[
    br#"{"name": "Room", "access_level": "trusted", "configuration": {}}"#,
    br#"{"user": "00000000-0000-4000-8000-000000000001", "resource": "x", "role": "owner"}"#,
    br#"{"language": "fr-fr", "timezone": "Europe/Paris", "callback_id": 7}"#,
    b"name=a+b&x=%C3%A9",
    b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nRoom\r\n--x--\r\n",
    b"Bearer abc.def.ghi",
    b"sessionid=abc; csrftoken=tok; other=1",
    b"600/minute",
    b"10.0.0.1, 192.168.1.2:80, [::1]:443",
    b"{12345678-1234-5678-1234-567812345678}",
    b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    br#"{"event": "room_finished", "room": {"name": "r"}, "id": "e", "createdAt": "1"}"#,
];

/// Bytes the mutations insert: JSON, form and header punctuation.
const INSERTED: &[u8] = b"{}[]\",:;= \\%\0\xff";

/// xorshift64*: fast, deterministic, good enough to mutate inputs.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    /// A seed with a few random byte flips, insertions, deletions and
    /// splices, or plain random bytes.
    fn input(&mut self) -> Vec<u8> {
        if self.below(8) == 0 {
            let length = self.below(200);
            return (0..length).map(|_| self.next() as u8).collect();
        }
        let mut bytes = SEEDS[self.below(SEEDS.len())].to_vec();
        for _ in 0..=self.below(6) {
            let at = self.below(bytes.len() + 1);
            match self.below(4) {
                0 if at < bytes.len() => bytes[at] = self.next() as u8,
                1 => bytes.insert(at, INSERTED[self.below(INSERTED.len())]),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {
                    let other = SEEDS[self.below(SEEDS.len())];
                    let from = self.below(other.len());
                    bytes.splice(at..at, other[from..].iter().copied());
                }
            }
        }
        bytes
    }
}

fn run(name: &str, cases: u64, target: &dyn Fn(&[u8])) {
    let mut generator = Generator(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let started = Instant::now();
    for _ in 0..cases {
        let input = generator.input();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        if outcome.is_err() {
            eprintln!("{name} panicked on {:?}", String::from_utf8_lossy(&input));
            std::process::exit(1);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{name:<16} {cases:>10} cases  {:>8.2} s  {:>7.2} µs/case  no panic",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / cases.max(1) as f64
    );
}

fn main() {
    let cases: u64 = std::env::args()
        .nth(1)
        .and_then(|text| text.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    for (name, target) in targets::TARGETS {
        run(name, cases, &target);
    }
    let endpoints = targets::Endpoints::new();
    run("endpoint_bodies", cases, &|bytes| endpoints.run(bytes));
}
