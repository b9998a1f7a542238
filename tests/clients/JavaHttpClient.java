// Java 17 java.net.http.HttpClient, HTTP/1.1 forced: a GET with a custom header and a POST.
// Run as a single-file program: java JavaHttpClient.java BASE
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class JavaHttpClient {
    public static void main(String[] args) throws Exception {
        String base = args[0];
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest get = HttpRequest.newBuilder(URI.create(base + "/hello?from=java"))
            .header("X-Tapline-Test", "java").GET().build();
        HttpResponse<String> a = client.send(get, HttpResponse.BodyHandlers.ofString());
        System.out.println("GET " + a.statusCode() + " "
            + a.headers().firstValue("x-echo-query").orElse("?") + " " + a.body().trim());
        String payload = "j".repeat(2500);
        HttpRequest post = HttpRequest.newBuilder(URI.create(base + "/echo?from=java"))
            .header("Content-Type", "text/plain")
            .POST(HttpRequest.BodyPublishers.ofString(payload)).build();
        HttpResponse<String> b = client.send(post, HttpResponse.BodyHandlers.ofString());
        System.out.println("POST " + b.statusCode() + " " + b.body().length());
    }
}
