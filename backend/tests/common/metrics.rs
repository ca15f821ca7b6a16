//! `GET /metrics` as a scraper reads it: parsed by a Prometheus text parser.

use prometheus_parse::{Sample, Scrape, Value};

use super::Api;

/// The manager's metrics, read without credentials (test managers listen on loopback).
pub async fn scrape(api: &Api) -> Scrape {
    let response = reqwest::get(format!("{}/metrics", api.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text")
}

/// The value of series `metric` (with `label`, if given).
pub fn value(scrape: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let sample: &Sample = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == metric && label.is_none_or(|(name, value)| sample.labels.get(name) == Some(value))
        })
        .unwrap_or_else(|| panic!("no {metric} {label:?} in {:#?}", scrape.samples));
    match sample.value {
        Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
        ref other => panic!("{metric}: {other:?}"),
    }
}
