//! Integration tests: the real hotrun binary on fixture projects.
