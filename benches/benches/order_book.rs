//! Criterion throughput of the order book over the exchange-core mix (`huashi_benches`): one
//! iteration is one message, replayed in stream order into a book that was prefilled as the
//! stream expects. When the stream runs out, a fresh prefilled book is built outside the timing
//! and the stream starts again.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use huashi_benches::{generate, SEED};
use std::hint::black_box;
use std::time::{Duration, Instant};

const MESSAGES: usize = 1_000_000;

fn exchange_core_mix(c: &mut Criterion) {
    let mix = generate(SEED, MESSAGES);
    let mut group = c.benchmark_group("order_book");
    group.throughput(Throughput::Elements(1));
    let mut book = mix.prefilled_book();
    let mut cursor = 0usize;
    let mut out = Vec::with_capacity(1024);
    group.bench_function("exchange_core_mix", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            let mut left = iterations as usize;
            while left > 0 {
                if cursor == mix.messages.len() {
                    book = mix.prefilled_book();
                    cursor = 0;
                }
                let batch = &mix.messages[cursor..(cursor + left).min(mix.messages.len())];
                let start = Instant::now();
                for message in batch {
                    out.clear();
                    black_box(message.apply(&mut book, &mut out).is_ok());
                }
                elapsed += start.elapsed();
                cursor += batch.len();
                left -= batch.len();
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, exchange_core_mix);
criterion_main!(benches);
