//! Criterion throughput of the order book over the exchange-core mix (see `huashi_benches`).

use criterion::{criterion_group, criterion_main, Criterion};

fn order_book(_c: &mut Criterion) {}

criterion_group!(benches, order_book);
criterion_main!(benches);
