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
    if r >= 100.0 {
        format!("{r:.0} {unit}")
    } else {
        format!("{r:.1} {unit}")
    }
}

/// A latency in milliseconds.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
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
}
