//! A scraped exposition in the Prometheus text format, parsed with a strict grammar
//! (`openmetrics-parser`: any line it does not accept fails the parse, label values may hold
//! any character), as a flat list of series to look up by name and labels.

use std::collections::BTreeMap;

use openmetrics_parser::{PrometheusType, PrometheusValue, prometheus};

/// One series: a family's sample with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub kind: Kind,
    pub labels: BTreeMap<String, String>,
    /// A counter's or gauge's value; a histogram's count.
    pub value: f64,
    /// A histogram's cumulative buckets (upper bound, count), `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
}

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// A parsed exposition.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub series: Vec<Series>,
    /// `# HELP` text by family.
    pub help: BTreeMap<String, String>,
}

/// Parses `text`, panicking with the parser's message when it is not valid Prometheus text
/// format (this is a test helper).
///
/// # Panics
/// On an invalid exposition.
pub fn parse(text: &str) -> Exposition {
    let parsed = prometheus::parse_prometheus(text)
        .unwrap_or_else(|e| panic!("not Prometheus text format ({e:?}):\n{text}"));
    let mut series = Vec::new();
    let mut help = BTreeMap::new();
    for (name, family) in &parsed.families {
        help.insert(name.clone(), family.help.clone());
        let kind = match family.family_type {
            PrometheusType::Counter => Kind::Counter,
            PrometheusType::Gauge => Kind::Gauge,
            PrometheusType::Histogram => Kind::Histogram,
            PrometheusType::Summary => Kind::Summary,
            PrometheusType::Unknown => Kind::Untyped,
        };
        for sample in family.iter_samples() {
            let labels: BTreeMap<String, String> = sample
                .get_labelset()
                .map(|set| set.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let (value, buckets) = match &sample.value {
                PrometheusValue::Counter(c) => (c.value.as_f64(), Vec::new()),
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => (n.as_f64(), Vec::new()),
                PrometheusValue::Histogram(h) => {
                    let buckets: Vec<(f64, f64)> = h
                        .buckets
                        .iter()
                        .map(|b| (b.upper_bound, b.count.as_f64()))
                        .collect();
                    let count = h.count.map(|n| n as f64).or_else(|| {
                        buckets
                            .iter()
                            .find(|(bound, _)| bound.is_infinite())
                            .map(|(_, n)| *n)
                    });
                    (count.unwrap_or(f64::NAN), buckets)
                }
                PrometheusValue::Summary(s) => (s.count.map_or(f64::NAN, |n| n as f64), Vec::new()),
            };
            series.push(Series {
                name: name.clone(),
                kind,
                labels,
                value,
                buckets,
            });
        }
    }
    Exposition { series, help }
}

fn has(series: &Series, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| series.labels.get(*k).map(String::as_str) == Some(*v))
}

impl Exposition {
    /// The series of `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series
            .iter()
            .filter(move |s| s.name == name && has(s, labels))
    }

    /// The value of the one series of `name` with exactly `labels`, if it exists.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series
            .iter()
            .find(|s| s.name == name && s.labels.len() == labels.len() && has(s, labels))
            .map(|s| s.value)
    }

    /// The values of `name`'s series whose labels include `labels`, added (0 when none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The kind of family `name`, if it is exposed.
    pub fn kind(&self, name: &str) -> Option<Kind> {
        self.series.iter().find(|s| s.name == name).map(|s| s.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP req_total Requests.
# TYPE req_total counter
req_total{route="/versions/{version_id}/approve",status="200"} 3
req_total{route="/blob/{bucket}/{key:.+}",status="404"} 1
# HELP up_now Up.
# TYPE up_now gauge
up_now 1
# TYPE dur_seconds histogram
dur_seconds_bucket{route="/a",le="0.1"} 1
dur_seconds_bucket{route="/a",le="1"} 2
dur_seconds_bucket{route="/a",le="+Inf"} 2
dur_seconds_sum{route="/a"} 0.6
dur_seconds_count{route="/a"} 2
"#;

    #[test]
    fn series_with_braces_in_label_values_and_histograms() {
        let e = parse(SAMPLE);
        assert_eq!(
            e.get(
                "req_total",
                &[
                    ("route", "/versions/{version_id}/approve"),
                    ("status", "200")
                ]
            ),
            Some(3.0)
        );
        assert_eq!(
            e.get(
                "req_total",
                &[("route", "/blob/{bucket}/{key:.+}"), ("status", "404")]
            ),
            Some(1.0)
        );
        assert_eq!(e.sum("req_total", &[]), 4.0);
        assert_eq!(e.get("up_now", &[]), Some(1.0));
        assert_eq!(e.kind("dur_seconds"), Some(Kind::Histogram));
        let h = e
            .matching("dur_seconds", &[("route", "/a")])
            .next()
            .unwrap();
        assert_eq!(h.value, 2.0);
        assert_eq!(h.buckets.first(), Some(&(0.1, 1.0)));
        assert_eq!(
            e.help.get("req_total").map(String::as_str),
            Some("Requests.")
        );
    }

    #[test]
    #[should_panic(expected = "not Prometheus text format")]
    fn an_unquoted_label_value_is_refused() {
        parse("# TYPE a_total counter\na_total{route=/x} 1\n");
    }

    #[test]
    #[should_panic(expected = "not Prometheus text format")]
    fn a_value_that_is_no_number_is_refused() {
        parse("# TYPE a_total counter\na_total twelve\n");
    }

    #[test]
    #[should_panic(expected = "not Prometheus text format")]
    fn a_sample_of_another_type_than_declared_is_refused() {
        parse("# TYPE a histogram\na 1\n");
    }
}
