// A DynamoDB PutItem signed by hand (AWS Signature Version 4) over HTTPS with
// HttpsURLConnection: what a Java AWS client puts on the wire, without an SDK (none can
// be had here). Against moto_server on 127.0.0.1 (tests/test_java_tls.py): CreateTable,
// then PutItem; prints each call's status and the request id moto answered
// (x-amzn-RequestId), which tapline must find on the wire too.
//
//   java DynamoPut https://localhost:PORT TABLE
//
// Credentials are the test's (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the
// environment); region us-east-1.
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.net.ssl.HttpsURLConnection;

public class DynamoPut {
    static final String REGION = "us-east-1";
    static final String SERVICE = "dynamodb";

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    static byte[] sha256(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }

    static byte[] hmac(byte[] key, String data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    }

    static String call(String base, String target, String body) throws Exception {
        URL url = new URL(base + "/");
        String host = url.getHost() + (url.getPort() > 0 ? ":" + url.getPort() : "");
        ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
        String amzDate = now.format(DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'"));
        String day = now.format(DateTimeFormatter.ofPattern("yyyyMMdd"));
        byte[] payload = body.getBytes(StandardCharsets.UTF_8);
        String contentType = "application/x-amz-json-1.0";
        String amzTarget = "DynamoDB_20120810." + target;
        String signedHeaders = "content-type;host;x-amz-date;x-amz-target";
        String canonical = "POST\n/\n\n"
            + "content-type:" + contentType + "\n"
            + "host:" + host + "\n"
            + "x-amz-date:" + amzDate + "\n"
            + "x-amz-target:" + amzTarget + "\n\n"
            + signedHeaders + "\n" + hex(sha256(payload));
        String scope = day + "/" + REGION + "/" + SERVICE + "/aws4_request";
        String toSign = "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n"
            + hex(sha256(canonical.getBytes(StandardCharsets.UTF_8)));
        String secret = System.getenv("AWS_SECRET_ACCESS_KEY");
        byte[] k = hmac(("AWS4" + secret).getBytes(StandardCharsets.UTF_8), day);
        k = hmac(k, REGION);
        k = hmac(k, SERVICE);
        k = hmac(k, "aws4_request");
        String signature = hex(hmac(k, toSign));
        String auth = "AWS4-HMAC-SHA256 Credential=" + System.getenv("AWS_ACCESS_KEY_ID") + "/"
            + scope + ", SignedHeaders=" + signedHeaders + ", Signature=" + signature;

        HttpsURLConnection c = (HttpsURLConnection) url.openConnection();
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setRequestProperty("Content-Type", contentType);
        c.setRequestProperty("X-Amz-Date", amzDate);
        c.setRequestProperty("X-Amz-Target", amzTarget);
        c.setRequestProperty("Authorization", auth);
        c.setFixedLengthStreamingMode(payload.length);
        try (OutputStream o = c.getOutputStream()) {
            o.write(payload);
        }
        int status = c.getResponseCode();
        InputStream in = status < 400 ? c.getInputStream() : c.getErrorStream();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        in.transferTo(out);
        in.close();
        String rid = c.getHeaderField("x-amzn-RequestId");
        System.out.println(target + " " + status + " " + rid);
        if (status != 200) {
            System.out.println(out.toString(StandardCharsets.UTF_8));
        }
        return rid;
    }

    public static void main(String[] args) throws Exception {
        String base = args[0];
        String table = args[1];
        call(base, "CreateTable", "{\"TableName\":\"" + table + "\","
            + "\"KeySchema\":[{\"AttributeName\":\"id\",\"KeyType\":\"HASH\"}],"
            + "\"AttributeDefinitions\":[{\"AttributeName\":\"id\",\"AttributeType\":\"S\"}],"
            + "\"BillingMode\":\"PAY_PER_REQUEST\"}");
        call(base, "PutItem", "{\"TableName\":\"" + table + "\","
            + "\"Item\":{\"id\":{\"S\":\"order-1\"},\"total\":{\"N\":\"42\"}}}");
    }
}
