//! Statement CSVs for the back office: one file per participant (its lines, then its totals), a
//! `summary.csv` with one row per participant plus the market's fee income, and `fees.csv` with
//! the fee schedule that applied that day; money with 2 dp.
//!
//! `summary.csv`'s `net` column sums to zero: the participants' nets plus the market's income
//! (protocol section 8's conservation of money, printed). Correction lines (protocol §8, §12) are
//! lines like the others, and `corrections` is a total of its own.
//!
//! Delivery notes (protocol §12): one CSV per buyer per day, a row per dispatch line — what was
//! bought, where it goes, how far it got, and the URL of its lot's public trace.

use crate::goods::GoodsLine;
use crate::statement::Statement;
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::types::Day;
use rust_decimal::Decimal;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The market's row in `summary.csv`: not a valid participant id, so it can never clash with one.
pub const MARKET_ROW: &str = "(market)";

const LINE_HEADER: &str = "participant,day,kind,ref,product,grade,side,price,units,amount,fee";
const SUMMARY_HEADER: &str = "participant,bought,sold,fees,commission,corrections,net";
const DELIVERY_NOTE_HEADER: &str = "ref,lot_id,product,grade,containers,units,seat,destination,status,trace_url";
const FEES_HEADER: &str = "day,commission_pct,clock_fee_per_container,book_fee_pct";

/// Writes `statement-<participant>.csv` for each statement, `summary.csv` and `fees.csv` (the
/// day's `fees`) into `out_dir` (created if missing); returns the paths written, those two last.
pub fn write_statement_csvs(
    statements: &[Statement],
    day: Day,
    fees: &FeeSchedule,
    out_dir: &Path,
) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(out_dir)?;
    let mut written = Vec::with_capacity(statements.len() + 1);
    for statement in statements {
        assert_eq!(statement.day, day, "a statement of {} among those of {day}", statement.day);
        let path = out_dir.join(format!("statement-{}.csv", statement.participant));
        fs::write(&path, statement_csv(statement))?;
        written.push(path);
    }
    let path = out_dir.join("summary.csv");
    fs::write(&path, summary_csv(statements))?;
    written.push(path);
    let path = out_dir.join("fees.csv");
    fs::write(&path, fees_csv(day, fees))?;
    written.push(path);
    Ok(written)
}

/// The fee schedule of `day`: percentages exact to 4 places, the clock fee per container in CNY.
pub fn fees_csv(day: Day, fees: &FeeSchedule) -> String {
    let pct = |ppm: u32| Decimal::new(ppm as i64, 4).normalize().to_string();
    let clock_fee = money(Decimal::new(fees.clock_fee_per_container.0, 2));
    format!("{FEES_HEADER}\n{day},{},{clock_fee},{}\n", pct(fees.commission_ppm), pct(fees.book_fee_ppm))
}

/// One participant's CSV: a header, a row per line, then rows `total_bought`, `total_sold`,
/// `fees`, `commission`, `corrections` and `net` with the figure in the `amount` column.
pub fn statement_csv(statement: &Statement) -> String {
    let mut out = Vec::new();
    let (who, day) = (statement.participant.as_str(), statement.day);
    writeln!(out, "{LINE_HEADER}").expect("writing to memory");
    for line in &statement.lines {
        writeln!(
            out,
            "{who},{day},{},{},{},{},{},{},{},{},{}",
            line.kind.as_str(),
            line.reference,
            line.product,
            line.grade.as_str(),
            line.side.as_str(),
            money(line.price),
            line.units,
            money(line.amount),
            money(line.fee)
        )
        .expect("writing to memory");
    }
    for (label, value) in [
        ("total_bought", statement.total_bought),
        ("total_sold", statement.total_sold),
        ("fees", statement.fees),
        ("commission", statement.commission),
        ("corrections", statement.corrections),
        ("net", statement.net),
    ] {
        writeln!(out, "{who},{day},{label},,,,,,,{},", money(value)).expect("writing to memory");
    }
    String::from_utf8(out).expect("ASCII")
}

/// The day's summary: a row per participant, then the market's row (its fee income as `net`).
pub fn summary_csv(statements: &[Statement]) -> String {
    let mut out = Vec::new();
    writeln!(out, "{SUMMARY_HEADER}").expect("writing to memory");
    let (mut buyer_fees, mut commission) = (Decimal::ZERO, Decimal::ZERO);
    for s in statements {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            s.participant,
            money(s.total_bought),
            money(s.total_sold),
            money(s.fees),
            money(s.commission),
            money(s.corrections),
            money(s.net)
        )
        .expect("writing to memory");
        buyer_fees += s.fees;
        commission += s.commission;
    }
    let zero = money(Decimal::ZERO);
    writeln!(
        out,
        "{MARKET_ROW},{zero},{zero},{},{},{zero},{}",
        money(buyer_fees),
        money(commission),
        money(buyer_fees + commission)
    )
    .expect("writing to memory");
    String::from_utf8(out).expect("ASCII")
}

/// A buyer's delivery note: a row per line, in ref order. `base_url` (`http://host:port`) makes
/// each lot's trace URL (`<base_url>/lot/<lot_id>`, the page the QR code opens); a book trade's
/// line has no lot, so no trace.
pub fn delivery_note_csv<'a>(lines: impl IntoIterator<Item = &'a GoodsLine>, base_url: &str) -> String {
    let mut out = String::from(DELIVERY_NOTE_HEADER);
    out.push('\n');
    let base_url = base_url.trim_end_matches('/');
    for line in lines {
        let lot = line.lot().map_or(String::new(), |l| l.0.to_string());
        let trace = line.lot().map_or(String::new(), |l| format!("{base_url}/lot/{}", l.0));
        let row = [
            line.reference.to_string(),
            lot,
            line.product.to_string(),
            line.grade.map_or(String::new(), |g| g.as_str().to_string()),
            line.containers.map_or(String::new(), |c| c.to_string()),
            line.units.to_string(),
            line.seat.map_or(String::new(), |s| s.to_string()),
            line.destination.clone(),
            line.status.as_str().to_string(),
            trace,
        ];
        let row: Vec<String> = row.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Money with exactly 2 decimal places.
fn money(value: Decimal) -> String {
    format!("{:.2}", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("pickup:D12"), "pickup:D12");
        assert_eq!(csv_field("delivery:88 Caoan Rd, Shanghai"), "\"delivery:88 Caoan Rd, Shanghai\"");
        assert_eq!(csv_field("a \"b\""), "\"a \"\"b\"\"\"");
    }

    #[test]
    fn money_prints_two_places() {
        assert_eq!(money(Decimal::new(5, 0)), "5.00");
        assert_eq!(money(Decimal::new(-1234, 2)), "-12.34");
        assert_eq!(money(Decimal::new(0, 2)), "0.00");
    }
}
