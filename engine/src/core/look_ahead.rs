//! Look-ahead over the commands a caller holds but has not applied yet (the sequencer's batch,
//! a replay's chunk): the cache fetches for a deep book's orders that the next few commands
//! name, so that their dependent misses overlap instead of following one another.
//!
//! Why the market needs its own: a participant names a book order by its client order id, so
//! a cancel or an amend starts in the client index of the order's book (which of the market's
//! books is not known until it is found there), then reads the order's slot and payload, then
//! its id-index entry and its neighbours in the queue. Each of those is a cache miss in a deep
//! book, and each address is known only once the one before has arrived: one stage of the
//! chain per command ahead ([`Prefetch`]) lets the three run under the commands in between.
//!
//! It is only a hint: nothing here changes the market, a stale hint (the order gone meanwhile)
//! wastes a fetch, and a market whose books are all shallow skips it
//! ([`Market::looks_ahead`]). A replay and every replica decide exactly what they decide
//! without it (`look_ahead_changes_nothing_a_market_does`).

use crate::command::{Action, Actor, Command};
use crate::core::book::Prefetch;
use crate::core::client_ids::ClientKey;
use crate::core::market::Market;
use crate::core::order_meta::client_key;

/// How many commands ahead a caller looks: one per stage of [`Prefetch`].
pub const AHEAD: usize = 3;

impl Market {
    /// Whether look-ahead can do anything: some book is deep enough to act on its hints
    /// (`OrderBook::looks_ahead`). Callers ask once per batch or chunk, which keeps the hints'
    /// cost off a market whose books all sit in the cache.
    pub fn looks_ahead(&self) -> bool {
        self.listings.values().any(|listing| listing.book.looks_ahead())
    }

