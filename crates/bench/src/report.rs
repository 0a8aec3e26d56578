//! The results table: one row per measured case, printed as Markdown (aligned, so it reads as
//! plain text too and pastes into docs/BENCHMARKS.md unchanged).

use crate::stats::Measured;

/// One line of the table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// sqlite or postgres.
    pub backend: String,
    /// appends, reads, growth, fan-out, rebuild, memory, start-up.
    pub stage: String,
    /// What was measured.
    pub case: String,
    /// Galley's throughput (or the single figure of the row).
    pub value: String,
    /// Galley's median latency.
    pub p50: String,
    /// Galley's 99th-percentile latency.
    pub p99: String,
    /// What the baseline is.
    pub baseline: String,
    /// The baseline's throughput.
    pub base_value: String,
    /// The baseline's median latency.
    pub base_p50: String,
    /// The baseline's 99th-percentile latency.
    pub base_p99: String,
    /// Galley's throughput over the baseline's.
    pub ratio: String,
}

impl Row {
    /// A row with a single figure.
    pub fn figure(backend: &str, stage: &str, case: &str, value: String) -> Row {
        Row {
            backend: backend.to_owned(),
            stage: stage.to_owned(),
            case: case.to_owned(),
            value,
            ..Row::default()
        }
    }

    /// A row with throughput and latencies.
    pub fn measured(backend: &str, stage: &str, case: &str, m: &Measured, unit: &str) -> Row {
        Row {
            backend: backend.to_owned(),
            stage: stage.to_owned(),
            case: case.to_owned(),
            value: rate(m.rate(), unit),
            p50: ms(m.p50()),
            p99: ms(m.p99()),
            ..Row::default()
        }
    }

    /// A row with latencies only (the throughput of a sequential client says nothing).
    pub fn latency(backend: &str, stage: &str, case: &str, m: &Measured) -> Row {
        Row {
            backend: backend.to_owned(),
            stage: stage.to_owned(),
            case: case.to_owned(),
            value: format!("n={}", m.count()),
            p50: ms(m.p50()),
            p99: ms(m.p99()),
            ..Row::default()
        }
    }

    /// Adds the baseline's figures and the throughput ratio.
    pub fn against(
        mut self,
        baseline: &str,
        galley: &Measured,
        base: &Measured,
        unit: &str,
    ) -> Row {
        self.baseline = baseline.to_owned();
        self.base_value = rate(base.rate(), unit);
        self.base_p50 = ms(base.p50());
        self.base_p99 = ms(base.p99());
        self.ratio = if base.rate() > 0.0 {
            format!("{:.2}", galley.rate() / base.rate())
        } else {
            "n/a".to_owned()
        };
        self
    }
}

/// A throughput with its unit.
pub fn rate(r: f64, unit: &str) -> String {
    format!("{} {unit}", rate_number(r))
}

fn rate_number(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// A latency in milliseconds.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else {
        format!("{} ms", ms_number(v))
    }
}

fn ms_number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The lowest and highest of several measurements (rounds) as `low–high`, or one figure when
/// they print alike; `-` for none.
fn span(values: &[f64], number: fn(f64) -> String) -> String {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let Some(low) = finite.iter().copied().reduce(f64::min) else {
        return "-".to_owned();
    };
    let high = finite.iter().copied().fold(low, f64::max);
    let (a, b) = (number(low), number(high));
    if a == b {
        a
    } else {
        format!("{a}–{b}")
    }
}

/// Throughputs of several rounds, as a range with the unit once.
pub fn rate_span(values: &[f64], unit: &str) -> String {
    match span(values, rate_number) {
        s if s == "-" => s,
        s => format!("{s} {unit}"),
    }
}

/// Latencies of several rounds in milliseconds, as a range.
pub fn ms_span(values: &[f64]) -> String {
    match span(values, ms_number) {
        s if s == "-" => s,
        s => format!("{s} ms"),
    }
}

/// Ratios of several rounds, as a range.
pub fn ratio_span(values: &[f64]) -> String {
    span(values, |v| format!("{v:.2}"))
}

/// A size in MiB from KiB.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

const HEADERS: [&str; 11] = [
    "backend",
    "stage",
    "case",
    "galley",
    "p50",
    "p99",
    "baseline",
    "baseline rate",
    "baseline p50",
    "baseline p99",
    "ratio",
];

fn cells(r: &Row) -> [&str; 11] {
    [
        &r.backend,
        &r.stage,
        &r.case,
        &r.value,
        &r.p50,
        &r.p99,
        &r.baseline,
        &r.base_value,
        &r.base_p50,
        &r.base_p99,
        &r.ratio,
    ]
}

/// Renders rows as an aligned Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut widths = HEADERS.map(str::len);
    for row in rows {
        for (w, c) in widths.iter_mut().zip(cells(row)) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |values: [&str; 11]| {
        let mut s = String::from("|");
        for (v, w) in values.iter().zip(widths) {
            s.push_str(&format!(" {v:<w$} |"));
        }
        s.push('\n');
        s
    };
    let mut out = line(HEADERS);
    out.push('|');
    for w in widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for row in rows {
        out.push_str(&line(cells(row)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned_markdown() {
        let rows = vec![Row::figure(
            "sqlite",
            "start-up",
            "to /readyz",
            "0.12 s".into(),
        )];
        let text = markdown(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("|---"));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    }

    #[test]
    fn rounds_print_as_a_range_with_the_unit_once() {
        assert_eq!(rate_span(&[6560.4, 5650.2], "req/s"), "5650–6560 req/s");
        assert_eq!(rate_span(&[812.0, 812.4], "req/s"), "812 req/s");
        assert_eq!(rate_span(&[42.24], "req/s"), "42.2 req/s");
        assert_eq!(ms_span(&[9.1, 12.34, 10.0]), "9.10–12.3 ms");
        assert_eq!(ratio_span(&[2.6, 3.0]), "2.60–3.00");
        assert_eq!(ms_span(&[]), "-");
        assert_eq!(rate_span(&[f64::NAN], "req/s"), "-");
    }

    #[test]
    fn a_table_with_ranges_stays_aligned() {
        let rows = vec![
            Row {
                value: rate_span(&[5650.0, 6560.0], "req/s"),
                ratio: ratio_span(&[2.61, 2.95]),
                ..Row::figure("postgres", "peer", "one article by id", String::new())
            },
            Row::figure("postgres", "peer", "GET /healthz", "54000 req/s".into()),
        ];
        let text = markdown(&rows);
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
        assert!(text.contains("| 5650–6560 req/s |"), "{text}");
    }
}
