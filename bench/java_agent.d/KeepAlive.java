// HTTPS keep-alive loop for bench/java_agent: N GETs of URL over one kept-alive
// HttpsURLConnection connection (SSLSocket), after WARM unmeasured ones; prints the
// measured nanoseconds per request.
//
//   java -Djavax.net.ssl.trustStore=TS KeepAlive URL N WARM
import java.io.InputStream;
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class KeepAlive {
    static void get(URL url, byte[] buf) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) url.openConnection();
        if (c.getResponseCode() != 200) {
            throw new IllegalStateException("status " + c.getResponseCode());
        }
        try (InputStream in = c.getInputStream()) {
            while (in.read(buf) > 0) { }
        }
    }

    public static void main(String[] args) throws Exception {
        URL url = new URL(args[0]);
        int n = Integer.parseInt(args[1]);
        int warm = Integer.parseInt(args[2]);
        byte[] buf = new byte[16384];
        for (int i = 0; i < warm; i++) {
            get(url, buf);
        }
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            get(url, buf);
        }
        System.out.println((System.nanoTime() - t0) / n);
    }
}
