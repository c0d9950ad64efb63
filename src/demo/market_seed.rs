//! Seeding the market as its operator, over the protocol: the default catalogue (protocol
//! section 4) and the participants of [`roster`](super::roster). A second run on the same data
//! directory registers nobody twice: `register_participant` answers `duplicate`, and the token
//! comes from `demo-tokens.json`, which the first run wrote beside the journal.

use super::client::{unexpected, Session};
use super::products::{BOOKS, PRODUCTS};
use super::roster::{BuyerSpec, FirmSpec, BUYERS, FIRMS, GROWERS, SEATS, VISITOR};
use futures_util::future::join_all;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const TOKENS_FILE: &str = "demo-tokens.json";

/// Tokens of the participants the demo can log in as, by participant id.
#[derive(Default)]
pub struct Tokens {
    path: PathBuf,
    by_id: BTreeMap<String, String>,
}

impl Tokens {
    /// Reads `demo-tokens.json` from the data directory (empty if there is none yet).
    pub fn load(data_dir: &Path) -> anyhow::Result<Tokens> {
        let path = data_dir.join(TOKENS_FILE);
        let mut by_id = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))?;
                if let Some(map) = value["participants"].as_object() {
                    for (id, token) in map {
                        if let Some(token) = token.as_str() {
                            by_id.insert(id.clone(), token.to_string());
                        }
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => anyhow::bail!("cannot read {}: {error}", path.display()),
        }
        Ok(Tokens { path, by_id })
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    /// Writes the file whole to a temporary name, then renames it: a crash leaves the old file
    /// or the new one, never half of one. Only its owner may read it: it holds secrets.
    fn save(&self) -> anyhow::Result<()> {
        let participants: Map<String, Value> =
            self.by_id.iter().map(|(id, token)| (id.clone(), Value::String(token.clone()))).collect();
        let text = serde_json::to_string_pretty(&json!({
            "note": "login tokens of the demo's participants (huashi demo); secrets",
            "participants": participants,
        }))?;
        let temporary = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, &self.path)?;
        Ok(())
    }
}

/// Defines every product and book of the default catalogue that the market lacks. A new data
/// directory already has them all, so `duplicate` is the usual answer and a fine one.
pub async fn ensure_catalogue(operator: &Session) {
    let products = PRODUCTS.iter().map(|p| {
        let msg =
            json!({"type": "define_product", "code": p.code, "name": p.name, "category": p.category, "unit": p.unit});
        define(operator, msg, "product_defined")
    });
    join_all(products).await;
    let books = BOOKS.iter().map(|symbol| {
        let product = super::products::book_product(symbol).map_or("", |p| p.code);
        let msg = json!({"type": "define_instrument", "symbol": symbol, "product": product,
                         "tick_size": "0.01", "price_band_pct": 20});
        define(operator, msg, "instrument_defined")
    });
    join_all(books).await;
}

async fn define(operator: &Session, msg: Value, want: &str) {
    match operator.request(msg.clone()).await {
        Ok(reply) if reply["type"] == want => {}
        Ok(reply) => tracing::warn!(request = %msg, reply = %reply, "unexpected reply (wanted {want})"),
        Err(rejected) if rejected.is("duplicate") => {}
        Err(rejected) => unexpected(&operator.who, &msg, &rejected),
    }
}

/// The seats the demo fills: (participant, token) for each participant it can log in as.
pub struct Seats {
    pub growers: Vec<(usize, String)>,
    /// The simulated buyers, the firms' seats among them.
    pub buyers: Vec<(&'static BuyerSpec, String)>,
    /// The buyer firms, for a person to log in as one and watch all its seats.
    pub firms: Vec<(&'static FirmSpec, String)>,
    pub visitor: Option<String>,
    /// The cold-chain company (role `logistics`).
    pub logistics: Option<String>,
    /// Participants registered by this run (the rest were there already).
    pub registered: usize,
    /// Participants that exist but whose token is lost: they sit this run out.
    pub lost: Vec<&'static str>,
}

/// One participant to register, as its `register_participant` message.
struct Want {
    id: &'static str,
    msg: Value,
}

fn want(id: &'static str, name: &str, roles: &[&str]) -> Want {
    Want { id, msg: json!({"type": "register_participant", "id": id, "name": name, "roles": roles}) }
}

fn whole_cny(cny: i64) -> Value {
    json!(format!("{cny}.00"))
}

/// Registers every participant of the roster; returns their tokens. Firms come first: a seat's
/// registration names its firm, which must exist.
pub async fn register_participants(operator: &Session, tokens: &mut Tokens) -> anyhow::Result<Seats> {
    let mut first: Vec<Want> = GROWERS.iter().map(|g| want(g.id, g.name, &["grower"])).collect();
    first.extend(BUYERS.iter().chain([&VISITOR]).map(|b| {
        let mut w = want(b.id, b.name, &["buyer"]);
        w.msg["credit_limit"] = whole_cny(b.credit_cny);
        w
    }));
    first.push(want(super::goods::LOGISTICS_ID, super::goods::LOGISTICS_NAME, &["logistics"]));
    first.extend(FIRMS.iter().map(|f| {
        let mut w = want(f.id, f.name, &["buyer"]);
        w.msg["credit_limit"] = whole_cny(f.credit_cny);
        w
    }));
    // A seat has no credit limit of its own (protocol section 4): its firm's and its daily limit.
    let seats: Vec<Want> = SEATS
        .iter()
        .map(|s| {
            let mut w = want(s.id, s.name, &["buyer"]);
            w.msg["firm"] = json!(s.firm.map_or("", |f| f.id));
            w.msg["daily_limit"] = whole_cny(s.daily_limit_cny);
            w
        })
        .collect();
    let mut registered = 0;
    let mut lost = Vec::new();
    for wave in [first, seats] {
        let replies = join_all(wave.iter().map(|w| operator.request(w.msg.clone()))).await;
        for (want, reply) in wave.iter().zip(replies) {
            match reply {
                Ok(reply) if reply["type"] == "participant_registered" => match reply["token"].as_str() {
                    Some(token) => {
                        tokens.by_id.insert(want.id.to_string(), token.to_string());
                        registered += 1;
                    }
                    None => anyhow::bail!("participant_registered for {} carries no token", want.id),
                },
                Ok(reply) => anyhow::bail!("registering {}: unexpected reply {reply}", want.id),
                Err(rejected) if rejected.is("duplicate") => {
                    if tokens.get(want.id).is_none() {
                        lost.push(want.id);
                    }
                }
                Err(rejected) => {
                    unexpected(&operator.who, &want.msg, &rejected);
                    anyhow::bail!("cannot register {}: {rejected}", want.id);
                }
            }
        }
    }
    if registered > 0 {
        tokens.save()?;
    }
    let seat = |id: &str| tokens.get(id).filter(|_| !lost.contains(&id)).map(str::to_string);
    Ok(Seats {
        growers: GROWERS.iter().enumerate().filter_map(|(i, g)| seat(g.id).map(|t| (i, t))).collect(),
        buyers: BUYERS.iter().chain(&SEATS).filter_map(|b| seat(b.id).map(|t| (b, t))).collect(),
        firms: FIRMS.iter().filter_map(|f| seat(f.id).map(|t| (f, t))).collect(),
        visitor: seat(VISITOR.id),
        logistics: seat(super::goods::LOGISTICS_ID),
        registered,
        lost,
    })
}
