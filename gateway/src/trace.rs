//! A lot's public trace (protocol §12): `GET /api/lots/{lot_id}` — the lot object (§5, never
//! the reserve), its grower with name and quality index, each sale (buyers anonymous) and the
//! goods' path through the cold chain — and `GET /api/lots/{lot_id}/qr.svg`, a QR code of the
//! trace page's URL (`/lot/{lot_id}`, the web app) for delivery notes and labels.
//!
//! Both read clearing on its thread: the days it keeps in memory (today's and the previous
//! trading day's), the archive for older ones. Rendering happens here, off that thread. Who
//! bought, and where the goods go, never appear.

use crate::server::Shared;
use crate::wire::render::{temperature, LotJson, Money};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use huashi_clearing::{GoodsLine, LotTraceView, PathStep};
use huashi_engine::types::{Fen, LotId};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The longest `Host` header a QR code will carry (a DNS name is at most 253 bytes, plus a port).
pub const HOST_BYTES_MAX: usize = 260;

/// The trace as `GET /api/lots/{lot_id}` answers it.
#[derive(Serialize)]
struct TraceJson<'a> {
    lot: LotJson<'a>,
    grower: GrowerJson<'a>,
    sales: Vec<SaleJson>,
    goods: Vec<GoodsJson<'a>>,
}

#[derive(Serialize)]
struct GrowerJson<'a> {
    id: &'a str,
    name: &'a str,
    /// The grower's quality index when the lot was consigned (the lot's `qi`).
    qi: Option<Money>,
}

#[derive(Serialize)]
struct SaleJson {
    kind: &'static str,
    price: Money,
    containers: u32,
    units: u64,
    ts: u64,
}

#[derive(Serialize)]
struct GoodsJson<'a> {
    #[serde(rename = "ref")]
    reference: String,
    kind: &'static str,
    containers: Option<u64>,
    units: u64,
    status: &'static str,
    location: &'a str,
    temperature_c: Option<Money>,
    temperature_alarm: bool,
    updated_ts: u64,
    path: Vec<StepJson<'a>>,
}

#[derive(Serialize)]
struct StepJson<'a> {
    status: &'static str,
    location: &'a str,
    temperature_c: Option<Money>,
    ts: u64,
    alarm: bool,
}

fn qi(value: Option<u32>) -> Option<Money> {
    value.map(|qi| Money(Fen(i64::from(qi))))
}

fn step(s: &PathStep) -> StepJson<'_> {
    StepJson {
        status: s.status.as_str(),
        location: &s.location,
        temperature_c: s.temperature.map(temperature),
        ts: s.ts.0,
        alarm: s.alarm,
    }
}

fn goods(g: &GoodsLine) -> GoodsJson<'_> {
    GoodsJson {
        reference: g.reference.to_string(),
        kind: g.reference.kind(),
        containers: g.containers,
        units: g.units,
        status: g.status.as_str(),
        location: &g.location,
        temperature_c: g.temperature.map(temperature),
        temperature_alarm: g.alarm,
        updated_ts: g.updated.0,
        path: g.path.iter().map(step).collect(),
    }
}

