// The JSSE paths the JVMTI agent instruments, one per mode, for tests/test_java_agent.py:
//   socket BASE  — HttpsURLConnection (SSLSocket: AppOutputStream.write /
//                  AppInputStream.read): a GET, then a POST on the kept-alive connection
//   engine BASE VERSION — java.net.http.HttpClient (SSLEngine wrap/unwrap), HTTP_1_1 or
//                  HTTP_2: a GET and a POST
// Trust comes from -Djavax.net.ssl.trustStore=... (a keytool store of the test CA).
// Prints what it received, so the test can hold the output equal with and without tapline.
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.HttpsURLConnection;

public class JavaAgentCalls {
    static String readAll(InputStream in) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        int n;
        while ((n = in.read(buf)) != -1) {
            out.write(buf, 0, n);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    static void socket(String base) throws Exception {
        HttpsURLConnection get = (HttpsURLConnection) new URL(base + "/hello?from=jsse-socket")
            .openConnection();
        get.setRequestProperty("X-Tapline-Test", "jsse-socket");
        System.out.println("GET " + get.getResponseCode() + " " + readAll(get.getInputStream()).trim());
        HttpsURLConnection post = (HttpsURLConnection) new URL(base + "/echo?from=jsse-socket")
            .openConnection();
        post.setRequestMethod("POST");
        post.setDoOutput(true);
        post.setRequestProperty("Content-Type", "text/plain");
        byte[] payload = "s".repeat(3000).getBytes(StandardCharsets.UTF_8);
        try (OutputStream o = post.getOutputStream()) {
            o.write(payload);
        }
        System.out.println("POST " + post.getResponseCode() + " "
            + readAll(post.getInputStream()).length());
    }

    static void engine(String base, String version) throws Exception {
        HttpClient client = HttpClient.newBuilder()
            .version(HttpClient.Version.valueOf(version)).build();
        HttpRequest get = HttpRequest.newBuilder(URI.create(base + "/hello?from=jsse-engine"))
            .header("X-Tapline-Test", "jsse-engine").GET().build();
        HttpResponse<String> a = client.send(get, HttpResponse.BodyHandlers.ofString());
        System.out.println("GET " + a.statusCode() + " " + a.version() + " " + a.body().trim());
        String payload = "e".repeat(2500);
        HttpRequest post = HttpRequest.newBuilder(URI.create(base + "/echo?from=jsse-engine"))
            .header("Content-Type", "text/plain")
            .POST(HttpRequest.BodyPublishers.ofString(payload)).build();
        HttpResponse<String> b = client.send(post, HttpResponse.BodyHandlers.ofString());
        System.out.println("POST " + b.statusCode() + " " + b.body().length());
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "socket" -> socket(args[1]);
            case "engine" -> engine(args[1], args[2]);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
