// JVM start for bench/java_agent: loads the JSSE classes the agent instruments (an
// SSLContext, an SSLEngine, an SSLSocket's streams are loaded on first use) and exits.
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;

public class Start {
    public static void main(String[] args) throws Exception {
        SSLEngine e = SSLContext.getDefault().createSSLEngine("localhost", 443);
        e.setUseClientMode(true);
        System.out.println(e.getClass().getName());
    }
}
