//! The formats where secrets travel beside their names: the default key rule, name/value
//! pairs (JSON, XML, form arrays), GraphQL, text, multipart; and every one of them cut
//! at every length, leaking no character of a planted secret.

use super::rules::{DEFAULT_KEY_PATTERN, MASK};
use super::tests::Rng;
use super::*;

fn masker() -> Masker {
    Masker::new(DEFAULT_KEY_PATTERN, &[] as &[&str]).unwrap()
}

/// The whole body masker (format rules, then value shapes) over `input`.
fn body(ct: &str, input: &[u8]) -> String {
    let mut b = Body {
        bytes: input.to_vec(),
        size: input.len() as u64,
        truncated: false,
        decoded: None,
    };
    masker().mask_body(&mut b, Some(ct));
    String::from_utf8_lossy(&b.bytes).into_owned()
}

#[test]
fn the_default_key_rule_masks_credentials_not_names() {
    let m = masker();
    for k in [
        "password",
        "Passwd",
        "DbPassword",
        "client_secret",
        "SecretString",
        "access_token",
        "sessionToken",
        "X-Auth",
        "Authorization",
        "oauth",
        "authToken",
        "Credentials",
        "signature",
        "Cookie",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "AccessKeyId",
        "privateKey",
        "private_key",
        "signingKey",
        "SSECustomerKey",
        "KeyMaterial",
        "master_key",
        "subscription-key",
        "session_id",
    ] {
        assert!(m.is_sensitive_key(k), "{k} should be masked");
    }
    for k in [
        "ParameterKey",
        "Key",
        "key",
        "KeySchema",
        "partitionKey",
        "sortKey",
        "KeyId",
        "KmsKeyId",
        "keys",
        "name",
        "author",
        "Author",
        "authors",
        "authority",
        "NextToken",
        "nextToken",
        "ContinuationToken",
        "page_token",
        "ClientToken",
        "token_type",
        "Environment",
        "value",
    ] {
        assert!(!m.is_sensitive_key(k), "{k} should stay readable");
    }
    // A replaced pattern is taken as it is: no exceptions.
    let custom = Masker::new("(?i)token", &[] as &[&str]).unwrap();
    assert!(custom.is_sensitive_key("NextToken"));
}

#[test]
fn json_name_value_pairs() {
    let cases: &[(&str, &str)] = &[
        // ECS container environment
        (
            r#"{"environment":[{"name":"DB_PASSWORD","value":"s3"},{"name":"LOG_LEVEL","value":"info"}]}"#,
            r#"{"environment":[{"name":"DB_PASSWORD","value":"****"},{"name":"LOG_LEVEL","value":"info"}]}"#,
        ),
        // CloudFormation parameters: the name readable, the value masked
        (
            r#"[{"ParameterKey": "DbPassword", "ParameterValue": "s3"}, {"ParameterKey": "Env", "ParameterValue": "prod"}]"#,
            r#"[{"ParameterKey": "DbPassword", "ParameterValue": "****"}, {"ParameterKey": "Env", "ParameterValue": "prod"}]"#,
        ),
        // the value before its name
        (
            r#"{"Value":"s3","Name":"api_token","Type":"SecureString"}"#,
            r#"{"Value":"****","Name":"api_token","Type":"SecureString"}"#,
        ),
        // tags: names that are not secrets keep their values
        (
            r#"{"Tags":[{"Key":"Name","Value":"web"},{"Key":"auth-secret","Value":"x"}]}"#,
            r#"{"Tags":[{"Key":"Name","Value":"web"},{"Key":"auth-secret","Value":"****"}]}"#,
        ),
        // a value that is an object, masked whole; its own keys masked when it stays
        (
            r#"{"key":"credentials","value":{"u":"a","p":[1]}}"#,
            r#"{"key":"credentials","value":"****"}"#,
        ),
        (
            r#"{"value":{"password":"p","u":"a"},"key":"config"}"#,
            r#"{"value":{"password":"****","u":"a"},"key":"config"}"#,
        ),
        // a pair inside a pair's value is its own object
        (
            r#"{"name":"outer","value":[{"name":"token","value":"t"}],"x":{"value":"v"}}"#,
            r#"{"name":"outer","value":[{"name":"token","value":"****"}],"x":{"value":"v"}}"#,
        ),
        // cut: the value after a secret name as far as it goes
        (
            r#"{"name":"DB_PASSWORD","value":"s3cr"#,
            r#"{"name":"DB_PASSWORD","value":"****""#,
        ),
    ];
    let m = masker();
    for (input, want) in cases {
        let got = m
            .mask_json(input.as_bytes())
            .map_or(input.to_string(), |b| String::from_utf8(b).unwrap());
        assert_eq!(got, *want, "{input}");
    }
}

