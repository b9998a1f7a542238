//! What masking costs the reader per body, and what the value-shape rules add to it.
//! One run, one machine, ratios: each row is timed over the same bodies, and compared
//! with the JSON key masker alone (what every JSON body paid before value shapes).
//!
//! Bodies: an 8 KiB JSON document (the default `TAPLINE_MAX_BODY`) with a base64
//! image, UUIDs and hashes and no credential; the same with five planted credentials;
//! 1 MiB of base64 (a decoded upload).
//!
//! Run: `cargo bench -p tapline --bench mask_cost`.

use std::hint::black_box;
use std::time::Instant;

use base64::Engine;
use tapline::{Masker, DEFAULT_KEY_PATTERN};

fn time_per_call(iters: u32, mut f: impl FnMut()) -> f64 {
    f();
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min);
    best * 1e6
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let image = b64.encode(pseudo_random(5000, 7));
    let mut doc = format!("{{\"avatar\": \"data:image/png;base64,{image}\", \"items\": [");
    let mut i = 0u64;
    while doc.len() < 8000 {
        doc.push_str(&format!(
            "{{\"id\": \"{:016x}-4c1e-9a8f\", \"sha\": \"{}\"}},",
            i,
            pseudo_random(20, i + 1)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        i += 1;
    }
    doc.push_str("{}]}");
    let clean = doc.into_bytes();
    let mut planted = clean.clone();
    for cred in [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    ] {
        let at = planted.len() / 2;
        planted.splice(at..at, format!("\"x\": \"{cred}\", ").into_bytes());
    }
    let big = b64.encode(pseudo_random(768 << 10, 3)).into_bytes();
    let masker = Masker::new(DEFAULT_KEY_PATTERN, &[] as &[&str]).expect("default pattern");

    println!("{:<44} {:>12} {:>8}", "row", "µs per body", "ratio");
    for (name, body, iters) in [
        ("8 KiB JSON, no credential", &clean, 2000),
        ("8 KiB JSON, 5 credentials", &planted, 2000),
        ("1 MiB base64", &big, 20),
    ] {
        let keys = time_per_call(iters, || {
            black_box(masker.mask_json(black_box(body)));
        });
        let shapes = time_per_call(iters, || {
            black_box(masker.mask_value_shapes(black_box(body)));
        });
        println!(
            "{:<44} {:>12.1} {:>8}",
            format!("{name}: JSON key masker"),
            keys,
            "1.00×"
        );
        println!(
            "{:<44} {:>12.1} {:>7.2}×",
            format!("{name}: value shapes"),
            shapes,
            shapes / keys
        );
    }
}
