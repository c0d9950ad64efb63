//! The continuous books' rules around `OrderBook` (protocol section 7): who may send what, client
//! order ids, the credit a buy order reserves, and turning the book's fills into trades, fees and
//! the private reports each owner receives.

use crate::command::{Actor, OrderEntry};
use crate::core::book::{BookEvent, BookReject, BookState, NewOrder, OrderType, Payload, DEPARTED_KEPT, QUANTITY_MAX};
use crate::core::client_ids::ClientKey;
use crate::core::credit::Hold;
use crate::core::dispatch::{DispatchLine, DispatchRef, DispatchStatus};
use crate::core::limits::check_room;
use crate::core::market::{CellVolume, Market};
use crate::core::order_meta::{client_key, held, set_held, OrderMeta};
use crate::core::participants::Role;
use crate::event::{Event, Liquidity, OrderReport, Trade};
use crate::reject::Reject;
use crate::types::{Code, EngineTime, Fen, OrderId, Pk, Side, TradeId};

fn book_reject(reject: BookReject, field_hint: &str) -> Reject {
    Reject::new(reject.code(), format!("{}{field_hint}", reject.message()))
}

/// A command's orders while its book events are settled. The incoming order (new or amended)
/// is `pending`: the market holds its metadata until the end, as a new order that does not rest
/// never reaches the book, and then writes it to the book's payload if the order rests. The
/// orders that left the book are `departed`, with their payloads as the book kept them (until
/// its next command), by order id. Every other order the events name rests on the book.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settling {
    pending: Option<(OrderId, OrderMeta)>,
    departed: Vec<(OrderId, Payload)>,
}

impl Settling {
    fn departed_mut(&mut self, id: OrderId) -> Option<&mut Payload> {
        let at = self.departed.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        Some(&mut self.departed[at].1)
    }

    fn pending_mut(&mut self, id: OrderId) -> Option<&mut OrderMeta> {
        self.pending.as_mut().filter(|(i, _)| *i == id).map(|(_, meta)| meta)
    }
}

impl Market {
    fn listing_mut(&mut self, symbol: Code) -> Result<&mut crate::core::market::Listing, Reject> {
        self.listings.get_mut(&symbol).ok_or_else(|| Reject::not_found(format!("no instrument {symbol}")))
    }

    /// The credit a buy order of `units` at `price` holds while it rests.
    fn reserve_for(&self, side: Side, order_type: OrderType, price: Option<Fen>, units: u64) -> Result<Hold, Reject> {
        match (side, order_type, price) {
            // Before the book's own price check: a negative price would make a negative hold,
            // and the difference of two holds could then overflow (found by limit_properties).
            (Side::Buy, OrderType::Limit, Some(price)) if price.0 <= 0 => {
                Err(Reject::price_invalid("price must be positive"))
            }
            (Side::Buy, OrderType::Limit, Some(price)) => {
                self.fees.buy_hold(price, units).ok_or_else(|| Reject::price_invalid("price × quantity is too large"))
            }
            _ => Ok(Hold::NONE),
        }
    }

    pub(crate) fn new_order(
        &mut self,
        actor: Actor,
        entry: &OrderEntry,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let role = match entry.side {
            Side::Buy => Role::Buyer,
            Side::Sell => Role::Grower,
        };
        let owner = self.participants.authorise(actor, role)?.expect("traders are participants");
        self.check_order_room(owner, entry)?;
        let coid = entry.client_order_id;
        let packed = ClientKey::pack(&coid);
        // The id is claimed up front and given back if the order is rejected: one search of
        // the day's ids (which grow with every order) instead of a lookup now and an insert later.
        if self.order_by_client(owner, &coid, packed).is_some()
            || !self.client_ids_today.insert_packed(owner, coid, packed)
        {
            return Err(Reject::duplicate(format!("client_order_id {coid} was already used today")));
        }
        let placed = self.place_order(owner, entry, packed, now, out);
        if placed.is_err() {
            self.client_ids_today.remove(owner, &coid);
        }
        placed
    }

