//! The desk's overviews: who still writes to the retired domains (with its weekly chart
//! and CSV) and the audit trail with its verified hash chain.

use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::chrome::{Chrome, failed, pairs, render, value};
use super::{Desk, blocking, chart};
use crate::clock::{format_time, unix_now};
use crate::review::filter::{Criteria, Filter};
use crate::review::listed::Listed;
use crate::review::{ReviewError, audit, listing, report};

/// One report row, ready to show.
pub struct ReportRow {
    pub sender: String,
    pub messages: u64,
    pub addresses: String,
    pub first_seen: String,
    pub last_seen: String,
    pub automated: bool,
}

#[derive(Template)]
#[template(path = "desk/report.html")]
struct ReportPage {
    c: Chrome,
    since: String,
    query: String,
    chart: chart::Chart,
    tables: Vec<(&'static str, Vec<ReportRow>)>,
}

/// Chart width in weeks and rows in sender domains.
const CHART_WEEKS: usize = 26;
const CHART_DOMAINS: usize = 6;

async fn report_data(
    desk: &Arc<Desk>,
    since: &str,
) -> Result<(Vec<Listed>, report::Report), ReviewError> {
    let criteria = Criteria {
        since: (!since.is_empty()).then(|| since.to_owned()),
        ..Criteria::default()
    };
    let filter = Filter::new(&criteria, unix_now())?;
    blocking(desk, move |context| {
        let listed = listing::fetch(context, None, &filter)?;
        let built = report::build(&listed);
        Ok((listed, built))
    })
    .await
}

pub async fn report(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let since = value(&pairs(query.as_deref()), "since");
    let query = if since.is_empty() {
        String::new()
    } else {
        format!("?since={}", crate::admin::http::percent_encode(&since))
    };
    let c = Chrome::new(&headers, "report", format!("/report{query}"));
    let (listed, built) = match report_data(&desk, &since).await {
        Ok(data) => data,
        Err(e) => return failed(c, &e),
    };
    let rows = |rows: Vec<report::SenderRow>| {
        rows.into_iter()
            .map(|r| ReportRow {
                addresses: r
                    .retired_addresses
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                sender: r.sender,
                messages: r.messages,
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                automated: r.looks_automated,
            })
            .collect::<Vec<_>>()
    };
    let page = ReportPage {
        chart: chart::weekly(&listed, CHART_DOMAINS, CHART_WEEKS),
        tables: vec![
            (c.t.sender_domain, rows(built.domains)),
            (c.t.sender_address, rows(built.senders)),
        ],
        since,
        query,
        c,
    };
    render(StatusCode::OK, &page)
}

/// The report as CSV, the same file `reclaim report --csv` writes.
pub async fn report_csv(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let since = value(&pairs(query.as_deref()), "since");
    let built = match report_data(&desk, &since).await {
        Ok((_, built)) => built,
        Err(e) => return failed(Chrome::new(&headers, "report", "/report".into()), &e),
    };
    let mut csv = Vec::new();
    if let Err(e) = report::write_csv(&mut csv, &built) {
        let e = ReviewError::Write(e);
        return failed(Chrome::new(&headers, "report", "/report".into()), &e);
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"reclaim-senders.csv\"",
            ),
        ],
        csv,
    )
        .into_response()
}

/// One audit record, ready to show.
pub struct AuditRow {
    pub seq: u64,
    pub time: String,
    pub who: String,
    pub action: String,
    pub ids: String,
    pub status: u16,
    pub reason: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "desk/audit.html")]
struct AuditPage {
    c: Chrome,
    checked: Result<u64, String>,
    total: usize,
    rows: Vec<AuditRow>,
}

pub async fn audit(State(desk): State<Arc<Desk>>, headers: HeaderMap) -> Response {
    let c = Chrome::new(&headers, "audit", "/audit".into());
    let trail = match blocking(&desk, |context| audit::fetch(context, None)).await {
        Ok(trail) => trail,
        Err(e) => return failed(c, &e),
    };
    let total = trail.records.len();
    let rows = trail
        .records
        .into_iter()
        .rev()
        .take(desk.limits.audit_rows)
        .map(|r| AuditRow {
            seq: r.seq,
            time: format_time(r.entry.time)
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_owned(),
            who: r.entry.who,
            action: r.entry.action,
            ids: r.entry.ids.join(" "),
            status: r.entry.status,
            reason: r.entry.reason.unwrap_or_default(),
            detail: r.entry.detail.unwrap_or_default(),
        })
        .collect();
    let page = AuditPage {
        c,
        checked: trail.checked,
        total,
        rows,
    };
    render(StatusCode::OK, &page)
}
