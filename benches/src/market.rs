//! The market the benches trade on: the operator's commands that register traders and open a
//! book, and a `Market` set up with them for the benches that call `Market::apply` directly.
//! Shared, so that the sequencer bench, the clock bench and the book benches measure the same
//! setup rather than three copies of it.

use crate::{Message, Mix, OWNERS};
use huashi_engine::command::{Action, Actor, Command, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, NewOrder};
use huashi_engine::core::limits::{MarketLimits, COUNT_CEILING, CREDIT_LIMIT_MAX};
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::types::{Code, Day, EngineTime, Fen, OrderId, Pk};

/// The instrument the benches trade: one of the market's default listings (tick 1 fen).
pub const SYMBOL: Code = Code::literal("ROSE-A");

/// The instrument [`trading_market`] defines for the exchange-core mix: tick 1 fen like
/// [`SYMBOL`], and no price band, as the mix's book (`huashi_benches::new_book`) has none (its
/// IOC orders are priced 25 % through the touch, past a default listing's 20 % band).
pub const MIX_SYMBOL: Code = Code::literal("MIX");

/// The day every bench market trades on.
pub const DAY: &str = "2026-11-29";

/// The operator registering trader `id` with `roles` and the highest credit limit a market
/// allows, so that credit never refuses a bench's order.
pub fn register_trader(id: Code, roles: Roles) -> Command {
    Command::new(
        Actor::Operator,
        Action::RegisterParticipant {
            id,
            name: id.as_str().to_string(),
            roles,
            credit_limit: Fen(CREDIT_LIMIT_MAX),
            token_hash: [0; 32],
            firm: None,
            daily_limit: None,
        },
    )
}

/// The operator opening `symbol`'s book for continuous trading.
pub fn open_book(symbol: Code) -> Command {
    Command::new(Actor::Operator, Action::SetBookState { symbol, state: BookState::Open })
}

/// A market on [`DAY`] whose order-count limits are at their ceilings (a deep book holds a
/// million orders of a thousand traders, far over the defaults), with `traders` traders
/// `t0`, `t1`, … registered — each may buy and sell, and trader `tN` is `Pk(N)`, so a mix
/// order's owner is its trader — and [`SYMBOL`]'s and [`MIX_SYMBOL`]'s books open.
pub fn trading_market(traders: u32) -> Market {
    let mut market = Market::new(trading_config());
    let mut out = Vec::new();
    for command in trading_setup(traders) {
        apply_ok(&mut market, &command, &mut out);
    }
    for n in 0..traders {
        let id = Code::parse(&format!("t{n}"), Code::BYTES_MAX).expect("a trader id");
        assert_eq!(market.participants().lookup(&id).ok(), Some(Pk(n)), "traders are registered in order");
    }
    market
}

/// The genesis of [`trading_market`]: [`DAY`], with the order-count limits at their ceilings.
pub fn trading_config() -> MarketConfig {
    let limits = MarketLimits {
        orders_open_per_participant_max: COUNT_CEILING,
        orders_open_total_max: COUNT_CEILING,
        orders_per_participant_day_max: COUNT_CEILING,
        ..MarketLimits::default()
    };
    MarketConfig { limits, ..MarketConfig::new(Day::parse(DAY).expect("a date")) }
}

/// The operator's commands that make [`trading_market`] from its genesis: `traders` traders
/// registered, [`MIX_SYMBOL`] defined, both books opened. For a bench that sends them through a
/// sequencer rather than applying them.
pub fn trading_setup(traders: u32) -> Vec<Command> {
    let roles = Roles { buyer: true, grower: true, ..Roles::default() };
    let mut commands: Vec<Command> = (0..traders)
        .map(|n| register_trader(Code::parse(&format!("t{n}"), Code::BYTES_MAX).expect("a trader id"), roles))
        .collect();
    let mix = Action::DefineInstrument { symbol: MIX_SYMBOL, product: PRODUCT, tick_size: Fen(1), price_band_pct: 0 };
    commands.push(Command::new(Actor::Operator, mix));
    commands.extend([SYMBOL, MIX_SYMBOL].map(open_book));
    commands
}