    /// The limits a new order must fit: the day's orders of its owner, and — if it may rest — the
    /// open orders of its owner and of the market, and the total at its price level. Checked
    /// before matching, so an order that would partly trade is judged by its whole quantity.
    fn check_order_room(&self, owner: Pk, entry: &OrderEntry) -> Result<(), Reject> {
        let limits = &self.limits;
        let participant = self.participants.get(owner);
        check_room(
            "orders_per_participant_day_max",
            limits.orders_per_participant_day_max,
            participant.orders_today as u64,
            1,
        )?;
        let (OrderType::Limit, Some(price), true) = (entry.order_type, entry.price, entry.time_in_force.rests()) else {
            return Ok(());
        };
        check_room(
            "orders_open_per_participant_max",
            limits.orders_open_per_participant_max,
            participant.orders_open as u64,
            1,
        )?;
        check_room("orders_open_total_max", limits.orders_open_total_max, self.live_order_count() as u64, 1)?;
        // A price or quantity the book refuses anyway gets the book's own error, not this one.
        let valid = price.0 > 0 && entry.quantity <= QUANTITY_MAX;
        if let (Some(listing), true) = (self.listings.get(&entry.symbol), valid) {
            let level = listing.book.quantity_at(entry.side, price);
            check_room("level_quantity_max", limits.level_quantity_max, level, entry.quantity)?;
        }
        Ok(())
    }

    /// `new_order` once its client order id is claimed: the checks that need the book and the
    /// credit, then the order itself.
    fn place_order(
        &mut self,
        owner: Pk,
        entry: &OrderEntry,
        packed: Option<ClientKey>,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if entry.quantity == 0 {
            return Err(Reject::quantity_invalid("quantity must be at least 1"));
        }
        let listing = self
            .listings
            .get(&entry.symbol)
            .ok_or_else(|| Reject::not_found(format!("no instrument {}", entry.symbol)))?;
        let reserved = self.reserve_for(entry.side, entry.order_type, entry.price, entry.quantity)?;
        self.participants.check_purchase(owner, reserved.total(), "this order")?;
        if entry.side == Side::Buy && entry.order_type == OrderType::Market {
            // A market buy never rests: what it would take right now must fit the credit.
            let (units, amount) = listing.book.preview(owner, Side::Buy, None, entry.quantity);
            let bound = self
                .fees
                .buy_cost_bound(amount, units)
                .ok_or_else(|| Reject::quantity_invalid("quantity is too large"))?;
            self.participants.check_purchase(owner, bound, "this market order")?;
        }
        let order_id = OrderId(self.next_order);
        let meta = OrderMeta {
            owner,
            client_order_id: entry.client_order_id,
            symbol: entry.symbol,
            side: entry.side,
            order_type: entry.order_type,
            price: entry.price,
            time_in_force: entry.time_in_force,
            post_only: entry.post_only,
            reserved,
            accepted_ts: now,
        };
        let payload = self.orders.payload(&meta, packed);
        let mut book_events = self.take_scratch();
        let listing = self.listings.get_mut(&entry.symbol).expect("checked above");
        listing
            .book
            .submit_with(
                NewOrder {
                    id: order_id,
                    owner,
                    side: entry.side,
                    order_type: entry.order_type,
                    price: entry.price,
                    quantity: entry.quantity,
                    tif: entry.time_in_force,
                    post_only: entry.post_only,
                },
                Some(&payload),
                &mut book_events,
            )
            .map_err(|r| book_reject(r, ""))?;
        self.next_order += 1;
        if packed.is_none() {
            self.orders.remember_long(order_id, meta.client_order_id);
        }
        let participant = self.participants.get_mut(owner);
        participant.orders_open += 1;
        participant.orders_today += 1;
        self.participants.reserve(owner, reserved);
        if !self.quiet {
            out.push(Event::OrderAccepted(report(order_id, &meta, entry.quantity, now)));
        }
        self.settle_book_events(entry.symbol, book_events, Some((order_id, meta)), now, out);
        Ok(())
    }

