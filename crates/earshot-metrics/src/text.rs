use crate::histogram::Histogram;
use std::fmt::Write;

/// The `Content-Type` of the text format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape's text, built family by family: each call writes the `# HELP` and `# TYPE` lines
/// and the samples of one metric family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty scrape.
    pub fn new() -> Self {
        Exposition::default()
    }

    /// A counter without labels: a total that only grows (until the process restarts).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, help, "counter");
        self.sample(name, &[], &value.to_string());
    }

    /// A gauge without labels: a value that may go up and down.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        self.sample(name, &[], &number(value));
    }

    /// A counter with labels. Every sample must carry the same label names.
    pub fn counters<'a, L>(&mut self, name: &str, help: &str, samples: L)
    where
        L: IntoIterator<Item = (Vec<(&'a str, String)>, u64)>,
    {
        self.header(name, help, "counter");
        for (labels, value) in samples {
            self.sample(name, &labels, &value.to_string());
        }
    }

    /// A gauge with labels. Every sample must carry the same label names.
    pub fn gauges<'a, L>(&mut self, name: &str, help: &str, samples: L)
    where
        L: IntoIterator<Item = (Vec<(&'a str, String)>, f64)>,
    {
        self.header(name, help, "gauge");
        for (labels, value) in samples {
            self.sample(name, &labels, &number(value));
        }
    }

    /// A histogram; `name` is the base name (`…_seconds`), the `_bucket`, `_sum` and `_count`
    /// series are derived from it.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        let s = h.snapshot();
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (le, count) in &s.buckets {
            self.sample(&bucket, &[("le", number(*le))], &count.to_string());
        }
        self.sample(&bucket, &[("le", "+Inf".into())], &s.count.to_string());
        self.sample(&format!("{name}_sum"), &[], &number(s.sum_seconds));
        self.sample(&format!("{name}_count"), &[], &s.count.to_string());
    }

    /// The whole text, ready to be sent with [`CONTENT_TYPE`].
    pub fn finish(self) -> String {
        self.out
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, String)], value: &str) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }
}

/// Go's float formatting as Prometheus reads it: plain decimals, and the special values spelt
/// the way its parser accepts.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmetrics_parser::prometheus::parse_prometheus;
    use openmetrics_parser::{PrometheusType, PrometheusValue};

    fn example() -> String {
        static BOUNDS: [f64; 3] = [0.005, 0.05, 0.5];
        let h = Histogram::new(&BOUNDS);
        h.observe_ns(1_000_000);
        h.observe_ns(100_000_000);
        h.observe_ns(9_000_000_000);
        let mut e = Exposition::new();
        e.counter(
            "earshot_test_frames_total",
            "Frames.\nSecond line \\ ok",
            42,
        );
        e.gauge("earshot_test_calls", "Calls now.", 3.0);
        e.counters(
            "earshot_test_requests_total",
            "Requests by command.",
            [
                (vec![("command", "listcalls".to_string())], 7),
                (vec![("command", "we\"ird\\\nname".to_string())], 1),
            ],
        );
        e.histogram("earshot_test_latency_seconds", "Latency.", &h);
        e.finish()
    }

    #[test]
    fn writes_the_text_format() {
        let text = example();
        let expected_lines = [
            "# HELP earshot_test_frames_total Frames.\\nSecond line \\\\ ok",
            "# TYPE earshot_test_frames_total counter",
            "earshot_test_frames_total 42",
            "earshot_test_calls 3",
            "earshot_test_requests_total{command=\"listcalls\"} 7",
            "earshot_test_requests_total{command=\"we\\\"ird\\\\\\nname\"} 1",
            "# TYPE earshot_test_latency_seconds histogram",
            "earshot_test_latency_seconds_bucket{le=\"0.005\"} 1",
            "earshot_test_latency_seconds_bucket{le=\"0.05\"} 1",
            "earshot_test_latency_seconds_bucket{le=\"0.5\"} 2",
            "earshot_test_latency_seconds_bucket{le=\"+Inf\"} 3",
            "earshot_test_latency_seconds_sum 9.101",
            "earshot_test_latency_seconds_count 3",
        ];
        for line in expected_lines {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_parser_reads_back_what_was_written() {
        let text = example();
        let parsed = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let fam = &parsed.families["earshot_test_requests_total"];
        assert_eq!(fam.family_type, PrometheusType::Counter);
        assert_eq!(fam.iter_samples().count(), 2);
        let hist = &parsed.families["earshot_test_latency_seconds"];
        assert_eq!(hist.family_type, PrometheusType::Histogram);
        let sample = hist.iter_samples().next().expect("one histogram sample");
        match &sample.value {
            PrometheusValue::Histogram(h) => {
                assert_eq!(h.count, Some(3));
                assert_eq!(h.buckets.len(), 4);
            }
            other => panic!("not a histogram: {other:?}"),
        }
    }

    #[test]
    fn special_numbers_use_prometheus_spelling() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1e-4), "0.0001");
    }
}