fn render(view: &LotTraceView) -> String {
    let lot = &view.trace.lot;
    let trace = TraceJson {
        lot: LotJson::new(lot, false),
        grower: GrowerJson { id: lot.grower_id.as_str(), name: &view.trace.grower_name, qi: qi(lot.qi) },
        sales: view
            .trace
            .sales
            .iter()
            .map(|s| SaleJson {
                kind: s.kind.as_str(),
                price: Money(s.price),
                containers: s.containers,
                units: s.units,
                ts: s.ts.0,
            })
            .collect(),
        goods: view.goods.iter().map(goods).collect(),
    };
    serde_json::to_string(&trace).expect("a trace serialises")
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The lot id of the path: a non-negative integer (`None`: answer 400).
fn lot_id(text: &str) -> Option<LotId> {
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<u64>().ok().filter(|_| digits).map(LotId)
}

fn bad_lot_id(text: &str) -> Response {
    error(StatusCode::BAD_REQUEST, &format!("lot_id must be a non-negative integer, not {text:?}"))
}

/// Why a trace could not be read: the status and message to answer.
type Unavailable = (StatusCode, &'static str);

/// The lot's trace from clearing (memory, else archive): `Ok(None)` for a lot never consigned.
async fn trace_of(shared: &Shared, lot: LotId) -> Result<Option<LotTraceView>, Unavailable> {
    let (tx, rx) = oneshot::channel();
    let asked = shared.clearing.ask(Box::new(move |clearing, archive, _feed| {
        let found = match clearing.lot_trace(lot) {
            Some(view) => Ok(Some(view)),
            None => archive.trace(lot).map_err(|e| e.to_string()),
        };
        let _ = tx.send(found);
    }));
    match (asked, rx.await) {
        (true, Ok(Ok(found))) => Ok(found),
        (true, Ok(Err(archive_error))) => {
            tracing::error!(lot = lot.0, %archive_error, "reading a lot's trace from the archive");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "the archive could not be read"))
        }
        _ => Err((StatusCode::SERVICE_UNAVAILABLE, "clearing is not available, retry")),
    }
}

fn not_found(lot: LotId) -> Response {
    error(StatusCode::NOT_FOUND, &format!("no lot {}", lot.0))
}

/// `GET /api/lots/{lot_id}`.
pub(crate) async fn api_lot(State(shared): State<Arc<Shared>>, Path(text): Path<String>) -> Response {
    let Some(lot) = lot_id(&text) else { return bad_lot_id(&text) };
    match trace_of(&shared, lot).await {
        Ok(Some(view)) => ([(header::CONTENT_TYPE, "application/json")], render(&view)).into_response(),
        Ok(None) => not_found(lot),
        Err((status, message)) => error(status, message),
    }
}

/// `GET /api/lots/{lot_id}/qr.svg`: the trace page's absolute URL as an SVG QR code.
pub(crate) async fn api_lot_qr(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lot) = lot_id(&text) else { return bad_lot_id(&text) };
    match trace_of(&shared, lot).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(lot),
        Err((status, message)) => return error(status, message),
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| valid_host(h));
    let host = host.map_or_else(|| shared.listen_addr().to_string(), str::to_string);
    let svg = qr_svg(&trace_url(&host, lot));
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-cache")], svg).into_response()
}

/// The trace page of a lot on `host`.
pub fn trace_url(host: &str, lot: LotId) -> String {
    format!("http://{host}/lot/{}", lot.0)
}

/// A `Host` header fit to print into a URL: a DNS name or IPv4 address, or a bracketed IPv6
/// address, with an optional port — nothing that could make the QR code point elsewhere (no `/`,
/// `@`, spaces or control characters).
pub fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > HOST_BYTES_MAX {
        return false;
    }
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, port)
            }
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, _)) => (Some(name), &host[name.len()..]),
            None => (Some(host), ""),
        },
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
            })
    });
    port_ok && name_ok
}

/// An SVG QR code of `text` (the `qrcode` crate; medium error correction, a quiet zone).
pub fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .expect("a trace URL fits in a QR code");
    code.render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_or_addresses_with_a_port() {
        for good in ["127.0.0.1:8080", "huashi.example", "market-1.sh.cn:443", "[::1]:8080", "[fe80::1]", "localhost"] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example/path",
            "a@b",
            "host:99999",
            "host:",
            "-bad.example",
            "a..b",
            "[::1",
            "[zz]:80",
            "sp ace",
            "x:80:80",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        assert!(!valid_host(&"a".repeat(HOST_BYTES_MAX + 1)));
    }

    #[test]
    fn the_qr_code_is_an_svg() {
        let svg = qr_svg(&trace_url("127.0.0.1:8080", LotId(42)));
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    }

    #[test]
    fn lot_ids_are_integers() {
        assert_eq!(lot_id("42"), Some(LotId(42)));
        for bad in ["", "-1", "+1", "1.5", "abc", "99999999999999999999999"] {
            assert!(lot_id(bad).is_none(), "{bad}");
        }
    }
}
