//! The stable fallback of `cargo fuzz`: each target body on its seeds mutated at random
//! (byte flips, insertions, deletions, truncation, splices, deep nesting) for
//! `MC_FUZZ_SECONDS` (default 5) per target. A panic anywhere, even one the server would
//! catch, fails with the input in hex. `MC_FUZZ_SEED` repeats a run.

use super::{seeds, TARGETS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static PANICKED: AtomicBool = AtomicBool::new(false);

/// xorshift64*: enough randomness for mutation, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Interesting bytes: container and string markers of both formats, NUL, quotes, escapes.
const SPICE: &[u8] = &[
    0x00, 0x91, 0x81, 0xdc, 0xdd, 0xde, 0xdf, 0xc0, 0xc1, 0xcb, 0xd9, 0xda, 0xdb, 0xa1, 0xff, b'[',
    b']', b'{', b'}', b'"', b'\\', b':', b',', b'0', b'-', b'e',
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 => input.insert(at, SPICE[rng.below(SPICE.len())]),
            2 => input.insert(at, rng.next() as u8),
            3 if at < input.len() => drop(input.remove(at)),
            4 => input.truncate(at),
            5 => {
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from + 1);
                input.splice(at..at, other[from..to].iter().copied());
            }
            6 => {
                // Deep nesting in either format.
                let depth = 1 + rng.below(2_000);
                let byte = [0x91, 0x81, b'[', b'{'][rng.below(4)];
                input.splice(at..at, std::iter::repeat_n(byte, depth));
            }
            7 if !input.is_empty() => {
                let n = input[rng.below(input.len())];
                input.splice(at..at, std::iter::repeat_n(n, rng.below(64)));
            }
            _ => {
                let u = rng.next().to_le_bytes();
                input.splice(at..at, u[..1 + rng.below(8)].iter().copied());
            }
        }
    }
    input.truncate(64 * 1024);
}

#[test]
fn targets_survive_mutated_seeds() {
    let seconds: u64 = std::env::var("MC_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("MC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    eprintln!("fuzz fallback: {seconds} s per target, MC_FUZZ_SEED={seed}");
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        previous(info);
    }));
    let mut rng = Rng(seed);
    for (name, body) in TARGETS {
        let pool = seeds(name);
        assert!(!pool.is_empty(), "{name} has no seeds");
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut runs = 0u64;
        while Instant::now() < deadline {
            let mut input = pool[rng.below(pool.len())].clone();
            mutate(&mut rng, &mut input, &pool);
            // Run on a worker-sized stack: a decoder that recursed per level would overflow.
            let data = input.clone();
            let outcome = std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || std::panic::catch_unwind(|| body(&data)).is_ok())
                .and_then(|t| t.join().map_err(|_| std::io::Error::other("join")));
            let failed = !matches!(outcome, Ok(true)) || PANICKED.swap(false, Ordering::SeqCst);
            assert!(
                !failed,
                "{name} panicked on input {}",
                input.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            runs += 1;
        }
        eprintln!("{name}: {runs} inputs");
    }
}

/// The seeds `scripts/fuzz.sh` gives libFuzzer (`seeds/<target>/seed-<i>`, committed) exist for
/// every target. `seeds()` makes fresh ones (with new ids each time); to replace the files run
/// `MC_FUZZ_WRITE_SEEDS=1 cargo test --no-default-features seeds_on_disk`.
#[test]
fn seeds_on_disk_exist_for_every_target() {
    let write = std::env::var_os("MC_FUZZ_WRITE_SEEDS").is_some();
    for (name, _) in TARGETS {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(name);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
            }
        }
        let count = std::fs::read_dir(&dir)
            .map(|entries| entries.filter_map(Result::ok).count())
            .unwrap_or(0);
        assert!(
            count >= seeds(name).len(),
            "{}: {count} seeds on disk, {} expected (write them, see above)",
            dir.display(),
            seeds(name).len()
        );
    }
}
