//! The fuzz targets' oracles on stable, so `cargo test` keeps them honest:
//! every committed seed of `fuzz/corpus/<target>/`, the regression inputs
//! below, then a few thousand deterministic mutations per target
//! (`FUZZ_CORPUS_SEED` / `FUZZ_CORPUS_ITERS` override the defaults).
//! See docs/fuzzing.md.

use std::path::{Path, PathBuf};

use protocol_oracles::{
    XorShift, check_client_payload, check_names, check_server_payload, mutate, parse_dict,
};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable dir entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn dict() -> Vec<Vec<u8>> {
    let path = fuzz_dir().join("dict/protocol.dict");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_dict(&text)
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seeds, then `FUZZ_CORPUS_ITERS` mutants (each of a random seed or of an
/// earlier mutant, so mutations stack). A failing input is printed as bytes.
fn run(target: &str, extra: &[&[u8]], check: fn(&[u8])) {
    let mut pool = seeds(target);
    pool.extend(extra.iter().map(|x| x.to_vec()));
    let dict = dict();
    let seed = env_u64("FUZZ_CORPUS_SEED", 0x5eed_f00d);
    let iters = env_u64("FUZZ_CORPUS_ITERS", 5000);
    let mut rng = XorShift::new(seed ^ target.len() as u64);
    let try_one = |input: &[u8]| {
        if std::panic::catch_unwind(|| check(input)).is_err() {
            panic!(
                "{target}: oracle failed on input {:?} (FUZZ_CORPUS_SEED={seed})",
                String::from_utf8_lossy(input)
            );
        }
    };
    for input in &pool {
        try_one(input);
    }
    let seeds = pool.clone();
    let mut recent: Vec<Vec<u8>> = Vec::new();
    for _ in 0..iters {
        let base = if !recent.is_empty() && rng.below(3) == 0 {
            rng.pick(&recent).clone()
        } else {
            rng.pick(&seeds).clone()
        };
        let input = mutate(&mut rng, &base, &dict, &seeds);
        try_one(&input);
        if recent.len() < 256 {
            recent.push(input);
        } else {
            let i = rng.below(recent.len());
            recent[i] = input;
        }
    }
}

fn names(data: &[u8]) {
    let s = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    check_names(s);
}

#[test]
fn client_payloads() {
    run(
        "client_payloads",
        &[
            // Findings (docs/fuzzing.md), fixed in payloads.rs: regressions.
            br#"{"room":"r","to":"p","data":["bye"]}"#,
            br#"{"room":"r","to":"p","data":["offer","v=0"]}"#,
            br#"{"room":"r","to":"p","data":{"type":"candidate","candidate":["c","0",0]}}"#,
            br#"{"room":"r","name":"A","mode":{"sfu":null}}"#,
        ],
        check_client_payload,
    );
}

#[test]
fn names_and_modes() {
    run("names", &[], names);
}

#[test]
fn server_payloads() {
    run(
        "server_payloads",
        &[br#"{"room":"r","from":"p","data":["bye"]}"#],
        check_server_payload,
    );
}

/// The mutator is deterministic: a failure reproduces from its seed.
#[test]
fn mutator_is_deterministic() {
    let seeds = seeds("client_payloads");
    let dict = dict();
    let run_with = |seed| {
        let mut rng = XorShift::new(seed);
        (0..50)
            .map(|_| mutate(&mut rng, &seeds[0], &dict, &seeds))
            .collect::<Vec<_>>()
    };
    assert_eq!(run_with(7), run_with(7));
    assert_ne!(run_with(7), run_with(8));
}
