//! What the property tests of every folder share: how many cases, and how to pick a
//! place in a text. Each folder's `proptests.rs` tests the parsers of that folder that
//! take outside input.
//!
//! `cargo test` runs a few hundred to a thousand cases of each; `PROPTEST_CASES=100000
//! cargo test proptests` runs longer. Each failure found is kept as a plain regression
//! test beside the code it was in.

use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

/// `cases` cases, unless `PROPTEST_CASES` asks for more (or fewer). Failures are not
/// saved to files: each one becomes a plain regression test.
pub fn cases(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            config.cases
        } else {
            cases
        },
        failure_persistence: None,
        ..config
    }
}

/// A byte offset in `text` on a character boundary, picked by `index`.
pub fn boundary(text: &str, index: Index) -> usize {
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    offsets[index.index(offsets.len())]
}
