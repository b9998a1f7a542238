//! The masker's tests: tables per format, an oracle (`serde_json`) for JSON, every
//! prefix of random documents, and garbage through every scanner.

use super::rules::{DEFAULT_KEY_PATTERN, MASK};
use super::*;
use serde_json::Value;

fn masker() -> Masker {
    Masker::new(
        DEFAULT_KEY_PATTERN,
        &["secretsmanager", "ssm", "kms", "sts"],
    )
    .unwrap()
}

fn json(s: &str) -> String {
    let m = masker();
    match m.mask_json(s.as_bytes()) {
        Some(b) => String::from_utf8(b).unwrap(),
        None => s.to_string(),
    }
}

/// The oracle: mask a parsed document (sensitive key → "****", null stays null).
fn mask_value(m: &Masker, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if m.is_sensitive_key(k) && !v.is_null() {
                    *v = Value::String(MASK.into());
                } else {
                    mask_value(m, v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| mask_value(m, v)),
        _ => {}
    }
}

fn exchange() -> Exchange {
    crate::exchange::sample()
}

#[test]
fn json_table() {
    let cases: &[(&str, &str)] = &[
        (r#"{"password":"hunter2"}"#, r#"{"password":"****"}"#),
        (
            r#"{"a":{"b":{"password":"x"}}}"#,
            r#"{"a":{"b":{"password":"****"}}}"#,
        ),
        (
            r#"[{"token": 12345}, {"ok": 1}]"#,
            r#"[{"token": "****"}, {"ok": 1}]"#,
        ),
        (
            r#"{"apiKey":true,"n":null}"#,
            r#"{"apiKey":"****","n":null}"#,
        ),
        (r#"{"secret":null}"#, r#"{"secret":null}"#),
        // a URL or path echoed in a string: its query parameters masked as a request's
        (
            r#"{"path":"/secret?n=0&api_key=PLANTED"}"#,
            r#"{"path":"/secret?n=0&api_key=****"}"#,
        ),
        (
            r#"{"next":"https://h.example/p?token=abc&page=2"}"#,
            r#"{"next":"https://h.example/p?token=****&page=2"}"#,
        ),
        (r#"{"q":"what? x=1"}"#, r#"{"q":"what? x=1"}"#),
        (
            r#"{"auth":{"user":"u","pw":"p"},"x":2}"#,
            r#"{"auth":"****","x":2}"#,
        ),
        (
            r#"{"tokens":["a","b"],"x":[1,2]}"#,
            r#"{"tokens":"****","x":[1,2]}"#,
        ),
        // escaped quote in the secret, escaped quote in a harmless key
        (
            r#"{"pass":"a\"b\\","q\"":"v"}"#,
            r#"{"pass":"****","q\"":"v"}"#,
        ),
        // key spelled with a unicode escape
        (r#"{"pass\u0077ord":"x"}"#, r#"{"pass\u0077ord":"****"}"#),
        // unicode around
        (
            r#"{"naïve":"é","Session":"☃"}"#,
            r#"{"naïve":"é","Session":"****"}"#,
        ),
        // whitespace kept
        (
            "{ \"token\" :\n  \"abc\" , \"b\" : 1 }",
            "{ \"token\" :\n  \"****\" , \"b\" : 1 }",
        ),
        // a value that looks like a key does not confuse the state machine
        (
            r#"{"name":"password","v":"x"}"#,
            r#"{"name":"password","v":"x"}"#,
        ),
        (r#"["password","x"]"#, r#"["password","x"]"#),
        // JSON lines
        (
            "{\"token\":\"a\"}\n{\"token\":\"b\"}\n",
            "{\"token\":\"****\"}\n{\"token\":\"****\"}\n",
        ),
        // cut prefixes
        (r#"{"password":"hunt"#, r#"{"password":"****""#),
        (r#"{"password":12"#, r#"{"password":"****""#),
        (r#"{"password":tr"#, r#"{"password":"****""#),
        (r#"{"password":{"a":[1,{"#, r#"{"password":"****""#),
        (r#"{"password":"a\"b"#, r#"{"password":"****""#),
        (r#"{"password":"a\"#, r#"{"password":"****""#),
        (r#"{"password":"#, r#"{"password":"#),
        (r#"{"passw"#, r#"{"passw"#),
        (
            r#"{"a":[{"b":{"token":"abc"#,
            r#"{"a":[{"b":{"token":"****""#,
        ),
        // not quite JSON: single-quoted or bare values of sensitive keys
        (r#"{"token":'abc'}"#, r#"{"token":"****"}"#),
        // embedded JSON in a string (API Gateway event body)
        (
            r#"{"body":"{\"password\":\"p\",\"u\":1}"}"#,
            r#"{"body":"{\"password\":\"****\",\"u\":1}"}"#,
        ),
        // embedded form in a string
        (
            r#"{"body":"user=a&password=b"}"#,
            r#"{"body":"user=a&password=****"}"#,
        ),
        // base64 is not a form, whatever its letters spell
        (
            r#"{"a":"data:image/png;base64,iVBO2aKeyDay+x/AuthQ="}"#,
            r#"{"a":"data:image/png;base64,iVBO2aKeyDay+x/AuthQ="}"#,
        ),
        (
            r#"{"a":"c2VjcmV0aKeyx+Q=="}"#,
            r#"{"a":"c2VjcmV0aKeyx+Q=="}"#,
        ),
        (r#"{"a":"x=1&auth="}"#, r#"{"a":"x=1&auth=****"}"#),
        // cut inside escapes: in a key, in a secret, in a \u sequence
        (r#"{"pass\"#, r#"{"pass\"#),
        (r#"{"password":"ab\u00"#, r#"{"password":"****""#),
        (r#"{"password":"\ud83d\ude0"#, r#"{"password":"****""#),
        (r#"{"a":"x","password""#, r#"{"a":"x","password""#),
        (
            r#"{"a":"x","password" : -"#,
            r#"{"a":"x","password" : "****""#,
        ),
        (r#"[[{"k":1},{"token":[1,2"#, r#"[[{"k":1},{"token":"****""#),
        // a sensitive key inside a masked object's harmless sibling stays harmless
        (
            r#"{"x":{"y":"password"},"z":"token"}"#,
            r#"{"x":{"y":"password"},"z":"token"}"#,
        ),
        ("not json at all", "not json at all"),
    ];
    for (input, want) in cases {
        assert_eq!(json(input), *want, "input: {input}");
    }
}

#[test]
fn headers_table() {
    let m = masker();
    let cases: &[(&str, &str, &str)] = &[
        ("Authorization", "Bearer eyJhbGciOi.abc.def", "Bearer ****"),
        ("authorization", "Basic dXNlcjpwYXNz", "Basic ****"),
        ("Authorization", "rawtoken", "****"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
            "AWS4-HMAC-SHA256 Credential=****, SignedHeaders=host;x-amz-date, Signature=****",
        ),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg==", "Basic ****"),
        ("Cookie", "session=abc123; theme=dark", "session=****; theme=****"),
        ("Set-Cookie", "sid=xyz; Path=/; HttpOnly", "sid=****; Path=/; HttpOnly"),
        ("X-Amz-Security-Token", "FwoGZXIvYXdzE", "****"),
        ("X-Api-Key", "k-123", "****"),
        ("X-My-Secret-Thing", "v", "****"),
        ("X-Session-Id", "v", "****"),
        ("Referer", "https://u:p@x.example/a?token=t&b=1", "https://****@x.example/a?token=****&b=1"),
        ("Location", "/next?X-Amz-Signature=abc", "/next?X-Amz-Signature=****"),
        ("Content-Type", "application/json", "application/json"),
        ("Host", "example.com", "example.com"),
        ("X-Amz-Date", "20240101T000000Z", "20240101T000000Z"),
    ];
    for (name, value, want) in cases {
        let got = m
            .mask_header(name, value)
            .unwrap_or_else(|| value.to_string());
        assert_eq!(got, *want, "{name}: {value}");
    }
}

#[test]
fn url_and_query_table() {
    let m = masker();
    let cases: &[(&str, &str)] = &[
        ("/a?api_key=123&x=1", "/a?api_key=****&x=1"),
        ("/a?x=1", "/a?x=1"),
        ("/s3/obj?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=ff&X-Amz-Security-Token=tt",
         "/s3/obj?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=****&X-Amz-Signature=****&X-Amz-Security-Token=****"),
        ("/o?AWSAccessKeyId=AKIA&Signature=s&Expires=1", "/o?AWSAccessKeyId=****&Signature=****&Expires=1"),
        ("/o?sig=abc&sign=1", "/o?sig=****&sign=1"),
        ("/o?api%5Fkey=abc", "/o?api%5Fkey=****"),
        ("/o?token", "/o?token"),
        ("http://user:pw@proxy.example:8080/p?q=1", "http://****@proxy.example:8080/p?q=1"),
        ("/cart;jsessionid=ABC123/x", "/cart;jsessionid=****/x"),
        ("/a#frag?token=1", "/a#frag?token=1"),
    ];
    for (input, want) in cases {
        assert_eq!(
            m.mask_url(input).unwrap_or_else(|| input.to_string()),
            *want,
            "{input}"
        );
    }
    assert_eq!(
        m.mask_pairs("a=1&Password=2&&=3", '&').unwrap(),
        "a=1&Password=****&&=3"
    );
    assert_eq!(m.mask_pairs("my+token=1", '&').unwrap(), "my+token=****");
}

#[test]
fn exchange_all_fields() {
    let m = masker();
    let mut ex = exchange();
    ex.query = Some("api_key=SECRETQ&x=1".into());
    ex.request_headers = vec![
        ("Authorization".into(), "Bearer SECRETA".into()),
        ("Cookie".into(), "session=SECRETC".into()),
        (
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        ),
    ];
    ex.response_headers = vec![
        ("Set-Cookie".into(), "session=SECRETS; Secure".into()),
        (
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
    ];
    ex.request_body = Some(Body {
        bytes: br#"{"a":{"b":{"password":"SECRETP"}},"c":"keep"}"#.to_vec(),
        size: 44,
        truncated: false,
        decoded: None,
    });
    ex.response_body = Some(Body {
        bytes: b"access_token=SECRETT&expires=3600".to_vec(),
        size: 34,
        truncated: false,
        decoded: None,
    });
    m.mask(&mut ex);
    let body = |b: &Option<Body>| String::from_utf8_lossy(&b.as_ref().unwrap().bytes).into_owned();
    let dump = format!(
        "{ex:?} {} {} {}",
        ex.url().unwrap(),
        body(&ex.request_body),
        body(&ex.response_body)
    );
    assert!(!dump.contains("SECRET"), "{dump}");
    assert!(dump.contains("keep") && dump.contains("expires=3600"));
    assert_eq!(
        ex.url().unwrap(),
        "https://api.example.com/v1/items?api_key=****&x=1"
    );
}

fn coded_exchange(coding: &str, bytes: Vec<u8>, truncated: bool) -> Exchange {
    let mut ex = exchange();
    ex.request_headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("Content-Encoding".into(), coding.into()),
    ];
    ex.request_body = Some(Body {
        size: bytes.len() as u64 + 100,
        bytes,
        truncated,
        decoded: None,
    });
    ex
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const LOGIN: &[u8] = br#"{"user":"ann","password":"hunter2-secret","n":1}"#;

#[test]
fn gzip_bodies_are_masked_and_reported_decoded() {
    let mut ex = coded_exchange("gzip", gzip(LOGIN), false);
    masker().mask(&mut ex);
    let b = ex.request_body.unwrap();
    assert_eq!(b.decoded, Some("gzip"));
    let text = String::from_utf8(b.bytes).unwrap();
    assert_eq!(text, r#"{"user":"ann","password":"****","n":1}"#);
    assert!(!b.truncated);
}

#[test]
fn a_cut_gzip_body_is_decoded_as_far_as_it_goes_and_masked() {
    let long: Vec<u8> = [&LOGIN[..LOGIN.len() - 1], b",\"pad\":\""]
        .concat()
        .into_iter()
        .chain((0..20_000u32).map(|i| b'a' + (i * 7 % 26) as u8))
        .collect();
    let coded = gzip(&long);
    for cut in [coded.len() / 2, coded.len() - 9] {
        let mut ex = coded_exchange("gzip", coded[..cut].to_vec(), true);
        masker().mask(&mut ex);
        let b = ex.request_body.unwrap();
        let text = String::from_utf8_lossy(&b.bytes);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.starts_with(r#"{"user":"ann","password":"****""#),
            "{text}"
        );
        assert!(b.truncated);
    }
}

#[test]
fn deflate_and_br_bodies_are_decoded() {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(LOGIN).unwrap();
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    raw.write_all(LOGIN).unwrap();
    // {"user":"ann","password":"hunter2-br"}, brotli-compressed by node's zlib.
    let br: Vec<u8> = vec![
        139, 18, 128, 123, 34, 117, 115, 101, 114, 34, 58, 34, 97, 110, 110, 34, 44, 34, 112, 97,
        115, 115, 119, 111, 114, 100, 34, 58, 34, 104, 117, 110, 116, 101, 114, 50, 45, 98, 114,
        34, 125, 3,
    ];
    for (coding, bytes, name) in [
        ("deflate", z.finish().unwrap(), "deflate"),
        ("Deflate", raw.finish().unwrap(), "deflate"),
        ("br", br, "br"),
    ] {
        let mut ex = coded_exchange(coding, bytes, false);
        masker().mask(&mut ex);
        let b = ex.request_body.unwrap();
        assert_eq!(b.decoded, Some(name), "{coding}");
        let text = String::from_utf8(b.bytes).unwrap();
        assert!(text.contains(r#""password":"****""#), "{coding}: {text}");
        assert!(!text.contains("hunter2"), "{coding}: {text}");
    }
}

#[test]
fn a_body_in_a_coding_tapline_cannot_read_is_not_reported() {
    for coding in ["zstd", "gzip, br", "compress"] {
        let mut ex = coded_exchange(coding, gzip(LOGIN), false);
        masker().mask(&mut ex);
        let b = ex.request_body.unwrap();
        assert!(b.bytes.is_empty(), "{coding}");
        assert!(b.truncated && ex.truncated, "{coding}");
        assert_eq!(b.size, gzip(LOGIN).len() as u64 + 100, "sizes stay");
    }
    // Not gzip at all although the header says so: nothing decodes, nothing shown.
    let mut ex = coded_exchange("gzip", LOGIN.to_vec(), false);
    masker().mask(&mut ex);
    assert!(ex.request_body.unwrap().bytes.is_empty());
}

const IAM_KEY: &str = r#"<?xml version="1.0"?>
<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <CreateAccessKeyResult>
    <AccessKey>
      <UserName>Bob</UserName>
      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>
      <Status>Active</Status>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
    </AccessKey>
  </CreateAccessKeyResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8e01234567</RequestId></ResponseMetadata>
</CreateAccessKeyResponse>"#;

#[test]
fn xml_table() {
    let m = masker();
    let cases: &[(&str, &str)] = &[
        (
            "<a><password>hunter2</password><b>x</b></a>",
            "<a><password>****</password><b>x</b></a>",
        ),
        (
            "<Creds><SessionToken>tok</SessionToken><Expiration>2030</Expiration></Creds>",
            "<Creds><SessionToken>****</SessionToken><Expiration>2030</Expiration></Creds>",
        ),
        // a sensitive element's whole content, as JSON masks a whole object
        (
            "<auth><user>u</user><pwd>p</pwd></auth><n>1</n>",
            "<auth><user>****</user><pwd>****</pwd></auth><n>1</n>",
        ),
        // namespaces, attributes (quoted either way, spaced), CDATA, comments
        (
            "<s:Envelope><s:Body><ns:Token a='1'><![CDATA[x<y]]></ns:Token></s:Body></s:Envelope>",
            "<s:Envelope><s:Body><ns:Token a='1'>****</ns:Token></s:Body></s:Envelope>",
        ),
        (
            r#"<login user="ann" password = "hunter2" api_key='k1'/><x>ok</x>"#,
            r#"<login user="ann" password = "****" api_key='****'/><x>ok</x>"#,
        ),
        (
            "<!-- <password>c</password> --><v>1</v>",
            "<!-- <password>c</password> --><v>1</v>",
        ),
        ("<password/><v>1</v>", "<password/><v>1</v>"),
        ("<Secret>\n  </Secret>", "<Secret>\n  </Secret>"),
        // cut prefixes
        ("<r><password>hunt", "<r><password>****"),
        (r#"<r x="1" token="abc"#, r#"<r x="1" token="****"#),
        (
            "<r><SecretAccessKey><![CDATA[wJal",
            "<r><SecretAccessKey>****",
        ),
    ];
    for (input, want) in cases {
        let got = m
            .mask_xml(input.as_bytes())
            .map(|b| String::from_utf8(b).unwrap())
            .unwrap_or_else(|| input.to_string());
        assert_eq!(&got, want, "{input}");
    }
}

#[test]
fn an_iam_access_key_response_keeps_its_request_id_and_loses_its_keys() {
    let m = masker();
    let mut b = Body {
        bytes: IAM_KEY.as_bytes().to_vec(),
        size: IAM_KEY.len() as u64,
        truncated: false,
        decoded: None,
    };
    m.mask_body(&mut b, Some("text/xml"));
    let text = String::from_utf8(b.bytes).unwrap();
    assert!(
        !text.contains("wJalrXUtnFEMI") && !text.contains("AKIAIOSFODNN7"),
        "{text}"
    );
    assert!(text.contains("<RequestId>7a62c49f-347e-4fc4-9331-6e8e01234567</RequestId>"));
    assert!(
        text.contains("<SecretAccessKey>****</SecretAccessKey>"),
        "{text}"
    );
    // Without a content type, XML is recognised by its shape.
    let mut b2 = Body {
        bytes: IAM_KEY.as_bytes().to_vec(),
        size: 0,
        truncated: false,
        decoded: None,
    };
    m.mask_body(&mut b2, None);
    assert_eq!(String::from_utf8(b2.bytes).unwrap(), text);
}

#[test]
fn an_xml_secret_never_survives_a_cut_anywhere() {
    let m = masker();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    for cut in 0..=IAM_KEY.len() {
        let input = &IAM_KEY.as_bytes()[..cut];
        let out = m.mask_xml(input).unwrap_or_else(|| input.to_vec());
        let text = String::from_utf8_lossy(&out);
        // No run of 4 or more characters of the secret (a prefix of it would do).
        for w in secret.as_bytes().windows(4) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(!text.contains(w), "cut {cut}: {w} in {text}");
        }
    }
}

#[test]
fn garbage_in_any_body_never_panics_the_masker() {
    // Fragments that steer the XML, JSON and form scanners into their corners,
    // glued at random and cut anywhere, under every content type and coding.
    const PIECES: &[&[u8]] = &[
        b"<",
        b">",
        b"</",
        b"/>",
        b"<?",
        b"?>",
        b"<!--",
        b"-->",
        b"<![CDATA[",
        b"]]>",
        b"<Token",
        b"<a:Secret",
        b" x=",
        b"'",
        b"\"",
        b"=",
        b" ",
        b"password",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"\\",
        b"&",
        b"\x1f\x8b\x08",
        b"\xff",
        b"\x00",
    ];
    let m = masker();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut bytes = Vec::new();
        for _ in 0..(next() % 24) {
            bytes.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let ct = [
            "text/xml",
            "application/json",
            "application/x-www-form-urlencoded",
            "",
        ][(next() % 4) as usize];
        let coding = ["", "gzip", "deflate", "br", "zstd"][(next() % 5) as usize];
        let mut ex = coded_exchange(coding, bytes.clone(), next() % 2 == 0);
        ex.response_headers = vec![("Content-Type".into(), ct.into())];
        ex.response_body = Some(Body {
            size: bytes.len() as u64,
            bytes: bytes.clone(),
            truncated: false,
            decoded: None,
        });
        m.mask(&mut ex);
        let _ = m.mask_xml(&bytes);
        let _ = m.mask_json(&bytes);
    }
}

#[test]
fn body_without_content_type() {
    let m = masker();
    let mut b = Body {
        bytes: br#" {"token":"x"}"#.to_vec(),
        size: 14,
        truncated: false,
        decoded: None,
    };
    m.mask_body(&mut b, None);
    assert_eq!(b.bytes, br#" {"token":"****"}"#);
    let mut b = Body {
        bytes: b"password=x&u=y".to_vec(),
        size: 14,
        truncated: false,
        decoded: None,
    };
    m.mask_body(&mut b, None);
    assert_eq!(b.bytes, b"password=****&u=y");
    let mut b = Body {
        bytes: b"plain password=x text".to_vec(),
        size: 21,
        truncated: false,
        decoded: None,
    };
    m.mask_body(&mut b, Some("text/html"));
    assert_eq!(b.bytes, b"plain password=**** text");
}

#[test]
fn scrubbed_hosts() {
    let m = masker();
    for (host, scrub) in [
        ("secretsmanager.us-east-1.amazonaws.com", true),
        ("ssm.eu-west-1.amazonaws.com", true),
        ("kms-fips.us-east-1.amazonaws.com", true),
        ("sts.amazonaws.com", true),
        ("STS.AMAZONAWS.COM:443", true),
        ("posts.example.com", false),
        ("s3.amazonaws.com", false),
        ("kmsx.example", false),
    ] {
        assert_eq!(m.is_scrubbed_host(host), scrub, "{host}");
    }
    let mut ex = exchange();
    ex.host = Some("sts.amazonaws.com".into());
    ex.query = Some("Action=GetCallerIdentity".into());
    ex.request_headers = vec![("X-Anything".into(), "v".into())];
    ex.response_headers = vec![("Content-Type".into(), "text/xml".into())];
    ex.response_body = Some(Body {
        bytes: b"<AccessKeyId>A</AccessKeyId>".to_vec(),
        size: 900,
        truncated: false,
        decoded: None,
    });
    m.mask(&mut ex);
    assert!(ex.request_headers.is_empty() && ex.response_headers.is_empty());
    assert_eq!(ex.query, None);
    let body = ex.response_body.as_ref().unwrap();
    assert!(body.bytes.is_empty() && body.size == 900 && body.truncated && ex.truncated);
    assert_eq!(
        (ex.method.as_deref(), ex.path.as_deref(), ex.status),
        (Some("POST"), Some("/v1/items"), Some(200))
    );
}

#[test]
fn config_from_lookup() {
    let m = Masker::from_lookup(|k| match k {
        "TAPLINE_MASK_REGEX" => Some("^x-internal$".into()),
        "TAPLINE_SCRUB_DOMAINS" => Some("vault.example, db".into()),
        _ => None,
    })
    .unwrap();
    assert!(m.is_sensitive_key("x-internal") && !m.is_sensitive_key("password"));
    // the fixed lists stay in force when the pattern is replaced
    assert_eq!(
        m.mask_header("Authorization", "Bearer t").unwrap(),
        "Bearer ****"
    );
    assert_eq!(m.mask_url("/?sig=1").unwrap(), "/?sig=****");
    assert!(m.is_scrubbed_host("vault.example") && m.is_scrubbed_host("db.local"));
    assert!(!m.is_scrubbed_host("sts.amazonaws.com"));
    let none = Masker::from_lookup(|k| (k == "TAPLINE_SCRUB_DOMAINS").then(String::new)).unwrap();
    assert!(!none.is_scrubbed_host("sts.amazonaws.com"));
    assert!(none.is_sensitive_key("PassWord"));
    assert!(Masker::from_lookup(|k| (k == "TAPLINE_MASK_REGEX").then(|| "(".into())).is_err());
}

/// A splitmix64: the same random documents and corpora on every run (also used by
/// `shapes::tests`).
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub(super) fn hex(&mut self, n: usize) -> String {
        self.bytes(n).iter().map(|b| format!("{b:02x}")).collect()
    }
    pub(super) fn uuid(&mut self) -> String {
        let h = self.hex(16);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
    pub(super) fn upper_alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        (0..n)
            .map(|_| A[(self.next() % 32) as usize] as char)
            .collect()
    }
}

const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "api_key",
    "sessionToken",
    "Authorization",
    "client_secret",
];
const PLAIN_KEYS: &[&str] = &[
    "name", "id", "items", "data", "value", "note", "a\"b", "ünï",
];

/// Secrets use only characters that plain data never holds: Q X Z 7 8 9 ☃ and
/// (as filler) quotes and backslashes.
fn secret(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 2 } else { 4 }) {
        0 => {
            let n = 1 + rng.below(12);
            Value::String(
                (0..n)
                    .map(|_| ["Q", "X", "Z", "\"", "\\", "☃"][rng.below(6) as usize])
                    .collect(),
            )
        }
        1 => Value::from(-(rng.below(1 << 40) as i64) - 1),
        2 => Value::Array(vec![secret(rng, depth + 1), secret(rng, depth + 1)]),
        _ => {
            let mut m = serde_json::Map::new();
            m.insert(rng.pick(PLAIN_KEYS).into(), secret(rng, depth + 1));
            Value::Object(m)
        }
    }
}

fn plain(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 3 } else { 5 }) {
        0 => Value::String(
            (0..rng.below(8))
                .map(|_| ["a", "b", "{", "[", " ", "\"", ":", ","][rng.below(8) as usize])
                .collect(),
        ),
        1 => Value::from(rng.below(60_000) as i64),
        2 => Value::Null,
        3 => Value::Array((0..rng.below(4)).map(|_| plain(rng, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                if rng.below(3) == 0 {
                    m.insert(rng.pick(SENSITIVE_KEYS).into(), secret(rng, depth + 1));
                } else {
                    m.insert(rng.pick(PLAIN_KEYS).into(), plain(rng, depth + 1));
                }
            }
            Value::Object(m)
        }
    }
}

fn leaks(out: &str) -> bool {
    // Plain data never holds these: secret strings are made of them, secret numbers
    // are negative, plain ones are not.
    out.contains(['Q', 'X', 'Z', '☃', '-'])
}

#[test]
fn random_documents_cut_at_every_prefix_leak_nothing() {
    let m = masker();
    let mut rng = Rng(0x07A9_114E);
    let mut checked = 0;
    for _ in 0..300 {
        let mut doc = plain(&mut rng, 0);
        if !doc.is_object() {
            let mut w = serde_json::Map::new();
            w.insert("data".into(), doc);
            w.insert("password".into(), secret(&mut rng, 0));
            doc = Value::Object(w);
        }
        for text in [doc.to_string(), serde_json::to_string_pretty(&doc).unwrap()] {
            // complete: same answer as a full parse
            let masked = json(&text);
            let mut expect = doc.clone();
            mask_value(&m, &mut expect);
            let got: Value =
                serde_json::from_str(&masked).unwrap_or_else(|e| panic!("{e}: {masked}"));
            assert_eq!(got, expect, "{text}");
            // every prefix (at byte boundaries, even inside a UTF-8 sequence)
            for cut in 0..=text.len() {
                let out = match m.mask_json(&text.as_bytes()[..cut]) {
                    Some(b) => b,
                    None => text.as_bytes()[..cut].to_vec(),
                };
                let out = String::from_utf8_lossy(&out);
                assert!(!leaks(&out), "cut {cut} of {text}\n -> {out}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}

/// Base64 of `n` random bytes behind a PNG signature.
fn random_png_b64(rng: &mut Rng, n: usize) -> String {
    use base64::Engine;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..n).map(|_| rng.next() as u8));
    base64::engine::general_purpose::STANDARD.encode(png)
}

fn random_of(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect()
}

/// The JSON body of `tests/clients/py_value_shapes.py`: a UUID, a sha256 and a base64
/// image (a data URL) beside credential-shaped values under neutral keys. Through the
/// whole masker (key rules, embedded forms, value shapes) the neighbours stay whole and
/// every secret becomes `****`, for thousands of random images.
#[test]
fn random_images_beside_credentials_stay_whole() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let m = masker();
    let mut rng = Rng(0x1A6E_5EED);
    for round in 0..4000 {
        let hex = |rng: &mut Rng, n: usize| random_of(rng, b"0123456789abcdef", n);
        let uuid = format!("3f1c2a9e-6b7d-4c1e-9a8f-{}", hex(&mut rng, 12));
        let sha256 = hex(&mut rng, 64);
        let size = [300, 299, 298, 48, 1000][round % 5];
        let image = format!("data:image/png;base64,{}", random_png_b64(&mut rng, size));
        let alnum_sym: Vec<u8> = [ALNUM, b"/+"].concat();
        let jwt = format!(
            "{}.{}.{}",
            b64url.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64url.encode(format!(
                r#"{{"sub": "{}"}}"#,
                random_of(&mut rng, ALNUM, 12)
            )),
            b64url.encode((0..32).map(|_| rng.next() as u8).collect::<Vec<u8>>()),
        );
        let secrets = [
            jwt,
            format!(
                "AKIA{}",
                random_of(&mut rng, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            ),
            format!("Ab{}", random_of(&mut rng, &alnum_sym, 38)),
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                random_of(&mut rng, &alnum_sym, 64)
            ),
            format!("Bearer tk{}9", random_of(&mut rng, ALNUM, 30)),
            format!(
                "Basic {}",
                b64.encode(format!("svc:{}", random_of(&mut rng, ALNUM, 20)))
            ),
            format!("ghp_{}", random_of(&mut rng, ALNUM, 36)),
            format!(
                "xoxb-{}-{}",
                random_of(&mut rng, b"0123456789", 12),
                random_of(&mut rng, ALNUM, 24)
            ),
            format!("sk_live_{}", random_of(&mut rng, ALNUM, 24)),
            format!("AIza{}", random_of(&mut rng, &[ALNUM, b"_-"].concat(), 35)),
        ];
        let mut doc = serde_json::Map::new();
        doc.insert("id".into(), uuid.clone().into());
        doc.insert("digest".into(), sha256.clone().into());
        doc.insert("avatar".into(), image.clone().into());
        for (i, s) in secrets.iter().enumerate() {
            doc.insert(format!("field{i}"), s.clone().into());
        }
        // serde_json keeps insertion order only with `preserve_order`: write it by hand.
        let mut text = String::from("{");
        for (i, k) in ["id", "digest", "avatar"]
            .into_iter()
            .map(String::from)
            .chain((0..secrets.len()).map(|i| format!("field{i}")))
            .enumerate()
        {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("{}: {}", Value::from(k.clone()), doc[&k]));
        }
        text.push('}');
        let mut body = Body {
            bytes: text.clone().into_bytes(),
            size: text.len() as u64,
            truncated: false,
            decoded: None,
        };
        m.mask_body(&mut body, Some("application/json"));
        let got: Value = serde_json::from_slice(&body.bytes).unwrap_or_else(|e| {
            panic!(
                "round {round}: {e}: {}",
                String::from_utf8_lossy(&body.bytes)
            )
        });
        assert_eq!(got["id"], uuid, "round {round}");
        assert_eq!(got["digest"], sha256, "round {round}");
        assert_eq!(got["avatar"], image, "round {round}");
        let want = |s: &str| {
            ["Bearer ", "Basic "]
                .into_iter()
                .find(|p| s.starts_with(p))
                .map_or(MASK.to_string(), |p| format!("{p}{MASK}"))
        };
        for (i, s) in secrets.iter().enumerate() {
            assert_eq!(got[format!("field{i}")], want(s), "round {round}: {text}");
        }
    }
}

/// An invalid `TAPLINE_MASK_REGEX` fails closed: the extension masks with
/// `scrub_everything`, which keeps no header, query or body of any host.
#[test]
fn scrub_everything_keeps_no_header_query_or_body() {
    assert!(Masker::from_lookup(|k| (k == "TAPLINE_MASK_REGEX").then(|| "(".into())).is_err());
    let m = Masker::scrub_everything();
    let mut ex = exchange();
    ex.query = Some("customer=42&note=plain".into());
    ex.request_headers = vec![("X-Customer-Field".into(), "private".into())];
    ex.response_headers = vec![("Content-Type".into(), "application/json".into())];
    ex.request_body = Some(Body {
        bytes: br#"{"customer":"private"}"#.to_vec(),
        size: 22,
        truncated: false,
        decoded: None,
    });
    m.mask(&mut ex);
    assert!(ex.request_headers.is_empty() && ex.response_headers.is_empty());
    assert_eq!(ex.query, None);
    let body = ex.request_body.as_ref().unwrap();
    assert!(body.bytes.is_empty() && body.size == 22 && ex.truncated);
    assert_eq!(
        (
            ex.method.as_deref(),
            ex.host.as_deref(),
            ex.path.as_deref(),
            ex.status
        ),
        (
            Some("POST"),
            Some("api.example.com"),
            Some("/v1/items"),
            Some(200)
        )
    );
}
