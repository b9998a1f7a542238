// Runs the JDK's own TLS classes, wrapped and patched into java.base (src/jvm/tests.rs):
// an SSLSocket ping/pong over 127.0.0.1 and an SSLEngine handshake in memory.
// Arguments: the natives' library (may be "-": none), the keystore, its password.
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class JsseProbe {
    public static void main(String[] args) throws Exception {
        if (!args[0].equals("-")) {
            System.load(args[0]);
        }
        char[] pass = args[2].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (var in = new java.io.FileInputStream(args[1])) {
            ks.load(in, pass);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pass);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);

        InetAddress lo = InetAddress.getByName("127.0.0.1");
        try (SSLServerSocket server = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket(0, 1, lo)) {
            Thread t = new Thread(() -> {
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    byte[] b = new byte[64];
                    int n = s.getInputStream().read(b, 0, b.length);
                    OutputStream out = s.getOutputStream();
                    out.write(("pong:" + new String(b, 0, n)).getBytes());
                    out.flush();
                } catch (Exception e) {
                    System.out.println("server failed: " + e);
                }
            });
            t.start();
            try (SSLSocket c = (SSLSocket) ctx.getSocketFactory().createSocket(lo, server.getLocalPort())) {
                c.getOutputStream().write("ping".getBytes(), 0, 4);
                byte[] b = new byte[64];
                InputStream in = c.getInputStream();
                int n = in.read(b, 0, b.length);
                System.out.println("client got " + new String(b, 0, n));
            }
            t.join();
        }

        // SSLEngine: client and server handshake in memory, then one message each way.
        SSLEngine client = ctx.createSSLEngine("localhost", 443);
        client.setUseClientMode(true);
        SSLEngine srv = ctx.createSSLEngine();
        srv.setUseClientMode(false);
        int packet = client.getSession().getPacketBufferSize();
        int app = client.getSession().getApplicationBufferSize();
        ByteBuffer c2s = ByteBuffer.allocate(packet * 4);
        ByteBuffer s2c = ByteBuffer.allocate(packet * 4);
        ByteBuffer cApp = ByteBuffer.allocate(app);
        ByteBuffer sApp = ByteBuffer.allocate(app);
        ByteBuffer cOut = ByteBuffer.wrap("hello engine".getBytes());
        ByteBuffer sOut = ByteBuffer.wrap("engine says hi".getBytes());
        for (int i = 0; i < 200 && !(cApp.position() > 0 && sApp.position() > 0); i++) {
            client.wrap(cOut, c2s);
            srv.wrap(sOut, s2c);
            runTasks(client);
            runTasks(srv);
            c2s.flip();
            s2c.flip();
            client.unwrap(s2c, cApp);
            srv.unwrap(c2s, sApp);
            runTasks(client);
            runTasks(srv);
            c2s.compact();
            s2c.compact();
        }
        System.out.println("engine client got " + new String(cApp.array(), 0, cApp.position()));
        System.out.println("engine server got " + new String(sApp.array(), 0, sApp.position()));
    }

    static void runTasks(SSLEngine e) {
        Runnable r;
        while ((r = e.getDelegatedTask()) != null) {
            r.run();
        }
    }
}
