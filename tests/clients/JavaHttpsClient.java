// Java 17 java.net.http.HttpClient over HTTPS (JSSE), HTTP/1.1 forced: a GET and a POST
// on one connection. Trust comes from -Djavax.net.ssl.trustStore=... (a keytool store).
// Run as a single-file program: java -Djavax.net.ssl.trustStore=TS JavaHttpsClient.java BASE
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class JavaHttpsClient {
    public static void main(String[] args) throws Exception {
        String base = args[0];
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest get = HttpRequest.newBuilder(URI.create(base + "/hello?from=java-tls"))
            .header("X-Tapline-Test", "java-tls").GET().build();
        HttpResponse<String> a = client.send(get, HttpResponse.BodyHandlers.ofString());
        System.out.println("GET " + a.statusCode() + " "
            + a.headers().firstValue("x-echo-query").orElse("?") + " " + a.body().trim());
        String payload = "j".repeat(2500);
        HttpRequest post = HttpRequest.newBuilder(URI.create(base + "/echo?from=java-tls"))
            .header("Content-Type", "text/plain")
            .POST(HttpRequest.BodyPublishers.ofString(payload)).build();
        HttpResponse<String> b = client.send(post, HttpResponse.BodyHandlers.ofString());
        System.out.println("POST " + b.statusCode() + " " + b.body().length());
    }
}
