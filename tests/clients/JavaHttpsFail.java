// Java 17 HttpsURLConnection (JSSE: TLS tapline cannot read) to a server whose handshake
// fails: prints the exception's class (its message is JSSE's, and may vary) and exits 1.
// Run as a single-file program: java [-Djdk.tls.client.protocols=TLSv1.2] JavaHttpsFail.java URL
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class JavaHttpsFail {
    public static void main(String[] args) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
        try {
            System.out.println("status " + c.getResponseCode());
        } catch (java.io.IOException e) {
            System.out.println("failed " + e.getClass().getName());
            System.exit(1);
        }
    }
}