#[test]
fn xml_name_value_siblings() {
    let m = masker();
    let cases: &[(&str, &str)] = &[
        (
            "<Parameters><member><ParameterKey>DbPassword</ParameterKey><ParameterValue>s3</ParameterValue></member><member><ParameterKey>Env</ParameterKey><ParameterValue>prod</ParameterValue></member></Parameters>",
            "<Parameters><member><ParameterKey>DbPassword</ParameterKey><ParameterValue>****</ParameterValue></member><member><ParameterKey>Env</ParameterKey><ParameterValue>prod</ParameterValue></member></Parameters>",
        ),
        // value first
        (
            "<entry><Value>s3</Value><Name>api_token</Name></entry><entry><Value>v</Value><Name>n</Name></entry>",
            "<entry><Value>****</Value><Name>api_token</Name></entry><entry><Value>v</Value><Name>n</Name></entry>",
        ),
        // SQS message attribute: the value holds an element
        (
            "<MessageAttribute><Name>session</Name><Value><StringValue>s3</StringValue></Value></MessageAttribute>",
            "<MessageAttribute><Name>session</Name><Value><StringValue>****</StringValue></Value></MessageAttribute>",
        ),
        // S3's object Key is a name, not a secret
        (
            "<Contents><Key>uploads/a.png</Key><Size>3</Size></Contents>",
            "<Contents><Key>uploads/a.png</Key><Size>3</Size></Contents>",
        ),
        // cut in the value
        (
            "<member><Name>DB_PASSWORD</Name><Value>s3c",
            "<member><Name>DB_PASSWORD</Name><Value>****",
        ),
    ];
    for (input, want) in cases {
        let got = m
            .mask_xml(input.as_bytes())
            .map_or(input.to_string(), |b| String::from_utf8(b).unwrap());
        assert_eq!(got, *want, "{input}");
    }
}

#[test]
fn form_array_pairs() {
    let m = masker();
    let cases: &[(&str, &str)] = &[
        (
            "Action=CreateStack&Parameters.member.1.ParameterKey=DbPassword&Parameters.member.1.ParameterValue=s3&Parameters.member.2.ParameterKey=Env&Parameters.member.2.ParameterValue=prod",
            "Action=CreateStack&Parameters.member.1.ParameterKey=DbPassword&Parameters.member.1.ParameterValue=****&Parameters.member.2.ParameterKey=Env&Parameters.member.2.ParameterValue=prod",
        ),
        (
            "Environment.Variables.entry.1.value=s3&Environment.Variables.entry.1.key=API_TOKEN",
            "Environment.Variables.entry.1.value=****&Environment.Variables.entry.1.key=API_TOKEN",
        ),
        (
            "MessageAttribute.1.Name=session&MessageAttribute.1.Value.StringValue=s3&MessageAttribute.1.Value.DataType=String",
            "MessageAttribute.1.Name=session&MessageAttribute.1.Value.StringValue=****&MessageAttribute.1.Value.DataType=String",
        ),
        ("Tags.member.1.Key=Name&Tags.member.1.Value=web", "Tags.member.1.Key=Name&Tags.member.1.Value=web"),
    ];
    for (input, want) in cases {
        assert_eq!(
            m.mask_pairs(input, '&')
                .unwrap_or_else(|| input.to_string()),
            *want,
            "{input}"
        );
    }
}

