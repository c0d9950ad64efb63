//! Order-book throughput and per-message latency over the exchange-core mix.
fn main() {}
