use serde_json::Value;

use super::*;
use crate::exchange::{sample, Body};

/// The embedded lines and the meta object of a written page.
fn parts(page: &str) -> (Vec<Value>, Value) {
    let data_start = page.find("id=\"tl-data\">\n").expect("data element") + 14;
    let data_end = data_start + page[data_start..].find("</script>").unwrap();
    let lines = page[data_start..data_end]
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let meta_start = page.find("id=\"tl-meta\">").unwrap() + 13;
    let meta_end = meta_start + page[meta_start..].find("</script>").unwrap();
    (
        lines,
        serde_json::from_str(&page[meta_start..meta_end]).unwrap(),
    )
}

fn page(exchanges: &[Exchange], limits: EmbedLimits) -> String {
    let mut report = HtmlReport::with_limits(Vec::new(), limits);
    for x in exchanges {
        report.push(x).unwrap();
    }
    String::from_utf8(report.finish().unwrap()).unwrap()
}

#[test]
fn wire_text_cannot_close_the_data_element() {
    let mut x = sample();
    let evil = "</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)>";
    x.response_body = Some(Body {
        bytes: evil.as_bytes().to_vec(),
        size: evil.len() as u64,
        ..Body::default()
    });
    x.request_headers
        .push(("X-Note".into(), "</SCRIPT >".into()));
    let page = page(&[x], EmbedLimits::default());
    // Three script elements (data, meta, code) and nothing else closes one.
    assert_eq!(page.matches("</script>").count(), 3, "{page}");
    assert!(!page.to_ascii_lowercase().contains("</script >"));
    assert!(!page.contains("<img"));
    let (lines, meta) = parts(&page);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["response_body"], evil);
    assert_eq!(lines[0]["request_headers"][0][1], "</SCRIPT >");
    assert_eq!(meta["embedded"], 1);
    assert_eq!(meta["left_out"], 0);
}

#[test]
fn each_line_is_the_json_object_plus_seq() {
    let mut a = sample();
    a.seq = 3;
    let mut b = sample();
    b.error = Some("connection reset".into());
    b.status = None;
    let page = page(&[a.clone(), b.clone()], EmbedLimits::default());
    let (lines, _) = parts(&page);
    for (line, x) in lines.iter().zip([&a, &b]) {
        let mut want = json::to_value(x);
        want["seq"] = x.seq.into();
        assert_eq!(line, &want);
    }
}

#[test]
fn past_the_exchange_limit_exchanges_are_counted_not_embedded() {
    let xs: Vec<Exchange> = (0..5)
        .map(|i| {
            let mut x = sample();
            x.seq = i;
            x
        })
        .collect();
    let limits = EmbedLimits {
        max_exchanges: 2,
        ..EmbedLimits::default()
    };
    let (lines, meta) = parts(&page(&xs, limits));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["seq"], 1);
    assert_eq!(meta["embedded"], 2);
    assert_eq!(meta["left_out"], 3);
    assert_eq!(meta["max_exchanges"], 2);
}

#[test]
fn past_the_byte_limit_exchanges_are_counted_not_embedded() {
    let one = serde_json::to_vec(&json::to_value(&sample()))
        .unwrap()
        .len() as u64;
    let limits = EmbedLimits {
        max_exchanges: 100,
        // Room for two lines (each has `seq` and a newline more), not three.
        max_bytes: 3 * one,
    };
    let xs = vec![sample(); 4];
    let (lines, meta) = parts(&page(&xs, limits));
    assert_eq!(lines.len(), 2);
    assert_eq!(meta["left_out"], 2);
}

#[test]
fn the_page_fetches_nothing() {
    let page = page(&[sample()], EmbedLimits::default());
    let lower = page.to_ascii_lowercase();
    for needle in [
        " src=",
        " href=",
        "@import",
        "url(",
        "fetch(",
        "xmlhttprequest",
        "http://",
        "https://",
    ] {
        // The one exchange's URL is data, not a reference: look outside the data.
        let outside = lower.replace("https://api.example.com/v1/items", "");
        assert!(!outside.contains(needle), "{needle}");
    }
    assert!(page.contains("default-src 'none'"));
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
}

#[test]
fn an_empty_report_is_a_whole_page() {
    let (lines, meta) = parts(&page(&[], EmbedLimits::default()));
    assert!(lines.is_empty());
    assert_eq!(meta["embedded"], 0);
}
