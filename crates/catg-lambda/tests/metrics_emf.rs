//! The Lambda functions' metrics, as CloudWatch reads them: Embedded Metric Format documents,
//! one JSON line per label set, parsed and checked against the format's rules.

use catg_core::metrics;
use serde_json::Value;
use std::time::Duration;

#[test]
fn metrics_leave_as_embedded_metric_format_lines_with_catgs_names_and_labels() {
    let collector = catg_lambda::init_metrics("transform").expect("the first recorder of this process");
    // What one request, one render and two ingests record (the same calls the handlers make).
    metrics::request("hit", 200, 4096);
    metrics::request("queued", 202, 0);
    metrics::rendered("webp", Duration::from_millis(40));
    metrics::ingested("new", 1000, Some(12.0));
    metrics::ingested("duplicate", 1000, None);
    metrics::rejected("ingest", "truncated");

    let mut out = Vec::new();
    catg_lambda::flush_metrics_to(collector, &mut out);
    let documents: Vec<Value> = String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(documents.len() >= 5, "one document per label set: {documents:#?}");
    let mut seen = std::collections::BTreeMap::new();
    for doc in &documents {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "epoch ms: {doc}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "catg");
        // Every dimension named in the directive is a top-level member, and `function` is one.
        let dimensions = directive["Dimensions"][0].as_array().expect("one dimension set");
        assert!(dimensions.iter().any(|d| d == "function"), "{doc}");
        assert_eq!(doc["function"], "transform");
        for dimension in dimensions {
            assert!(doc[dimension.as_str().expect("name")].is_string(), "dimension {dimension} in {doc}");
        }
        // Every metric named in the directive has a numeric value (or values) at top level.
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("name");
            let value = &doc[name];
            let number = value.as_f64().or_else(|| value["Values"][0].as_f64()).or_else(|| value[0].as_f64());
            let mut labels: Vec<String> = dimensions
                .iter()
                .filter_map(|d| d.as_str())
                .filter(|d| *d != "function")
                .map(|d| format!("{d}={}", doc[d].as_str().unwrap_or_default()))
                .collect();
            labels.sort();
            seen.insert(format!("{name}{{{}}}", labels.join(",")), number.unwrap_or_else(|| panic!("{name} in {doc}")));
        }
    }
    let value = |series: &str| *seen.get(series).unwrap_or_else(|| panic!("no {series} in {seen:?}"));
    assert_eq!(value("catg_requests_total{outcome=hit,status=200}"), 1.0);
    assert_eq!(value("catg_requests_total{outcome=queued,status=202}"), 1.0);
    assert_eq!(value("catg_response_bytes_total{}"), 4096.0);
    assert_eq!(value("catg_renders_total{format=webp}"), 1.0);
    assert!((value("catg_render_seconds{format=webp}") - 0.04).abs() < 1e-9);
    assert_eq!(value("catg_ingests_total{outcome=new}"), 1.0);
    assert_eq!(value("catg_ingests_total{outcome=duplicate}"), 1.0);
    assert_eq!(value("catg_dedup_hits_total{}"), 1.0);
    assert_eq!(value("catg_ingest_bytes_total{}"), 2000.0);
    assert_eq!(value("catg_source_megapixels{}"), 12.0);
    assert_eq!(value("catg_rejects_total{reason=truncated,stage=ingest}"), 1.0);

    // A flush empties the counters: the next invocation's lines carry only its own counts.
    let mut again = Vec::new();
    catg_lambda::flush_metrics_to(collector, &mut again);
    assert!(!String::from_utf8_lossy(&again).contains("catg_requests_total"), "counters restart after a flush");
}