#[test]
fn graphql_variables_and_literals() {
    let doc = r#"{"query":"mutation Login($user: String!, $pw: String!) { login(username: $user, password: $pw) { id } }","variables":{"user":"ann","pw":"s3cret"},"operationName":"Login"}"#;
    assert_eq!(
        body("application/json", doc.as_bytes()),
        r#"{"query":"mutation Login($user: String!, $pw: String!) { login(username: $user, password: $pw) { id } }","variables":{"user":"ann","pw":"****"},"operationName":"Login"}"#
    );
    // by the variable's own name
    let doc = r#"{"query":"mutation($apiToken: String!) { use(t: $apiToken) }","variables":{"apiToken":"s3"}}"#;
    assert!(
        body("application/json", doc.as_bytes()).ends_with(r#""variables":{"apiToken":"****"}}"#)
    );
    // literal arguments, in JSON and as application/graphql
    let doc = r#"{"query":"mutation { login(username: \"ann\", password: \"s3 \\\"x\\\"\") { token } }"}"#;
    assert_eq!(
        body("application/json", doc.as_bytes()),
        r#"{"query":"mutation { login(username: \"ann\", password: \"****\") { token } }"}"#
    );
    assert_eq!(
        body(
            "application/graphql",
            b"mutation { rotate(input: {secret: \"\"\"s3\nx\"\"\", name: \"n\"}, pin: 1234) }"
        ),
        "mutation { rotate(input: {secret: \"****\", name: \"n\"}, pin: 1234) }"
    );
    // a variable definition's type is not a literal
    assert_eq!(
        body("application/graphql", b"query($password: String!) { me }"),
        "query($password: String!) { me }"
    );
    // cut in a literal
    assert_eq!(
        body("application/graphql", b"mutation { login(password: \"s3cr"),
        "mutation { login(password: \"****\""
    );
}

#[test]
fn text_header_lines_and_key_values() {
    let cases: &[(&str, &str)] = &[
        (
            "Authorization: Bearer abc\r\nX-Api-Key: k1\r\nHost: a\r\n",
            "Authorization: Bearer ****\r\nX-Api-Key: ****\r\nHost: a\r\n",
        ),
        (
            "  password: hunter2\n  user: ann\n",
            "  password: ****\n  user: ann\n",
        ),
        (
            "connect with api_key=abc123 and user=ann; token = \"a b\" next",
            "connect with api_key=**** and user=ann; token = **** next",
        ),
        (
            "DB_PASSWORD=s3\nDB_HOST=db\n",
            "DB_PASSWORD=****\nDB_HOST=db\n",
        ),
        (
            "Author: Ann <ann@example.com>\n",
            "Author: Ann <ann@example.com>\n",
        ),
        ("cut: password=\"s3", "cut: password=****"),
    ];
    for (input, want) in cases {
        assert_eq!(body("text/plain", input.as_bytes()), *want, "{input}");
    }
    // Unknown textual types too; binary is left to the value shapes.
    assert_eq!(body("application/x-env", b"SECRET=x"), "SECRET=****");
    assert_eq!(
        body("application/octet-stream", b"\x00password=x"),
        "\x00password=x"
    );
}

const BOUNDARY: &str = "b0undary4f2";

fn multipart_doc(secret: &str, binary: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    let mut part = |headers: &str, content: &[u8]| {
        d.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        d.extend_from_slice(content);
        d.extend_from_slice(b"\r\n");
    };
    part("Content-Disposition: form-data; name=\"user\"", b"ann");
    part(
        "Content-Disposition: form-data; name=\"password\"",
        secret.as_bytes(),
    );
    part(
        "Content-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json",
        format!("{{\"token\": \"{secret}\", \"note\": \"n\"}}").as_bytes(),
    );
    part(
        "Content-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\nContent-Type: image/png",
        binary,
    );
    part(
        "Content-Disposition: form-data; name=\"env\"; filename=\"app.env\"\r\nContent-Type: text/plain",
        format!("HOST=db\nAPI_KEY={secret}\n").as_bytes(),
    );
    part(
        "Content-Disposition: form-data; name=\"x\"\r\nAuthorization: Bearer b",
        b"v",
    );
    d.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    d
}

#[test]
fn multipart_parts_are_masked_by_name_and_type() {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let doc = multipart_doc("s3cret", b"\x89PNG\r\n\x1a\n\x00\x01");
    let out = body(&ct, &doc);
    let want = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n****\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{{\"token\": \"****\", \"note\": \"n\"}}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n[file content: 10 bytes, not shown]\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"env\"; filename=\"app.env\"\r\nContent-Type: text/plain\r\n\r\nHOST=db\nAPI_KEY=****\n\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\nAuthorization: Bearer ****\r\n\r\nv\r\n\
         --{BOUNDARY}--\r\n"
    );
    assert_eq!(out, want);
    // multipart/mixed with a quoted boundary and a nested JSON part
    let mixed =
        b"preamble\r\n--zz\r\nContent-Type: application/json\r\n\r\n{\"password\":\"p\"}\r\n--zz--";
    assert_eq!(
        body("multipart/mixed; boundary=\"zz\"", mixed),
        "preamble\r\n--zz\r\nContent-Type: application/json\r\n\r\n{\"password\":\"****\"}\r\n--zz--"
    );
}

/// Secrets are made of characters that no structure or neighbour of these documents
/// holds: Q X Z and a snowman.
fn secret(rng: &mut Rng) -> String {
    let n = 1 + rng.next() % 14;
    (0..n)
        .map(|_| ["Q", "X", "Z", "☃"][(rng.next() % 4) as usize])
        .collect()
}

fn leaks(out: &str) -> bool {
    out.contains(['Q', 'X', 'Z', '☃'])
}

fn neighbour(rng: &mut Rng) -> &'static str {
    [
        "ann",
        "web",
        "prod",
        "info",
        "a b",
        "42",
        "db.local",
        "uploads/a.png",
    ][(rng.next() % 8) as usize]
}

/// Every format of this file, documents with random neighbours and secrets, cut at every
/// length, through the whole body masker: no character of a secret shows.
#[test]
fn every_format_cut_at_every_length_leaks_no_secret_character() {
    let m = masker();
    let mut rng = Rng(0xF0_12_3A_77);
    let mut checked = 0;
    for _ in 0..12 {
        let (s1, s2, s3) = (secret(&mut rng), secret(&mut rng), secret(&mut rng));
        let (n1, n2) = (neighbour(&mut rng), neighbour(&mut rng));
        let docs: Vec<(String, Vec<u8>)> = vec![
            (
                "application/x-amz-json-1.1".into(),
                format!(
                    r#"{{"family":"{n1}","containerDefinitions":[{{"name":"app","environment":[{{"name":"LOG","value":"{n2}"}},{{"name":"DB_PASSWORD","value":"{s1}"}},{{"value":"{s2}","name":"API_TOKEN"}}],"secrets":[{{"name":"x","valueFrom":"arn:aws:ssm:p"}}]}}]}}"#
                )
                .into_bytes(),
            ),
            (
                "application/json".into(),
                format!(
                    r#"[{{"ParameterKey":"Env","ParameterValue":"{n1}"}},{{"ParameterKey":"DbPassword","ParameterValue":"{s1}"}},{{"Key":"session","Value":{{"v":"{s2}"}}}}]"#
                )
                .into_bytes(),
            ),
            (
                "text/xml".into(),
                format!(
                    "<R><member><ParameterKey>DbPassword</ParameterKey><ParameterValue>{s1}</ParameterValue></member><member><Name>{n1}</Name><Value>{n2}</Value></member><member><Name>auth</Name><Value><StringValue>{s2}</StringValue></Value></member></R>"
                )
                .into_bytes(),
            ),
            (
                "application/x-www-form-urlencoded".into(),
                format!(
                    "Action=CreateStack&Parameters.member.1.ParameterKey=DbPassword&Parameters.member.1.ParameterValue={s1}&Tags.member.1.Key=Name&Tags.member.1.Value={n1}&Attributes.entry.1.key=token&Attributes.entry.1.value={s2}&password={s3}"
                )
                .into_bytes(),
            ),
            (
                "application/json".into(),
                format!(
                    r#"{{"query":"mutation Login($u: String!, $p: String!) {{ login(user: $u, password: $p, authCode: \"{s3}\") {{ id }} }}","variables":{{"u":"{n1}","p":"{s1}","apiToken":"{s2}"}}}}"#
                )
                .into_bytes(),
            ),
            (
                "application/graphql".into(),
                format!("mutation {{ login(user: \"{n1}\", password: \"{s1}\", apiSecret: \"\"\"{s2}\"\"\") {{ id }} }}")
                    .into_bytes(),
            ),
            (
                "text/plain".into(),
                format!(
                    "note: {n1}\nAuthorization: Bearer {s1}\nx-api-key: {s2}\ncall with api_key={s3}&user={n2}\n"
                )
                .into_bytes(),
            ),
            (
                format!("multipart/form-data; boundary={BOUNDARY}"),
                multipart_doc(&s1, b"\x00\x01\x02\xff\xfe"),
            ),
        ];
        for (ct, doc) in &docs {
            let whole = body(ct, doc);
            assert!(!leaks(&whole) && whole.contains(MASK), "{ct}: {whole}");
            for n in [n1, n2] {
                if doc.windows(n.len()).any(|w| w == n.as_bytes()) {
                    assert!(whole.contains(n), "{ct}: lost neighbour {n}: {whole}");
                }
            }
            for cut in 0..=doc.len() {
                let mut b = Body {
                    bytes: doc[..cut].to_vec(),
                    size: doc.len() as u64,
                    truncated: cut < doc.len(),
                    decoded: None,
                };
                m.mask_body(&mut b, Some(ct));
                let out = String::from_utf8_lossy(&b.bytes);
                assert!(!leaks(&out), "{ct} cut {cut}: {out}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

/// Values nested in values (`{"value":{"value":...`) are read without growing the stack
/// with their depth, and a secret pair deep inside is still masked.
#[test]
fn deeply_nested_pair_values_do_not_overflow() {
    let n = 100_000;
    let doc = format!(
        "{}{{\"name\":\"password\",\"value\":\"s3\"}}{}",
        "{\"value\":".repeat(n),
        "}".repeat(n)
    );
    let out = masker().mask_json(doc.as_bytes()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(r#"{"name":"password","value":"****"}"#));
    assert!(!out.contains("s3"));
}