    /// Before a command is applied: hints for the commands after it, `later` in order (the
    /// first is the next one). Takes at most [`AHEAD`] of them.
    pub fn look_ahead<'a>(&self, later: impl IntoIterator<Item = &'a Command>) {
        for (distance, command) in later.into_iter().take(AHEAD).enumerate() {
            self.look_ahead_at(command, distance + 1);
        }
    }

    /// The hint for `command`, `distance` (1..=[`AHEAD`]) commands after the one about to be
    /// applied: the stage of its order's chain that is due at that distance.
    fn look_ahead_at(&self, command: &Command, distance: usize) {
        let stage = Prefetch::at(distance);
        let Actor::Participant(owner) = command.actor else { return };
        let code = match &command.action {
            Action::CancelOrder { client_order_id } | Action::AmendOrder { client_order_id, .. } => client_order_id,
            // A new order's id is looked for in every book's client index too (it must not
            // name an order still resting); it is usually absent, so only the probe's first
            // entries are worth fetching.
            Action::NewOrder(entry) if stage == Prefetch::Index => &entry.client_order_id,
            _ => return,
        };
        let key = client_key(code, ClientKey::pack(code));
        for listing in self.listings.values() {
            listing.book.prefetch_client(owner, key, stage);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::command::{OrderEntry, Roles};
    use crate::core::book::{BookState, OrderType, TimeInForce, LOOK_AHEAD_MIN};
    use crate::core::limits::{MarketLimits, COUNT_CEILING, CREDIT_LIMIT_MAX};
    use crate::core::MarketConfig;
    use crate::event::Event;
    use crate::types::{Code, Day, EngineTime, Fen, Side};

    const TRADERS: u32 = 50;

    fn register(n: u32) -> Command {
        let id = Code::parse(&format!("t{n}"), Code::BYTES_MAX).expect("an id");
        Command::new(
            Actor::Operator,
            Action::RegisterParticipant {
                id,
                name: id.as_str().to_string(),
                roles: Roles { buyer: true, grower: true, ..Roles::default() },
                credit_limit: Fen(CREDIT_LIMIT_MAX),
                token_hash: [0; 32],
                firm: None,
                daily_limit: None,
            },
        )
    }

    /// A deep book's day in commands: a prefill past `LOOK_AHEAD_MIN` on two books, then a
    /// churn of new orders (some crossing), cancels and amends of random live orders by client
    /// order id, some of them naming orders already gone or never placed, and short and long
    /// client order ids both.
    pub(crate) fn day(seed: u64) -> Vec<Command> {
        let symbols = [Code::literal("ROSE-A"), Code::literal("LILY-A")];
        let mut commands: Vec<Command> = (0..TRADERS).map(register).collect();
        commands.extend(
            symbols
                .map(|symbol| Command::new(Actor::Operator, Action::SetBookState { symbol, state: BookState::Open })),
        );
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut placed: Vec<(u32, Code)> = Vec::new();
        let prefill = 2 * LOOK_AHEAD_MIN as u64 + 4_000;
        for n in 0..prefill + 30_000 {
            let owner = (next() % u64::from(TRADERS)) as u32;
            let roll = next() % 100;
            let actor = Actor::Participant(crate::types::Pk(owner));
            if n >= prefill && roll < 40 && !placed.is_empty() {
                let (who, code) = placed[(next() % placed.len() as u64) as usize];
                // Now and then someone else's id: a miss in every client index.
                let actor = if roll < 3 { actor } else { Actor::Participant(crate::types::Pk(who)) };
                let action = if roll < 25 {
                    Action::CancelOrder { client_order_id: code }
                } else {
                    Action::AmendOrder {
                        client_order_id: code,
                        price: Some(Fen(900 + (next() % 200) as i64)),
                        quantity: None,
                    }
                };
                commands.push(Command::new(actor, action));
                continue;
            }
            let side = if next() % 2 == 0 { Side::Buy } else { Side::Sell };
            // The prefill rests (buys below 1,000, sells above); the churn crosses now and then.
            let spread = if n < prefill { 1 + (next() % 400) as i64 } else { (next() % 420) as i64 - 20 };
            let price = Fen(match side {
                Side::Buy => 1_000 - spread,
                Side::Sell => 1_000 + spread,
            });
            let code = if n % 7 == 0 {
                Code::parse(&format!("a-long-client-order-id-{n}"), Code::BYTES_MAX).expect("an id")
            } else {
                Code::parse(&format!("c{n}"), Code::BYTES_MAX).expect("an id")
            };
            placed.push((owner, code));
            let tif = if n >= prefill && roll > 90 { TimeInForce::Ioc } else { TimeInForce::Gtc };
            commands.push(Command::new(
                actor,
                Action::NewOrder(OrderEntry {
                    client_order_id: code,
                    symbol: symbols[(next() % 2) as usize],
                    side,
                    order_type: OrderType::Limit,
                    price: Some(price),
                    quantity: 1 + next() % 50,
                    time_in_force: tif,
                    post_only: false,
                }),
            ));
        }
        commands
    }

    /// A market whose order-count limits a deep book does not reach.
    pub(crate) fn config() -> MarketConfig {
        let limits = MarketLimits {
            orders_open_per_participant_max: COUNT_CEILING,
            orders_open_total_max: COUNT_CEILING,
            orders_per_participant_day_max: COUNT_CEILING,
            ..MarketLimits::default()
        };
        MarketConfig { limits, ..MarketConfig::new(Day::parse("2026-11-29").expect("a day")) }
    }

    fn market() -> Market {
        Market::new(config())
    }

    /// Look-ahead is only a hint: a deep market driven with it, as the sequencer and replay
    /// drive it, gives every command the same result and events, and ends in the same state, as
    /// one driven without.
    #[test]
    fn look_ahead_changes_nothing_a_market_does() {
        let commands = day(0x5eed_1001);
        let (mut plain, mut ahead) = (market(), market());
        let (mut plain_events, mut ahead_events) = (Vec::<Event>::new(), Vec::<Event>::new());
        let (mut hinted, mut found) = (0, 0);
        for (i, command) in commands.iter().enumerate() {
            if ahead.looks_ahead() {
                ahead.look_ahead(&commands[i + 1..]);
                hinted += 1;
            }
            let now = EngineTime(1_795_000_000_000_000 + i as u64);
            plain_events.clear();
            ahead_events.clear();
            let expected = plain.apply(command, now, &mut plain_events);
            let got = ahead.apply(command, now, &mut ahead_events);
            assert_eq!(got.result, expected.result, "command {i}: {command:?}");
            assert_eq!(ahead_events, plain_events, "command {i}: {command:?}");
            let by_client = matches!(command.action, Action::CancelOrder { .. } | Action::AmendOrder { .. });
            found += usize::from(by_client && got.result.is_ok());
        }
        assert!(found > 5_000, "cancels and amends found their orders: {found}");
        assert!(hinted > 25_000, "the market was deep enough to look ahead for the churn: {hinted}");
        let deep = plain.listings().values().filter(|listing| listing.book.resting_count() >= LOOK_AHEAD_MIN);
        assert_eq!(deep.count(), 2, "both books stayed deep");
        assert_eq!(ahead.state_hash(), plain.state_hash());
    }
}
