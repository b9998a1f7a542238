// Java HTTPS clients for tests/test_java_tls.py: JSSE through each of the JDK's HTTP
// stacks. Plain Java, compiled by the test with javac. Trust comes from
// -Djavax.net.ssl.trustStore=... (a keytool store holding the test CA).
//
//   java TlsClients MODE BASE
//
// MODE:
//   huc-get     HttpsURLConnection GET  BASE/hello?from=huc-get      (SSLSocket)
//   huc-post    HttpsURLConnection POST BASE/echo?from=huc-post, 3000 bytes
//   hc11        java.net.http.HttpClient HTTP/1.1: GET /hello, POST /echo 2500 bytes (SSLEngine)
//   hc2         java.net.http.HttpClient HTTP/2 (ALPN h2): GET /h2-hello, POST /echo 2000 bytes
//   keepalive   20 GETs /hello?from=ka-N with HttpsURLConnection, one kept-alive connection
//   threads     8 threads at once, each GET /hello?from=thread-N (HttpsURLConnection)
//   big         GET /bytes/1048576 (HttpsURLConnection), a 1 MiB response
//
// Prints one line per request: what it got (status, sizes, the echoed query, a digest),
// so that a run with and a run without tapline can be compared byte for byte. Never
// prints anything that changes between runs (ports, times).
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import javax.net.ssl.HttpsURLConnection;

public class TlsClients {
    static byte[] readAll(InputStream in) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[16384];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
        }
        in.close();
        return out.toByteArray();
    }

    static String sha256(byte[] b) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (byte x : MessageDigest.getInstance("SHA-256").digest(b)) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    /** A GET with HttpsURLConnection; returns "status query body-size port" parts. */
    static String[] hucGet(String url) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(url).openConnection();
        c.setRequestProperty("X-Tapline-Test", "java-huc");
        int status = c.getResponseCode();
        byte[] body = readAll(c.getInputStream());
        return new String[] {
            String.valueOf(status), c.getHeaderField("X-Echo-Query"),
            String.valueOf(body.length), c.getHeaderField("X-Client-Port"),
            new String(body, StandardCharsets.UTF_8).trim()
        };
    }

    static String repeat(char ch, int n) {
        return String.valueOf(ch).repeat(n);
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String base = args[1];
        switch (mode) {
            case "huc-get": {
                String[] r = hucGet(base + "/hello?from=huc-get");
                System.out.println("GET " + r[0] + " " + r[1] + " " + r[4]);
                break;
            }
            case "huc-post": {
                HttpsURLConnection c =
                    (HttpsURLConnection) new URL(base + "/echo?from=huc-post").openConnection();
                c.setRequestMethod("POST");
                c.setDoOutput(true);
                c.setRequestProperty("Content-Type", "text/plain");
                c.setRequestProperty("X-Tapline-Test", "java-huc");
                byte[] payload = repeat('p', 3000).getBytes(StandardCharsets.UTF_8);
                c.setFixedLengthStreamingMode(payload.length);
                try (OutputStream o = c.getOutputStream()) {
                    o.write(payload);
                }
                int status = c.getResponseCode();
                byte[] body = readAll(c.getInputStream());
                System.out.println("POST " + status + " " + new String(body, StandardCharsets.UTF_8));
                break;
            }
            case "hc11":
            case "hc2": {
                boolean h2 = mode.equals("hc2");
                HttpClient client = HttpClient.newBuilder()
                    .version(h2 ? HttpClient.Version.HTTP_2 : HttpClient.Version.HTTP_1_1)
                    .build();
                String getPath = h2 ? "/h2-hello?from=" + mode : "/hello?from=" + mode;
                HttpResponse<String> a = client.send(
                    HttpRequest.newBuilder(URI.create(base + getPath))
                        .header("X-Tapline-Test", "java-" + mode).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
                System.out.println("GET " + a.statusCode() + " " + a.version() + " "
                    + a.body().trim());
                int size = h2 ? 2000 : 2500;
                HttpResponse<String> b = client.send(
                    HttpRequest.newBuilder(URI.create(base + "/echo?from=" + mode))
                        .header("Content-Type", "text/plain")
                        .header("X-Tapline-Test", "java-" + mode)
                        .POST(HttpRequest.BodyPublishers.ofString(repeat('q', size))).build(),
                    HttpResponse.BodyHandlers.ofString());
                System.out.println("POST " + b.statusCode() + " " + b.version() + " "
                    + b.body().length() + " " + sha256(b.body().getBytes(StandardCharsets.UTF_8)));
                break;
            }
            case "keepalive": {
                TreeSet<String> ports = new TreeSet<>();
                for (int i = 0; i < 20; i++) {
                    String[] r = hucGet(base + "/hello?from=ka-" + i);
                    ports.add(r[3]);
                    System.out.println("GET " + r[0] + " " + r[1]);
                }
                System.out.println("connections " + ports.size());
                break;
            }
            case "threads": {
                List<Thread> threads = new ArrayList<>();
                String[] results = new String[8];
                for (int i = 0; i < 8; i++) {
                    final int n = i;
                    Thread t = new Thread(() -> {
                        try {
                            String[] r = hucGet(base + "/hello?from=thread-" + n);
                            results[n] = "GET " + r[0] + " " + r[1] + " " + r[4];
                        } catch (Exception e) {
                            results[n] = "FAILED " + e;
                        }
                    });
                    threads.add(t);
                }
                for (Thread t : threads) {
                    t.start();
                }
                for (Thread t : threads) {
                    t.join();
                }
                for (String r : results) {
                    System.out.println(r);
                }
                break;
            }
            case "big": {
                HttpsURLConnection c =
                    (HttpsURLConnection) new URL(base + "/bytes/1048576?from=big").openConnection();
                int status = c.getResponseCode();
                byte[] body = readAll(c.getInputStream());
                System.out.println("GET " + status + " " + body.length + " " + sha256(body));
                break;
            }
            default:
                System.err.println("unknown mode " + mode);
                System.exit(2);
        }
    }
}