/// A mix (its prefill, then its messages) as the commands of its orders' owners on
/// [`trading_market`] with [`OWNERS`] traders: each new order is its owner's `new_order`
/// ([`order_command`]: client order id `o<mix id>`, owners folded onto the traders), a cancel and
/// a move that owner's `cancel_order` and `amend_order` (a new price, the open quantity kept)
/// naming that client order id.
pub fn mix_commands(mix: &Mix) -> (Vec<Command>, Vec<Command>) {
    // Each mix order's owner, for the commands that name it later.
    let orders = mix.prefill.len() + mix.messages.len();
    let mut owners = vec![Pk(u32::MAX); orders + 1];
    let mut translate = |message: &Message| match *message {
        Message::New(order) => {
            let order = NewOrder { owner: Pk(order.owner.0 % OWNERS), ..order };
            owners[order.id.0 as usize] = order.owner;
            order_command(&order)
        }
        Message::Cancel(id) => Command::new(
            Actor::Participant(owners[id.0 as usize]),
            Action::CancelOrder { client_order_id: client_order_id(id) },
        ),
        Message::Move { id, price } => Command::new(
            Actor::Participant(owners[id.0 as usize]),
            Action::AmendOrder { client_order_id: client_order_id(id), price: Some(price), quantity: None },
        ),
    };
    let prefill = mix.prefill.iter().map(&mut translate).collect();
    let messages = mix.messages.iter().map(&mut translate).collect();
    (prefill, messages)
}

/// [`SYMBOL`]'s product, which [`MIX_SYMBOL`] trades too.
const PRODUCT: Code = Code::literal("ROSE");

/// The engine time every bench command carries: the market keeps no timers for the book, so
/// one instant serves them all.
pub const NOW: EngineTime = EngineTime(1_795_000_000_000_000);

/// Applies `command`, which must be accepted.
pub fn apply_ok(market: &mut Market, command: &Command, out: &mut Vec<Event>) {
    out.clear();
    let applied = market.apply(command, NOW, out);
    assert!(applied.result.is_ok(), "{command:?}: {:?}", applied.result);
}

/// The client order id the benches give mix order `id`: `o<id>`.
fn client_order_id(id: OrderId) -> Code {
    Code::parse(&format!("o{}", id.0), Code::BYTES_MAX).expect("a client order id")
}

/// A mix order as its owner's `new_order` on [`MIX_SYMBOL`], with `o<order id>` (unique in a
/// mix) as the client order id.
pub fn order_command(order: &NewOrder) -> Command {
    let client_order_id = client_order_id(order.id);
    Command::new(
        Actor::Participant(order.owner),
        Action::NewOrder(OrderEntry {
            client_order_id,
            symbol: MIX_SYMBOL,
            side: order.side,
            order_type: order.order_type,
            price: order.price,
            quantity: order.quantity,
            time_in_force: order.tif,
            post_only: order.post_only,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::core::book::{OrderType, TimeInForce};
    use huashi_engine::types::{OrderId, Side};

    #[test]
    fn a_mix_order_rests_in_the_market_as_its_owners() {
        let mut market = trading_market(3);
        let order = NewOrder {
            id: OrderId(7),
            owner: Pk(2),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(Fen(99_000)),
            quantity: 5,
            tif: TimeInForce::Gtc,
            post_only: false,
        };
        apply_ok(&mut market, &order_command(&order), &mut Vec::new());
        let book = &market.listings()[&MIX_SYMBOL].book;
        assert_eq!(book.resting_count(), 1);
        let open = market.open_orders(Pk(2));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].client_order_id.as_str(), "o7");
    }
}
