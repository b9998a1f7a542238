// Writes the bytes of a JDK class, as the running JDK has them in its runtime image
// (jrt:/), to a file: tests/test_java_tls.py alters such a class and puts it back with
// --patch-module, to check that a class of an unexpected shape is left untouched.
//
//   java ClassBytes MODULE INTERNAL/CLASS/NAME OUT.class
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;

public class ClassBytes {
    public static void main(String[] args) throws Exception {
        FileSystem jrt = FileSystems.getFileSystem(URI.create("jrt:/"));
        byte[] b = Files.readAllBytes(jrt.getPath("/modules", args[0], args[1] + ".class"));
        Files.write(Path.of(args[2]), b);
    }
}
