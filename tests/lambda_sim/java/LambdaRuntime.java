// A Lambda runtime client in plain Java, for the emulator (tests/lambda_sim).
//
// Why our own: AWS's Java runtime interface client is a Maven artifact with a native
// part; none can be had here. This one speaks the Runtime API as Lambda's Java runtime
// does — `invocation/next`, then the handler's result to `invocation/<id>/response` —
// with HttpURLConnection (plain HTTP, kept alive). The handler makes two HTTPS calls to
// the emulator's TLS server per invocation: HttpsURLConnection (JSSE's SSLSocket) to
// /secret?n=N&via=java-huc, java.net.http.HttpClient (JSSE's SSLEngine) to
// /plain?n=N&via=java-hc; it answers {"n": N, "statuses": [s1, s2]}.
//
//   java -Djavax.net.ssl.trustStore=TS LambdaRuntime     (started through wrapper.sh)
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.HttpsURLConnection;

public class LambdaRuntime {
    static final String BASE =
        "http://" + System.getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime";
    static final String TLS = "https://localhost:" + System.getenv("E2E_HTTPS_PORT");
    static final HttpClient CLIENT =
        HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    static byte[] readAll(InputStream in) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        in.transferTo(out);
        in.close();
        return out.toByteArray();
    }

    static int handle(long n, String via) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection)
            new URL(TLS + "/secret?n=" + n + "&via=" + via).openConnection();
        c.setRequestProperty("Authorization", "Bearer " + System.getenv("E2E_PLANTED"));
        int status = c.getResponseCode();
        readAll(c.getInputStream());
        return status;
    }

    public static void main(String[] args) throws Exception {
        Pattern nField = Pattern.compile("\"n\"\\s*:\\s*(\\d+)");
        for (;;) {
            HttpURLConnection next = (HttpURLConnection)
                new URL(BASE + "/invocation/next").openConnection();
            String id = next.getHeaderField("Lambda-Runtime-Aws-Request-Id");
            String event = new String(readAll(next.getInputStream()), StandardCharsets.UTF_8);
            Matcher m = nField.matcher(event);
            long n = m.find() ? Long.parseLong(m.group(1)) : 0;

            int a = handle(n, "java-huc");
            HttpResponse<String> b = CLIENT.send(
                HttpRequest.newBuilder(URI.create(TLS + "/plain?n=" + n + "&via=java-hc")).GET()
                    .build(),
                HttpResponse.BodyHandlers.ofString());

            byte[] result = ("{\"n\": " + n + ", \"statuses\": [" + a + ", " + b.statusCode()
                + "]}").getBytes(StandardCharsets.UTF_8);
            HttpURLConnection post = (HttpURLConnection)
                new URL(BASE + "/invocation/" + id + "/response").openConnection();
            post.setRequestMethod("POST");
            post.setDoOutput(true);
            post.setRequestProperty("Content-Type", "application/json");
            post.setFixedLengthStreamingMode(result.length);
            try (OutputStream o = post.getOutputStream()) {
                o.write(result);
            }
            post.getResponseCode();
            readAll(post.getInputStream());
        }
    }
}
