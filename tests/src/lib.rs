//! Shared test kit: test-data generation and helpers for end-to-end tests.