    /// The live order `owner` placed as `code` (`packed`: `ClientKey::pack(code)`), and its book.
    fn order_by_client(&self, owner: Pk, code: &Code, packed: Option<ClientKey>) -> Option<(Code, OrderId)> {
        let key = client_key(code, packed);
        // Each book files its own orders: a market has a few books, and a small book's index is
        // a few cache lines.
        self.listings.iter().find_map(|(symbol, listing)| {
            let id = listing.book.find_by_client(owner, key, |id| self.orders.confirms(id, code, packed))?;
            Some((*symbol, id))
        })
    }

    /// How many book orders are live.
    pub(crate) fn live_order_count(&self) -> usize {
        self.listings.values().map(|listing| listing.book.resting_count()).sum()
    }

    /// The live book orders (of `owner`, or all), by order id.
    pub(crate) fn live_orders(&self, owner: Option<Pk>) -> Vec<(OrderId, OrderMeta)> {
        let mut all = Vec::new();
        for (symbol, listing) in &self.listings {
            let orders = listing.book.resting_payloads(owner).into_iter();
            all.extend(orders.map(|(order, payload)| (order.id, self.orders.decode(*symbol, &order, &payload))));
        }
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    fn live_order(&self, actor: Actor, client_order_id: Code) -> Result<(Pk, Code, OrderId), Reject> {
        let owner = self.participants.active_participant(actor)?;
        let (symbol, id) = self
            .order_by_client(owner, &client_order_id, ClientKey::pack(&client_order_id))
            .ok_or_else(|| no_open_order(client_order_id))?;
        Ok((owner, symbol, id))
    }

    pub(crate) fn cancel_order(
        &mut self,
        actor: Actor,
        client_order_id: Code,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (_, symbol, id) = self.live_order(actor, client_order_id)?;
        let mut book_events = self.take_scratch();
        self.listing_mut(symbol)?.book.cancel(id, &mut book_events).map_err(|r| book_reject(r, ""))?;
        self.settle_book_events(symbol, book_events, None, now, out);
        Ok(())
    }

    pub(crate) fn amend_order(
        &mut self,
        actor: Actor,
        client_order_id: Code,
        price: Option<Fen>,
        quantity: Option<u64>,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let (owner, symbol, id) = self.live_order(actor, client_order_id)?;
        if price.is_none() && quantity.is_none() {
            return Err(Reject::bad_request("amend_order needs price or quantity"));
        }
        if quantity == Some(0) {
            return Err(Reject::quantity_invalid("quantity must be at least 1 (cancel the order instead)"));
        }
        // The order as it rests, read once (only limit orders rest: a market order is never
        // live to amend).
        let book = &self.listings[&symbol].book;
        let (order, payload) = book.resting_payload(id).expect("a live order rests on its book");
        let meta = self.orders.decode(symbol, &order, &payload);
        let new_price = price.unwrap_or(order.price);
        let new_leaves = quantity.unwrap_or(order.leaves);
        // What the order adds to the level it will rest at: its growth in place, or all of it at
        // a new price. Shrinking in place adds nothing and is always allowed, even on a level over
        // a lowered limit.
        let adding = if new_price == order.price { new_leaves.saturating_sub(order.leaves) } else { new_leaves };
        if adding > 0 && new_price.0 > 0 && new_leaves <= QUANTITY_MAX {
            let level = book.quantity_at(meta.side, new_price);
            check_room("level_quantity_max", self.limits.level_quantity_max, level, adding)?;
        }
        let new_price = Some(new_price);
        let new_reserved = self.reserve_for(meta.side, meta.order_type, new_price, new_leaves)?;
        let extra = new_reserved.minus(meta.reserved);
        if extra.total().0 > 0 {
            self.participants.check_purchase(owner, extra.total(), "the amended order")?;
        }
        let mut book_events = self.take_scratch();
        self.listing_mut(meta.symbol)?
            .book
            .amend(id, price, quantity, &mut book_events)
            .map_err(|r| book_reject(r, ""))?;
        let meta = OrderMeta { price: new_price, reserved: new_reserved, ..meta };
        self.participants.release(owner, hold_part(&extra, true));
        self.participants.reserve(owner, hold_part(&extra, false));
        out.push(Event::OrderAmended(report(id, &meta, new_leaves, now)));
        self.settle_book_events(meta.symbol, book_events, Some((id, meta)), now, out);
        Ok(())
    }

    pub(crate) fn cancel_all(
        &mut self,
        actor: Actor,
        symbol: Option<Code>,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let owner = match actor {
            Actor::Participant(pk) if pk.0 < self.participants.len() as u32 => pk,
            _ => return Err(Reject::forbidden("only a registered participant has orders")),
        };
        let count = self.cancel_owner_orders(owner, symbol, now, out)?;
        out.push(Event::Cancelled { owner, count });
        Ok(())
    }

    /// Cancels `owner`'s open orders on one book or all, each owner told by `OrderDone`;
    /// returns how many. Shared by `cancel_all`, `cancel_orders` and suspension.
    pub(crate) fn cancel_owner_orders(
        &mut self,
        owner: Pk,
        symbol: Option<Code>,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<u32, Reject> {
        let symbols: Vec<Code> = match symbol {
            Some(symbol) => {
                self.listing_mut(symbol)?;
                vec![symbol]
            }
            None => self.listings.keys().copied().collect(),
        };
        let mut count = 0;
        for symbol in symbols {
            let mut book_events = self.take_scratch();
            count += self.listing_mut(symbol)?.book.cancel_owner(owner, &mut book_events);
            self.settle_book_events(symbol, book_events, None, now, out);
        }
        // At most the owner's open orders, which `orders_open` counts in a u32.
        Ok(u32::try_from(count).expect("open orders fit u32"))
    }

    pub(crate) fn set_book_state(
        &mut self,
        actor: Actor,
        symbol: Code,
        state: BookState,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        if self.listing_mut(symbol)?.book.state() == state {
            return Err(Reject::invalid_state(format!("book {symbol} is already in that state")));
        }
        let mut book_events = self.take_scratch();
        self.listing_mut(symbol)?.book.set_state(state, &mut book_events);
        self.settle_book_events(symbol, book_events, None, now, out);
        out.push(Event::BookStateChanged { symbol, state });
        Ok(())
    }

    /// `day` orders expire at the end of the day; each book's reference price rolls to its close.
    pub(crate) fn expire_day_orders(&mut self, now: EngineTime, out: &mut Vec<Event>) {
        let symbols: Vec<Code> = self.listings.keys().copied().collect();
        for symbol in symbols {
            let mut book_events = self.take_scratch();
            self.listings.get_mut(&symbol).expect("listed").book.end_of_day(&mut book_events);
            self.settle_book_events(symbol, book_events, None, now, out);
        }
    }

    /// The reusable buffer the books report into: the hot path allocates nothing in steady state.
    fn take_scratch(&mut self) -> Vec<BookEvent> {
        let mut scratch = std::mem::take(&mut self.book_scratch);
        scratch.clear();
        scratch
    }

    /// Turns what the book did into trades, money and reports, then keeps the buffer for reuse.
    /// `pending`: the command's own order (see [`Settling`]).
    fn settle_book_events(
        &mut self,
        symbol: Code,
        book_events: Vec<BookEvent>,
        pending: Option<(OrderId, OrderMeta)>,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) {
        let mut settling = std::mem::take(&mut self.settling);
        settling.pending = pending;
        settling.departed.clear();
        settling.departed.extend(self.listings[&symbol].book.departed());
        settling.departed.sort_unstable_by_key(|(id, _)| *id);
        self.apply_book_events(symbol, &book_events, &mut settling, now, out);
        if let Some((id, meta)) = settling.pending.take() {
            // Still resting (it never left): its payload gets the hold it ends with.
            if let Some(data) = self.listings.get_mut(&symbol).expect("listed").book.payload_data_mut(id) {
                set_held(data, meta.reserved);
            }
        }
        // A command that emptied a deep book (an end of day, a suspension) keeps no list its size.
        settling.departed.clear();
        settling.departed.shrink_to(DEPARTED_KEPT);
        self.settling = settling;
        self.book_scratch = book_events;
    }

    /// The client order id of live order `id` of the book of `symbol`.
    fn client_order_id(&self, symbol: Code, id: OrderId, settling: &mut Settling) -> Code {
        if let Some(meta) = settling.pending_mut(id) {
            return meta.client_order_id;
        }
        let payload = match settling.departed_mut(id) {
            Some(payload) => *payload,
            None => self.listings[&symbol].book.payload(id).expect("a live order rests on its book"),
        };
        self.orders.client_code(id, payload.key)
    }

    fn apply_book_events(
        &mut self,
        symbol: Code,
        book_events: &[BookEvent],
        settling: &mut Settling,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) {
        let product = self.listings[&symbol].instrument.product;
        // The day's book volume, for the cells' last VWAP (folded in at end_of_day): summed here
        // and added to the listing once, not looked up per fill.
        let mut volume = CellVolume::default();
        for event in book_events {
            match *event {
                BookEvent::Fill {
                    price,
                    quantity,
                    maker,
                    maker_owner,
                    maker_side,
                    maker_leaves,
                    taker,
                    taker_owner,
                    taker_leaves,
                } => {
                    let trade_id = TradeId(self.next_trade);
                    self.next_trade += 1;
                    // Within what the buyer's credit allowed (its limit order's reservation, or the
                    // market order's checked preview), so it fits: an invariant, not input.
                    let amount = price.checked_mul(quantity).expect("a fill's amount fits the buyer's credit");
                    let fee = self.fees.book_fee(amount);
                    let commission = self.fees.commission(amount);
                    let (buyer, buyer_order, buyer_leaves, seller, seller_order) = match maker_side {
                        Side::Buy => (maker_owner, maker, maker_leaves, taker_owner, taker),
                        Side::Sell => (taker_owner, taker, taker_leaves, maker_owner, maker),
                    };
                    self.rereserve(symbol, buyer_order, buyer, buyer_leaves, settling);
                    self.participants.buy(buyer, amount, fee);
                    self.participants.account_mut(seller).sell(amount, commission);
                    self.totals.trades += 1;
                    self.totals.turnover.0 += amount.0;
                    self.totals.fees.0 += fee.0 + commission.0;
                    volume.amount.0 += amount.0;
                    volume.units += quantity;
                    // Quiet (a replay nobody reads): the reports below are skipped, the money and
                    // the dispatch line are not; `apply` is told of the sale instead of `Traded`.
                    let reports = [
                        (maker, maker_owner, maker_side, maker_leaves, Liquidity::Maker),
                        (taker, taker_owner, maker_side.opposite(), taker_leaves, Liquidity::Taker),
                    ];
                    self.quiet_sale |= self.quiet;
                    for &(order, owner, side, leaves, liquidity) in &reports[..if self.quiet { 0 } else { 2 }] {
                        out.push(Event::Fill {
                            owner,
                            order_id: order,
                            client_order_id: self.client_order_id(symbol, order, settling),
                            trade_id,
                            symbol,
                            side,
                            price,
                            quantity,
                            leaves,
                            liquidity,
                            ts: now,
                        });
                    }
                    self.dispatch.append(DispatchLine {
                        reference: DispatchRef::Book(trade_id),
                        buyer,
                        seller,
                        product,
                        grade: None,
                        quantity,
                        units_per_container: 1,
                        price,
                        status: DispatchStatus::Awaiting,
                        alarm: false,
                        voided: false,
                        temperature: None,
                        updated: now,
                    });
                    if self.quiet {
                        continue;
                    }
                    out.push(Event::Traded(Trade {
                        trade_id,
                        symbol,
                        product,
                        price,
                        quantity,
                        amount,
                        aggressor: maker_side.opposite(),
                        buyer,
                        buyer_id: self.participants.get(buyer).id,
                        buyer_order,
                        seller,
                        seller_id: self.participants.get(seller).id,
                        seller_order,
                        fee,
                        commission,
                        ts: now,
                    }));
                }
                BookEvent::Done { order, owner, reason, .. } => {
                    // The command's own order, else one that left the book.
                    let (reserved, client_order_id) = match settling.pending.take_if(|(id, _)| *id == order) {
                        Some((_, meta)) => {
                            self.orders.forget(
                                order,
                                client_key(&meta.client_order_id, ClientKey::pack(&meta.client_order_id)),
                            );
                            (meta.reserved, meta.client_order_id)
                        }
                        None => {
                            let payload = *settling.departed_mut(order).expect("done orders were live");
                            let code = self.orders.client_code(order, payload.key);
                            self.orders.forget(order, payload.key);
                            (held(&payload), code)
                        }
                    };
                    let participant = self.participants.get_mut(owner);
                    participant.orders_open -= 1;
                    self.participants.release(owner, reserved);
                    if self.quiet {
                        continue;
                    }
                    out.push(Event::OrderDone { owner, order_id: order, client_order_id, symbol, reason, ts: now });
                }
                BookEvent::Level { side, price, quantity } if !self.quiet => {
                    out.push(Event::BookLevel { symbol, side, price, quantity });
                }
                BookEvent::Level { .. } => {}
            }
        }
        if volume != CellVolume::default() {
            let day_volume = &mut self.listings.get_mut(&symbol).expect("listed").day_volume;
            day_volume.amount.0 += volume.amount.0;
            day_volume.units += volume.units;
        }
    }

    /// New fees are in force (`end_of_day` after a `set_fees`): every resting buy order holds
    /// credit for the book fee at the new rate, or, when its owner's credit cannot take a higher
    /// hold, is cancelled (the owner is told `order_done {reason:"cancelled"}`), so no fill can
    /// cost more than was held and no buyer goes past its limit.
    pub(crate) fn rehold_at_new_fees(&mut self, now: EngineTime, out: &mut Vec<Event>) {
        let holding =
            self.live_orders(None).into_iter().filter(|(_, m)| m.side == Side::Buy && m.reserved != Hold::NONE);
        for (id, meta) in holding.collect::<Vec<_>>() {
            let leaves = self.listings[&meta.symbol].book.order(id).map_or(0, |v| v.leaves);
            let fits = self.reserve_for(meta.side, meta.order_type, meta.price, leaves).ok().filter(|held| {
                let more = held.minus(meta.reserved);
                more.total().0 <= 0
                    || self.participants.check_purchase(meta.owner, more.total(), "the order's new hold").is_ok()
            });
            match fits {
                Some(held) => {
                    let change = held.minus(meta.reserved);
                    let (owner, participants) = (meta.owner, &mut self.participants);
                    participants.release(
                        owner,
                        Hold { principal: Fen(0.max(-change.principal.0)), fee: Fen(0.max(-change.fee.0)) },
                    );
                    participants.reserve(
                        owner,
                        Hold { principal: Fen(0.max(change.principal.0)), fee: Fen(0.max(change.fee.0)) },
                    );
                    let book = &mut self.listings.get_mut(&meta.symbol).expect("listed").book;
                    set_held(book.payload_data_mut(id).expect("a live order rests on its book"), held);
                }
                None => {
                    let mut book_events = self.take_scratch();
                    let listing = self.listings.get_mut(&meta.symbol).expect("listed");
                    if listing.book.cancel(id, &mut book_events).is_ok() {
                        self.settle_book_events(meta.symbol, book_events, None, now, out);
                    } else {
                        self.book_scratch = book_events;
                    }
                }
            }
        }
    }

    /// After a fill, buy order `order` of `owner` holds credit only for what is still open.
    fn rereserve(&mut self, symbol: Code, order: OrderId, owner: Pk, leaves: u64, settling: &mut Settling) {
        let (held, reserved) = if let Some(meta) = settling.pending_mut(order) {
            let (side, order_type, price, held) = (meta.side, meta.order_type, meta.price, meta.reserved);
            let reserved = self.reserve_for(side, order_type, price, leaves).expect("smaller than before");
            settling.pending_mut(order).expect("pending").reserved = reserved;
            (held, reserved)
        } else if settling.departed_mut(order).is_some() {
            // It left the book later in this command (filled, or cancelled after an opening
            // call's fill), and its `Done` releases all it holds: the same credit, released at
            // once instead of in two parts with nothing in between that reads it.
            return;
        } else {
            let book = &self.listings[&symbol].book;
            let (resting, payload) = book.resting_payload(order).expect("a live order rests on its book");
            let reserved = self.reserve_for(resting.side, OrderType::Limit, Some(resting.price), leaves);
            let reserved = reserved.expect("smaller than before");
            let book = &mut self.listings.get_mut(&symbol).expect("listed").book;
            set_held(book.payload_data_mut(order).expect("resting"), reserved);
            (held(&payload), reserved)
        };
        let freed = held.minus(reserved);
        assert!(freed.principal.0 >= 0 && freed.fee.0 >= 0, "a fill raised order {}'s reservation", order.0);
        self.participants.release(owner, freed);
    }

    /// `get_orders`: the participant's open orders, oldest first.
    pub fn open_orders(&self, owner: Pk) -> Vec<OrderReport> {
        // The owner's own live orders from their client index in each book, not a scan of
        // everyone's: this runs on the sequencer thread.
        self.live_orders(Some(owner))
            .into_iter()
            .map(|(id, meta)| {
                let leaves = self.listings[&meta.symbol].book.order(id).map_or(0, |v| v.leaves);
                report(id, &meta, leaves, meta.accepted_ts)
            })
            .collect()
    }
}

/// The part of a change in hold to release (`release`: the negative parts, as positive amounts)
/// or to reserve (the positive parts): an amend may raise the price and lower the quantity.
fn hold_part(change: &Hold, release: bool) -> Hold {
    let pick = |v: Fen| if release { Fen((-v.0).max(0)) } else { Fen(v.0.max(0)) };
    Hold { principal: pick(change.principal), fee: pick(change.fee) }
}

/// The reply to a cancel or amend of an order that is no longer open: frequent (a cancel that
/// crossed a fill), so built without `format!`'s machinery; the same text.
#[cold]
fn no_open_order(client_order_id: Code) -> Reject {
    let mut message = String::with_capacity(14 + Code::BYTES_MAX);
    message.push_str("no open order ");
    message.push_str(client_order_id.as_str());
    Reject::not_found(message)
}

fn report(order_id: OrderId, meta: &OrderMeta, quantity: u64, ts: EngineTime) -> OrderReport {
    OrderReport {
        owner: meta.owner,
        order_id,
        client_order_id: meta.client_order_id,
        symbol: meta.symbol,
        side: meta.side,
        order_type: meta.order_type,
        price: meta.price,
        quantity,
        time_in_force: meta.time_in_force,
        post_only: meta.post_only,
        ts,
    }
}
