// The class src/jvm/tests.rs wraps: every kind of argument and return value, a
// synchronized method, a throws clause, a method that throws.
import java.io.IOException;

public class Target {
    final String name;

    public Target(String name) {
        this.name = name;
    }

    public int add(int a, long b, double c) {
        return a + (int) b + (int) c;
    }

    protected long mul(long a, int b) {
        return a * b;
    }

    double half(double d, float f) {
        return d / 2 + f;
    }

    public synchronized String greet(String who, int[] xs, byte bt, char ch, short sh, boolean z) {
        return name + " greets " + who + " " + xs.length + " " + bt + ch + sh + z;
    }

    public int[] twice(int[] xs) {
        int[] r = new int[xs.length];
        for (int i = 0; i < xs.length; i++) {
            r[i] = 2 * xs[i];
        }
        return r;
    }

    public void touch(byte[] buf, int off, int len) throws IOException {
        if (len < 0) {
            throw new IOException("negative length " + len);
        }
        buf[off] = 42;
    }

    public int boom(int x) {
        throw new IllegalStateException("boom " + x);
    }

    public final float scale(float f) {
        return f * 1.5f;
    }

    public boolean odd(int x) {
        return (x & 1) == 1;
    }

    @Override
    public String toString() {
        return "Target(" + name + ")";
    }
}
