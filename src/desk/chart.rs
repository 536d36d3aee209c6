//! The report's chart: messages per week per sender domain, as numbers for an inline SVG
//! (drawn by the template, so every label is escaped; no script draws anything). Pure.

use std::collections::BTreeMap;

use crate::review::listed::Listed;

/// Seconds in a week.
const WEEK_SECS: i64 = 7 * 86_400;
/// 1970-01-05, the first Monday after the epoch: weeks start on Mondays (ISO 8601).
const FIRST_MONDAY: i64 = 4 * 86_400;
const WIDTH: u32 = 760;
const LEFT: u32 = 200;
const RIGHT: u32 = WIDTH - 50;
const ROW_HEIGHT: u32 = 44;
const BAR_MAX: u32 = 30;
/// Widest slot of one week, so a few weeks still read as bars, not as a wall.
const SLOT_MAX: u32 = 28;
const COLOURS: [&str; 7] = [
    "#1f5f8b", "#2f7d4f", "#a4471b", "#6b4c9a", "#8a6d1f", "#2b7a86", "#7b8794",
];

/// One bar: one week of one domain.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub title: String,
}

/// One sender domain's row of weekly bars.
pub struct Row {
    pub label: String,
    pub total: u64,
    pub colour: &'static str,
    pub label_y: u32,
    pub base_y: u32,
    pub bars: Vec<Bar>,
}

/// The whole chart; `rows` is empty when there is nothing to draw.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub left: u32,
    pub right: u32,
    pub rows: Vec<Row>,
    pub first_week: String,
    pub last_week: String,
}

fn week_of(unix: i64) -> i64 {
    (unix - FIRST_MONDAY).div_euclid(WEEK_SECS)
}

fn week_start(week: i64) -> String {
    crate::clock::format_time(week * WEEK_SECS + FIRST_MONDAY)
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

/// The sender domain a message counts for, as in the report.
pub fn sender_domain(m: &Listed) -> String {
    match m.mail_from.to_lowercase().rsplit_once('@') {
        Some((_, d)) => d.to_owned(),
        None => "(null sender)".to_owned(),
    }
}

/// Messages per week for the `max_domains` busiest sender domains (the rest as one row
/// "others"), over the last `max_weeks` weeks that have mail.
pub fn weekly(listed: &[Listed], max_domains: usize, max_weeks: usize) -> Chart {
    let mut chart = Chart {
        width: WIDTH,
        height: 0,
        left: LEFT,
        right: RIGHT,
        rows: Vec::new(),
        first_week: String::new(),
        last_week: String::new(),
    };
    let Some(last) = listed.iter().map(|m| week_of(m.received_unix)).max() else {
        return chart;
    };
    let weeks = i64::try_from(max_weeks.max(1)).unwrap_or(52);
    let first = listed
        .iter()
        .map(|m| week_of(m.received_unix))
        .min()
        .unwrap_or(last)
        .max(last - weeks + 1);
    let mut per_domain: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    for m in listed {
        let week = week_of(m.received_unix);
        if week >= first {
            *per_domain
                .entry(sender_domain(m))
                .or_default()
                .entry(week)
                .or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, BTreeMap<i64, u64>)> = per_domain.into_iter().collect();
    ranked.sort_by(|a, b| {
        let total = |w: &BTreeMap<i64, u64>| w.values().sum::<u64>();
        total(&b.1).cmp(&total(&a.1)).then(a.0.cmp(&b.0))
    });
    if ranked.len() > max_domains {
        let mut others: BTreeMap<i64, u64> = BTreeMap::new();
        for (_, weeks) in ranked.drain(max_domains..) {
            for (week, n) in weeks {
                *others.entry(week).or_default() += n;
            }
        }
        ranked.push(("others".to_owned(), others));
    }
    let highest = ranked
        .iter()
        .flat_map(|(_, w)| w.values().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let span = u32::try_from(last - first + 1).unwrap_or(1).max(1);
    let slot = ((RIGHT - LEFT) / span).clamp(1, SLOT_MAX);
    for (i, (label, weeks)) in ranked.into_iter().enumerate() {
        let top = u32::try_from(i).unwrap_or(0) * ROW_HEIGHT;
        let base_y = top + BAR_MAX + 8;
        let bars = weeks
            .iter()
            .map(|(&week, &n)| {
                let h = u32::try_from(n * u64::from(BAR_MAX) / highest)
                    .unwrap_or(BAR_MAX)
                    .max(1);
                Bar {
                    x: LEFT + u32::try_from(week - first).unwrap_or(0) * slot,
                    y: base_y - h,
                    w: slot.saturating_sub(2).max(1),
                    h,
                    title: format!("{}: {n}", week_start(week)),
                }
            })
            .collect();
        chart.rows.push(Row {
            total: weeks.values().sum(),
            label,
            colour: COLOURS[i % COLOURS.len()],
            label_y: top + 26,
            base_y,
            bars,
        });
    }
    chart.height = u32::try_from(chart.rows.len()).unwrap_or(0) * ROW_HEIGHT + 18;
    chart.first_week = week_start(first);
    chart.last_week = week_start(last);
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(from: &str, unix: i64) -> Listed {
        Listed {
            mail_from: from.into(),
            received_unix: unix,
            ..Listed::default()
        }
    }

    #[test]
    fn weeks_start_on_monday_and_domains_rank() {
        // 2026-11-30 is a Monday.
        let monday = 1_795_996_800;
        assert_eq!(week_start(week_of(monday + 3 * 86_400)), "2026-11-30");
        let listed = vec![
            at("a@busy.example", monday),
            at("b@busy.example", monday + 86_400),
            at("c@busy.example", monday - WEEK_SECS),
            at("x@quiet.example", monday),
            at("", monday),
            at("y@old.example", monday - 100 * WEEK_SECS),
        ];
        let chart = weekly(&listed, 2, 4);
        let labels: Vec<&str> = chart.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["busy.example", "(null sender)", "others"]);
        assert_eq!(chart.rows[0].total, 3);
        assert_eq!(chart.rows[0].bars.len(), 2);
        let tallest = chart.rows[0].bars.iter().map(|b| b.h).max();
        assert_eq!(tallest, Some(BAR_MAX), "the busiest week fills the row");
        assert_eq!(
            chart.rows[2].total, 1,
            "the message 100 weeks back is outside"
        );
        assert_eq!(chart.last_week, "2026-11-30");
        assert!(weekly(&[], 6, 26).rows.is_empty());
    }
}
